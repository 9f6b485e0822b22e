"""The report's headline: reader-study estimates, their caveats and one sentence true to the CI.

``headline_section`` runs ``stats.headline_estimates`` (the very call
``benchmarks/coverage.py`` validates) on the first showings; ``group_crossed`` gives a
breakdown group its own crossed interval where the group can support one. Pure: arrays
in, schema dataclasses out.
"""

from __future__ import annotations

import numpy as np

from turingtest import stats
from turingtest.reports.common import Warnings, attempt
from turingtest.reports.inputs import FirstShowings, StudyData
from turingtest.reports.schema import CHANCE, Crossed, Detection, Headline, HeadlineHype, Rate

MIN_RATERS = 5  # below this a CI's between-rater variance rests on too few raters
MIN_IMAGES_PER_KIND = 10  # below this Cov2 (the image term) is poorly estimated
METHOD = (
    "reader-averaged estimates; Obuchowski–Rockette variance (raters and images random) with "
    "image-jackknife covariances, Satterthwaite df, t interval on the logit scale"
)


def crossed(est: stats.CrossedEstimate) -> Crossed:
    return Crossed(
        estimate=est.estimate,
        se=est.se,
        df=est.df,
        ci_low=est.ci_low,
        ci_high=est.ci_high,
        p_value=est.p_value,
        n_raters=est.n_raters,
        n_images=est.n_images,
        components=est.components,
    )


def _error_rate(est: stats.CrossedEstimate) -> Rate:
    return Rate(1.0 - est.estimate, 1.0 - est.ci_high, 1.0 - est.ci_low)


def _figure(value: float) -> str:
    """Two decimals, or three where two would round a bound onto chance (0.50)."""
    text = f"{value:.2f}"
    return f"{value:.3f}" if text == f"{CHANCE:.2f}" and value != CHANCE else text


def headline_sentence(
    ba: stats.CrossedEstimate | None, *, confidence: float, n_raters_judged: int
) -> tuple[str, str]:
    """(verdict, sentence): what the balanced accuracy's interval allows one to say."""
    if ba is None:
        return (
            "not_estimable",
            "Not enough data for a reader-study estimate yet: it needs at least 2 raters who each "
            f"judged at least 2 real and 2 synthetic images ({n_raters_judged} raters so far).",
        )
    figures = (
        f"balanced accuracy {_figure(ba.estimate)}, {round(confidence * 100)}% CI "
        f"{_figure(ba.ci_low)}–{_figure(ba.ci_high)}, {ba.n_raters} raters × {ba.n_images} images"
    )
    verdict = stats.verdict(ba, CHANCE)
    if verdict == "above_chance":
        return verdict, f"Raters told synthetic from real images apart better than chance: {figures}."
    if verdict == "below_chance":
        return (
            verdict,
            "Raters were systematically fooled, calling synthetic images real more often than real "
            f"ones (below chance): {figures}.",
        )
    return verdict, f"Raters could not reliably tell synthetic from real images: {figures}."


def _raters_per_kind(first: FirstShowings) -> tuple[np.ndarray, np.ndarray]:
    """Distinct real and synthetic images each rater judged."""
    n_img = int(first.image.max()) + 1 if first.image.size else 1
    pairs, _ = stats.factorize(first.rater * n_img + first.image)  # (rater, image) seen, once each
    rater, image = pairs // n_img, pairs % n_img
    image_syn = np.zeros(n_img, dtype=bool)
    image_syn[first.image] = first.truth
    n_syn = np.bincount(rater, weights=image_syn[image], minlength=first.n_raters)
    n_all = np.bincount(rater, minlength=first.n_raters)
    return n_all - n_syn, n_syn


