"""What the operators page shows: live workers and their queues, tasks waiting, the latest failures.

Only staff reach it (``views.ops``); the anonymous ``/healthz`` and ``/readyz`` never call
anything here. Asking workers costs a broadcast and a wait (``OPS_INSPECT_TIMEOUT``), so the
answer is cached for ``OPS_CACHE_SECONDS`` across web processes: reloading the page, or
several operators looking at once, does not flood the broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db.models import F

from turingtest.celery import app
from turingtest.core.failures import admin_path

QUEUES = ("default", "gpu")
_WORKERS_KEY = "core:ops:workers"

# The work rows whose failures the page lists: (app label, model), each with status and error.
FAILING_MODELS = (
    ("library", "GenerationBatch"),
    ("library", "GenerationChunk"),
    ("library", "ImportJob"),
    ("library", "MaskJob"),
    ("evaluation", "FidelityRun"),
    ("evaluation", "AugmentationRun"),
    ("training", "TrainingJob"),
    ("studies", "LeakAudit"),
)


@dataclass(frozen=True)
class Worker:
    name: str
    queues: tuple[str, ...]
    n_active: int  # tasks it is running now


@dataclass(frozen=True)
class Failure:
    what: str  # "generation batch 12"
    error: str
    finished: datetime | None
    url: str  # its admin page, "" if none


def is_eager() -> bool:
    return bool(app.conf.task_always_eager)


def _connect_once(conn) -> None:
    """Connect or raise at once: kombu's default retry waits two seconds before giving up."""
    conn.ensure_connection(
        max_retries=1, interval_start=0, interval_step=0, timeout=settings.OPS_INSPECT_TIMEOUT
    )


def workers_alive() -> dict:
    """``{"mode": "eager"}``, or ``{"workers": [Worker…], "error": str}`` (cached a few seconds).

    One ``active_queues`` broadcast tells which workers answer and what they consume; ``active``
    adds what they are busy with. A worker that does not answer within the timeout counts as gone.
    """
    if is_eager():
        return {"mode": "eager", "workers": [], "error": ""}
    cached = cache.get(_WORKERS_KEY)
    if cached is not None:
        return cached
    result: dict = {"mode": "broker", "workers": [], "error": ""}
    try:
        # A down broker would make the broadcast retry for seconds: find out in one short try first.
        with app.connection_for_read() as conn:
            _connect_once(conn)
        inspect = app.control.inspect(timeout=settings.OPS_INSPECT_TIMEOUT)
        queues = inspect.active_queues() or {}
        active = inspect.active() or {} if queues else {}
        result["workers"] = [
            Worker(
                name=name,
                queues=tuple(sorted(q["name"] for q in qs)),
                n_active=len(active.get(name) or []),
            )
            for name, qs in sorted(queues.items())
        ]
    except Exception as exc:  # broker down: the page says so instead of failing
        result["error"] = f"{type(exc).__name__}: {exc}"
    cache.set(_WORKERS_KEY, result, timeout=settings.OPS_CACHE_SECONDS)
    return result


def queue_lengths() -> dict:
    """``{queue: n_waiting or None}`` and an error: messages waiting in the broker, per queue.

    A passive ``queue_declare`` asks without creating anything: RabbitMQ answers its message
    count, Redis (kombu's virtual transport) the length of the queue's lists (all priority
    levels). A queue never declared has nothing waiting. Eager mode has no queue.
    """
    if is_eager():
        return {"mode": "eager", "lengths": {}, "error": ""}
    lengths: dict[str, int | None] = {}
    error = ""
    try:
        with app.connection_for_read() as conn:
            _connect_once(conn)
            for name in QUEUES:
                channel = conn.channel()  # RabbitMQ closes a channel whose passive declare failed
                try:
                    lengths[name] = channel.queue_declare(queue=name, passive=True).message_count
                except Exception as exc:
                    if "NOT_FOUND" not in str(exc).upper().replace(" ", "_"):
                        raise
                    lengths[name] = 0
                finally:
                    try:
                        channel.close()
                    except Exception:
                        pass
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        lengths = {name: lengths.get(name) for name in QUEUES}
    return {"mode": "broker", "lengths": lengths, "error": error}


def failures_latest() -> list[Failure]:
    """The latest failed row of each kind of background work, newest first."""
    out = []
    for app_label, name in FAILING_MODELS:
        model = apps.get_model(app_label, name)
        # nulls_last: PostgreSQL sorts a missing time first in descending order, SQLite last.
        row = (
            model.objects.filter(status="failed").order_by(F("finished").desc(nulls_last=True), "-pk").first()
        )
        if row is not None:
            out.append(
                Failure(
                    what=f"{model._meta.verbose_name} {row.pk}",
                    error=row.error,
                    finished=row.finished,
                    # A chunk has no page of its own: its batch's page shows it.
                    url=admin_path(getattr(row, "batch", None) or row),
                )
            )
    return sorted(out, key=lambda f: (f.finished is not None, f.finished), reverse=True)
