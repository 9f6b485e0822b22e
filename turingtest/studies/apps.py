from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "turingtest.studies"
    label = "studies"
