from __future__ import annotations

import socket

from celery import shared_task

from turingtest.core.models import WorkerProbe


@shared_task(acks_late=True)
def worker_probe(*, token: str, queue: str = "default") -> str:
    """Record that this worker ran a task; idempotent on ``token``."""
    WorkerProbe.objects.get_or_create(
        token=token, defaults={"hostname": socket.gethostname(), "queue": queue}
    )
    return token
