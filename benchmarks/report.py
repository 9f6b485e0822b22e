"""Report build time vs the time to just read the judgment rows into arrays.

A synthetic study of 200 raters × 5,000 images (1,000,000 judgments; ``--raters`` and
``--images`` shrink it) is written into a fresh PostgreSQL database
(``test_<name>`` for the database ``<name>`` of ``DATABASE_URL``, on its server, migrated,
dropped afterwards) by ``benchmarks/support/synthetic_study.py``, the same data the export benchmark uses.
Its big tables are filled by ``INSERT … SELECT`` computed inside PostgreSQL, which is
faster still than streaming generated rows with ``COPY FROM``.

Then, alternating so machine noise hits both alike, each in a fresh Python process (so
peak memory is the phase's own):

- baseline: ``turingtest.reports.read_rows(study)``: the one judgment query into numpy
  arrays, nothing else;
- ours: ``turingtest.reports.build(study)``: the same read, the lookups and every statistic
  (1,000 two-way bootstrap replicates included).

Prints the best time of each and its peak resident memory above the process's size before
the phase (``ru_maxrss``). ``build`` is ``read_rows`` + ``load_study`` (the lookups) +
``build_report`` (the statistics), timed in parts in
the same run, so each build run also gives a paired ratio (build ÷ its own read) that noise
between processes cannot skew; the headline ``report: ratio=<median paired ratio>
target=<=2`` is the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "dermgan_bench_report"


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _child(phase: str, study_id: int) -> None:
    """Run one phase in this (fresh) process and print its time and memory as JSON."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.db import connection

    from turingtest import reports
    from turingtest.studies.models import Study

    study = Study.objects.get(pk=study_id)
    connection.ensure_connection()
    before = _rss_mb()
    t0 = time.perf_counter()
    # reports.build(study) is exactly read_rows + load_study + build_report; timing the parts in
    # the same run gives a paired ratio that machine noise between processes cannot skew.
    rows = reports.read_rows(study)
    t_read = time.perf_counter() - t0
    n = rows.n
    if phase == "build":
        report = reports.build_report(reports.load_study(study), rows, generated_at="")
        n = report.meta.n_judgments_total
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "phase": phase,
                "seconds": seconds,
                "read_seconds": t_read,
                "n": n,
                "peak_mb": peak,
                "delta_mb": peak - before,
            }
        )
    )


def _run_child(phase: str, study_id: int, database_url: str) -> dict:
    env = dict(os.environ, DATABASE_URL=database_url, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--study", str(study_id)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"{phase} phase failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=200)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating read/build rounds")
    parser.add_argument("--phase", choices=("read", "build"), help=argparse.SUPPRESS)
    parser.add_argument("--study", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        _child(args.phase, args.study)
        return

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(
            "benchmarks/report.py needs PostgreSQL: set DATABASE_URL=postgres://USER@HOST:PORT/ANYDB "
            f"(got {url or 'nothing'}); it creates and drops its own database test_ANYDB there."
        )
    parts = urlsplit(url)
    # The bench database is test_<the URL's database name>, so two people benchmarking on one
    # server with different names never clobber each other's database.
    name = parts.path.lstrip("/") or BENCH_DB
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    sys.path.insert(0, str(ROOT))
    from benchmarks.support.synthetic_study import bench_database, make_synthetic_study, setup_django

    setup_django()
    from django.db import connection

    with bench_database():
        t0 = time.perf_counter()
        study_id = make_synthetic_study(n_raters=args.raters, n_images=args.images)
        print(
            f"synthetic study: {args.raters} raters × {args.images} images in {time.perf_counter() - t0:.1f} s"
        )
        child_url = urlunsplit(parts._replace(path=f"/{connection.settings_dict['NAME']}"))
        connection.close()  # the children connect on their own
        warm = _run_child("read", study_id, child_url)  # warms PostgreSQL's cache for both
        print(f"warm-up read: {warm['n']:,} judgment rows in {warm['seconds']:.2f} s")
        reads, builds = [], []
        for _ in range(args.rounds):
            reads.append(_run_child("read", study_id, child_url))
            builds.append(_run_child("build", study_id, child_url))
        read = min(reads, key=lambda r: r["seconds"])
        build = min(builds, key=lambda r: r["seconds"])
        for label, runs, best in (("read rows into arrays", reads, read), ("build report", builds, build)):
            times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
            print(
                f"{label + ':':23s}{best['seconds']:.2f} s (best of {len(runs)}: {times}), "
                f"peak RSS {max(r['peak_mb'] for r in runs):.0f} MB "
                f"(+{max(r['delta_mb'] for r in runs):.0f} MB during the phase)"
            )
        paired = sorted(b["seconds"] / b["read_seconds"] for b in builds)
        ratio = float(np.median(paired))
        print(
            f"rows: {read['n']:,}; within each build run, build ÷ its own read: "
            f"{', '.join(f'{p:.2f}' for p in paired)} (median {ratio:.2f}); "
            f"best build ÷ best read-only run: {build['seconds'] / read['seconds']:.2f}"
        )
    print(f"report: ratio={ratio:.2f} target=<=2")


if __name__ == "__main__":
    main()
