"""Helpers for the library tests: tiny real checkpoints (not the demo one) and the taxonomy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from django.core.management import call_command

from generator import checkpoint as ckpt_lib
from generator.config import GeneratorConfig
from generator.networks import build_generator

TINY_CONDITIONS = ("MEL", "NEV", "SEK", "BCC")


@pytest.fixture(name="library")
def library_fixture(db, settings, tmp_path):
    """The taxonomy, media under tmp_path, 32-px images and no renderer cached from another test.

    Import it as ``library_fixture``: pytest registers it as ``library`` (a test's parameter
    of that name would otherwise shadow the imported name).
    """
    from turingtest.library import checkpoints

    call_command("loaddata", "fixtures/conditions.json", verbosity=0)
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMAGE_SIZE = 32
    checkpoints.renderers_clear()
    return tmp_path


@pytest.fixture(name="checkpoint")
def checkpoint_fixture(library):
    """A tiny checkpoint registered as "tiny" (conditions ``TINY_CONDITIONS``, 32 px)."""
    from turingtest.library import checkpoints

    return checkpoints.checkpoint_register(path=tiny_checkpoint(library / "tiny.pt"), name="tiny")


def tiny_checkpoint(path: Path, *, size: int = 32, ngf: int = 8, num_downs: int = 5, seed: int = 0) -> Path:
    """A randomly initialised generator saved as a real checkpoint: fast to render, real code path."""
    config = GeneratorConfig(conditions=TINY_CONDITIONS, image_size=size, ngf=ngf, num_downs=num_downs)
    torch.manual_seed(seed)
    model = build_generator(config)
    ckpt_lib.save(path, model=model, config=config, metadata={"training": {"note": "untrained test network"}})
    return path


def distribution(**overrides) -> dict:
    base = {
        "condition_weights": {"MEL": 1.0, "NEV": 1.0, "SEK": 1.0},
        "area_fraction_range": [0.02, 0.1],
        "location": "anywhere",
        "lesions_per_image": [1, 2],
        "fitzpatrick_weights": {"1": 1.0, "3": 1.0, "6": 1.0},
        "skin_rgbs": None,
    }
    base.update(overrides)
    return base


CLOSED_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: a broker that is down


@contextmanager
def broker_down(monkeypatch) -> Iterator[None]:
    """Point the Celery app at a closed port (never stop the shared Redis) and send for real.

    Celery reads ``CELERY_BROKER_URL`` from the environment before its own config, so both change.
    """
    from turingtest.celery import app

    old = (app.conf.broker_url, app.conf.task_always_eager)
    monkeypatch.setenv("CELERY_BROKER_URL", CLOSED_BROKER)
    app.conf.broker_url, app.conf.task_always_eager = CLOSED_BROKER, False
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.task_always_eager = old
        monkeypatch.undo()
        app.amqp._producer_pool = None
