"""Rating round trip under gunicorn on PostgreSQL: "submit answer + get next item" vs a trivial view.

The app runs under gunicorn (gthread, ``--workers`` x ``--threads``) on a fresh PostgreSQL
database made for this run (``<DATABASE_URL name>_ratingbench``, dropped afterwards). N
simulated raters (threads, one keep-alive ``http.client`` connection each, logged in through a
session created server-side, CSRF header like the page sends) alternate between two phases,
in the same run so machine noise hits both alike:

- baseline: ``POST /bench/trivial``, a DRF view behind the same middleware, session
  authentication, CSRF check and permission as the rater API, returning a fixed small JSON
  (benchmark-only URLconf in ``benchmarks/ratingsite``, never in production URLs);
- ours: ``POST /api/rate/<study>/answers`` with the current item's token: records the judgment
  and returns the next state (next item, prefetch URL, progress) in the same response.

Bounded in count (``--requests`` per rater per phase) and time (``--phase-seconds``); talks to
127.0.0.1 only. Checks that the database holds exactly one judgment per acknowledged answer.
Prints throughput and p50/p99 latency per phase; the last line is
``rating: ratio=<ours/baseline throughput> target=>=0.5``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dermgan python benchmarks/rating.py [--raters 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER_SETTINGS = "benchmarks.ratingsite.settings"


def fail(message: str, code: int = 1) -> None:
    print(f"rating benchmark: {message}", file=sys.stderr)
    sys.exit(code)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- study data


def make_study(*, n_raters: int, items_per_rater: int) -> tuple[int, list[str]]:
    """An open study every rater can answer ``items_per_rater`` items of; returns (study id, session keys)."""
    import hashlib

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from turingtest.core import roles
    from turingtest.library.models import Condition, Image
    from turingtest.studies import services

    conditions = []
    for i, code in enumerate(("BXA", "BXB", "BXC", "BXD")):
        cond, _ = Condition.objects.get_or_create(
            code=code, defaults={"name": f"Benchmark condition {code}", "map_index": 900 + i}
        )
        conditions.append(cond)
    per_kind = math.ceil(items_per_rater / 2)
    images = []
    for kind in (Image.Kind.REAL, Image.Kind.SYNTHETIC):
        for i in range(per_kind * 2):  # a pool twice the draw
            images.append(
                Image(
                    kind=kind,
                    condition=conditions[i % len(conditions)],
                    fitzpatrick=1 + i % 6,
                    width=256,
                    height=256,
                    sha256=hashlib.sha256(f"{kind}{i}".encode()).hexdigest(),
                    file=f"{secrets.token_hex(16)}.png",
                )
            )
    Image.objects.bulk_create(images)
    User = get_user_model()
    owner = User.objects.create_user("bench-researcher", password=None)
    roles.add_to_role(owner, roles.RESEARCHERS)
    study = services.study_create(
        owner=owner,
        title="Rating benchmark",
        config={
            "n_real": per_kind,
            "n_synthetic": per_kind,
            "pool": {"conditions": [c.code for c in conditions]},
            "questions": {"confidence": True, "diagnosis": True, "comment": False},
        },
    )
    services.study_open(study=study)
    sessions = []
    for token in services.invitation_create(study=study, count=n_raters):
        rater = User.objects.create_user(f"bench-rater-{token[:8]}", password=None)
        assignment = services.invitation_accept(token=token, user=rater)
        services.assignment_consent(assignment=assignment)
        session = SessionStore()
        session[SESSION_KEY] = str(rater.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = rater.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key)
    return study.pk, sessions


# ------------------------------------------------------------------------------ server


class Server:
    """gunicorn in its own process group; stopped (SIGTERM, then SIGKILL) whatever happens."""

    def __init__(self, *, port: int, env: dict[str, str], workers: int, threads: int, log: Path) -> None:
        self.port = port
        self.log_path = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "turingtest.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(threads),
                "--keep-alive",
                "30",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn not answering after {timeout}s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


# ------------------------------------------------------------------------------ raters


@dataclass
class PhaseResult:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    cpu_app: float = 0.0  # seconds of CPU the gunicorn processes used during the phase
    cpu_db: float = 0.0  # ... and the PostgreSQL backends serving them (0 when not readable)


def _proc_stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` (Linux /proc): CPU cost is robust to a busy machine, wall time is not."""
    ticks = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_group(pgid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and int(fields[2]) == pgid:
                out.append(int(entry.name))
    return out


def database_backends(db_name: str) -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [db_name]
        )
        return [row[0] for row in cursor.fetchall()]


