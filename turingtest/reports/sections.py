"""Agreement, diagnosis and per-image sections: pure functions from arrays to the report.

Each builder takes the first showings (``FirstShowings``), the study lookups
(``StudyData``) and the warning list; none runs a query.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from turingtest import stats
from turingtest.reports.common import Warnings, attempt, clean, finite_or_none, prop
from turingtest.reports.inputs import FirstShowings, Rows, StudyData
from turingtest.reports.schema import (
    N_CONVINCING,
    Agreement,
    AgreementSection,
    ConditionDiagnosis,
    Confusion,
    DiagnosisByKind,
    DiagnosisSection,
    Embodiment,
    Histogram,
    ImageRow,
    ImagesSection,
    KappaSummary,
    PairwiseKappa,
    RaterRetest,
    Retest,
    TestRetest,
)

# --------------------------------------------------------------------------- agreement


def _agreement_stats(
    rater: np.ndarray, image: np.ndarray, values: np.ndarray, n_categories: int, label: str, w: Warnings
) -> Agreement:
    """Fleiss' κ on images with the modal number of ratings, Krippendorff's α on all."""
    if values.size == 0:
        w.add(f"{label} agreement: no judgments")
        return Agreement(0, 0, None, 0, None, None)
    img_codes, img_idx = stats.factorize(image)
    n_img = int(img_codes.size)
    n_r = int(np.count_nonzero(np.bincount(rater)))
    counts = np.bincount(img_idx * n_categories + values, minlength=n_img * n_categories).reshape(
        n_img, n_categories
    )
    per_image = counts.sum(axis=1)
    ratings, freq = np.unique(per_image, return_counts=True)
    candidates = ratings >= 2
    fleiss, fleiss_n, m = None, 0, None
    if candidates.any():
        m = int(ratings[candidates][np.argmax(freq[candidates])])
        table = counts[per_image == m]
        fleiss_n = int(table.shape[0])
        value = attempt(f"{label} Fleiss' κ", w, stats.fleiss_kappa, table)
        fleiss = None if value is None else clean(value, f"{label} Fleiss' κ", w)
        if fleiss_n < n_img:
            w.add(
                f"{label} Fleiss' κ uses the {fleiss_n} of {n_img} images rated {m} times "
                "(Krippendorff's α uses all)"
            )
    else:
        w.add(f"{label} Fleiss' κ: no image was rated twice")
    alpha = attempt(f"{label} Krippendorff's α", w, stats.krippendorff_alpha_counts, counts, "nominal")
    alpha = None if alpha is None else clean(alpha, f"{label} Krippendorff's α", w)
    return Agreement(n_img, n_r, fleiss, fleiss_n, m, alpha)


def _kappa_summary(kappa: np.ndarray) -> KappaSummary:
    upper = kappa[np.triu_indices_from(kappa, k=1)] if kappa.size else np.empty(0)
    upper = upper[np.isfinite(upper)]
    if upper.size == 0:
        return KappaSummary(0, None, None, None, None)
    return KappaSummary(
        int(upper.size),
        float(upper.mean()),
        float(np.median(upper)),
        float(upper.min()),
        float(upper.max()),
    )


def _pairwise_kappa(first: FirstShowings, pseudonyms: list[str]) -> PairwiseKappa:
    n_raters = len(pseudonyms)
    if n_raters >= 2:
        n_img = int(first.image.max()) + 1 if first.image.size else 0
        matrix = np.full((n_raters, n_img), np.nan)
        matrix[first.rater, first.image] = first.says
        kappa, n_common = stats.pairwise_cohens_kappa(matrix)
        np.fill_diagonal(kappa, np.where(np.diag(n_common) > 0, 1.0, np.nan))
    else:
        kappa = np.full((n_raters, n_raters), np.nan)
        n_common = np.zeros((n_raters, n_raters), dtype=np.int64)
    return PairwiseKappa(
        raters=tuple(pseudonyms),
        kappa=tuple(tuple(finite_or_none(v) for v in row) for row in kappa),
        n_common=tuple(tuple(int(v) for v in row) for row in n_common),
        summary=_kappa_summary(kappa),
    )


def agreement_section(
    first: FirstShowings,
    data: StudyData,
    rows: Rows,
    *,
    is_repeat: np.ndarray,
    known: np.ndarray,
    warnings: Warnings,
) -> AgreementSection:
    """Agreement on the detection call and on the diagnosis, pairwise κ, test–retest."""
    detection = _agreement_stats(
        first.rater, first.image, first.says.astype(np.int64), 2, "detection", warnings
    )
    answered = ~np.isnan(first.diagnosis)
    diag_codes, diag_idx = stats.factorize(first.diagnosis[answered].astype(np.int64))
    diagnosis = _agreement_stats(
        first.rater[answered],
        first.image[answered],
        diag_idx.astype(np.int64),
        max(int(diag_codes.size), 1),
        "diagnosis",
        warnings,
    )
    pseudonyms = [data.profile(u)[0] for u in first.rater_ids]
    return AgreementSection(
        detection,
        diagnosis,
        _pairwise_kappa(first, pseudonyms),
        _test_retest(rows, is_repeat, known, lambda u: data.profile(u)[0], warnings),
    )


def _test_retest(
    rows: Rows, is_repeat: np.ndarray, known: np.ndarray, name_of: Callable[[int], str], w: Warnings
) -> TestRetest:
    """Each repeat paired with the rater's first answer to the same presentation."""
    rep = np.flatnonzero(is_repeat & known)
    # Only the originals of the (few) repeats are needed: find them without sorting every row.
    candidates = np.flatnonzero(np.isin(rows.presentation, rows.repeat_of[rep]))
    row_of = dict(zip(rows.presentation[candidates].tolist(), candidates.tolist(), strict=True))
    found = [row_of.get(p) for p in rows.repeat_of[rep].tolist()]
    ok = np.array([f is not None for f in found], dtype=bool)
    rep, orig = rep[ok], np.array([f for f in found if f is not None], dtype=np.int64)
    a, b = rows.says_synthetic[orig], rows.says_synthetic[rep]
    da, db = rows.diagnosis[orig], rows.diagnosis[rep]
    rater_of = rows.rater[rep].astype(np.int64)

    def retest(sel: np.ndarray, label: str, warn: Warnings) -> tuple[int, Any, Any, Any]:
        n = int(sel.sum())
        agree = prop(int((a[sel] == b[sel]).sum()), n, f"{label} test–retest agreement", warn)
        kappa = None
        if n:
            kappa = clean(stats.cohens_kappa(a[sel], b[sel]), f"{label} test–retest κ", warn)
        both = sel & ~np.isnan(da) & ~np.isnan(db)
        diag = None
        if both.any():
            diag = prop(int((da[both] == db[both]).sum()), int(both.sum()), f"{label} diagnosis retest", warn)
        return n, agree, kappa, diag

    everything = np.ones(rep.size, dtype=bool)
    pooled = Retest(*retest(everything, "pooled", w)) if rep.size else Retest(0, None, None, None)
    if not rep.size:
        w.add("test–retest: no repeated presentations were answered")
    quiet = Warnings()  # per-rater gaps show as None in the table
    per_rater = [
        RaterRetest(name_of(int(rid)), *retest(rater_of == rid, f"rater {rid}", quiet))
        for rid in np.unique(rater_of)
    ]
    per_rater.sort(key=lambda r: r.rater)
    return TestRetest(pooled, tuple(per_rater))


