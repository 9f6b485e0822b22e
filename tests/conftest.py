"""Shared fixtures: real-service detection and a real Celery worker process.

Tests marked ``services`` need PostgreSQL (``DATABASE_URL=postgres://…``), a
broker (``CELERY_BROKER_URL=redis://…``) and start real ``celery worker``
processes. Without them they are skipped with the reason printed by ``-ra``;
with ``REQUIRE_SERVICES=1`` (CI) a missing service fails the test instead.
``rabbitmq_worker_factory`` runs this process and its workers on RabbitMQ
(``TEST_AMQP_URL``) whatever ``CELERY_BROKER_URL`` says, skipped or failed the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# One Chromium for the whole session, shared by every browser test module: a copy of the fixture
# in each module would start a second Playwright inside the first one's event loop, which fails.
from tests.browser_conftest import chromium_browser  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _missing_services(*, broker_too: bool = True) -> list[str]:
    from django.conf import settings

    missing = []
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        missing.append("DATABASE_URL is not PostgreSQL")
    if not broker_too:
        return missing
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker:
        missing.append("CELERY_BROKER_URL is not set")
    else:
        try:
            from kombu import Connection

            with Connection(broker, connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1)
        except Exception as exc:
            missing.append(f"broker {broker} unreachable: {exc}")
    return missing


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, broker_too in (("services", True), ("postgres", False)):
        marked = [item for item in items if item.get_closest_marker(marker)]
        if not marked:
            continue
        missing = _missing_services(broker_too=broker_too)
        if not missing:
            continue
        for item in marked:
            if REQUIRE_SERVICES:
                item.add_marker(pytest.mark.usefixtures(f"_fail_missing_{marker}"))
            else:
                item.add_marker(pytest.mark.skip(reason=f"needs {marker}: " + "; ".join(missing)))


@pytest.fixture
def _fail_missing_services() -> None:
    pytest.fail("REQUIRE_SERVICES=1 but " + "; ".join(_missing_services()))


@pytest.fixture
def _fail_missing_postgres() -> None:
    pytest.fail("REQUIRE_SERVICES=1 but " + "; ".join(_missing_services(broker_too=False)))


def _test_database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    host = s["HOST"] or "127.0.0.1"
    port = s["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


class WorkerProcess:
    """A real ``celery worker`` in its own process group, on the test database."""

    def __init__(self, env_overrides: dict[str, str], log_path: Path) -> None:
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": _test_database_url(),
                "TEST_CELERY_EAGER": "0",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(env_overrides)
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "turingtest",
                "worker",
                "-Q",
                "default,gpu",
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL the whole process group: the crash a real worker can suffer."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def _start_workers(tmp_path: Path, settings, broker_url: str | None = None) -> Iterator:
    """Yield a function that starts real workers on ``broker_url`` (the configured broker if None)."""
    from turingtest.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    with app.connection_for_write() as conn:
        for queue in ("default", "gpu"):
            conn.default_channel.queue_purge(queue) if _queue_exists(conn, queue) else None
    workers: list[WorkerProcess] = []
    broker_env = {"CELERY_BROKER_URL": broker_url} if broker_url else {}

    def start(**env_overrides: str) -> WorkerProcess:
        worker = WorkerProcess({**broker_env, **env_overrides}, tmp_path / f"worker{len(workers)}.log")
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.conf.task_always_eager = True


@pytest.fixture
def worker_factory(transactional_db, tmp_path: Path, settings) -> Iterator:
    """Start real worker processes; tasks sent during the test go through the broker.

    Only for ``transaction=True`` tests: the worker reads what the test commits.
    """
    # settings read CELERY_BROKER_URL at import, so the app already points at the broker.
    yield from _start_workers(tmp_path, settings)


# RabbitMQ for the worker-recovery tests, whatever CELERY_BROKER_URL says (CI's is Redis).
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def rabbitmq_worker_factory(transactional_db, tmp_path: Path, settings, monkeypatch) -> Iterator:
    """Like ``worker_factory``, but this process and its workers use RabbitMQ (``TEST_AMQP_URL``)."""
    from kombu import Connection

    from turingtest.celery import app

    try:
        with Connection(AMQP_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        message = f"RabbitMQ {AMQP_URL} unreachable: {exc}"
        pytest.fail(f"REQUIRE_SERVICES=1 but {message}") if REQUIRE_SERVICES else pytest.skip(message)
    # Celery reads CELERY_BROKER_URL from the environment before its config: switch both, and drop
    # the old broker's pools so that sending really goes to RabbitMQ.
    old_url, old_options = app.conf.broker_url, app.conf.broker_transport_options
    monkeypatch.setenv("CELERY_BROKER_URL", AMQP_URL)
    app.conf.broker_url = AMQP_URL
    # What settings.py adds for an amqp:// broker: publisher confirms when scheduling.
    app.conf.broker_transport_options = {**old_options, "confirm_publish": True}
    # Forget (never close: kombu shares them process-wide) the pools made for the old broker.
    app._pool, app.amqp._producer_pool = None, None
    try:
        yield from _start_workers(tmp_path, settings, AMQP_URL)
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = old_url, old_options
        app._pool, app.amqp._producer_pool = None, None


def _queue_exists(conn, queue: str) -> bool:
    try:
        conn.default_channel.queue_declare(queue=queue, passive=True)
        return True
    except Exception:
        return False


@pytest.fixture
def live_worker(worker_factory) -> WorkerProcess:
    return worker_factory()


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread: tiny test networks run faster without threading overhead,
    and parallel test processes on a small machine don't oversubscribe its cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
