"""The headline estimators of a Turing-test study, as one call the report and the benchmark share.

``headline_estimates`` runs :func:`~turingtest.stats.reader_study.reader_study_accuracy`
(balanced accuracy, with sensitivity and specificity) and
:func:`~turingtest.stats.reader_study.reader_study_auc` (reader-averaged AUC of the
confidence-signed ratings) on the same judgments with the same options. The study report
builds its headline from this function and ``benchmarks/coverage.py`` measures the
coverage of exactly this function, so what the benchmark validates is what the report
prints. ``verdict`` says which side of chance an interval lies on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from turingtest.stats.crossed import CrossedEstimate
from turingtest.stats.reader_study import ReaderStudyAccuracy, reader_study_accuracy, reader_study_auc

__all__ = ["CHANCE", "HeadlineEstimates", "Verdict", "headline_estimates", "verdict"]

CHANCE = 0.5
Verdict = Literal["above_chance", "not_distinguishable", "below_chance"]


@dataclass(frozen=True)
class HeadlineEstimates:
    """Balanced accuracy (with sensitivity and specificity) and AUC, intervals over raters × images."""

    accuracy: ReaderStudyAccuracy
    auc: CrossedEstimate


def headline_estimates(
    says_synthetic: np.ndarray,
    score: np.ndarray,
    is_synthetic: np.ndarray,
    rater: np.ndarray,
    image: np.ndarray,
    confidence: float = 0.95,
) -> HeadlineEstimates:
    """The headline of a study: reader-averaged balanced accuracy and AUC.

    Parameters
    ----------
    says_synthetic : (n,) array of bool
        The real/synthetic call of each judgment.
    score : (n,) array of float
        Confidence-signed rating (higher = more surely synthetic), for the AUC.
    is_synthetic : (n,) array of bool
        Truth of each judgment's image.
    rater, image : (n,) arrays of int
        Ids of each judgment's rater and image; dense codes 0..k−1 are fastest.
    confidence : float
        Coverage of both intervals.

    Returns
    -------
    HeadlineEstimates
        Both with the default ``method="logit"`` (the one ``benchmarks/coverage.py``
        validates). ``ValueError`` as the estimators raise it (e.g. fewer than 2 raters
        who judged >= 2 images of each kind).

    Examples
    --------
    >>> rater = np.repeat([1, 2, 3], 6)
    >>> image = np.tile([1, 2, 3, 4, 5, 6], 3)
    >>> is_syn = np.tile([1, 1, 1, 0, 0, 0], 3).astype(bool)
    >>> says = np.array([1, 1, 0, 0, 0, 1,  1, 1, 1, 0, 1, 0,  1, 0, 1, 0, 0, 0], dtype=bool)
    >>> h = headline_estimates(says, np.where(says, 1.0, -1.0), is_syn, rater, image)
    >>> round(h.accuracy.estimate, 3), round(h.auc.estimate, 3)
    (0.778, 0.778)
    """
    accuracy = reader_study_accuracy(says_synthetic, is_synthetic, rater, image, confidence)
    auc = reader_study_auc(score, is_synthetic, rater, image, confidence)
    return HeadlineEstimates(accuracy=accuracy, auc=auc)


def verdict(estimate: CrossedEstimate, chance: float = CHANCE) -> Verdict:
    """Where the interval lies: wholly above chance, wholly below, or around it.

    >>> from turingtest.stats.crossed import VarianceComponents
    >>> e = CrossedEstimate(0.6, 0.02, 19.0, 0.56, 0.64, 0.001, 0.5, VarianceComponents(0, 0, 0), 20, 200)
    >>> verdict(e)
    'above_chance'
    """
    if estimate.ci_low > chance:
        return "above_chance"
    if estimate.ci_high < chance:
        return "below_chance"
    return "not_distinguishable"
