"""Send a probe task to each queue and wait for a worker to write it to the database."""

from __future__ import annotations

import secrets
import time

from django.core.management.base import BaseCommand, CommandError

from turingtest.core.models import WorkerProbe
from turingtest.core.tasks import worker_probe


class Command(BaseCommand):
    help = "Check the broker -> worker -> database path for the default and gpu queues."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=30.0)
        parser.add_argument("--queues", default="default,gpu")

    def handle(self, *args, timeout: float, queues: str, **options):
        for queue in [q.strip() for q in queues.split(",") if q.strip()]:
            token = secrets.token_hex(8)
            try:
                worker_probe.apply_async(kwargs={"token": token, "queue": queue}, queue=queue)
            except Exception as exc:
                raise CommandError(f"could not send to queue {queue!r}: {exc}") from exc
            deadline = time.monotonic() + timeout
            while not WorkerProbe.objects.filter(token=token).exists():
                if time.monotonic() > deadline:
                    raise CommandError(f"no worker answered on queue {queue!r} within {timeout:.0f}s")
                time.sleep(0.2)
            probe = WorkerProbe.objects.get(token=token)
            self.stdout.write(f"queue {queue}: ok (worker {probe.hostname})")
