from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from generator.checkpoint import load, load_generator
from generator.config import GeneratorConfig
from generator.data import TAXONOMY_CONDITIONS, procedural_sample
from generator.sampling import image_seed
from generator.semantic_map import LesionSpec, MapSpec
from generator.train import main, options_from_args

TINY = ["--image-size", "64", "--ngf", "8", "--ndf", "8", "--threads", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_it_overfits_a_handful_of_procedural_pairs_and_the_checkpoint_renders_after_reload(tmp_path):
    run = tmp_path / "run"
    args = ["--procedural", "4", "--out", str(run), "--steps", "40", "--batch-size", "4", "--no-augment"]
    assert main(args + ["--log-every", "1", "--checkpoint-every", "20", "--samples", "4", *TINY]) == 0

    l1 = [r["loss_g_l1"] for r in _metrics(run)]
    assert len(l1) == 40
    assert np.mean(l1[-5:]) < 0.5 * l1[0], l1  # pix2pix's L1 falls by more than half in 40 steps

    ckpt = load(run / "generator.pt")
    assert ckpt.config.image_size == 64 and ckpt.config.conditions == TAXONOMY_CONDITIONS
    assert ckpt.metadata["training"]["step"] == 40
    assert ckpt.metadata["training"]["command"].startswith("python -m generator.train --procedural 4")
    assert ckpt.metadata["training"]["options"]["lr"] == 2e-4
    assert ckpt.metadata["training"]["options"]["amp"] is False  # never on CPU
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-0000020.png", "step-0000040.png"]
    assert Image.open(run / "samples" / "step-0000040.png").size == (4 * 64, 3 * 64)

    from generator.render import Renderer

    spec = MapSpec(size=64, lesions=(LesionSpec("MEL", center=(0.5, 0.5), area_fraction=0.1),), fitzpatrick=2)
    renderer = Renderer(run / "generator.pt", device="cpu", batch_size=2)
    images = renderer.render([spec, spec], seed=3)
    assert [im.size for im in images] == [(64, 64), (64, 64)]
    assert renderer.render([spec], seed=[image_seed(3, 0)])[0].tobytes() == images[0].tobytes()

    # the trained network reproduces a training photo better than the untrained one did
    model, _ = load_generator(run / "generator.pt")
    model.sampling_dropout = False
    sample = procedural_sample(seed=image_seed(0, 0), size=64)
    from generator.semantic_map import encode

    with torch.inference_mode():
        fake = model(encode(sample.spec, TAXONOMY_CONDITIONS)[None])[0]
    real = torch.from_numpy(np.asarray(sample.image).copy()).permute(2, 0, 1).float() / 127.5 - 1
    assert (fake - real).abs().mean().item() < 0.6 * l1[0]


def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path):
    common = ["--procedural", "3", "--batch-size", "2", "--checkpoint-every", "3", "--seed", "5", *TINY]
    assert main(["--out", str(tmp_path / "a"), "--steps", "6", *common]) == 0
    assert main(["--out", str(tmp_path / "b"), "--steps", "3", *common]) == 0
    assert main(["--out", str(tmp_path / "b"), "--steps", "6", "--resume", *common]) == 0
    a, b = load(tmp_path / "a" / "generator.pt"), load(tmp_path / "b" / "generator.pt")
    assert b.metadata["training"]["step"] == 6
    assert a.state_dict.keys() == b.state_dict.keys()
    for key in a.state_dict:
        assert torch.equal(a.state_dict[key], b.state_dict[key]), key
    last_a, last_b = _metrics(tmp_path / "a")[-1], _metrics(tmp_path / "b")[-1]
    assert last_a["step"] == last_b["step"] == 6
    assert {k: v for k, v in last_a.items() if k.startswith("loss")} == {
        k: v for k, v in last_b.items() if k.startswith("loss")
    }


