"""``generator.train.train`` in bounded pieces (``TrainLimits``): what the platform's training
jobs do, one Celery task per piece, each resuming the run folder the last one left."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from generator.checkpoint import load
from generator.train import TrainLimits, options_from_args, train

TINY = ["--image-size", "64", "--ngf", "8", "--ndf", "8", "--threads", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _opts(out, *extra):
    argv = ["--procedural", "3", "--out", str(out), "--steps", "5", "--batch-size", "2", "--seed", "4"]
    return options_from_args([*argv, "--checkpoint-every", "4", *TINY, *extra])


def test_pieces_of_at_most_n_steps_end_with_the_weights_of_one_uninterrupted_run(tmp_path):
    whole = train(_opts(tmp_path / "whole"))
    opts = _opts(tmp_path / "pieces")
    checkpoints: list[int] = []
    limits = TrainLimits(max_steps=2, on_checkpoint=checkpoints.append)
    steps = [train(opts, limits).step]
    while steps[-1] < opts.steps:
        steps.append(train(dataclasses.replace(opts, resume=True), limits).step)
    assert steps == [2, 4, 5]
    assert checkpoints == [2, 4, 5]  # every piece ends with a checkpoint to resume from
    a, b = load(whole.checkpoint), load(tmp_path / "pieces" / "generator.pt")
    for key in a.state_dict:
        assert torch.equal(a.state_dict[key], b.state_dict[key]), key
    assert b.metadata["training"]["step"] == 5


def test_a_piece_stops_on_its_time_bound_or_when_on_log_asks_and_checkpoints_there(tmp_path):
    opts = _opts(tmp_path / "run", "--log-every", "1")
    seen: list[int] = []
    result = train(
        opts, TrainLimits(on_log=lambda record: seen.append(record["step"]) or record["step"] == 2)
    )
    assert result.step == 2 and seen == [1, 2]
    assert load(tmp_path / "run" / "generator.pt").metadata["training"]["step"] == 2
    result = train(dataclasses.replace(opts, resume=True), TrainLimits(max_seconds=0.0))
    assert result.step == 3  # at least one step per call, then the deadline stops it
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
