r"""Precision planning: the CI half-width a new study of R raters × I images can expect.

From the variance components of a pilot (or a finished study), the variance of the
headline estimate in a fully crossed study of :math:`R` raters who each judge the same
:math:`I` images is (:class:`~turingtest.stats.crossed.VarianceComponents`)

.. math::

    V(R, I) = \frac{\sigma^2_R}{R} + \frac{\sigma^2_I}{I} + \frac{\sigma^2_E}{R I},

and the expected half-width of the two-sided interval is :math:`t_{q,\nu}\sqrt{V}` with
:math:`\nu` the Satterthwaite degrees of freedom of the three terms (:math:`R-1`,
:math:`I-2` — images sit in two kinds — and :math:`(R-1)(I-1)`). Raters and images trade
off differently: images shrink only the last two terms, so with R raters no number of
images brings the half-width below :math:`t_{q,R-1}\sqrt{\sigma^2_R/R}`
(:func:`expected_half_width` with ``n_images=math.inf``); raters shrink the first and last
terms, so with I images no number of raters gets below the image term's floor.

The report's interval is formed on the logit scale, so it is slightly asymmetric; the
half-width here is that of the linear-scale interval with the same variance, close to
the average half-width when the estimate is not near 0 or 1. Components estimated from a
small pilot are themselves uncertain: plan with some margin.

References
----------
Obuchowski NA (2000). Sample size tables for receiver operating characteristic studies.
AJR 175:603–608. DOI:10.2214/ajr.175.3.1750603.
Hillis SL, Obuchowski NA, Berbaum KS (2011). Power estimation for multireader ROC
methods: an updated and unified approach. Acad Radiol 18:129–142.
DOI:10.1016/j.acra.2010.09.007.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scipy import stats as sps

from turingtest.stats.crossed import VarianceComponents, _confidence

__all__ = ["Design", "design_for_half_width", "expected_half_width"]

MAX_RATERS = 10_000
MAX_IMAGES = 1_000_000


@dataclass(frozen=True)
class Design:
    """A study size and the half-width it is expected to reach."""

    n_raters: int
    n_images: int
    half_width: float


def _count(name: str, value: float) -> float:
    if not (value == math.inf or (float(value) == int(value) and value >= 2)):
        raise ValueError(f"{name} must be an integer >= 2 (or math.inf), got {value!r}")
    return float(value)


def expected_half_width(
    components: VarianceComponents,
    n_raters: float,
    n_images: float,
    confidence: float = 0.95,
) -> float:
    """Expected half-width of the ``confidence`` interval for ``n_raters`` × ``n_images``.

    Parameters
    ----------
    components : VarianceComponents
        Per-unit σ²_R, σ²_I, σ²_E, e.g. ``report.headline.balanced_accuracy.components``.
    n_raters, n_images : int >= 2, or math.inf
        The planned design (every rater judges the same ``n_images``, both kinds in the
        pilot's mix); ``math.inf`` gives the limit as that count grows without bound.
    confidence : float
        Coverage of the two-sided interval.

    Returns
    -------
    float
        :math:`t_{q,\\nu}\\sqrt{V(R, I)}` (module docstring); 0 when every component is 0.

    Examples
    --------
    >>> c = VarianceComponents(rater=0.004, image=0.02, residual=0.2)
    >>> round(expected_half_width(c, 20, 200), 4)
    0.0375
    >>> round(expected_half_width(c, 20, math.inf), 4)  # the rater term alone
    0.0296
    """
    confidence = _confidence(confidence)
    r, i = _count("n_raters", n_raters), _count("n_images", n_images)
    terms = (
        (components.rater / r, r - 1),
        (components.image / i, i - 2 if i > 2 else 1.0),
        (components.residual / (r * i), (r - 1) * (i - 1)),
    )
    variance = sum(v for v, _ in terms)
    if variance <= 0:
        return 0.0
    denom = sum(v * v / df for v, df in terms if v > 0 and math.isfinite(df))
    df = math.inf if denom == 0 else variance**2 / denom
    return float(sps.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(variance)


def _smallest(reaches: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """The smallest n in [lo, hi] with reaches(n) (monotone), or None."""
    if not reaches(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def design_for_half_width(
    components: VarianceComponents,
    target: float,
    *,
    n_raters: int | None = None,
    n_images: int | None = None,
    confidence: float = 0.95,
) -> Design | None:
    """The fewest raters (given ``n_images``) or images (given ``n_raters``) for ``target``.

    Exactly one of ``n_raters`` and ``n_images`` is fixed; the other is the smallest count
    (at least 2, at most 10,000 raters or 1,000,000 images) whose
    :func:`expected_half_width` is at most ``target``. ``None`` when no such count exists:
    with ``n_raters`` fixed, a target below the rater term's floor is out of reach however
    many images are added (and likewise for images).

    Examples
    --------
    >>> c = VarianceComponents(rater=0.004, image=0.02, residual=0.2)
    >>> d = design_for_half_width(c, 0.04, n_images=200)
    >>> d.n_raters, round(d.half_width, 4)
    (18, 0.0391)
    >>> design_for_half_width(c, 0.025, n_raters=20) is None  # rater floor 0.0296
    True
    """
    confidence = _confidence(confidence)
    if not (isinstance(target, int | float) and target > 0):
        raise ValueError(f"target must be a positive half-width, got {target!r}")
    if (n_raters is None) == (n_images is None):
        raise ValueError("give exactly one of n_raters and n_images (the other is solved for)")
    if n_images is not None:
        fixed = int(_count("n_images", n_images))
        found = _smallest(
            lambda r: expected_half_width(components, r, fixed, confidence) <= target, 2, MAX_RATERS
        )
        design = None if found is None else (found, fixed)
    else:
        fixed = int(_count("n_raters", n_raters))  # type: ignore[arg-type]
        found = _smallest(
            lambda i: expected_half_width(components, fixed, i, confidence) <= target, 2, MAX_IMAGES
        )
        design = None if found is None else (fixed, found)
    if design is None:
        return None
    return Design(design[0], design[1], expected_half_width(components, *design, confidence))
