from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from generator import checkpoint as ckpt_lib
from generator.config import GeneratorConfig
from generator.networks import UNetGenerator, build_generator
from generator.render import InferenceUNet, Renderer, main, resize_conv_as_transpose, resolve_device
from generator.sampling import image_seed
from generator.semantic_map import LesionSpec, MapSpec, encode_batch

CONDITIONS = ("MEL", "NEV", "BCC")
SIZE = 64


def _trained_like(upsample: str = "resize", num_downs: int = 6) -> tuple[UNetGenerator, GeneratorConfig]:
    """A tiny generator with non-trivial BatchNorm statistics and affine parameters, in eval mode."""
    torch.manual_seed(0)
    config = GeneratorConfig(
        conditions=CONDITIONS, image_size=SIZE, ngf=8, num_downs=num_downs, upsample=upsample
    )
    model = build_generator(config)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
            nn.init.normal_(m.weight, 1.0, 0.3)
            nn.init.normal_(m.bias, 0.0, 0.3)
    with torch.no_grad():
        model.train()
        for _ in range(3):
            model(torch.rand(4, config.in_channels, SIZE, SIZE) * 2 - 1)
    return model.eval(), config


@pytest.fixture(scope="module", params=["resize", "transpose"])
def ckpt_path(request, tmp_path_factory):
    model, config = _trained_like(request.param)
    path = tmp_path_factory.mktemp("ckpt") / f"{request.param}.pt"
    ckpt_lib.save(path, model=model, config=config, metadata={"training": {"note": "test"}})
    return path


@pytest.fixture(scope="module")
def resize_ckpt(tmp_path_factory):
    model, config = _trained_like("resize")
    path = tmp_path_factory.mktemp("ckpt") / "resize.pt"
    ckpt_lib.save(path, model=model, config=config, metadata={})
    return path


def _specs(n: int) -> list[MapSpec]:
    rng = np.random.default_rng(3)
    return [
        MapSpec(
            size=SIZE,
            lesions=(
                LesionSpec(
                    CONDITIONS[i % 3],
                    center=(float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7))),
                    area_fraction=float(rng.uniform(0.02, 0.2)),
                    aspect=1.3,
                    angle_deg=float(rng.uniform(0, 180)),
                ),
            ),
            fitzpatrick=1 + i % 6,
        )
        for i in range(n)
    ]


def _pixels(images) -> np.ndarray:
    return np.stack([np.asarray(im) for im in images]).astype(np.int16)


