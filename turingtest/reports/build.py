"""From arrays to the report: ``build_report(data, rows)`` runs every statistic, no query.

The judgment rows (``Rows``) are matched to the image pool once; first showings become a
``FirstShowings`` value that every section builder reads. Detection (pooled, per rater,
HYPE∞, by group) and response times are built here; agreement, diagnosis and per-image
sections in ``sections``.
"""

from __future__ import annotations

import math

import numpy as np

from turingtest import stats
from turingtest.reports.common import Warnings, attempt, bin_codes, group_order, prop
from turingtest.reports.headline import group_crossed, headline_section
from turingtest.reports.inputs import FirstShowings, Rows, StudyData
from turingtest.reports.schema import (
    CHANCE,
    EXPERIENCE_EDGES,
    EXPERIENCE_LABELS,
    FITZPATRICK_LABELS,
    LESION_EDGES,
    LESION_LABELS,
    RT_QUANTILES,
    SCHEMA_VERSION,
    AttentionScore,
    AucSummary,
    Breakdowns,
    Detection,
    DetectionSection,
    ExcludedRater,
    GroupDetection,
    Headline,
    Hype,
    Meta,
    Progress,
    RaterDetection,
    RaterQuality,
    ResponseTimeGroup,
    ResponseTimes,
    StudyInfo,
    StudyReport,
)
from turingtest.reports.sections import agreement_section, diagnosis_section, images_section


def build_report(
    data: StudyData,
    rows: Rows,
    *,
    generated_at: str,
    n_boot: int = 1000,
    seed: int | None = None,
    confidence: float = 0.95,
) -> StudyReport:
    """The full report from the study's lookups and judgment rows (see ``schema``).

    ``seed`` (default: the study's own seed) makes the bootstrap intervals reproducible;
    ``n_boot`` replicates resample raters and images together. ``generated_at`` is the
    ISO 8601 time stamped on the report (the caller's clock, so this stays pure).
    """
    warnings = Warnings()
    seed = int(data.seed if seed is None else seed)
    images = data.images
    all_rows = rows
    rows = rows.without_raters(data.left_out_raters)  # excluded and unqualified raters
    rater_ids_all = stats.factorize(rows.rater.astype(np.int64))[0] if rows.n else np.empty(0, np.int64)
    first, known, is_repeat, is_first = _select(data, rows, warnings)

    for warning in data.design_warnings:
        warnings.add(warning)
    if rows.n == 0:
        warnings.add("the study has no judgments yet")
    if first.n_raters == 1:
        warnings.add("only one rater: agreement statistics need at least two")

    pooled = _detection(first.says, first.truth, first.signed, "pooled", warnings, confidence)
    headline = headline_section(first, data, pooled, confidence=confidence, warnings=warnings)
    rater_warnings = Warnings()  # per-rater gaps are summarized, not listed 200 times
    per_rater = _per_rater(first, data, rater_warnings, confidence)
    if rater_warnings:
        warnings.add(f"{len(rater_warnings)} per-rater statistics are undefined (see the per-rater table)")
    hype = _hype(first, n_boot=n_boot, seed=seed, confidence=confidence, w=warnings)
    agreement = agreement_section(first, data, rows, is_repeat=is_repeat, known=known, warnings=warnings)
    diagnosis = diagnosis_section(
        first, data, n_unsure=int((rows.diagnosis_unsure[is_first] == 1.0).sum()), warnings=warnings
    )
    images_part = images_section(first, data, warnings=warnings)
    breakdowns = _breakdowns(first, data, rater_warnings, confidence)
    response_times = _response_times(first.response_ms, first.truth, first.correct)

    return StudyReport(
        headline=headline,
        schema_version=SCHEMA_VERSION,
        study=StudyInfo(
            id=data.id,
            title=data.title,
            status=data.status,
            config_sha256=data.config_sha256,
            generated_at=generated_at,
        ),
        meta=Meta(
            confidence=confidence,
            n_boot=int(n_boot),
            seed=seed,
            chance=CHANCE,
            n_judgments_total=rows.n,
            n_first_showings=int(is_first.sum()),
            n_repeats=int((is_repeat & known).sum()),
        ),
        progress=Progress(
            n_invited=data.n_invited,
            n_invitations_used=data.n_invitations_used,
            n_assignments=data.n_assignments,
            n_started=data.n_started,
            n_finished=data.n_finished,
            n_raters_with_judgments=int(rater_ids_all.size),
            n_images=images.n,
            n_real_images=int((~images.is_synthetic).sum()),
            n_synthetic_images=int(images.is_synthetic.sum()),
        ),
        detection=DetectionSection(pooled=pooled, hype=hype, per_rater=per_rater),
        agreement=agreement,
        diagnosis=diagnosis,
        images=images_part,
        breakdowns=breakdowns,
        response_times=response_times,
        warnings=tuple(warnings),
        headline_all_raters=(
            build_headline(data, all_rows, confidence=confidence, keep_all=True)
            # Unqualified raters never reach a rated item: the comparison is for exclusions,
            # or for left-out raters who did leave judgments.
            if data.excluded or rows.n != all_rows.n
            else None
        ),
        rater_quality=_rater_quality(data),
    )