def headline_section(
    first: FirstShowings, data: StudyData, pooled: Detection, *, confidence: float, warnings: Warnings
) -> Headline:
    """The headline (see ``schema``): estimates, caveats as notes and warnings, the sentence."""
    notes = Warnings()
    n_real_r, n_syn_r = _raters_per_kind(first)
    left_out = int(np.count_nonzero((n_real_r < 2) | (n_syn_r < 2)))
    judged = np.zeros(data.images.n, dtype=bool)
    judged[first.image] = True
    n_real_img = int(np.count_nonzero(judged & ~data.images.is_synthetic))
    n_syn_img = int(np.count_nonzero(judged & data.images.is_synthetic))
    est = None
    if first.n_raters:
        est = attempt(
            "headline",
            warnings,
            stats.headline_estimates,
            first.says,
            first.signed,
            first.truth,
            first.rater,
            first.image,
            confidence,
        )
    ba = None if est is None else est.accuracy
    if left_out:
        notes.add(
            f"{left_out} of {first.n_raters} raters judged fewer than 2 real or 2 synthetic images "
            "and are left out of the reader-averaged estimates"
        )
    if ba is not None:
        if ba.n_raters < MIN_RATERS:
            notes.add(
                f"the crossed CIs rest on {ba.n_raters} raters (fewer than {MIN_RATERS}): "
                "the between-rater variance is poorly estimated, treat the intervals as rough"
            )
        n_real, n_syn = ba.specificity.n_images, ba.sensitivity.n_images
        if min(n_real, n_syn) < MIN_IMAGES_PER_KIND:
            notes.add(
                f"the crossed CIs rest on {n_real} real and {n_syn} synthetic images (fewer than "
                f"{MIN_IMAGES_PER_KIND} of a kind): treat the intervals as rough"
            )
    pool_real = int((~data.images.is_synthetic).sum())
    pool_syn = int(data.images.is_synthetic.sum())
    equal = pool_real == pool_syn
    if not equal and pool_real + pool_syn:
        share = max(pool_real, pool_syn) / (pool_real + pool_syn)
        notes.add(
            f"the pool has {pool_real} real and {pool_syn} synthetic images: raw (pooled) accuracy "
            f"is not comparable to 0.5, since raters who always gave the majority answer would score "
            f"{share:.2f} with no ability at all; the balanced accuracy averages sensitivity and "
            "specificity, so its chance level is 0.5 for any ratio"
        )
    for note in notes:
        warnings.add(f"headline: {note}")
    verdict, sentence = headline_sentence(ba, confidence=confidence, n_raters_judged=first.n_raters)
    return Headline(
        sentence=sentence,
        verdict=verdict,
        confidence=confidence,
        balanced_accuracy=None if ba is None else crossed(ba),
        sensitivity=None if ba is None else crossed(ba.sensitivity),
        specificity=None if ba is None else crossed(ba.specificity),
        auc=None if est is None else crossed(est.auc),
        hype=HeadlineHype(
            error_rate=None if ba is None else _error_rate(ba),
            real_error_rate=None if ba is None else _error_rate(ba.specificity),
            synthetic_error_rate=None if ba is None else _error_rate(ba.sensitivity),
        ),
        d_prime=pooled.d_prime,
        criterion_c=pooled.criterion_c,
        n_raters=0 if ba is None else ba.n_raters,
        n_raters_judged=first.n_raters,
        n_raters_left_out=left_out,
        n_images=n_real_img + n_syn_img,
        n_real_images=n_real_img,
        n_synthetic_images=n_syn_img,
        equal_kinds=equal,
        method=METHOD,
        notes=tuple(notes),
    )


def group_crossed(first: FirstShowings, sel: np.ndarray, confidence: float) -> tuple[str, Crossed | None]:
    """(inference, balanced accuracy) of one breakdown group's judgments ``sel``.

    Crossed when the group has >= 2 raters who judged >= 2 images of each kind ("rough"
    under 5 raters or 10 images of a kind); otherwise descriptive, and the group keeps
    only its judgment-level figures.
    """
    try:
        ba = stats.reader_study_accuracy(
            first.says[sel], first.truth[sel], first.rater[sel], first.image[sel], confidence
        )
    except ValueError:
        return "descriptive", None
    few_images = min(ba.sensitivity.n_images, ba.specificity.n_images) < MIN_IMAGES_PER_KIND
    return ("rough" if ba.n_raters < MIN_RATERS or few_images else "crossed"), crossed(ba)
