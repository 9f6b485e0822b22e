"""Export throughput: our streamed CSV export vs PostgreSQL's own ``COPY … TO STDOUT``.

A synthetic study of 200 raters x 5,000 images (1,000,000 judgments; ``--raters`` and
``--images`` shrink it) is written into a fresh ``test_*`` PostgreSQL database. Then, in
the same process and alternating so machine noise hits both alike:

- baseline: ``COPY (SELECT … the same rows and columns …) TO STDOUT WITH CSV HEADER``
  sent straight through psycopg2's ``copy_expert`` into a byte counter;
- ours: ``turingtest.exports.iter_export(study, fmt="csv")`` consumed chunk by chunk, as
  a streaming HTTP response or the management command would.

Prints rows/s for each, the peak Python heap (tracemalloc) of one more export run, and the
headline ``export: ratio=<ours/baseline throughput> target=>=0.5`` as the last line.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.support.synthetic_study import bench_database, make_synthetic_study, setup_django  # noqa: E402


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def write(self, data: bytes) -> None:
        self.n += len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=200)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    setup_django()
    from django.db import connection

    from turingtest import exports
    from turingtest.studies.models import Study

    with bench_database():
        study = Study.objects.get(pk=make_synthetic_study(n_raters=args.raters, n_images=args.images))
        n_rows = args.raters * args.images
        sql = exports.copy_sql(study)

        def baseline() -> int:
            sink = _Counter()
            with connection.cursor() as cur:
                cur.cursor.copy_expert(sql, sink, size=1 << 16)
            return sink.n

        def ours() -> int:
            return sum(len(c) for c in exports.iter_export(study, fmt="csv"))

        baseline()  # warm the cache: both runs then read from memory
        base_t, ours_t = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            base_bytes = baseline()
            base_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            our_bytes = ours()
            ours_t.append(time.perf_counter() - t)
        if our_bytes != base_bytes:
            raise SystemExit(f"export sizes differ: ours {our_bytes} B, COPY {base_bytes} B")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        ours()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        b, o = min(base_t), min(ours_t)
        print(f"rows: {n_rows:,}  csv bytes: {our_bytes:,}")
        print(
            f"COPY TO STDOUT (baseline): {b:.2f}s  {n_rows / b:,.0f} rows/s  {base_bytes / b / 2**20:.1f} MiB/s"
        )
        print(
            f"exports.iter_export csv:   {o:.2f}s  {n_rows / o:,.0f} rows/s  {our_bytes / o / 2**20:.1f} MiB/s"
        )
        print(
            f"peak Python heap during one export: {peak / 2**20:.1f} MiB (csv is {our_bytes / 2**20:.0f} MiB)"
        )
        print(
            f"process max RSS: {rss_after / 1024:.0f} MiB (before the traced run: {rss_before / 1024:.0f} MiB)"
        )
    print(f"export: ratio={b / o:.2f} target=>=0.5")


if __name__ == "__main__":
    main()