class Rater:
    """One rater's browser, reduced to its requests: a keep-alive connection and its cookies."""

    def __init__(self, *, port: int, session_key: str, study_id: int) -> None:
        self.port = port
        self.study_id = study_id
        csrf = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        self.headers = {
            "Cookie": f"sessionid={session_key}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.token: str | None = None
        self.n_recorded = 0

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict, float]:
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            start = time.perf_counter()
            try:
                self.conn.request(method, path, body=payload, headers=self.headers)
                response = self.conn.getresponse()
                data = response.read()
                elapsed = time.perf_counter() - start
                return response.status, (json.loads(data) if data else {}), elapsed
            except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
                # The server closed an idle keep-alive connection: reconnect once (answers are
                # idempotent on client_key, so resending is safe).
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def load_state(self) -> None:
        status, data, _ = self.call("GET", f"/api/rate/{self.study_id}/state")
        if status != 200:
            raise RuntimeError(f"state: HTTP {status} {data}")
        self.token = data["item"]["token"] if data["item"] else None

    def trivial(self) -> float:
        status, data, elapsed = self.call("POST", "/bench/trivial", self._answer())
        if status != 200 or data != {"ok": True}:
            raise RuntimeError(f"trivial view: HTTP {status} {data}")
        return elapsed

    def rate(self) -> float:
        if self.token is None:
            raise RuntimeError("rater ran out of items (raise the pool size)")
        status, data, elapsed = self.call("POST", f"/api/rate/{self.study_id}/answers", self._answer())
        if status != 201 or not data.get("recorded"):
            raise RuntimeError(f"answer: HTTP {status} {data}")
        self.n_recorded += 1
        item = data["state"]["item"]
        self.token = item["token"] if item else None
        return elapsed

    def _answer(self) -> dict:
        return {
            "token": self.token or "",
            "client_key": str(uuid.uuid4()),
            "says_synthetic": secrets.randbelow(2) == 1,
            "confidence": 1 + secrets.randbelow(5),
            "diagnosis": "unsure",
            "comment": "",
            "response_ms": 800 + secrets.randbelow(4000),
        }


