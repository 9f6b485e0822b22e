from django.apps import AppConfig


class LibraryConfig(AppConfig):
    name = "turingtest.library"
    label = "library"
