"""The real path: a task sent through the broker runs in a separate worker process
and its result lands in the database."""

from __future__ import annotations

import io
import os

import pytest
from django.core.management import call_command

from turingtest.core.models import WorkerProbe


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_task_sent_through_the_broker_is_run_by_a_worker_process_and_lands_in_the_database(live_worker):
    out = io.StringIO()
    call_command("check_worker", "--timeout", "60", stdout=out)
    assert "queue default: ok" in out.getvalue()
    assert "queue gpu: ok" in out.getvalue()
    probes = list(WorkerProbe.objects.all())
    assert len(probes) == 2
    # Written by the worker process, not by this one: eager mode is off.
    assert live_worker.proc.pid != os.getpid()
    assert "worker_probe" in live_worker.log()


@pytest.mark.django_db
def test_in_the_embedded_default_the_probe_runs_eagerly():
    out = io.StringIO()
    call_command("check_worker", "--timeout", "5", stdout=out)
    assert WorkerProbe.objects.count() == 2
