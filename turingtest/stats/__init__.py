"""Statistics for reader studies: pure functions on numpy arrays.

Topic modules: ``proportions`` (Wilson, exact binomial, two proportions, McNemar),
``detection`` (d′, rating AUC, DeLong), ``agreement`` (Cohen's, Fleiss' κ, Krippendorff's α),
``bootstrap`` (HYPE∞ error rate, two-way bootstrap), ``crossed`` / ``reader_study`` /
``headline`` (reader-study inference over raters × images), ``planning`` (CI half-width
of a planned study) and ``arrays`` (input checks,
``factorize``). This package re-exports their public names, so ``turingtest.stats.<name>``
is the one import path.

Nothing here touches the database: ``turingtest.reports`` reads a study into arrays
and calls these functions. Where SciPy, statsmodels or krippendorff already compute a
statistic we wrap them (with input checks and documented conventions) instead of
re-deriving it; the few formulas written out here (log-linear d′, DeLong's variance,
the vectorized pairwise κ matrix and the two-way bootstrap) are checked in
``tests/test_stats.py`` against published worked examples and the libraries.

Conventions shared by every function:

- The functions named in the statistics issue return exactly a plain ``float`` or a
  small ``NamedTuple`` (which is a tuple); richer frozen dataclasses are built on top.
- Malformed input (empty arrays, negative counts, mismatched shapes, a single rater
  where agreement needs two) raises ``ValueError`` naming the bad value.
- A statistic that is mathematically undefined *for the data* although the input is
  well formed (κ when both raters used a single category, α when every rating is the
  same value) is returned as ``nan``: the report turns ``nan`` into ``None`` plus a
  warning rather than crashing on a small pilot study.
"""

from __future__ import annotations

from turingtest.stats.agreement import (
    cohens_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_counts,
    pairwise_cohens_kappa,
)
from turingtest.stats.arrays import factorize
from turingtest.stats.bootstrap import (
    BootstrapResult,
    StratifiedBootstrap,
    bootstrap_two_way,
    bootstrap_two_way_mean,
    bootstrap_two_way_mean_stratified,
    hype_error_rate,
)
from turingtest.stats.detection import AucResult, DPrime, dprime, rating_auc, rating_auc_ci
from turingtest.stats.headline import HeadlineEstimates, headline_estimates, verdict
from turingtest.stats.planning import Design, design_for_half_width, expected_half_width
from turingtest.stats.proportions import (
    Interval,
    McNemarResult,
    ProportionComparison,
    ProportionResult,
    binomial_test,
    compare_proportions,
    mcnemar_test,
    proportion,
    wilson_interval,
)
from turingtest.stats.reader_study import (
    CrossedEstimate,
    ReaderStudyAccuracy,
    VarianceComponents,
    crossed_mean,
    reader_study_accuracy,
    reader_study_auc,
)

__all__ = [
    "AucResult",
    "Design",
    "HeadlineEstimates",
    "design_for_half_width",
    "expected_half_width",
    "headline_estimates",
    "verdict",
    "CrossedEstimate",
    "ReaderStudyAccuracy",
    "VarianceComponents",
    "crossed_mean",
    "reader_study_accuracy",
    "reader_study_auc",
    "BootstrapResult",
    "DPrime",
    "Interval",
    "McNemarResult",
    "ProportionComparison",
    "ProportionResult",
    "StratifiedBootstrap",
    "binomial_test",
    "bootstrap_two_way",
    "bootstrap_two_way_mean",
    "bootstrap_two_way_mean_stratified",
    "cohens_kappa",
    "compare_proportions",
    "dprime",
    "factorize",
    "fleiss_kappa",
    "hype_error_rate",
    "krippendorff_alpha",
    "krippendorff_alpha_counts",
    "mcnemar_test",
    "pairwise_cohens_kappa",
    "proportion",
    "rating_auc",
    "rating_auc_ci",
    "wilson_interval",
]
