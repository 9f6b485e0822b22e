from __future__ import annotations

import math

import pytest
import torch

from generator.losses import LossWeights, adversarial_loss, l1_loss, lesion_l1_loss, lesion_weighted_l1


def test_bce_adversarial_loss_is_the_sigmoid_cross_entropy():
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])
    p = torch.sigmoid(logits)
    assert adversarial_loss(logits, True).item() == pytest.approx(-torch.log(p).mean().item(), rel=1e-6)
    assert adversarial_loss(logits, False).item() == pytest.approx(-torch.log(1 - p).mean().item(), rel=1e-6)
    assert adversarial_loss(torch.zeros(1, 1, 2, 2), True).item() == pytest.approx(math.log(2))


def test_bce_stays_finite_for_extreme_logits():
    logits = torch.tensor([-200.0, 200.0])
    assert torch.isfinite(adversarial_loss(logits, True)) and torch.isfinite(adversarial_loss(logits, False))


def test_lsgan_is_the_mean_squared_distance_to_the_target():
    logits = torch.tensor([0.5, 1.5])
    assert adversarial_loss(logits, True, "lsgan").item() == pytest.approx((0.25 + 0.25) / 2)
    assert adversarial_loss(logits, False, "lsgan").item() == pytest.approx((0.25 + 2.25) / 2)
    with pytest.raises(ValueError, match="mode"):
        adversarial_loss(logits, True, "wgan")


def test_the_lesion_term_only_sees_lesion_pixels_whatever_their_number():
    real = torch.zeros(1, 3, 8, 8)
    fake = torch.zeros(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :2, :2] = 1  # 4 lesion pixels
    fake[..., :2, :2] = 0.5  # error only inside the lesion
    assert lesion_l1_loss(fake, real, mask).item() == pytest.approx(0.5)
    assert l1_loss(fake, real).item() == pytest.approx(0.5 * 4 / 64)
    fake_outside = torch.zeros_like(fake)
    fake_outside[..., 4:, 4:] = 1.0
    assert lesion_l1_loss(fake_outside, real, mask).item() == 0.0
    assert lesion_weighted_l1(fake, real, mask, lesion_weight=3.0).item() == pytest.approx(0.5 * 4 / 64 + 1.5)
    assert lesion_l1_loss(fake, real, torch.zeros_like(mask)).item() == 0.0


def test_losses_have_gradients():
    fake = torch.rand(2, 3, 4, 4, requires_grad=True)
    mask = (torch.rand(2, 1, 4, 4) > 0.5).float()
    lesion_weighted_l1(fake, torch.rand(2, 3, 4, 4), mask, lesion_weight=2.0).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_loss_weights_validate_their_fields():
    assert LossWeights().to_dict() == {"adversarial": 1.0, "l1": 100.0, "lesion_l1": 100.0, "gan_mode": "bce"}
    with pytest.raises(ValueError, match="gan_mode"):
        LossWeights(gan_mode="hinge")
    with pytest.raises(ValueError, match="lesion_l1"):
        LossWeights(lesion_l1=-1.0)