# --------------------------------------------------------------------------- diagnosis


def diagnosis_section(
    first: FirstShowings, data: StudyData, *, n_unsure: int, warnings: Warnings
) -> DiagnosisSection:
    """Everything here follows from two confusion matrices and one image × answer table."""
    w = warnings
    f_img, f_diag = first.image, first.diagnosis
    img_syn, img_cond = data.images.is_synthetic, data.images.condition
    answered = ~np.isnan(f_diag)
    p0 = 1.0 / data.n_choices
    # Condition ids → positions in the sorted code list, through a small lookup array.
    ids, _ = stats.factorize(np.concatenate([img_cond, f_diag[answered].astype(np.int64)]))
    label_of = {int(pk): data.condition_code(pk) for pk in ids}
    codes = sorted(set(label_of.values()))
    k = len(codes)
    id_to_index = np.array([codes.index(label_of[int(pk)]) for pk in ids], dtype=np.int64)
    img_true = id_to_index[np.searchsorted(ids, img_cond)] if img_cond.size else np.empty(0, np.int64)
    a_img = f_img[answered]
    a_true = img_true[a_img]
    a_said = id_to_index[np.searchsorted(ids, f_diag[answered].astype(np.int64))]
    a_syn = img_syn[a_img]
    confusion = {}
    for kind in (True, False):
        sel = a_syn == kind
        confusion[kind] = np.bincount(a_true[sel] * k + a_said[sel], minlength=k * k).reshape(k, k)
    if not answered.any():
        w.add("diagnosis: no diagnosis answers")

    def by_kind(j: int | None, label: str) -> DiagnosisByKind:
        def acc(m: np.ndarray, kind: str) -> stats.ProportionResult | None:
            hits, n = (np.trace(m), m.sum()) if j is None else (m[j, j], m[j].sum())
            return prop(int(hits), int(n), f"{label} {kind} diagnosis accuracy", w, p0=p0)

        real, synthetic = acc(confusion[False], "real"), acc(confusion[True], "synthetic")
        comparison = None
        if real is not None and synthetic is not None:
            comparison = stats.compare_proportions(real.successes, real.n, synthetic.successes, synthetic.n)
        return DiagnosisByKind(real, synthetic, comparison)

    overall = by_kind(None, "overall")
    # Per synthetic image: is the intended condition (one of) its most frequent answers?
    n_img = img_cond.size
    table = np.bincount(a_img[a_syn] * k + a_said[a_syn], minlength=n_img * k).reshape(n_img, k)
    rated = table.sum(axis=1) > 0
    modal_hit = rated & img_syn & (table[np.arange(n_img), img_true] == table.max(axis=1, initial=0))
    n_majority = np.bincount(img_true[modal_hit], minlength=k)
    n_syn_images = np.bincount(img_true[img_syn], minlength=k)
    per_condition, embodiment = [], []
    quiet = Warnings()
    name_of = {v[0]: v[1] for v in data.conditions.values()}
    for j in sorted(set(img_true.tolist()), key=lambda j: codes[j]):
        code = codes[j]
        kd = by_kind(j, f"condition {code}")
        per_condition.append(
            ConditionDiagnosis(code, name_of.get(code, ""), kd.real, kd.synthetic, kd.comparison)
        )
        syn_row = confusion[True][j]
        rate = prop(int(syn_row[j]), int(syn_row.sum()), f"embodiment {code}", quiet, p0=p0)
        embodiment.append(
            Embodiment(code, int(n_syn_images[j]), int(syn_row.sum()), rate, int(n_majority[j]))
        )
    return DiagnosisSection(
        n_answered=int(answered.sum()),
        n_unanswered=int((~answered).sum()),
        n_unsure=int(n_unsure),
        n_choices=int(data.n_choices),
        overall=overall,
        per_condition=tuple(per_condition),
        confusion=Confusion(
            tuple(codes),
            tuple(tuple(int(v) for v in r) for r in confusion[False]),
            tuple(tuple(int(v) for v in r) for r in confusion[True]),
        ),
        embodiment=tuple(embodiment),
    )


