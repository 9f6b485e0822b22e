from __future__ import annotations

import hashlib
import json
import os
import pickle

import pytest
import torch

from generator import __version__
from generator.checkpoint import (
    CheckpointError,
    TrainingState,
    load,
    load_generator,
    save,
    training_state_load,
    training_state_save,
)
from generator.config import GeneratorConfig
from generator.networks import PatchDiscriminator, build_generator

CONFIG = GeneratorConfig(conditions=("MEL", "NEV"), image_size=32, ngf=4, num_downs=5)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_generator(CONFIG)
    path = tmp_path / "g.pt"
    sha = save(path, model=model, config=CONFIG, metadata={"training": {"steps": 3}})
    return path, sha, model


def test_a_checkpoint_round_trips_weights_config_and_metadata(saved):
    path, sha, model = saved
    ckpt = load(path)
    assert ckpt.sha256 == sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ckpt.config == CONFIG
    assert ckpt.metadata["conditions"] == ["MEL", "NEV"] and ckpt.metadata["image_size"] == 32
    assert ckpt.metadata["generator_version"] == __version__
    assert ckpt.metadata["training"] == {"steps": 3} and "one-hot" in ckpt.metadata["encoding"]
    again, _ = load_generator(path)
    assert not again.training
    x = torch.randn(1, CONFIG.in_channels, 32, 32)
    model.eval()
    again.sampling_dropout = model.sampling_dropout = False
    torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)


def test_the_file_is_a_plain_weights_only_archive_with_json_metadata(saved):
    path, _, _ = saved
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "dermgan-checkpoint"
    assert json.loads(raw["metadata_json"])["config"]["ngf"] == 4


@pytest.mark.parametrize("keep", [0, 10, 0.5, -100])
def test_a_truncated_file_is_reported_as_truncated(saved, keep):
    path, _, _ = saved
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    path.write_bytes(data[:n])
    with pytest.raises(CheckpointError, match="^truncated"):
        load(path)


