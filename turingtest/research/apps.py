from django.apps import AppConfig


class ResearchConfig(AppConfig):
    name = "turingtest.research"
    label = "research"