# --------------------------------------------------------------------------- images


def images_section(first: FirstShowings, data: StudyData, *, warnings: Warnings) -> ImagesSection:
    """Per-image rates, the most and least convincing synthetic images, the histogram."""
    images = data.images
    f_img, f_diag = first.image, first.diagnosis
    img_syn, img_token = images.is_synthetic, images.token
    n_img = images.n
    n = np.bincount(f_img, minlength=n_img)
    n_syn_calls = np.bincount(f_img, weights=first.says.astype(float), minlength=n_img)
    answered = ~np.isnan(f_diag)
    diag_n = np.bincount(f_img[answered], minlength=n_img)
    diag_ok = np.bincount(
        f_img[answered], weights=(f_diag[answered] == images.condition[f_img[answered]]), minlength=n_img
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        syn_rate = np.where(n > 0, n_syn_calls / n, np.nan)
        diag_acc = np.where(diag_n > 0, diag_ok / diag_n, np.nan)
    correct_rate = np.where(img_syn, syn_rate, 1.0 - syn_rate)
    fooling = np.where(img_syn, 1.0 - syn_rate, np.nan)

    per_image = tuple(
        ImageRow(
            image_id=int(images.ids[i]),
            token=img_token[i],
            kind=images.kind[i],
            condition=data.condition_code(images.condition[i]),
            fitzpatrick=None if np.isnan(images.fitzpatrick[i]) else int(images.fitzpatrick[i]),
            lesion_area_fraction=finite_or_none(images.lesion_area_fraction[i]),
            n=int(n[i]),
            n_says_synthetic=int(n_syn_calls[i]),
            says_synthetic_rate=finite_or_none(syn_rate[i]),
            correct_rate=finite_or_none(correct_rate[i]),
            fooling_rate=finite_or_none(fooling[i]),
            diagnosis_accuracy=finite_or_none(diag_acc[i]),
        )
        for i in range(n_img)
    )
    rated_syn = np.flatnonzero(img_syn & (n > 0))
    # Most convincing: highest fooling rate, then more judgments (firmer), then token.
    ranked = sorted(rated_syn.tolist(), key=lambda i: (-fooling[i], -n[i], img_token[i]))
    least = sorted(rated_syn.tolist(), key=lambda i: (fooling[i], -n[i], img_token[i]))
    if rated_syn.size == 0:
        warnings.add("no synthetic image has been rated yet: fooling rates are undefined")
    edges = np.linspace(0.0, 1.0, 11)
    counts, _ = np.histogram(fooling[rated_syn], bins=edges)
    return ImagesSection(
        per_image=per_image,
        most_convincing=tuple(img_token[i] for i in ranked[:N_CONVINCING]),
        least_convincing=tuple(img_token[i] for i in least[:N_CONVINCING]),
        fooling_rate_histogram=Histogram(tuple(float(e) for e in edges), tuple(int(c) for c in counts)),
    )
