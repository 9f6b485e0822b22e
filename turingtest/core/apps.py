from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "turingtest.core"
    label = "core"
    verbose_name = "Platform"
