from __future__ import annotations

from django.db import models


class WorkerProbe(models.Model):
    """Written by a worker in answer to ``manage.py check_worker``: proof that a task
    travelled broker -> worker -> database, end to end."""

    token = models.CharField(max_length=32, unique=True)
    hostname = models.CharField(max_length=200)
    queue = models.CharField(max_length=50)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"probe {self.token} by {self.hostname}"