def _rater_quality(data: StudyData) -> RaterQuality:
    name = lambda user_id: data.profile(user_id)[0]  # noqa: E731
    return RaterQuality(
        n_excluded=len(data.excluded),
        n_unqualified=len(data.unqualified),
        qualification_min_correct=data.qualification_min_correct,
        excluded=tuple(sorted((ExcludedRater(name(u), reason) for u, reason in data.excluded), key=str)),
        attention_checks=tuple(
            sorted((AttentionScore(name(u), p, f) for u, p, f in data.attention), key=lambda a: a.rater)
        ),
    )


def build_headline(
    data: StudyData, rows: Rows, *, confidence: float = 0.95, keep_all: bool = False
) -> Headline:
    """The headline section alone (no bootstrap, no other section): precision planning's input.

    Excluded and unqualified raters are left out, as in the report, unless ``keep_all``.
    """
    if not keep_all:
        rows = rows.without_raters(data.left_out_raters)
    warnings = Warnings()
    first = _select(data, rows, warnings)[0]
    pooled = _detection(first.says, first.truth, first.signed, "pooled", warnings, confidence)
    return headline_section(first, data, pooled, confidence=confidence, warnings=warnings)


def _select(
    data: StudyData, rows: Rows, warnings: Warnings
) -> tuple[FirstShowings, np.ndarray, np.ndarray, np.ndarray]:
    """(first showings, known, is_repeat, is_first): rows matched to the image pool once."""
    # Judgments on images no longer in the pool (should not happen) are dropped loudly.
    img_ids = data.images.ids
    pos = np.searchsorted(img_ids, rows.image.astype(np.int64)) if img_ids.size else np.zeros(rows.n, int)
    known = (pos < img_ids.size) & (img_ids[np.minimum(pos, max(img_ids.size - 1, 0))] == rows.image)
    if img_ids.size == 0:
        known = np.zeros(rows.n, dtype=bool)
    if not known.all():
        warnings.add(
            f"{int((~known).sum())} judgments refer to images outside the study pool and were ignored"
        )
    is_repeat = ~np.isnan(rows.repeat_of)
    is_first = known & ~is_repeat
    return _first_showings(rows, is_first, pos, data.images.is_synthetic), known, is_repeat, is_first


def _first_showings(rows: Rows, is_first: np.ndarray, pos: np.ndarray, img_syn: np.ndarray) -> FirstShowings:
    image = pos[is_first]
    rater_id = rows.rater[is_first].astype(np.int64)
    truth = img_syn[image]
    says = rows.says_synthetic[is_first] == 1.0
    conf = rows.confidence[is_first]
    rater_ids, rater = stats.factorize(rater_id) if rater_id.size else (np.empty(0, np.int64), rater_id)
    return FirstShowings(
        image=image,
        rater=rater,
        rater_ids=rater_ids,
        says=says,
        truth=truth,
        # Confidence-signed rating: +c for "synthetic", −c for "real"; a missing confidence
        # counts as the least confident answer (1), so studies without it get the binary ROC.
        signed=np.where(says, 1.0, -1.0) * np.where(np.isnan(conf), 1.0, conf),
        diagnosis=rows.diagnosis[is_first],
        response_ms=rows.response_ms[is_first],
        correct=says == truth,
    )


