"""Shades-of-grey white balance and its use before the skin-colour estimate."""

from __future__ import annotations

import numpy as np
import pytest

from generator.semantic_map import estimate_skin_colour, rgb_to_lab
from generator.white_balance import (
    _LUMINANCE,
    _SRGB_TO_LINEAR,
    _linear_to_srgb8,
    illuminant_estimate,
    shades_of_grey,
)


def _scene(seed: int = 0) -> np.ndarray:
    """A grey-world scene: random neutral-ish patches whose p-norm illuminant is grey."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(40, 220, (32, 32, 1))
    return np.repeat(grey, 3, axis=2).astype(np.uint8)


def _cast(image: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """A chromatic cast: the gains are scaled so grey keeps its luminance (Y)."""
    g = np.array(gains) / (_LUMINANCE @ np.array(gains))
    return _linear_to_srgb8(_SRGB_TO_LINEAR[image] * g)


def test_a_colour_cast_on_a_neutral_scene_is_removed():
    neutral = _scene()
    warm = _cast(neutral, (1.0, 0.8, 0.55))
    balanced = shades_of_grey(warm)
    spread = balanced.astype(int).max(axis=2) - balanced.astype(int).min(axis=2)
    assert spread.max() <= 2  # grey again, up to 8-bit rounding
    e = illuminant_estimate(balanced)
    assert np.ptp(e) < 0.01 * e.mean()


def test_white_balance_keeps_the_luminance_of_the_illuminant():
    warm = _cast(_scene(1), (1.0, 0.8, 0.55))
    before = rgb_to_lab(warm)[..., 0].mean()
    after = rgb_to_lab(shades_of_grey(warm))[..., 0].mean()
    assert after == pytest.approx(before, abs=1.5)


def test_white_balance_undoes_a_cast_on_the_skin_estimate():
    rng = np.random.default_rng(2)
    skin = np.full((64, 64, 3), (176, 140, 120), np.uint8)
    scene = np.concatenate([skin, _scene(3)[:, :32].repeat(2, axis=0)], axis=1)  # skin | grey card
    scene = (scene.astype(int) + rng.integers(-2, 3, scene.shape)).clip(0, 255).astype(np.uint8)
    cast = _cast(scene, (1.0, 0.85, 0.6))
    plain = estimate_skin_colour(scene).ita_degrees
    assert abs(estimate_skin_colour(cast).ita_degrees - plain) > 5  # the cast moves ITA°
    balanced = estimate_skin_colour(cast, white_balance=True).ita_degrees
    assert abs(balanced - estimate_skin_colour(scene, white_balance=True).ita_degrees) < 2


def test_bad_inputs_are_refused_and_a_black_image_is_left_alone():
    with pytest.raises(ValueError, match="uint8"):
        shades_of_grey(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="p must be"):
        illuminant_estimate(np.zeros((4, 4, 3), np.uint8), p=0.5)
    black = np.zeros((4, 4, 3), np.uint8)
    assert np.array_equal(shades_of_grey(black), black)
