"""Benchmark: a 64-image generation batch through Redis and a warmed Celery worker vs in-process.

Both paths do the same work (render the same 64 specs with the same seeds, normalize,
store the files and rows) through the same service; the only difference is the
broker, the worker process and the chunk bookkeeping. The worker is warmed first
(model loaded, one warm-up batch), as a long-lived GPU worker would be.

Needs real services: ``DATABASE_URL=postgres://…`` and ``CELERY_BROKER_URL=redis://…``
(the database is migrated; every row and file the benchmark makes is removed again).

    DJANGO_DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/dermgan \\
        CELERY_BROKER_URL=redis://127.0.0.1:6379/0 python benchmarks/batch.py

Last line: ``batch: ratio=<broker/in-process wall time> target=<=1.15``.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COUNT = 64
CHUNK = 16
ROUNDS = 3
SEED = 640_064


def _require_services() -> None:
    missing = []
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        missing.append("DATABASE_URL=postgres://… (PostgreSQL)")
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        missing.append("CELERY_BROKER_URL=redis://… (Redis)")
    if missing:
        print(
            "benchmarks/batch.py needs real services; set " + " and ".join(missing) + ". "
            "It starts its own Celery worker on that broker.",
            file=sys.stderr,
        )
        sys.exit(2)


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "turingtest", "worker", "-Q", "gpu,default",
            "--concurrency", "1", "--pool", "prefork", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "-n", f"bench{os.getpid()}@%h",
        ],
        cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"celery worker exited early:\n{log.read_text()[-3000:]}")
        if b"ready." in log.read_bytes():
            return proc
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"celery worker not ready after 120 s:\n{log.read_text()[-3000:]}")


def main() -> None:
    _require_services()
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "turingtest.settings"
    media = Path(tempfile.mkdtemp(prefix="dermgan-bench-media-"))
    os.environ["MEDIA_ROOT"] = str(media)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import logging

    logging.getLogger("celery").setLevel(logging.WARNING)  # eager runs would log every chunk here
    from django.core.management import call_command

    from turingtest.celery import app
    from turingtest.library import checkpoints, rendering, scheduling, store
    from turingtest.library.models import GenerationBatch, GenerationChunk, GeneratorCheckpoint, Image

    call_command("migrate", verbosity=0)
    call_command("loaddata", str(ROOT / "fixtures" / "conditions.json"), verbosity=0)

    work = Path(tempfile.mkdtemp(prefix="dermgan-bench-"))
    demo = ROOT / "fixtures" / "dermgan-demo.pt"
    if demo.is_file():
        ckpt_path = demo
    else:  # before the demo checkpoint exists: a DermGAN-shaped small network (ngf 16, 128 px)
        import torch

        from generator import checkpoint as ckpt_lib
        from generator.config import GeneratorConfig
        from generator.networks import build_generator

        config = GeneratorConfig(
            conditions=("MEL", "NEV", "SEK", "BCC", "AK", "SCC"), image_size=128, ngf=16, num_downs=7
        )
        torch.manual_seed(0)
        ckpt_path = work / "bench.pt"
        ckpt_lib.save(ckpt_path, model=build_generator(config), config=config, metadata={})
    existed = set(GeneratorCheckpoint.objects.values_list("pk", flat=True))
    checkpoint = checkpoints.checkpoint_register(path=ckpt_path, name="benchmark")
    codes = [c for c in checkpoint.conditions if store.ConditionLookup().get(c)]
    distribution = {
        "condition_weights": {c: 1.0 for c in codes},
        "fitzpatrick_weights": {str(k): 1.0 for k in range(1, 7)},
    }
    print(
        f"checkpoint {ckpt_path.name}: {checkpoint.image_size} px, ngf {checkpoint.config['ngf']}, {COUNT} images, chunks of {CHUNK}"
    )

    made: list[GenerationBatch] = []

    def discard(batch: GenerationBatch) -> None:
        made.remove(batch)
        for image in Image.objects.filter(batch=batch):
            store.files_delete(image.file.name, image.mask.name)
        Image.objects.filter(batch=batch).delete()
        GenerationChunk.objects.filter(batch=batch).delete()
        batch.delete()

    def in_process() -> float:
        app.conf.task_always_eager = True
        try:
            t0 = time.perf_counter()
            batch = scheduling.batch_schedule(
                checkpoint=checkpoint, count=COUNT, seed=SEED, distribution=distribution, chunk_size=CHUNK
            )
            elapsed = time.perf_counter() - t0
            made.append(batch)
        finally:
            app.conf.task_always_eager = False
        assert batch.status == "succeeded" and batch.n_done == COUNT, (batch.status, batch.error)
        discard(batch)
        return elapsed

    def through_broker(seed: int = SEED) -> float:
        t0 = time.perf_counter()
        batch = scheduling.batch_schedule(
            checkpoint=checkpoint, count=COUNT, seed=seed, distribution=distribution, chunk_size=CHUNK
        )
        made.append(batch)
        batch = scheduling.batch_wait(batch=batch, timeout=600, poll=0.01)
        elapsed = time.perf_counter() - t0
        assert batch.status == "succeeded" and batch.n_done == COUNT, (batch.status, batch.error)
        discard(batch)
        return elapsed

    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    app.conf.task_always_eager = False
    with app.connection_for_write() as conn:
        for queue in ("gpu", "default"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:
                pass
    worker = None
    try:
        worker = _start_worker(env, work / "worker.log")
        through_broker(seed=SEED + 1)  # warm-up: the worker loads the model once and keeps it
        checkpoints.renderer_get(checkpoint).render(
            [
                rendering.spec_for(
                    GenerationBatch(
                        checkpoint=checkpoint,
                        seed=SEED,
                        image_size=checkpoint.image_size,
                        distribution=distribution,
                    ),
                    0,
                )
            ],
            [1],
        )  # warm the in-process renderer the same way
        broker_times, local_times = [], []
        for _ in range(ROUNDS):  # alternate so drifting machine load hits both paths alike
            local_times.append(in_process())
            broker_times.append(through_broker())
        local, broker = statistics.median(local_times), statistics.median(broker_times)
        print(
            f"in-process: {', '.join(f'{t:.2f}' for t in local_times)} s  (median {local:.2f} s, {COUNT / local:.1f} img/s)"
        )
        print(
            f"broker+worker: {', '.join(f'{t:.2f}' for t in broker_times)} s  (median {broker:.2f} s, {COUNT / broker:.1f} img/s)"
        )
        ratio = broker / local
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        for batch in list(made):
            discard(batch)
        if checkpoint.pk not in existed:
            store.files_delete(checkpoint.file.name)
            checkpoint.delete()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(media, ignore_errors=True)
    print(f"batch: ratio={ratio:.3f} target=<=1.15")


if __name__ == "__main__":
    main()