def test_the_resize_convolution_equals_one_transposed_convolution():
    torch.manual_seed(1)
    conv = nn.Conv2d(6, 5, 3, padding=1, bias=True).double()
    x = torch.randn(2, 6, 7, 9, dtype=torch.float64)
    expected = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
    torch.testing.assert_close(resize_conv_as_transpose(conv)(x), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("upsample", ["resize", "transpose"])
def test_the_inference_network_computes_the_same_function_as_the_eval_network(upsample):
    # The transposed variant has ConvTranspose2d(64, 64)-like layers with equal in/out channels
    # followed by BatchNorm: the case Inductor's freezing gets wrong, which we fold by hand.
    model, config = _trained_like(upsample)
    fast = InferenceUNet(model).to(memory_format=torch.channels_last)
    x = torch.rand(3, config.in_channels, SIZE, SIZE) * 2 - 1
    noise = model.draw_noise([1, 2, 3], SIZE, SIZE)
    with torch.inference_mode():
        expected = model(x, noise)
        got = fast(x.contiguous(memory_format=torch.channels_last), noise)
    assert expected.std() > 0.05  # the comparison is not between saturated constants
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_the_inference_network_refuses_a_network_in_training_mode():
    model, _ = _trained_like()
    with pytest.raises(ValueError, match="eval-mode"):
        InferenceUNet(model.train())


def test_it_renders_rgb_images_of_the_checkpoints_size(ckpt_path):
    renderer = Renderer(ckpt_path, device="cpu", batch_size=4)
    images = renderer.render(_specs(3), seed=5)
    assert [(im.mode, im.size) for im in images] == [("RGB", (SIZE, SIZE))] * 3
    assert renderer.config.conditions == CONDITIONS
    assert len(renderer.checkpoint_sha256) == 64
    assert _pixels(images).std() > 1  # not blank


def test_the_same_seed_renders_identical_pixels_and_another_seed_does_not(resize_ckpt):
    renderer = Renderer(resize_ckpt, device="cpu", batch_size=4)
    specs = _specs(4)
    first = _pixels(renderer.render(specs, seed=11))
    again = _pixels(Renderer(resize_ckpt, device="cpu", batch_size=4).render(specs, seed=11))
    other = _pixels(renderer.render(specs, seed=12))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_an_int_seed_gives_image_i_the_seed_image_seed_of_the_batch_seed_and_i(resize_ckpt):
    renderer = Renderer(resize_ckpt, device="cpu", batch_size=4)
    specs = _specs(3)
    by_batch_seed = _pixels(renderer.render(specs, seed=21))
    by_image_seeds = _pixels(renderer.render(specs, seed=[image_seed(21, i) for i in range(3)]))
    assert np.array_equal(by_batch_seed, by_image_seeds)


def test_an_image_is_identical_whether_rendered_alone_or_with_other_images(ckpt_path):
    renderer = Renderer(ckpt_path, device="cpu", batch_size=4)
    specs = _specs(4)
    seeds = [101, 102, 103, 104]
    together = _pixels(renderer.render(specs, seed=seeds))
    alone = _pixels([renderer.render_one(specs[2], 103)])
    with_others = _pixels(renderer.render([_specs(6)[5], specs[2]], seed=[999, 103]))
    assert np.array_equal(together[2], alone[0])
    assert np.array_equal(together[2], with_others[1])
    # Bit-identical before rounding too: batch shape changes convolution blocking, so this would fail
    # (by ~1e-7) if chunks were not always run at the full batch_size.
    maps = encode_batch(specs, CONDITIONS)
    assert torch.equal(renderer.forward(maps, seeds)[2], renderer.forward(maps[2:3], seeds[2:3])[0])
    assert torch.equal(renderer.forward(maps, seeds)[:3], renderer.forward(maps[:3], seeds[:3]))


def test_more_specs_than_the_batch_size_are_rendered_in_chunks_of_that_size(resize_ckpt):
    renderer = Renderer(resize_ckpt, device="cpu", batch_size=2)
    batches: list[int] = []
    renderer._net.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    specs = _specs(5)
    images = renderer.render(specs, seed=[1, 2, 3, 4, 5])
    assert len(images) == 5
    assert batches == [2, 2, 2]  # memory is bounded by batch_size however many specs there are
    last_alone = _pixels([renderer.render_one(specs[4], 5)])
    assert np.array_equal(_pixels(images)[4], last_alone[0])


def test_iter_render_checks_every_spec_first_then_renders_one_chunk_at_a_time(resize_ckpt):
    renderer = Renderer(resize_ckpt, device="cpu", batch_size=2)
    batches: list[int] = []
    renderer._net.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    bad = [*_specs(4), MapSpec(size=SIZE * 2, lesions=(LesionSpec("MEL"),), fitzpatrick=2)]
    with pytest.raises(ValueError, match=r"specs\[4\]\.size"):
        renderer.iter_render(bad, seed=1)
    assert batches == []  # nothing rendered before the bad spec was found
    images = renderer.iter_render(_specs(5), seed=1)
    next(images)
    assert batches == [2]
    assert len(list(images)) == 4 and batches == [2, 2, 2]


def test_the_optimized_path_is_within_two_levels_of_the_plain_eager_forward(ckpt_path):
    specs = _specs(4)
    fast = _pixels(Renderer(ckpt_path, device="cpu", batch_size=4).render(specs, seed=7))
    plain = _pixels(Renderer(ckpt_path, device="cpu", batch_size=4, optimize=False).render(specs, seed=7))
    assert np.abs(fast - plain).max() <= 2
    assert fast.std() > 1


def test_the_reference_forward_uses_the_same_dropout_masks_as_the_fast_forward(resize_ckpt):
    renderer = Renderer(resize_ckpt, device="cpu", batch_size=4)
    maps = encode_batch(_specs(2), CONDITIONS)
    fast = renderer.forward(maps, [5, 6])
    ref = renderer.reference_forward(maps, [5, 6])
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)
    assert (renderer.reference_forward(maps, [7, 8]) - ref).abs().max() > 1e-2  # the noise matters


def test_with_dropout_off_the_seed_has_no_effect(resize_ckpt):
    renderer = Renderer(resize_ckpt, device="cpu", batch_size=4, dropout=False)
    specs = _specs(2)
    assert np.array_equal(_pixels(renderer.render(specs, seed=1)), _pixels(renderer.render(specs, seed=2)))


