"""A GPU worker killed with SIGKILL mid-batch, on RabbitMQ (the recommended broker): the chunk
it held returns to the queue as soon as its connection drops, and a new worker finishes the batch
within two minutes of the kill with exactly N images.

Needs PostgreSQL and RabbitMQ (``TEST_AMQP_URL``, default ``amqp://guest:guest@127.0.0.1:5672//``);
the Redis path with a short ``visibility_timeout`` is in ``test_library_reliability.py``.
"""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command

from tests.library_support import distribution, tiny_checkpoint
from tests.test_library_reliability import _assert_exactly, _wait_until
from turingtest.library import checkpoints, scheduling

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

RECOVERY_BUDGET_S = 120  # the promise: a killed worker's work resumes and completes within two minutes


def test_a_worker_killed_mid_batch_on_rabbitmq_is_replaced_and_the_batch_completes_quickly(
    transactional_db, tmp_path, rabbitmq_worker_factory
):
    call_command("loaddata", "fixtures/conditions.json", verbosity=0)
    checkpoints.renderers_clear()
    # Heavy enough that the batch takes several seconds, so the kill lands mid-way.
    checkpoint = checkpoints.checkpoint_register(
        path=tiny_checkpoint(tmp_path / "r.pt", size=64, ngf=32, num_downs=6)
    )
    # A visibility timeout far beyond the budget: if recovery came from it, the test would fail.
    first = rabbitmq_worker_factory(CELERY_VISIBILITY_TIMEOUT="3600")
    assert "amqp://" in first.log()
    batch = scheduling.batch_schedule(
        checkpoint=checkpoint, count=24, seed=7, distribution=distribution(), chunk_size=4
    )

    def mid_batch() -> bool:
        batch.refresh_from_db()
        return batch.n_done >= 4

    _wait_until(mid_batch, timeout=60, what="the first chunk", worker=first)
    first.kill()
    killed_at = time.monotonic()
    batch.refresh_from_db()
    assert not batch.is_finished, "the batch finished before the kill: make it slower"
    done_at_kill = batch.n_done
    second = rabbitmq_worker_factory(CELERY_VISIBILITY_TIMEOUT="3600")
    batch = scheduling.batch_wait(batch=batch, timeout=RECOVERY_BUDGET_S)
    recovered_in = time.monotonic() - killed_at
    print(f"kill -9 to batch complete: {recovered_in:.1f}s ({done_at_kill}/24 done at the kill)")
    assert batch.status == "succeeded", (batch.error, second.log())
    assert recovered_in < RECOVERY_BUDGET_S, recovered_in
    assert done_at_kill < 24 and batch.n_done == 24
    _assert_exactly(batch, 24)  # none lost, none rendered twice
    assert set(batch.chunks.values_list("status", flat=True)) == {"done"}
    # The chunk the first worker held was redelivered, not left waiting for a timeout.
    assert "render_chunk" in second.log()
