"""The DermGAN Turing Test platform (Django project)."""

from turingtest.celery import app as celery_app

__all__ = ["celery_app"]