def count_queries(study_id: int, session_key: str) -> dict[str, int]:
    """SQL statements (BEGIN/SAVEPOINT/COMMIT included) of one call of each kind, in-process:
    the first thing to look at when the ratio is off."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(enforce_csrf_checks=True)
    client.cookies["sessionid"] = session_key
    client.cookies["csrftoken"] = "b" * 32
    headers = {"HTTP_X_CSRFTOKEN": "b" * 32}
    token = client.get(f"/api/rate/{study_id}/state").json()["item"]["token"]
    answer = {"token": token, "client_key": str(uuid.uuid4()), "says_synthetic": True, "diagnosis": "unsure"}
    out = {}
    for what, path in (("trivial", "/bench/trivial"), ("rating", f"/api/rate/{study_id}/answers")):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(path, json.dumps(answer), content_type="application/json", **headers)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"in-process {what}: HTTP {response.status_code}")
        out[what] = len(queries)
    return out


def run_phase(
    raters: list[Rater], what: str, n_requests: int, seconds: float, app_pids: list[int], db_pids: list[int]
) -> PhaseResult:
    """All raters at once, each doing up to ``n_requests`` calls or until ``seconds`` pass."""
    result = PhaseResult()
    app_before, db_before = cpu_seconds(app_pids), cpu_seconds(db_pids)
    lock = threading.Lock()
    barrier = threading.Barrier(len(raters) + 1)
    deadline_box: list[float] = []

    def work(rater: Rater) -> None:
        barrier.wait()
        deadline = deadline_box[0]
        mine = []
        try:
            for _ in range(n_requests):
                if time.perf_counter() > deadline:
                    break
                mine.append(rater.trivial() if what == "trivial" else rater.rate())
        except Exception as exc:  # reported below; the run then fails
            with lock:
                result.errors.append(f"{what}: {exc}")
        with lock:
            result.latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    start = time.perf_counter()
    deadline_box.append(start + seconds)
    barrier.wait()
    for t in threads:
        t.join()
    result.wall = time.perf_counter() - start
    result.cpu_app = cpu_seconds(app_pids) - app_before
    result.cpu_db = cpu_seconds(db_pids) - db_before
    return result


def summary(label: str, results: list[PhaseResult]) -> tuple[float, str]:
    latencies = np.array([x for r in results for x in r.latencies]) * 1000
    wall = sum(r.wall for r in results)
    throughput = len(latencies) / wall if wall else 0.0
    p50, p99 = np.percentile(latencies, [50, 99]) if len(latencies) else (float("nan"),) * 2
    n = max(len(latencies), 1)
    app_ms = sum(r.cpu_app for r in results) / n * 1000
    db_ms = sum(r.cpu_db for r in results) / n * 1000
    return throughput, (
        f"{label:<14} CPU per request: app {app_ms:5.1f} ms, database {db_ms:5.1f} ms\n"
        f"{label:<14} {len(latencies):6d} requests in {wall:6.2f} s = {throughput:8.1f} req/s   "
        f"p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
    )


# -------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=8, help="concurrent simulated raters (threads)")
    parser.add_argument("--requests", type=int, default=40, help="max requests per rater per phase")
    parser.add_argument("--phase-seconds", type=float, default=8.0, help="max seconds per phase")
    parser.add_argument("--rounds", type=int, default=2, help="alternations trivial/rating")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if not 1 <= args.raters <= 64 or not 1 <= args.requests <= 1000 or not 0 < args.phase_seconds <= 120:
        fail("bounds: --raters 1..64, --requests 1..1000, --phase-seconds up to 120", 2)

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        fail(
            "needs PostgreSQL: set DATABASE_URL=postgres://USER@127.0.0.1:5432/NAME "
            f"(got {url or 'nothing'}); the run uses and drops NAME_ratingbench",
            2,
        )
    secret = secrets.token_urlsafe(50)
    media = Path(tempfile.mkdtemp(prefix="dermgan-ratingbench-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": SERVER_SETTINGS,
            "DJANGO_DEBUG": "1",  # this process only builds data; the server runs without debug
            "DJANGO_SECRET_KEY": secret,  # the server must verify the sessions made here
            "MEDIA_ROOT": str(media),
            "DERMGAN_VAR_DIR": str(media / "var"),
        }
    )
    os.environ.pop("CELERY_BROKER_URL", None)
    (media / "var" / "static").mkdir(parents=True)  # WhiteNoise warns about a missing STATIC_ROOT
    import django

    django.setup()
    from django.db import connection

    from turingtest.studies.models import Judgment

    base_name = connection.settings_dict["NAME"]
    bench_name = f"{base_name}_ratingbench"
    connection.settings_dict.setdefault("TEST", {})["NAME"] = bench_name
    try:
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    except Exception as exc:  # unreachable server, no CREATEDB right...
        shutil.rmtree(media, ignore_errors=True)
        fail(
            f"cannot create the benchmark database {bench_name} on {connection.settings_dict['HOST']}: {exc}"
        )
    server = None
    try:
        warmup = 3
        items_per_rater = warmup + args.rounds * args.requests + 4
        study_id, sessions = make_study(n_raters=args.raters, items_per_rater=items_per_rater)
        s = connection.settings_dict
        auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{bench_name}",
                "DJANGO_DEBUG": "0",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                "DJANGO_SECURE_SSL_REDIRECT": "0",
                "LOG_LEVEL": "WARNING",
            }
        )
        port = free_port()
        server = Server(
            port=port, env=env, workers=args.workers, threads=args.threads, log=media / "gunicorn.log"
        )
        server.wait_ready()

        raters = [Rater(port=port, session_key=key, study_id=study_id) for key in sessions]
        for r in raters:
            r.load_state()
            for _ in range(warmup):
                r.trivial()
                r.rate()

        results: dict[str, list[PhaseResult]] = {"trivial": [], "rating": []}
        app_pids = process_group(server.proc.pid)
        db_pids = database_backends(bench_name)
        for _ in range(args.rounds):
            for what in ("trivial", "rating"):
                phase = run_phase(raters, what, args.requests, args.phase_seconds, app_pids, db_pids)
                if phase.errors:
                    raise RuntimeError(f"{len(phase.errors)} failed requests, first: {phase.errors[0]}")
                results[what].append(phase)

        queries = count_queries(study_id, sessions[0])
        expected = sum(r.n_recorded for r in raters) + 1  # + the one count_queries answered
        recorded = Judgment.objects.filter(presentation__assignment__study_id=study_id).count()
        if recorded != expected:
            raise RuntimeError(f"{recorded} judgments in the database for {expected} acknowledged answers")

        print(
            f"rating benchmark: gunicorn gthread {args.workers} workers x {args.threads} threads, "
            f"{args.raters} raters, PostgreSQL {bench_name}, {args.rounds} rounds alternating"
        )
        base, line = summary("trivial view", results["trivial"])
        print(line)
        ours, line = summary("submit+next", results["rating"])
        print(line)
        print(f"judgments recorded: {recorded} (one per acknowledged answer)")
        print(f"SQL statements per request: trivial {queries['trivial']}, submit+next {queries['rating']}")
        print(f"rating: ratio={ours / base:.2f} target=>=0.5")
    except Exception as exc:
        if server is not None:
            print(server.log_tail(), file=sys.stderr)
        fail(str(exc))
    finally:
        if server is not None:
            server.stop()
        connection.creation.destroy_test_db(base_name, verbosity=0)
        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
