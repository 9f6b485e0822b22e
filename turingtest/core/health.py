"""Liveness and readiness of the web tier, for ``/healthz``, ``/readyz`` and the deploy check.

``/healthz`` is public and must stay cheap whatever an anonymous client does: one
``SELECT 1``, nothing else. The deep probes (a storage write, a broker connection, a
worker ping that waits up to a second, the static files manifest) run for ``/readyz``
at most once per ``READINESS_CACHE_SECONDS`` across all web processes sharing the cache.
"""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

COLLECTSTATIC_HINT = "run `python manage.py collectstatic --noinput`, then restart the web server"
_REPORT_KEY = "core:readiness:report"
_PROBING_KEY = "core:readiness:probing"


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
    from turingtest.celery import app

    if app.conf.task_always_eager:  # the app's own view: it is what sending a task obeys
        return {"ok": True, "mode": "eager"}, {"ok": True, "mode": "eager", "n_workers": 0}
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


def check_static_files() -> dict:
    """Whether this process can name its static files (the manifest storage needs ``staticfiles.json``).

    Without the manifest every page that links a stylesheet or script fails with a 500.
    The storage reads the manifest once, when the process first uses it, so a manifest
    written by a later ``collectstatic`` needs a restart before it counts.
    """
    if not isinstance(staticfiles_storage, ManifestFilesMixin):
        return {"ok": True, "mode": "no manifest needed"}
    where = f"{settings.STATIC_ROOT}/{staticfiles_storage.manifest_name}"
    if not staticfiles_storage.manifest_storage.exists(staticfiles_storage.manifest_name):
        return {"ok": False, "error": f"{where} is missing: {COLLECTSTATIC_HINT}"}
    if not staticfiles_storage.hashed_files:
        return {"ok": False, "error": f"{where} appeared after this process started: restart the web server"}
    return {"ok": True}


def liveness() -> tuple[dict, bool]:
    """Whether the process answers and reaches its database; nothing slower, nothing written."""
    alive = check_database()["ok"]
    return {"status": "ok" if alive else "unavailable"}, alive


def readiness() -> tuple[dict, bool]:
    """Report and whether the web tier can serve pages (database, storage and static files).

    A missing worker or broker degrades scheduling but not rating, so it does not make
    the web tier unready; it is reported for operators.
    """
    broker, workers = check_broker_and_workers()
    report = {
        "database": check_database(),
        "storage": check_storage(),
        "static_files": check_static_files(),
        "broker": broker,
        "workers": workers,
    }
    ready = all(report[name]["ok"] for name in ("database", "storage", "static_files"))
    report["status"] = "ok" if ready else "unavailable"
    return report, ready


def readiness_cached() -> tuple[dict, bool]:
    """``readiness()``, probed at most once per ``READINESS_CACHE_SECONDS``.

    While one request probes, the others get the previous answer instead of probing too,
    so a burst of requests when the answer expires costs one probe, not one per request.
    """
    max_age = settings.READINESS_CACHE_SECONDS
    cached = cache.get(_REPORT_KEY)
    if cached is not None and time.time() - cached["checked_at"] < max_age:
        return cached["report"], cached["ready"]
    is_prober = cache.add(_PROBING_KEY, True, timeout=30)
    if cached is not None and not is_prober:
        return cached["report"], cached["ready"]
    try:
        report, ready = readiness()
        checked_at = time.time()
        report["checked_at"] = checked_at
        # Kept beyond max_age so it can stand in while the next probe runs.
        cache.set(
            _REPORT_KEY, {"report": report, "ready": ready, "checked_at": checked_at}, timeout=max_age + 60
        )
    finally:
        if is_prober:
            cache.delete(_PROBING_KEY)
    return report, ready
