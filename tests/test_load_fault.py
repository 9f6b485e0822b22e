"""Load and fault: 20 raters answer at once through gunicorn on PostgreSQL while the server crashes.

The app runs as in production (``turingtest.settings``, ``DJANGO_DEBUG=0``, gunicorn gthread)
on the test database; the study, raters and their sessions come from the rating benchmark's
helpers. Each simulated rater (a thread with its own connection) loads its state, answers,
sometimes submits the same answer twice (a double click: same ``client_key``) or a second
answer with a new key (a second tab), and retries with the same key whenever a request fails
on the connection. A third of the way in, gunicorn's whole process group is killed (SIGKILL:
requests in flight lose their responses) and a new server starts on the same port.

Afterwards the database must hold exactly one judgment per presentation a rater saw
acknowledged, and nothing else: no answer lost by the crash, none recorded twice.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from benchmarks.rating import Server, free_port, make_study
from tests.conftest import _test_database_url
from turingtest.studies.models import Judgment, Presentation

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

N_RATERS = 20
ITEMS_PER_RATER = 10
DEADLINE_S = 90.0
RETRYABLE = (OSError, http.client.HTTPException)


class Rater(threading.Thread):
    """One rater's browser: answers every item, double-submits some, retries every failure."""

    def __init__(self, *, port: int, session_key: str, study_id: int, seed: int, deadline: float) -> None:
        super().__init__(daemon=True)
        csrf = uuid.uuid4().hex
        self.headers = {
            "Cookie": f"sessionid={session_key}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Content-Type": "application/json",
        }
        self.port, self.study_id, self.deadline = port, study_id, deadline
        self.random = random.Random(seed)
        self.acknowledged: set[str] = set()  # tokens the server confirmed as recorded
        self.n_retries = 0
        self.failure: str | None = None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        """One request, resent (same body, so same client_key) until the server answers it."""
        while time.monotonic() < self.deadline:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            try:
                conn.request(method, path, body=json.dumps(body) if body else None, headers=self.headers)
                response = conn.getresponse()
                status, data = response.status, response.read()
            except RETRYABLE:
                self.n_retries += 1
                time.sleep(0.2)
                continue
            finally:
                conn.close()
            if status >= 500:  # a worker dying mid-request behind gunicorn: retry like the page does
                self.n_retries += 1
                time.sleep(0.2)
                continue
            return status, json.loads(data) if data else {}
        raise TimeoutError(f"{method} {path} got no answer before the deadline")

    def run(self) -> None:
        try:
            self._rate()
        except Exception as exc:  # reported by the test, with the rater's failure
            self.failure = f"{type(exc).__name__}: {exc}"

    def _rate(self) -> None:
        base = f"/api/rate/{self.study_id}"
        status, state = self.call("GET", f"{base}/state")
        assert status == 200, (status, state)
        while state["item"] is not None:
            token = state["item"]["token"]
            answer = {
                "token": token,
                "client_key": str(uuid.uuid4()),
                "says_synthetic": self.random.random() < 0.5,
            }
            answer.update(confidence=self.random.randint(1, 5), diagnosis="unsure", response_ms=900)
            status, body = self.call("POST", f"{base}/answers", answer)
            assert status in (200, 201) and body["recorded"], (status, body)  # 200: a retry's replay
            self.acknowledged.add(token)
            roll = self.random.random()
            if roll < 0.3:  # double click: the same answer again is a replay, not a second judgment
                again, replay = self.call("POST", f"{base}/answers", answer)
                assert again == 200 and replay["recorded"], (again, replay)
            elif roll < 0.45:  # a second tab: another key for the answered item is refused
                other = {**answer, "client_key": str(uuid.uuid4())}
                again, refusal = self.call("POST", f"{base}/answers", other)
                assert again == 409, (again, refusal)
            state = body["state"]


def _server_env(db_url: str, var: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CELERY_BROKER_URL", None)  # answering never enqueues work
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "turingtest.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # the sessions made here are signed with it
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": db_url,
            "MEDIA_ROOT": str(var / "media"),
            "DERMGAN_VAR_DIR": str(var),
            "LOG_LEVEL": "WARNING",
        }
    )
    (var / "static").mkdir(parents=True, exist_ok=True)
    return env


def test_concurrent_raters_with_double_submits_lose_and_duplicate_nothing_across_a_server_crash(tmp_path):
    study_id, sessions = make_study(n_raters=N_RATERS, items_per_rater=ITEMS_PER_RATER)
    env = _server_env(_test_database_url(), tmp_path / "var")
    port = free_port()
    server = Server(port=port, env=env, workers=2, threads=4, log=tmp_path / "gunicorn-1.log")
    try:
        server.wait_ready()
        deadline = time.monotonic() + DEADLINE_S
        raters = [
            Rater(port=port, session_key=key, study_id=study_id, seed=i, deadline=deadline)
            for i, key in enumerate(sessions)
        ]
        for rater in raters:
            rater.start()
        total = N_RATERS * ITEMS_PER_RATER
        while sum(len(r.acknowledged) for r in raters) < total // 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(server.proc.pid, signal.SIGKILL)  # a crash, not a graceful stop
        server.stop()
        n_before_crash = sum(len(r.acknowledged) for r in raters)
        server = Server(port=port, env=env, workers=2, threads=4, log=tmp_path / "gunicorn-2.log")
        server.wait_ready()
        for rater in raters:
            rater.join(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        server.stop()

    failures = [r.failure or "still running at the deadline" for r in raters if r.failure or r.is_alive()]
    assert not failures, f"{failures[:3]}\ngunicorn after the restart:\n{server.log_tail()}"
    assert 0 < n_before_crash < total, "the crash must land mid-run"
    assert sum(r.n_retries for r in raters) > 0, "the crash must have cut some raters' requests"
    acknowledged = set().union(*(r.acknowledged for r in raters))
    assert len(acknowledged) == total  # every rater finished every item
    judged = set(
        Judgment.objects.filter(presentation__assignment__study_id=study_id).values_list(
            "presentation__public_token", flat=True
        )
    )
    n_judgments = Judgment.objects.filter(presentation__assignment__study_id=study_id).count()
    answered = Presentation.objects.filter(assignment__study_id=study_id, answered_at__isnull=False).count()
    assert judged == acknowledged  # nothing lost, nothing recorded that was not acknowledged
    assert n_judgments == len(acknowledged) == answered  # nothing recorded twice
