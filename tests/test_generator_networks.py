from __future__ import annotations

import pytest
import torch
from torch import nn

from generator.config import GeneratorConfig
from generator.networks import PatchDiscriminator, SampleDropout, UNetGenerator, build_generator


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _tiny(upsample: str = "resize", *, dropout: bool = True, num_downs: int = 6) -> UNetGenerator:
    torch.manual_seed(0)
    return UNetGenerator(5, 3, ngf=8, num_downs=num_downs, upsample=upsample, dropout=dropout)


def test_the_transposed_unet_has_exactly_the_pix2pix_unet_256_parameter_count():
    assert _n_params(UNetGenerator(3, 3, ngf=64, num_downs=8, upsample="transpose")) == 54_413_955


def test_the_patch_discriminator_has_exactly_the_pix2pix_basic_parameter_count():
    assert _n_params(PatchDiscriminator(6, ndf=64, n_layers=3)) == 2_768_705


def test_the_patch_discriminator_gives_one_logit_per_patch():
    d = PatchDiscriminator(6, ndf=8)
    out = d(torch.randn(2, 6, 64, 64))
    assert out.shape == (2, 1, 6, 6)  # 64/8 - 2: the 70x70 receptive field slides over the image


def test_the_resize_decoder_has_no_transposed_convolutions_and_fewer_parameters():
    resize = UNetGenerator(3, 3, ngf=64, num_downs=8, upsample="resize")
    transpose = UNetGenerator(3, 3, ngf=64, num_downs=8, upsample="transpose")
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in resize.modules())
    assert sum(isinstance(m, nn.Upsample) for m in resize.modules()) == 8
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in transpose.modules()) == 8
    assert _n_params(resize) < _n_params(transpose)


def test_pix2pix_puts_dropout_in_the_three_decoder_levels_above_the_bottleneck():
    g = UNetGenerator(3, 3, ngf=8, num_downs=8)
    assert g.dropout_levels == (4, 5, 6)
    assert sum(isinstance(m, SampleDropout) for m in g.modules()) == 3
    assert not any(isinstance(m, SampleDropout) for m in UNetGenerator(3, ngf=8, dropout=False).modules())


@pytest.mark.parametrize("upsample", ["resize", "transpose"])
@pytest.mark.parametrize(("size", "num_downs"), [(32, 5), (64, 6)])
def test_the_generator_maps_a_semantic_map_to_an_image_of_the_same_size_in_tanh_range(
    upsample, size, num_downs
):
    g = _tiny(upsample, num_downs=num_downs).eval()
    with torch.no_grad():
        out = g(torch.randn(2, 5, size, size) * 3)
    assert out.shape == (2, 3, size, size)
    assert out.min() >= -1 and out.max() <= 1
    assert out.std() > 0  # not a constant image


def test_training_mode_runs_backward_through_every_parameter():
    g = _tiny()
    g(torch.randn(2, 5, 64, 64)).mean().backward()
    assert all(p.grad is not None for p in g.parameters())


def test_dropout_stays_on_at_sampling_time_and_can_be_switched_off():
    g = _tiny().eval()
    x = torch.randn(1, 5, 64, 64)
    with torch.no_grad():
        assert g.sampling_dropout
        assert not torch.equal(g(x), g(x))  # dropout is the noise source
        g.sampling_dropout = False
        assert not g.sampling_dropout
        assert torch.equal(g(x), g(x))


def test_a_network_built_without_dropout_is_deterministic_in_eval_mode():
    g = _tiny(dropout=False).eval()
    x = torch.randn(1, 5, 64, 64)
    with torch.no_grad():
        assert torch.equal(g(x), g(x))
    assert g.noise_shapes(64, 64) == []
    assert g.draw_noise([1, 2], 64, 64) == []


def test_given_noise_makes_sampling_deterministic_per_seed():
    g = _tiny().eval()
    x = torch.randn(2, 5, 64, 64)
    with torch.no_grad():
        a = g(x, g.draw_noise([11, 12], 64, 64))
        b = g(x, g.draw_noise([11, 12], 64, 64))
        c = g(x, g.draw_noise([13, 14], 64, 64))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_an_images_noise_does_not_depend_on_the_other_images_in_the_batch():
    g = UNetGenerator(5, ngf=8, num_downs=8)
    batch = g.draw_noise([7, 8, 9], 256, 256)
    alone = g.draw_noise([8], 256, 256)
    assert [tuple(m.shape) for m in batch] == [(3, 64, 4, 4), (3, 64, 8, 8), (3, 64, 16, 16)]
    for mb, ma in zip(batch, alone):
        assert torch.equal(mb[1], ma[0])
        assert set(mb.unique().tolist()) == {0.0, 2.0}  # kept units are rescaled by 1/(1-p)
        assert 0.4 < (mb == 0).float().mean() < 0.6


def test_an_images_pixels_do_not_depend_on_the_other_images_in_the_batch():
    g = _tiny().eval()
    x = torch.randn(3, 5, 64, 64)
    with torch.no_grad():
        batch = g(x, g.draw_noise([1, 2, 3], 64, 64))
        alone = g(x[1:2], g.draw_noise([2], 64, 64))
    torch.testing.assert_close(batch[1:2], alone, atol=1e-5, rtol=0)


def test_forward_rejects_the_wrong_number_of_noise_masks():
    g = _tiny()
    with pytest.raises(ValueError, match="noise masks"):
        g(torch.randn(1, 5, 64, 64), [])


def test_build_generator_follows_the_config():
    cfg = GeneratorConfig(
        conditions=("MEL", "NEV", "BCC"), image_size=64, ngf=8, num_downs=6, upsample="transpose"
    )
    g = build_generator(cfg)
    assert g.in_channels == 7 and g.ngf == 8 and g.num_downs == 6 and g.upsample == "transpose"
    assert g(torch.randn(1, 7, 64, 64)).shape == (1, 3, 64, 64)


def test_build_generator_rejects_an_image_size_the_unet_cannot_halve_to_the_bottleneck():
    with pytest.raises(ValueError, match="image_size"):
        build_generator(GeneratorConfig(conditions=("MEL",), image_size=100, ngf=8, num_downs=6))


def test_the_generator_rejects_an_unknown_upsampling_mode():
    with pytest.raises(ValueError, match="upsample"):
        UNetGenerator(5, upsample="bilinear")