# --------------------------------------------------------------------------- detection


def _detection(
    says: np.ndarray, truth: np.ndarray, signed: np.ndarray, label: str, warnings: Warnings, confidence: float
) -> Detection:
    """Detection statistics for one group of first-showing judgments."""
    n = int(says.size)
    n_syn = int(truth.sum())
    n_real = n - n_syn
    hits = int((says & truth).sum())
    false_alarms = int((says & ~truth).sum())
    correct = hits + (n_real - false_alarms)
    d = None
    if n_syn and n_real:
        d = stats.dprime(hits, n_syn - hits, false_alarms, n_real - false_alarms)
    else:
        warnings.add(f"{label}: d′ and AUC need both real and synthetic images")
    auc = None
    if n_syn and n_real:
        pos, neg = signed[truth], signed[~truth]
        res = attempt(f"{label} AUC CI", warnings, stats.rating_auc_ci, pos, neg, confidence)
        if res is not None:
            auc = AucSummary(res.auc, res.ci_low, res.ci_high, res.se)
        else:
            value = stats.rating_auc(pos, neg)
            auc = AucSummary(value, math.nan, math.nan, math.nan)
    return Detection(
        n=n,
        n_real=n_real,
        n_synthetic=n_syn,
        accuracy=prop(correct, n, f"{label} accuracy", warnings, confidence=confidence),
        sensitivity=prop(hits, n_syn, f"{label} sensitivity", warnings, confidence=confidence),
        specificity=prop(
            n_real - false_alarms, n_real, f"{label} specificity", warnings, confidence=confidence
        ),
        real_error=prop(false_alarms, n_real, f"{label} real error rate", warnings, confidence=confidence),
        synthetic_error=prop(
            n_syn - hits, n_syn, f"{label} synthetic error rate", warnings, confidence=confidence
        ),
        d_prime=None if d is None else d.d_prime,
        criterion_c=None if d is None else d.criterion_c,
        auc=auc,
    )


def _per_rater(
    first: FirstShowings, data: StudyData, warnings: Warnings, confidence: float
) -> tuple[RaterDetection, ...]:
    order = group_order(first.rater)
    bounds = np.searchsorted(first.rater[order], np.arange(first.n_raters + 1))
    out = []
    for r in range(first.n_raters):
        sel = order[bounds[r] : bounds[r + 1]]
        pseud, role, years = data.profile(first.rater_ids[r])
        det = _detection(
            first.says[sel], first.truth[sel], first.signed[sel], f"rater {pseud}", warnings, confidence
        )
        out.append(RaterDetection(pseud, role, int(years), det))
    out.sort(key=lambda p: p.rater)
    return tuple(out)


def _hype(first: FirstShowings, *, n_boot: int, seed: int, confidence: float, w: Warnings) -> Hype:
    """HYPE∞ error rates with CIs that resample raters and images together.

    One stratified two-way bootstrap: raters across the study, images within their kind,
    so each replicate keeps the design's balance of real and synthetic images and the
    three rates come from the same replicates.
    """
    rater, image, says, truth = first.rater, first.image, first.says, first.truth
    if says.size == 0:
        w.add("HYPE error rate: no judgments")
        return Hype(None, None, None)
    error = (says != truth).astype(np.float64)
    for label, sel in (("HYPE error rate", slice(None)), ("HYPE real error rate", ~truth),
                       ("HYPE synthetic error rate", truth)):  # fmt: skip
        n_r, n_i = np.count_nonzero(np.bincount(rater[sel])), np.count_nonzero(np.bincount(image[sel]))
        if n_i == 0:
            w.add(f"{label}: no judgments")
        elif n_r < 2 or n_i < 2:
            w.add(f"{label}: the bootstrap CI needs at least two raters and two images")
        elif n_r < 5 or n_i < 5:
            w.add(f"{label}: with {n_r} raters and {n_i} images the bootstrap interval is only a rough guide")
    res = stats.bootstrap_two_way_mean_stratified(
        rater, image, error, truth, n_boot=n_boot, seed=seed, confidence=confidence
    )
    return Hype(
        error_rate=res.overall,
        real_error_rate=res.strata.get(False),
        synthetic_error_rate=res.strata.get(True),
    )


