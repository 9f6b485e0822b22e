"""Sending work to Celery: which errors mean "the broker is down", a fail-fast check, and
"enqueue after commit, or mark the row failed with the broker's message".

Every unit of background work has a row (an import job, a generation batch, an evaluation
run) whose status the admin shows. A row must never say *queued* while nothing will run
it, so each enqueue either reaches the broker or writes the broker's message on the row.
Library imports, generation batches and evaluation runs all send through here.

Run eagerly (the embedded default, no broker) sending *is* running the task in-process:
then no error is caught, because a task's own failure is recorded by the task and must
never be mistaken for an unreachable broker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import redis.exceptions
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from turingtest.celery import app
from turingtest.core.failures import job_failure_notify

T = TypeVar("T")


class BrokerUnavailable(Exception):
    """The task broker could not be reached: nothing was (or will be) run."""


# What sending raises when the broker is unreachable: kombu's wrapper, the socket, or redis-py itself.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    KombuOperationalError,
    ConnectionError,
    OSError,
    TimeoutError,
    redis.exceptions.ConnectionError,
)


def broker_check() -> None:
    """Fail fast, before any row is written, when tasks cannot be sent."""
    if app.conf.task_always_eager:
        return
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        raise BrokerUnavailable(
            f"the task broker is unreachable ({_redact(app.conf.broker_url)}): {exc}. "
            "Nothing was scheduled; start Redis or fix CELERY_BROKER_URL and try again."
        ) from None


def _redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url or "")


def is_eager() -> bool:
    """Tasks run in-process (no broker configured)."""
    return bool(app.conf.task_always_eager)


def row_fail(*, model: type[Model], pk: int, error: str) -> int:
    """Mark an unfinished row failed with ``error``; returns 1 if it was, 0 if it had already finished.

    ``model`` is a work row: ``status`` with QUEUED, RUNNING and FAILED, ``error``, ``finished``.
    """
    status = model.Status  # type: ignore[attr-defined]
    n = model.objects.filter(pk=pk, status__in=[status.QUEUED, status.RUNNING]).update(  # type: ignore[attr-defined]
        status=status.FAILED, error=error, finished=timezone.now()
    )
    if n:  # whoever scheduled it hears of it (batches, imports and training jobs)
        job_failure_notify(job=model(pk=pk))
    return n


def send_or_fail(send: Callable[[], T], *, model: type[Model], pk: int, what: str) -> T | None:
    """Call ``send`` (an ``apply_async``); if the broker cannot take it, the row fails and None is returned.

    The row's error reads ``"could not enqueue {what}: {broker's message}"``: callers and tests
    recognise a broker failure by that prefix.
    """
    errors = () if is_eager() else BROKER_ERRORS
    try:
        return send()
    except errors as exc:
        row_fail(model=model, pk=pk, error=f"could not enqueue {what}: {exc}")
        return None


def enqueue_on_commit(send: Callable[[], object], *, model: type[Model], pk: int, what: str) -> None:
    """``send_or_fail`` once the surrounding transaction commits (a worker must see the row)."""
    transaction.on_commit(partial(send_or_fail, send, model=model, pk=pk, what=what))