def test_resume_refuses_a_run_with_another_architecture_or_nothing_to_resume(tmp_path, capsys):
    run = str(tmp_path / "r")
    assert main(["--procedural", "2", "--out", run, "--steps", "1", "--batch-size", "2", *TINY]) == 0
    assert (
        main(["--procedural", "2", "--out", run, "--steps", "2", "--resume", "--ngf", "16", "--no-progress"])
        == 2
    )
    assert "--resume: the run" in capsys.readouterr().err
    assert (
        main(["--procedural", "2", "--out", str(tmp_path / "empty"), "--steps", "2", "--resume", *TINY]) == 2
    )
    assert "no generator.pt" in capsys.readouterr().err
    assert main(["--procedural", "2", "--out", run, "--steps", "1", "--resume", *TINY]) == 2
    assert "already at step 1" in capsys.readouterr().err


def test_the_flags_build_the_network_config_and_the_depth_defaults_to_log2_of_the_size():
    argv = ["--procedural", "2", "--out", "x", "--image-size", "128", "--ngf", "16", "--no-dropout"]
    opts = options_from_args([*argv, "--conditions", "MEL, NEV"])
    assert opts.network == GeneratorConfig(
        conditions=("MEL", "NEV"), image_size=128, ngf=16, num_downs=7, dropout=False
    )
    assert options_from_args([*argv, "--num-downs", "5"]).network.num_downs == 5
    assert options_from_args(argv).network.conditions == ()  # resolved from the data when training


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image-size", "100"], "--image-size"),
        (["--image-size", "1024"], "--image-size"),
        (["--procedural", "0"], "--procedural"),
        (["--steps", "0"], "--steps"),
        (["--num-downs", "7"], "--num-downs"),
    ],
)
def test_bad_options_exit_with_a_clear_error(tmp_path, capsys, args, message):
    base = {"--procedural": "2", "--image-size": "64", "--steps": "1"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = [x for kv in base.items() for x in kv] + ["--out", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_it_trains_from_a_manifest_of_photos_and_masks(tmp_path):
    lines = ["image,mask,condition,skin_type"]
    for i, condition in enumerate(["MEL", "PSO"]):
        s = procedural_sample(seed=i, size=64, condition=condition)
        s.image.save(tmp_path / f"{i}.jpg", quality=95)
        Image.fromarray(s.mask.astype(np.uint8) * 255).save(tmp_path / f"{i}_mask.png")
        lines.append(f"{i}.jpg,{i}_mask.png,{condition},{s.fitzpatrick}")
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    argv = [
        "--manifest",
        str(tmp_path / "data.csv"),
        "--out",
        str(run),
        "--steps",
        "2",
        "--batch-size",
        "2",
        *TINY,
    ]
    assert main(argv) == 0
    ckpt = load(run / "generator.pt")
    digests = [hashlib.sha256((tmp_path / f"{i}.jpg").read_bytes()).hexdigest() for i in range(2)]
    assert ckpt.metadata["training"]["data"] == {  # the data provenance: which photos, by content
        "manifest": str(tmp_path / "data.csv"),
        "n_images": 2,
        "image_sha256": digests,
    }
    assert ckpt.config.conditions == TAXONOMY_CONDITIONS
    bad = tmp_path / "bad.csv"
    bad.write_text("image,mask,condition\n0.jpg,missing.png,MEL\n")
    assert main(["--manifest", str(bad), "--out", str(tmp_path / "run2"), *TINY]) == 2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_it_trains_with_mixed_precision_and_the_l1_falls(tmp_path):
    run = tmp_path / "run"
    argv = ["--procedural", "4", "--out", str(run), "--steps", "60", "--batch-size", "4", "--no-augment"]
    assert main([*argv, "--log-every", "1", "--device", "cuda", *TINY]) == 0
    l1 = [r["loss_g_l1"] for r in _metrics(run)]
    assert all(np.isfinite(l1)) and np.mean(l1[-5:]) < 0.5 * l1[0]
    ckpt = load(run / "generator.pt")
    assert ckpt.metadata["training"]["device"].startswith("cuda")
    assert ckpt.metadata["training"]["options"]["amp"] is True  # default: AMP on for CUDA
