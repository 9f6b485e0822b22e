"""Health of the web tier's dependencies, for ``/healthz`` and operators."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # any driver error means "not serving"
        return {"ok": False, "error": str(exc)}


def check_storage() -> dict:
    name = f"healthz/{uuid.uuid4().hex}"
    try:
        saved = default_storage.save(name, ContentFile(b"ok"))
        default_storage.delete(saved)
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def check_broker_and_workers(timeout: float = 1.0) -> tuple[dict, dict]:
    """Broker reachability and whether any Celery worker answers a ping."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "eager"}, {"ok": True, "mode": "eager", "n_workers": 0}
    from turingtest.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        return {"ok": False, "error": str(exc)}, {"ok": False, "n_workers": 0}
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:
        return {"ok": True}, {"ok": False, "n_workers": 0, "error": str(exc)}
    return {"ok": True}, {"ok": bool(replies), "n_workers": len(replies)}


def health() -> tuple[dict, bool]:
    """Report and whether the web tier can serve (database and storage up).

    A missing worker or broker degrades scheduling but not rating, so it does
    not make the web tier unhealthy; it is reported for operators.
    """
    broker, workers = check_broker_and_workers()
    report = {
        "database": check_database(),
        "storage": check_storage(),
        "broker": broker,
        "workers": workers,
    }
    serving = report["database"]["ok"] and report["storage"]["ok"]
    report["status"] = "ok" if serving else "unavailable"
    return report, serving
