"""Celery app. Queues: ``default`` (imports, reports) and ``gpu`` (rendering).

Settings come from Django's ``CELERY_*`` settings; with no broker configured the
tasks run eagerly in-process (the embedded default). The recommended production broker
is RabbitMQ (``CELERY_BROKER_URL=amqp://…``): with late acks (``settings.py``) a killed
worker's task returns to its queue when its connection drops, not after Redis's
``visibility_timeout``; ``tests/test_worker_recovery.py`` kills one with SIGKILL to prove it.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "turingtest.settings")

app = Celery("turingtest")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("gpu"))
if not app.conf.broker_url:
    # Never let Celery fall back to amqp://localhost: tasks run eagerly instead.
    app.conf.broker_url = "memory://"
app.autodiscover_tasks()