def test_garbage_and_other_files_are_not_checkpoints(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    text = tmp_path / "notes.pt"
    text.write_text("hello, I am not a network")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    plain_state = tmp_path / "state.pt"
    torch.save(build_generator(CONFIG).state_dict(), plain_state)
    for path in (garbage, text, other, plain_state, tmp_path / "missing.pt"):
        with pytest.raises(CheckpointError, match="^not a checkpoint"):
            load(path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("zip_container", [True, False])
def test_a_pickle_with_code_is_refused_without_running_it(tmp_path, zip_container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": "dermgan-checkpoint", "format_version": 1, "state_dict": {}, "x": _Exploit(marker)}
    if zip_container:
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="^not a checkpoint"):
        load(path)
    assert not marker.exists()


def test_weights_that_do_not_fit_the_config_are_an_architecture_mismatch(tmp_path):
    wider = build_generator(GeneratorConfig(conditions=("MEL", "NEV"), image_size=32, ngf=8, num_downs=5))
    path = tmp_path / "g.pt"
    save(path, model=wider, config=CONFIG, metadata={})
    with pytest.raises(CheckpointError, match="^architecture mismatch: .* has shape"):
        load(path)
    deeper = build_generator(GeneratorConfig(conditions=("MEL", "NEV"), image_size=32, ngf=4, num_downs=4))
    save(path, model=deeper, config=CONFIG, metadata={})
    with pytest.raises(CheckpointError, match="^architecture mismatch: .*missing"):
        load(path)
    more_conditions = GeneratorConfig(conditions=("MEL", "NEV", "BCC"), image_size=32, ngf=4, num_downs=5)
    save(path, model=build_generator(CONFIG), config=more_conditions, metadata={})
    with pytest.raises(CheckpointError, match="^architecture mismatch"):
        load(path)


def test_saving_is_atomic_and_keeps_the_old_file_on_failure(saved):
    path, sha, model = saved
    with pytest.raises(ValueError, match="JSON"):
        save(path, model=model, config=CONFIG, metadata={"bad": object()})
    assert load(path).sha256 == sha
    assert [p.name for p in path.parent.iterdir()] == ["g.pt"]  # no temp files left behind


def test_the_shipped_demo_checkpoint_loads_documents_its_command_and_draws_lesions():
    from pathlib import Path

    from generator.data import TAXONOMY_CONDITIONS
    from generator.semantic_map import LesionSpec, MapSpec, encode

    path = Path(__file__).resolve().parent.parent / "fixtures" / "dermgan-demo.pt"
    assert path.stat().st_size < 20 * 2**20
    ckpt = load(path)
    # 256 px (the real photos' size), trained on the PAD-UFES-20 train split (fixtures/pad-ufes-20/TRAINING.md)
    assert ckpt.config.ngf == 16 and ckpt.config.image_size == 256 and ckpt.config.num_downs == 8
    assert ckpt.config.conditions == TAXONOMY_CONDITIONS
    command = ckpt.metadata["training"]["command"]
    assert command.startswith("python -m generator.train --manifest fixtures/pad-ufes-20/train.csv")
    model, _ = load_generator(ckpt)
    model.sampling_dropout = False
    lesion = LesionSpec("MEL", center=(0.5, 0.5), area_fraction=0.08)
    maps = torch.stack(
        [encode(MapSpec(size=256, lesions=(lesion,), fitzpatrick=k), TAXONOMY_CONDITIONS) for k in (1, 6)]
    )
    with torch.inference_mode():
        out = model(maps)  # (2, 3, 256, 256)
    inside = maps[:, 3:4].bool().expand_as(out)
    for i in range(2):
        # a trained network draws a dark melanoma on the skin; an untrained one draws noise
        assert out[i][~inside[i]].mean() - out[i][inside[i]].mean() > 0.2
    assert out[0][~inside[0]].mean() > out[1][~inside[1]].mean() + 0.2  # type I skin is lighter than type VI


def _training_state(seed: int) -> TrainingState:
    torch.manual_seed(seed)
    G, D = build_generator(CONFIG), PatchDiscriminator(CONFIG.in_channels + 3, ndf=4)
    return TrainingState(
        discriminator=D,
        opt_g=torch.optim.Adam(G.parameters(), lr=1e-3),
        opt_d=torch.optim.Adam(D.parameters(), lr=1e-3),
        scaler_g=torch.amp.GradScaler("cpu", enabled=False),
        scaler_d=torch.amp.GradScaler("cpu", enabled=False),
    )


def test_the_training_state_round_trips_into_fresh_objects_with_counters_and_rng(tmp_path):
    state = _training_state(0)
    x = torch.randn(2, CONFIG.in_channels + 3, 32, 32)
    state.discriminator(x).mean().backward()
    state.opt_d.step()  # gives the optimiser moments worth restoring
    state.step, state.elapsed, state.images_seen = 7, 12.5, 14
    torch.manual_seed(42)
    training_state_save(tmp_path / "s.pt", state, device=torch.device("cpu"))
    expected_draw = torch.rand(3)

    fresh = _training_state(1)
    torch.manual_seed(0)  # loading must put the RNG back where it was when saved
    training_state_load(tmp_path / "s.pt", fresh, device=torch.device("cpu"))
    assert (fresh.step, fresh.elapsed, fresh.images_seen) == (7, 12.5, 14)
    assert torch.equal(torch.rand(3), expected_draw)
    for key, value in state.discriminator.state_dict().items():
        assert torch.equal(fresh.discriminator.state_dict()[key], value), key
    moments = [s["exp_avg"] for s in fresh.opt_d.state_dict()["state"].values()]
    assert moments and all(m.abs().sum() > 0 for m in moments)


def test_a_generator_checkpoint_is_not_a_training_state(saved):
    path, _, _ = saved
    with pytest.raises(CheckpointError, match="not a training state file"):
        training_state_load(path, _training_state(0), device=torch.device("cpu"))