def test_it_accepts_a_loaded_checkpoint(resize_ckpt):
    loaded = ckpt_lib.load(resize_ckpt)
    from_obj = Renderer(loaded, device="cpu", batch_size=2)
    from_path = Renderer(resize_ckpt, device="cpu", batch_size=2)
    assert from_obj.checkpoint_sha256 == from_path.checkpoint_sha256
    assert np.array_equal(_pixels(from_obj.render(_specs(1), 3)), _pixels(from_path.render(_specs(1), 3)))


def test_a_missing_checkpoint_gives_an_error_naming_the_path(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(ckpt_lib.CheckpointError, match="nope.pt"):
        Renderer(missing, device="cpu")


def test_a_file_that_is_not_a_checkpoint_gives_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(ckpt_lib.CheckpointError, match="not a checkpoint"):
        Renderer(bad, device="cpu")


def test_a_spec_of_another_size_is_rejected_naming_the_field(resize_ckpt):
    renderer = Renderer(resize_ckpt, device="cpu", batch_size=2)
    spec = MapSpec(size=SIZE * 2, lesions=(LesionSpec("MEL"),), fitzpatrick=2)
    with pytest.raises(ValueError, match=r"specs\[0\]\.size"):
        renderer.render([spec], seed=1)


def test_a_seed_list_of_the_wrong_length_is_rejected(resize_ckpt):
    renderer = Renderer(resize_ckpt, device="cpu", batch_size=2)
    with pytest.raises(ValueError, match="seed"):
        renderer.render(_specs(3), seed=[1, 2])


def test_an_unknown_condition_is_rejected_naming_the_field(resize_ckpt):
    renderer = Renderer(resize_ckpt, device="cpu", batch_size=2)
    spec = MapSpec(size=SIZE, lesions=(LesionSpec("PSO"),), fitzpatrick=2)
    with pytest.raises(ValueError, match="condition"):
        renderer.render([spec], seed=1)


def test_bad_renderer_options_are_rejected(resize_ckpt):
    with pytest.raises(ValueError, match="batch_size"):
        Renderer(resize_ckpt, device="cpu", batch_size=0)
    with pytest.raises(ValueError, match="precision"):
        Renderer(resize_ckpt, device="cpu", precision="int8")


def test_auto_device_is_cuda_only_when_cuda_is_available():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_the_command_line_writes_pngs_and_a_provenance_manifest(resize_ckpt, tmp_path, capsys):
    out = tmp_path / "renders"
    assert main(["--checkpoint", str(resize_ckpt), "--out", str(out), "-n", "3", "--seed", "4",
                 "--device", "cpu", "--batch-size", "2", "--condition", "MEL"]) == 0  # fmt: skip
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["file"] for r in records] == ["00000.png", "00001.png", "00002.png"]
    assert all(r["spec"]["lesions"][0]["condition"] == "MEL" for r in records)
    assert records[1]["seed"] == image_seed(4, 1)
    spec = MapSpec.from_dict(records[1]["spec"])
    again = Renderer(resize_ckpt, device="cpu", batch_size=2).render_one(spec, records[1]["seed"])
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(out / "00001.png")), np.asarray(again))
    assert "images/s" in capsys.readouterr().out


def test_the_command_line_reports_a_bad_checkpoint_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert main(["--checkpoint", str(bad), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: not a checkpoint") and "bad.pt" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_rendering_is_deterministic_and_within_two_levels_of_the_cpu_fp32_forward(resize_ckpt):
    specs = _specs(4)
    gpu = Renderer(resize_ckpt, device="cuda", batch_size=4)
    first = _pixels(gpu.render(specs, seed=9))
    assert np.array_equal(first, _pixels(gpu.render(specs, seed=9)))
    cpu_plain = _pixels(
        Renderer(resize_ckpt, device="cpu", batch_size=4, optimize=False).render(specs, seed=9)
    )
    assert np.abs(first - cpu_plain).max() <= 2


@pytest.mark.slow
def test_the_compiled_path_is_within_two_levels_of_the_plain_eager_forward(resize_ckpt):
    specs = _specs(2)
    compiled = _pixels(Renderer(resize_ckpt, device="cpu", batch_size=2, compile=True).render(specs, seed=3))
    plain = _pixels(Renderer(resize_ckpt, device="cpu", batch_size=2, optimize=False).render(specs, seed=3))
    assert np.abs(compiled - plain).max() <= 2
