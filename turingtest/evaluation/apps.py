from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "turingtest.evaluation"
    label = "evaluation"
