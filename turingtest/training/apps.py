from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "turingtest.training"
    label = "training"
    verbose_name = "Training"