def _breakdowns(first: FirstShowings, data: StudyData, warnings: Warnings, confidence: float) -> Breakdowns:
    """Detection by image group (condition, skin type, lesion size) and rater group."""

    def groups(codes: np.ndarray, labels: list[str], name: str) -> tuple[GroupDetection, ...]:
        """Detection per group; ``codes`` index ``labels`` (one sort, then slices)."""
        order = group_order(codes)
        bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
        out = []
        for k, label in enumerate(labels):
            sel = order[bounds[k] : bounds[k + 1]]
            if sel.size:
                det = _detection(
                    first.says[sel],
                    first.truth[sel],
                    first.signed[sel],
                    f"{name} {label}",
                    warnings,
                    confidence,
                )
                inference, ba = group_crossed(first, sel, confidence)
                out.append(GroupDetection(label, inference, ba, det))
        return tuple(out)

    # Group codes are computed per image or per rater, then gathered per judgment.
    images = data.images
    img_codes = [data.condition_code(c) for c in images.condition.tolist()]
    cond_order = sorted(set(img_codes))
    img_cond_code = np.array([cond_order.index(c) for c in img_codes], dtype=np.int64)
    fitz = images.fitzpatrick
    img_fitz_code = np.where(np.isfinite(fitz), np.nan_to_num(fitz, nan=7.0) - 1, 6).astype(np.int64)
    img_lesion_code = bin_codes(images.lesion_area_fraction, LESION_EDGES)
    profiles = [data.profile(u) for u in first.rater_ids]
    rater_role = [p[1] for p in profiles]
    role_order = [*data.roles, *sorted(set(rater_role) - set(data.roles))]
    rater_role_code = np.array([role_order.index(r) for r in rater_role], dtype=np.int64)
    rater_exp_code = bin_codes(np.array([p[2] for p in profiles], dtype=np.float64), EXPERIENCE_EDGES)
    img, rater = first.image, first.rater
    return Breakdowns(
        condition=groups(img_cond_code[img], cond_order, "condition"),
        fitzpatrick=groups(img_fitz_code[img], [*FITZPATRICK_LABELS, "no label"], "skin type"),
        lesion_size=groups(img_lesion_code[img], [*LESION_LABELS, "unknown"], "lesion size"),
        role=groups(rater_role_code[rater], role_order, "role"),
        experience=groups(rater_exp_code[rater], [*EXPERIENCE_LABELS, "unknown"], "experience"),
    )


# --------------------------------------------------------------------------- response times


def _sorted_quantiles(sorted_values: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """Quantiles of already-sorted values, linear interpolation (NumPy's default method)."""
    pos = (sorted_values.size - 1) * np.asarray(qs)
    return tuple(float(v) for v in np.interp(pos, np.arange(sorted_values.size), sorted_values))


def _response_times(rt: np.ndarray, truth: np.ndarray, correct: np.ndarray) -> ResponseTimes:
    """Quantiles per (kind, correctness): one sort, then each group is a sorted subsequence."""
    have = np.isfinite(rt)
    order = np.argsort(np.where(have, rt, np.inf), kind="stable")
    rt_sorted, have_sorted = rt[order], have[order]
    truth_sorted, correct_sorted = truth[order], correct[order]
    groups = []
    for kind in ("all", "real", "synthetic"):
        kind_sel = (
            np.ones(rt.size, bool)
            if kind == "all"
            else (truth_sorted if kind == "synthetic" else ~truth_sorted)
        )
        for corr in (None, True, False):
            sel = kind_sel if corr is None else kind_sel & (correct_sorted == corr)
            values = rt_sorted[sel & have_sorted]
            n = int(sel.sum())
            groups.append(
                ResponseTimeGroup(
                    kind=kind,
                    correct=corr,
                    n=n,
                    n_missing=n - int(values.size),
                    mean_ms=float(values.mean()) if values.size else None,
                    q_ms=_sorted_quantiles(values, RT_QUANTILES) if values.size else None,
                )
            )
    return ResponseTimes(RT_QUANTILES, tuple(groups))
