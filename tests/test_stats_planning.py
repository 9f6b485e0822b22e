"""Precision planning: expected CI half-widths and the design a target half-width needs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from turingtest import stats
from turingtest.stats import VarianceComponents, design_for_half_width, expected_half_width

C = VarianceComponents(rater=0.004, image=0.02, residual=0.2)


def test_with_only_a_rater_term_the_half_width_is_a_t_interval_on_r_minus_1_df():
    c = VarianceComponents(rater=0.01, image=0.0, residual=0.0)
    assert expected_half_width(c, 12, 100) == pytest.approx(sps.t.ppf(0.975, 11) * math.sqrt(0.01 / 12))
    assert expected_half_width(c, 12, 100, confidence=0.9) == pytest.approx(
        sps.t.ppf(0.95, 11) * math.sqrt(0.01 / 12)
    )


def test_more_raters_or_images_narrow_the_interval_but_images_cannot_remove_the_rater_term():
    widths_r = [expected_half_width(C, r, 80) for r in (5, 10, 20, 40)]
    widths_i = [expected_half_width(C, 20, i) for i in (20, 80, 320, 1280)]
    assert widths_r == sorted(widths_r, reverse=True) and widths_i == sorted(widths_i, reverse=True)
    floor = expected_half_width(C, 20, math.inf)
    assert floor == pytest.approx(sps.t.ppf(0.975, 19) * math.sqrt(C.rater / 20))
    assert all(w > floor for w in widths_i)
    assert expected_half_width(C, 20, 10**6) == pytest.approx(floor, rel=0.01)
    assert expected_half_width(VarianceComponents(0.0, 0.0, 0.0), 5, 5) == 0.0


def test_the_design_found_is_the_smallest_that_reaches_the_target():
    design = design_for_half_width(C, 0.04, n_images=200)
    assert design.n_images == 200 and design.half_width <= 0.04
    assert expected_half_width(C, design.n_raters - 1, 200) > 0.04
    design = design_for_half_width(C, 0.035, n_raters=30)
    assert design.n_raters == 30 and design.half_width <= 0.035
    assert expected_half_width(C, 30, design.n_images - 1) > 0.035


def test_a_target_below_the_floor_of_the_fixed_count_is_out_of_reach():
    floor = expected_half_width(C, 20, math.inf)
    assert design_for_half_width(C, floor * 0.99, n_raters=20) is None
    assert design_for_half_width(C, floor * 1.05, n_raters=20) is not None
    image_floor = expected_half_width(C, math.inf, 50)
    assert design_for_half_width(C, image_floor * 0.99, n_images=50) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": 0.05}, "exactly one"),
        ({"target": 0.05, "n_raters": 5, "n_images": 5}, "exactly one"),
        ({"target": 0.0, "n_raters": 5}, "positive half-width"),
        ({"target": 0.05, "n_raters": 1}, "n_raters must be an integer >= 2"),
    ],
)
def test_bad_planning_input_raises_a_value_error_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        design_for_half_width(C, **kwargs)


def test_a_pilots_components_reproduce_its_own_variance_for_its_own_design():
    # VarianceComponents.variance(R, I) of a fully crossed study is MS(R)/R + Cov2, the
    # variance behind its own interval, so planning the pilot's design returns its se.
    rng = np.random.default_rng(11)
    rater, image = (a.ravel() for a in np.indices((15, 60)))
    truth = image % 2 == 0
    latent = np.where(truth, 0.6, -0.6) + rng.normal(0, 0.4, 15)[rater] + rng.normal(0, 0.5, 60)[image]
    says = latent + rng.normal(size=rater.size) > 0
    ba = stats.reader_study_accuracy(says, truth, rater, image)
    assert min(ba.components.rater, ba.components.image, ba.components.residual) > 0
    assert math.sqrt(ba.components.variance(15, 60)) == pytest.approx(ba.se, rel=1e-9)
    assert expected_half_width(ba.components, 15, 60) == pytest.approx((ba.ci_high - ba.ci_low) / 2, rel=0.25)
