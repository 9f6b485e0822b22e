"""The study report: one query into numpy arrays, then ``turingtest.stats``.

``build(study)`` answers the questions of the DermGAN Turing test — can raters tell
synthetic images from real ones, do they agree, do synthetic images still carry their
diagnosis — as a tree of frozen dataclasses. ``StudyReport.to_dict()`` is the JSON the
dashboard, the API, ``study_report`` and the study package use.

Which judgments count
---------------------
Tutorial presentations (``Presentation.is_tutorial`` or ``StudyItem.is_tutorial``) are
excluded. Repeated presentations (``repeat_of`` set) are used only for test–retest
agreement; every other statistic uses first showings only, so a repeated image is not
counted twice. A judgment is "correct" when ``says_synthetic`` matches the image kind.

Queries
-------
The judgment rows come from ONE ``values_list`` query (numeric columns only). Image,
rater, condition and progress attributes come from a constant number of small lookup
queries (about seven in all, whatever the size of the study) instead of being repeated
on every joined judgment row: 200 raters × 5,000 images would otherwise carry every
image token 200 times.

to_dict() schema (``schema_version`` 1)
---------------------------------------
Floats that are undefined (NaN) are ``None``; every such case also adds a line to
``warnings``. ``Prop`` is a proportion with its Wilson CI and exact binomial test::

    Prop = {"successes": int, "n": int, "proportion": float, "ci_low": float,
            "ci_high": float, "p0": float, "p_value": float}   # p0: the null proportion

    Detection = {
      "n": int, "n_real": int, "n_synthetic": int,          # first-showing judgments
      "accuracy": Prop | None,        # correct calls / n, tested against p0 = 0.5
      "sensitivity": Prop | None,     # synthetic called synthetic / n_synthetic
      "specificity": Prop | None,     # real called real / n_real
      "real_error": Prop | None,      # real called synthetic / n_real (= 1 − specificity)
      "synthetic_error": Prop | None, # synthetic called real / n_synthetic (= fooling rate)
      "d_prime": float | None, "criterion_c": float | None,   # log-linear corrected
      "auc": {"auc": float, "ci_low": float, "ci_high": float, "se": float} | None,
    }   # AUC from confidence-signed ratings, DeLong CI

    Boot = {"estimate": float, "ci_low": float | None, "ci_high": float | None,
            "n_boot": int, "n_valid": int}   # two-way bootstrap: raters, and images within kind

    Agreement = {"n_images": int, "n_raters": int,
                 "fleiss_kappa": float | None, "fleiss_n_images": int,   # images with the
                 "fleiss_raters_per_image": int | None,                  # modal rating count
                 "krippendorff_alpha": float | None}                     # nominal, all images

    {
      "schema_version": 1,
      "study": {"id": int, "title": str, "status": str, "config_sha256": str,
                "generated_at": str (ISO 8601)},
      "meta": {"confidence": 0.95, "n_boot": int, "seed": int, "chance": 0.5,
               "n_judgments_total": int, "n_first_showings": int, "n_repeats": int},
      "progress": {"n_invited": int, "n_invitations_used": int, "n_assignments": int,
                   "n_started": int, "n_finished": int, "n_raters_with_judgments": int,
                   "n_images": int, "n_real_images": int, "n_synthetic_images": int},
      "detection": {
        "pooled": Detection,
        "hype": {"error_rate": Boot, "real_error_rate": Boot, "synthetic_error_rate": Boot},
        "per_rater": [{"rater": pseudonym, "role": str, "years_experience": int,
                       "detection": Detection}],          # sorted by pseudonym
      },
      "agreement": {
        "detection": Agreement,     # the real/synthetic call
        "diagnosis": Agreement,     # answered diagnoses only
        "pairwise_kappa": {"raters": [pseudonym], "kappa": [[float | None]],
                           "n_common": [[int]],
                           "summary": {"n_pairs": int, "mean": float | None,
                                       "median": float | None, "min": float | None,
                                       "max": float | None}},   # detection call
        "test_retest": {
          "pooled": {"n_pairs": int, "agreement": Prop | None, "kappa": float | None,
                     "diagnosis_agreement": Prop | None},
          "per_rater": [{"rater": pseudonym, "n_pairs": int, "agreement": Prop | None,
                         "kappa": float | None, "diagnosis_agreement": Prop | None}],
        },
      },
      "diagnosis": {
        "n_answered": int, "n_unanswered": int, "n_unsure": int, "n_choices": int,
        "overall": {"real": Prop | None, "synthetic": Prop | None,     # p0 = 1/n_choices
                    "comparison": Comparison | None},                  # real vs synthetic
        "per_condition": [{"condition": code, "name": str, "real": Prop | None,
                           "synthetic": Prop | None, "comparison": Comparison | None}],
        "confusion": {"labels": [code], "real": [[int]], "synthetic": [[int]]},
                     # rows: true condition, columns: answered condition, same label order
        "embodiment": [{"condition": code, "n_images": int, "n_answered": int,
                        "rate": Prop | None,              # answers naming the intended condition
                        "n_images_majority": int}],       # images whose modal answer is it
      },
      # Comparison = {"p1": float, "p2": float, "difference": float, "ci_low": float,
      #               "ci_high": float, "fisher_p": float, "odds_ratio": float | None,
      #               "chi2": float | None, "chi2_p": float | None}   # p1 real, p2 synthetic
      "images": {
        "per_image": [{"image_id": int, "token": str, "kind": "real" | "synthetic",
                       "condition": code, "fitzpatrick": int | None,
                       "lesion_area_fraction": float | None, "n": int,
                       "n_says_synthetic": int, "says_synthetic_rate": float | None,
                       "correct_rate": float | None,
                       "fooling_rate": float | None,      # synthetic only: share called real
                       "diagnosis_accuracy": float | None}],   # sorted by image_id
        "most_convincing": [token],     # synthetic, highest fooling rate first (up to 10)
        "least_convincing": [token],    # synthetic, lowest fooling rate first (up to 10)
        "fooling_rate_histogram": {"edges": [float] (11), "counts": [int] (10)},
      },
      "breakdowns": {                   # detection by group, first showings
        "condition": [{"group": code, "detection": Detection}],
        "fitzpatrick": [{"group": "I".."VI" | "unknown", "detection": Detection}],
        "lesion_size": [{"group": "0–5%" | "5–15%" | "15–35%" | "35–100%" | "unknown", ...}],
        "role": [{"group": role value, "detection": Detection}],
        "experience": [{"group": "0–4 y" | "5–9 y" | "10–19 y" | "20+ y", ...}],
      },                                # empty groups are left out
      "response_times": {
        "quantiles": [0.1, 0.25, 0.5, 0.75, 0.9],
        "groups": [{"kind": "all" | "real" | "synthetic", "correct": bool | None,
                    "n": int, "n_missing": int, "mean_ms": float | None,
                    "q_ms": [float] | None}],
      },
      "warnings": [str],
    }
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
from django.db.models import Count, Q
from django.utils import timezone

from turingtest import stats

SCHEMA_VERSION = 1
CHANCE = 0.5
RT_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
N_CONVINCING = 10
LESION_EDGES = (0.0, 0.05, 0.15, 0.35)
LESION_LABELS = ("0–5%", "5–15%", "15–35%", "35–100%")
EXPERIENCE_EDGES = (0, 5, 10, 20)
EXPERIENCE_LABELS = ("0–4 y", "5–9 y", "10–19 y", "20+ y")
FITZPATRICK_LABELS = ("I", "II", "III", "IV", "V", "VI")

# The one judgment query: numeric columns only, so a chunk converts to a float array in C.
ROW_FIELDS = (
    "presentation_id",
    "presentation__repeat_of_id",
    "presentation__assignment__rater_id",
    "presentation__item__image_id",
    "says_synthetic",
    "confidence",
    "diagnosis_id",
    "response_ms",
    "diagnosis_unsure",
)
_CHUNK = 65_536


# --------------------------------------------------------------------------- result tree


@dataclass(frozen=True)
class AucSummary:
    auc: float
    ci_low: float
    ci_high: float
    se: float


@dataclass(frozen=True)
class Detection:
    n: int
    n_real: int
    n_synthetic: int
    accuracy: stats.ProportionResult | None
    sensitivity: stats.ProportionResult | None
    specificity: stats.ProportionResult | None
    real_error: stats.ProportionResult | None
    synthetic_error: stats.ProportionResult | None
    d_prime: float | None
    criterion_c: float | None
    auc: AucSummary | None


@dataclass(frozen=True)
class RaterDetection:
    rater: str
    role: str
    years_experience: int
    detection: Detection


@dataclass(frozen=True)
class Hype:
    error_rate: stats.BootstrapResult | None
    real_error_rate: stats.BootstrapResult | None
    synthetic_error_rate: stats.BootstrapResult | None


@dataclass(frozen=True)
class DetectionSection:
    pooled: Detection
    hype: Hype
    per_rater: tuple[RaterDetection, ...]


@dataclass(frozen=True)
class Agreement:
    n_images: int
    n_raters: int
    fleiss_kappa: float | None
    fleiss_n_images: int
    fleiss_raters_per_image: int | None
    krippendorff_alpha: float | None


@dataclass(frozen=True)
class KappaSummary:
    n_pairs: int
    mean: float | None
    median: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True)
class PairwiseKappa:
    raters: tuple[str, ...]
    kappa: tuple[tuple[float | None, ...], ...]
    n_common: tuple[tuple[int, ...], ...]
    summary: KappaSummary


@dataclass(frozen=True)
class Retest:
    n_pairs: int
    agreement: stats.ProportionResult | None
    kappa: float | None
    diagnosis_agreement: stats.ProportionResult | None


@dataclass(frozen=True)
class RaterRetest:
    rater: str
    n_pairs: int
    agreement: stats.ProportionResult | None
    kappa: float | None
    diagnosis_agreement: stats.ProportionResult | None


@dataclass(frozen=True)
class TestRetest:
    pooled: Retest
    per_rater: tuple[RaterRetest, ...]


@dataclass(frozen=True)
class AgreementSection:
    detection: Agreement
    diagnosis: Agreement
    pairwise_kappa: PairwiseKappa
    test_retest: TestRetest


@dataclass(frozen=True)
class DiagnosisByKind:
    real: stats.ProportionResult | None
    synthetic: stats.ProportionResult | None
    comparison: stats.ProportionComparison | None


@dataclass(frozen=True)
class ConditionDiagnosis:
    condition: str
    name: str
    real: stats.ProportionResult | None
    synthetic: stats.ProportionResult | None
    comparison: stats.ProportionComparison | None


@dataclass(frozen=True)
class Confusion:
    labels: tuple[str, ...]
    real: tuple[tuple[int, ...], ...]
    synthetic: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Embodiment:
    condition: str
    n_images: int
    n_answered: int
    rate: stats.ProportionResult | None
    n_images_majority: int


@dataclass(frozen=True)
class DiagnosisSection:
    n_answered: int
    n_unanswered: int
    n_unsure: int
    n_choices: int
    overall: DiagnosisByKind
    per_condition: tuple[ConditionDiagnosis, ...]
    confusion: Confusion
    embodiment: tuple[Embodiment, ...]


@dataclass(frozen=True)
class ImageRow:
    image_id: int
    token: str
    kind: str
    condition: str
    fitzpatrick: int | None
    lesion_area_fraction: float | None
    n: int
    n_says_synthetic: int
    says_synthetic_rate: float | None
    correct_rate: float | None
    fooling_rate: float | None
    diagnosis_accuracy: float | None


@dataclass(frozen=True)
class Histogram:
    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class ImagesSection:
    per_image: tuple[ImageRow, ...]
    most_convincing: tuple[str, ...]
    least_convincing: tuple[str, ...]
    fooling_rate_histogram: Histogram


@dataclass(frozen=True)
class GroupDetection:
    group: str
    detection: Detection


@dataclass(frozen=True)
class Breakdowns:
    condition: tuple[GroupDetection, ...]
    fitzpatrick: tuple[GroupDetection, ...]
    lesion_size: tuple[GroupDetection, ...]
    role: tuple[GroupDetection, ...]
    experience: tuple[GroupDetection, ...]


@dataclass(frozen=True)
class ResponseTimeGroup:
    kind: str
    correct: bool | None
    n: int
    n_missing: int
    mean_ms: float | None
    q_ms: tuple[float, ...] | None


@dataclass(frozen=True)
class ResponseTimes:
    quantiles: tuple[float, ...]
    groups: tuple[ResponseTimeGroup, ...]


@dataclass(frozen=True)
class StudyInfo:
    id: int
    title: str
    status: str
    config_sha256: str
    generated_at: str


@dataclass(frozen=True)
class Meta:
    confidence: float
    n_boot: int
    seed: int
    chance: float
    n_judgments_total: int
    n_first_showings: int
    n_repeats: int


@dataclass(frozen=True)
class Progress:
    n_invited: int
    n_invitations_used: int
    n_assignments: int
    n_started: int
    n_finished: int
    n_raters_with_judgments: int
    n_images: int
    n_real_images: int
    n_synthetic_images: int


@dataclass(frozen=True)
class StudyReport:
    schema_version: int
    study: StudyInfo
    meta: Meta
    progress: Progress
    detection: DetectionSection
    agreement: AgreementSection
    diagnosis: DiagnosisSection
    images: ImagesSection
    breakdowns: Breakdowns
    response_times: ResponseTimes
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict (see the module docstring); NaN and ±inf become None."""
        return _jsonable(self)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Rows:
    """The judgment rows as parallel arrays (float64; NaN where the column is NULL)."""

    presentation: np.ndarray
    repeat_of: np.ndarray
    rater: np.ndarray
    image: np.ndarray
    says_synthetic: np.ndarray
    confidence: np.ndarray
    diagnosis: np.ndarray
    response_ms: np.ndarray
    diagnosis_unsure: np.ndarray

    @property
    def n(self) -> int:
        return int(self.presentation.size)


def judgment_queryset(study):
    """The study's non-tutorial judgments as the report reads them (one query)."""
    from turingtest.studies.models import Judgment

    return (
        Judgment.objects.filter(
            presentation__assignment__study=study,
            presentation__is_tutorial=False,
            presentation__item__is_tutorial=False,
        )
        .order_by()
        .values_list(*ROW_FIELDS)
    )


def read_rows(study) -> Rows:
    """Read every judgment row of ``study`` into arrays with one query.

    Streams in chunks (a server-side cursor on PostgreSQL) and converts each chunk
    with one ``np.array`` call, so a million rows never exist as Python tuples at once.
    ``benchmarks/report.py`` times this alone as the baseline of the report.
    """
    iterator = judgment_queryset(study).iterator(chunk_size=_CHUNK)
    pieces: list[list[np.ndarray]] = [[] for _ in ROW_FIELDS]
    while batch := list(islice(iterator, _CHUNK)):
        block = np.array(batch, dtype=np.float64)
        del batch
        for k, column in enumerate(pieces):
            column.append(block[:, k].copy())  # column pieces: the block is freed right away
    columns = []
    for k in range(len(ROW_FIELDS)):
        columns.append(np.concatenate(pieces[k]) if pieces[k] else np.empty(0))
        pieces[k] = []  # peak memory: the arrays plus one column's pieces
    return Rows(*columns)


# --------------------------------------------------------------------------- helpers


class _Warnings(list):
    def add(self, message: str) -> None:
        if message not in self:
            self.append(message)


def _clean(value: float, label: str, warnings: _Warnings) -> float | None:
    if value is None or not math.isfinite(value):
        warnings.add(f"{label} is undefined for these data")
        return None
    return float(value)


def _attempt(label: str, warnings: _Warnings, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a statistic; a ValueError (too little data) becomes a warning and None."""
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        warnings.add(f"{label}: {exc}")
        return None


def _prop(
    successes: int, n: int, label: str, warnings: _Warnings, *, p0: float = CHANCE, confidence: float = 0.95
) -> stats.ProportionResult | None:
    if n == 0:
        warnings.add(f"{label}: no judgments")
        return None
    return stats.proportion(int(successes), int(n), p0=p0, confidence=confidence)


def _detection(
    says: np.ndarray,
    truth: np.ndarray,
    signed: np.ndarray,
    label: str,
    warnings: _Warnings,
    confidence: float,
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
        res = _attempt(f"{label} AUC CI", warnings, stats.rating_auc_ci, pos, neg, confidence)
        if res is not None:
            auc = AucSummary(res.auc, res.ci_low, res.ci_high, res.se)
        else:
            value = stats.rating_auc(pos, neg)
            auc = AucSummary(value, math.nan, math.nan, math.nan)
    return Detection(
        n=n,
        n_real=n_real,
        n_synthetic=n_syn,
        accuracy=_prop(correct, n, f"{label} accuracy", warnings, confidence=confidence),
        sensitivity=_prop(hits, n_syn, f"{label} sensitivity", warnings, confidence=confidence),
        specificity=_prop(
            n_real - false_alarms, n_real, f"{label} specificity", warnings, confidence=confidence
        ),
        real_error=_prop(false_alarms, n_real, f"{label} real error rate", warnings, confidence=confidence),
        synthetic_error=_prop(
            n_syn - hits, n_syn, f"{label} synthetic error rate", warnings, confidence=confidence
        ),
        d_prime=None if d is None else d.d_prime,
        criterion_c=None if d is None else d.criterion_c,
        auc=auc,
    )


def _group_order(codes: np.ndarray) -> np.ndarray:
    """Stable order grouping equal codes; small codes go through NumPy's O(n) radix sort."""
    if codes.size and 0 <= codes.min() and codes.max() < 2**15:
        return np.argsort(codes.astype(np.int16), kind="stable")
    return np.argsort(codes, kind="stable")


def _bin_codes(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Bin index of each value (``len(edges)`` for unknown/NaN); bins are [edge_k, edge_k+1)."""
    codes = np.full(values.shape, len(edges), dtype=np.int64)
    known = np.isfinite(values)
    codes[known] = np.clip(
        np.searchsorted(np.asarray(edges), values[known], side="right") - 1, 0, len(edges) - 1
    )
    return codes


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


# --------------------------------------------------------------------------- build


def build(study, *, n_boot: int = 1000, seed: int | None = None, confidence: float = 0.95) -> StudyReport:
    """Build the full report of ``study`` from its judgments (constant number of queries).

    ``seed`` (default: the study's own seed) makes the bootstrap intervals reproducible;
    ``n_boot`` replicates resample raters and images together.
    """
    rows = read_rows(study)
    return build_from_rows(study, rows, n_boot=n_boot, seed=seed, confidence=confidence)


def build_from_rows(
    study, rows: Rows, *, n_boot: int = 1000, seed: int | None = None, confidence: float = 0.95
) -> StudyReport:
    from turingtest.library.models import Condition, Image
    from turingtest.studies.models import Assignment, Invitation, RaterProfile

    warnings = _Warnings()
    seed = int(study.seed if seed is None else seed)

    # ---- lookups (constant number of queries)
    image_rows = list(
        Image.objects.filter(study_items__study=study, study_items__is_tutorial=False)
        .order_by("pk")
        .values_list("pk", "public_token", "kind", "condition_id", "fitzpatrick", "lesion_area_fraction")
    )
    conditions = {pk: (code, name) for pk, code, name in Condition.objects.values_list("pk", "code", "name")}
    n_choices = study.conditions.count() or len(conditions) or 1
    assignments = Assignment.objects.filter(study=study).aggregate(
        n=Count("pk"),
        started=Count("pk", filter=Q(started_at__isnull=False)),
        finished=Count("pk", filter=Q(finished_at__isnull=False)),
    )
    invitations = Invitation.objects.filter(study=study).aggregate(
        n=Count("pk"), used=Count("pk", filter=Q(used_at__isnull=False))
    )
    rater_ids_all = stats.factorize(rows.rater.astype(np.int64))[0] if rows.n else np.empty(0, np.int64)
    profiles = {
        user_id: (pseudonym, role, years)
        for user_id, pseudonym, role, years in RaterProfile.objects.filter(
            user__assignments__study=study
        ).values_list("user_id", "pseudonym", "role", "years_experience")
    }

    # ---- image attributes as arrays indexed by image position
    img_ids = np.array([r[0] for r in image_rows], dtype=np.int64)
    img_token = [r[1] for r in image_rows]
    img_syn = np.array([r[2] == "synthetic" for r in image_rows], dtype=bool)
    img_cond = np.array([r[3] for r in image_rows], dtype=np.int64)
    img_fitz = np.array([np.nan if r[4] is None else r[4] for r in image_rows], dtype=np.float64)
    img_lesion = np.array([np.nan if r[5] is None else r[5] for r in image_rows], dtype=np.float64)

    # Judgments on images no longer in the pool (should not happen) are dropped loudly.
    pos = np.searchsorted(img_ids, rows.image.astype(np.int64)) if img_ids.size else np.zeros(rows.n, int)
    known = (pos < img_ids.size) & (img_ids[np.minimum(pos, max(img_ids.size - 1, 0))] == rows.image)
    if img_ids.size == 0:
        known = np.zeros(rows.n, dtype=bool)
    if not known.all():
        warnings.add(
            f"{int((~known).sum())} judgments refer to images outside the study pool and were ignored"
        )

    is_repeat = ~np.isnan(rows.repeat_of)
    first = known & ~is_repeat
    f_img = pos[first]
    f_rater_id = rows.rater[first].astype(np.int64)
    f_truth = img_syn[f_img]
    f_says = rows.says_synthetic[first] == 1.0
    f_conf = rows.confidence[first]
    # Confidence-signed rating: +c for "synthetic", −c for "real"; a missing confidence
    # counts as the least confident answer (1), so studies without it get the binary ROC.
    f_signed = np.where(f_says, 1.0, -1.0) * np.where(np.isnan(f_conf), 1.0, f_conf)
    f_diag = rows.diagnosis[first]
    f_rt = rows.response_ms[first]
    f_correct = f_says == f_truth

    rater_ids, f_rater = (
        stats.factorize(f_rater_id) if f_rater_id.size else (np.empty(0, np.int64), f_rater_id)
    )
    n_raters = int(rater_ids.size)

    def profile(user_id: int) -> tuple[str, str, int]:
        return profiles.get(int(user_id), (f"rater{int(user_id)}", "other", 0))

    pseudonyms = [profile(u)[0] for u in rater_ids]

    if rows.n == 0:
        warnings.add("the study has no judgments yet")
    if n_raters == 1:
        warnings.add("only one rater: agreement statistics need at least two")

    # ---- detection
    pooled = _detection(f_says, f_truth, f_signed, "pooled", warnings, confidence)
    per_rater: list[RaterDetection] = []
    order = _group_order(f_rater)
    bounds = np.searchsorted(f_rater[order], np.arange(n_raters + 1))
    rater_warnings = _Warnings()  # per-rater gaps are summarized, not listed 200 times
    for r in range(n_raters):
        sel = order[bounds[r] : bounds[r + 1]]
        pseud, role, years = profile(rater_ids[r])
        det = _detection(
            f_says[sel], f_truth[sel], f_signed[sel], f"rater {pseud}", rater_warnings, confidence
        )
        per_rater.append(RaterDetection(pseud, role, int(years), det))
    per_rater.sort(key=lambda p: p.rater)
    if rater_warnings:
        warnings.add(f"{len(rater_warnings)} per-rater statistics are undefined (see the per-rater table)")

    hype = _hype(f_rater, f_img, f_says, f_truth, n_boot=n_boot, seed=seed, confidence=confidence, w=warnings)

    # ---- agreement
    agreement = _agreement(
        f_rater, f_img, f_says, f_diag, pseudonyms, lambda u: profile(u)[0], rows, is_repeat, known, warnings
    )

    # ---- diagnosis
    diagnosis = _diagnosis(
        f_img, f_diag, img_syn, img_cond, conditions, rows, first, n_choices, warnings, confidence
    )

    # ---- images
    images = _images(
        f_img, f_says, f_truth, f_diag, image_rows, img_token, img_syn, img_cond, conditions, warnings
    )

    # ---- breakdowns
    def groups(codes: np.ndarray, labels: list[str], name: str) -> tuple[GroupDetection, ...]:
        """Detection per group; ``codes`` index ``labels`` (one sort, then slices)."""
        order = _group_order(codes)
        bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
        out = []
        for k, label in enumerate(labels):
            sel = order[bounds[k] : bounds[k + 1]]
            if sel.size:
                det = _detection(
                    f_says[sel], f_truth[sel], f_signed[sel], f"{name} {label}", rater_warnings, confidence
                )
                out.append(GroupDetection(label, det))
        return tuple(out)

    # Group codes are computed per image or per rater, then gathered per judgment.
    cond_order = sorted({conditions.get(int(c), (str(c), ""))[0] for c in img_cond.tolist()})
    img_cond_code = np.array(
        [cond_order.index(conditions.get(int(c), (str(c), ""))[0]) for c in img_cond.tolist()], dtype=np.int64
    )
    img_fitz_code = np.where(np.isfinite(img_fitz), np.nan_to_num(img_fitz, nan=7.0) - 1, 6).astype(np.int64)
    img_lesion_code = _bin_codes(img_lesion, LESION_EDGES)
    rater_role = [profile(u)[1] for u in rater_ids]
    role_order = [*RaterProfile.Role.values, *sorted(set(rater_role) - set(RaterProfile.Role.values))]
    rater_role_code = np.array([role_order.index(r) for r in rater_role], dtype=np.int64)
    rater_exp_code = _bin_codes(
        np.array([profile(u)[2] for u in rater_ids], dtype=np.float64), EXPERIENCE_EDGES
    )
    breakdowns = Breakdowns(
        condition=groups(img_cond_code[f_img], cond_order, "condition"),
        fitzpatrick=groups(img_fitz_code[f_img], [*FITZPATRICK_LABELS, "unknown"], "skin type"),
        lesion_size=groups(img_lesion_code[f_img], [*LESION_LABELS, "unknown"], "lesion size"),
        role=groups(rater_role_code[f_rater], role_order, "role"),
        experience=groups(rater_exp_code[f_rater], [*EXPERIENCE_LABELS, "unknown"], "experience"),
    )

    # ---- response times
    response_times = _response_times(f_rt, f_truth, f_correct)

    progress = Progress(
        n_invited=int(invitations["n"]),
        n_invitations_used=int(invitations["used"]),
        n_assignments=int(assignments["n"]),
        n_started=int(assignments["started"]),
        n_finished=int(assignments["finished"]),
        n_raters_with_judgments=int(rater_ids_all.size),
        n_images=int(img_ids.size),
        n_real_images=int((~img_syn).sum()),
        n_synthetic_images=int(img_syn.sum()),
    )
    return StudyReport(
        schema_version=SCHEMA_VERSION,
        study=StudyInfo(
            id=int(study.pk),
            title=study.title,
            status=study.status,
            config_sha256=study.config_sha256,
            generated_at=timezone.now().astimezone(dt.UTC).isoformat(),
        ),
        meta=Meta(
            confidence=confidence,
            n_boot=int(n_boot),
            seed=seed,
            chance=CHANCE,
            n_judgments_total=rows.n,
            n_first_showings=int(first.sum()),
            n_repeats=int((is_repeat & known).sum()),
        ),
        progress=progress,
        detection=DetectionSection(pooled=pooled, hype=hype, per_rater=tuple(per_rater)),
        agreement=agreement,
        diagnosis=diagnosis,
        images=images,
        breakdowns=breakdowns,
        response_times=response_times,
        warnings=tuple(warnings),
    )


def _hype(
    rater: np.ndarray,
    image: np.ndarray,
    says: np.ndarray,
    truth: np.ndarray,
    *,
    n_boot: int,
    seed: int,
    confidence: float,
    w: _Warnings,
) -> Hype:
    """HYPE∞ error rates with CIs that resample raters and images together.

    One stratified two-way bootstrap: raters across the study, images within their kind,
    so each replicate keeps the design's balance of real and synthetic images and the
    three rates come from the same replicates.
    """
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


def _agreement_stats(
    rater: np.ndarray, image: np.ndarray, values: np.ndarray, n_categories: int, label: str, w: _Warnings
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
        value = _attempt(f"{label} Fleiss' κ", w, stats.fleiss_kappa, table)
        fleiss = None if value is None else _clean(value, f"{label} Fleiss' κ", w)
        if fleiss_n < n_img:
            w.add(
                f"{label} Fleiss' κ uses the {fleiss_n} of {n_img} images rated {m} times "
                "(Krippendorff's α uses all)"
            )
    else:
        w.add(f"{label} Fleiss' κ: no image was rated twice")
    alpha = _attempt(f"{label} Krippendorff's α", w, stats.krippendorff_alpha_counts, counts, "nominal")
    alpha = None if alpha is None else _clean(alpha, f"{label} Krippendorff's α", w)
    return Agreement(n_img, n_r, fleiss, fleiss_n, m, alpha)


def _agreement(
    f_rater: np.ndarray,
    f_img: np.ndarray,
    f_says: np.ndarray,
    f_diag: np.ndarray,
    pseudonyms: list[str],
    name_of: Callable[[int], str],
    rows: Rows,
    is_repeat: np.ndarray,
    known: np.ndarray,
    w: _Warnings,
) -> AgreementSection:
    detection = _agreement_stats(f_rater, f_img, f_says.astype(np.int64), 2, "detection", w)
    answered = ~np.isnan(f_diag)
    diag_codes, diag_idx = stats.factorize(f_diag[answered].astype(np.int64))
    diagnosis = _agreement_stats(
        f_rater[answered],
        f_img[answered],
        diag_idx.astype(np.int64),
        max(int(diag_codes.size), 1),
        "diagnosis",
        w,
    )

    n_raters = len(pseudonyms)
    if n_raters >= 2:
        n_img = int(f_img.max()) + 1 if f_img.size else 0
        matrix = np.full((n_raters, n_img), np.nan)
        matrix[f_rater, f_img] = f_says
        kappa, n_common = stats.pairwise_cohens_kappa(matrix)
        np.fill_diagonal(kappa, np.where(np.diag(n_common) > 0, 1.0, np.nan))
    else:
        kappa = np.full((n_raters, n_raters), np.nan)
        n_common = np.zeros((n_raters, n_raters), dtype=np.int64)
    pairwise = PairwiseKappa(
        raters=tuple(pseudonyms),
        kappa=tuple(tuple(None if not math.isfinite(v) else float(v) for v in row) for row in kappa),
        n_common=tuple(tuple(int(v) for v in row) for row in n_common),
        summary=_kappa_summary(kappa),
    )
    return AgreementSection(detection, diagnosis, pairwise, _test_retest(rows, is_repeat, known, name_of, w))


def _test_retest(
    rows: Rows, is_repeat: np.ndarray, known: np.ndarray, name_of: Callable[[int], str], w: _Warnings
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

    def retest(sel: np.ndarray, label: str, warn: _Warnings) -> tuple[int, Any, Any, Any]:
        n = int(sel.sum())
        agree = _prop(int((a[sel] == b[sel]).sum()), n, f"{label} test–retest agreement", warn)
        kappa = None
        if n:
            kappa = _clean(stats.cohens_kappa(a[sel], b[sel]), f"{label} test–retest κ", warn)
        both = sel & ~np.isnan(da) & ~np.isnan(db)
        diag = None
        if both.any():
            diag = _prop(
                int((da[both] == db[both]).sum()), int(both.sum()), f"{label} diagnosis retest", warn
            )
        return n, agree, kappa, diag

    everything = np.ones(rep.size, dtype=bool)
    pooled = Retest(*retest(everything, "pooled", w)) if rep.size else Retest(0, None, None, None)
    if not rep.size:
        w.add("test–retest: no repeated presentations were answered")
    quiet = _Warnings()  # per-rater gaps show as None in the table
    per_rater = [
        RaterRetest(name_of(int(rid)), *retest(rater_of == rid, f"rater {rid}", quiet))
        for rid in np.unique(rater_of)
    ]
    per_rater.sort(key=lambda r: r.rater)
    return TestRetest(pooled, tuple(per_rater))


def _diagnosis(
    f_img: np.ndarray,
    f_diag: np.ndarray,
    img_syn: np.ndarray,
    img_cond: np.ndarray,
    conditions: dict[int, tuple[str, str]],
    rows: Rows,
    first: np.ndarray,
    n_choices: int,
    w: _Warnings,
    confidence: float,
) -> DiagnosisSection:
    """Everything here follows from two confusion matrices and one image × answer table."""
    answered = ~np.isnan(f_diag)
    p0 = 1.0 / n_choices
    # Condition ids → positions in the sorted code list, through a small lookup array.
    ids, _ = stats.factorize(np.concatenate([img_cond, f_diag[answered].astype(np.int64)]))
    label_of = {int(pk): conditions.get(int(pk), (str(pk), ""))[0] for pk in ids}
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
            return _prop(int(hits), int(n), f"{label} {kind} diagnosis accuracy", w, p0=p0)

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
    quiet = _Warnings()
    name_of = {v[0]: v[1] for v in conditions.values()}
    for j in sorted(set(img_true.tolist()), key=lambda j: codes[j]):
        code = codes[j]
        kd = by_kind(j, f"condition {code}")
        per_condition.append(
            ConditionDiagnosis(code, name_of.get(code, ""), kd.real, kd.synthetic, kd.comparison)
        )
        syn_row = confusion[True][j]
        rate = _prop(int(syn_row[j]), int(syn_row.sum()), f"embodiment {code}", quiet, p0=p0)
        embodiment.append(
            Embodiment(code, int(n_syn_images[j]), int(syn_row.sum()), rate, int(n_majority[j]))
        )
    return DiagnosisSection(
        n_answered=int(answered.sum()),
        n_unanswered=int((~answered).sum()),
        n_unsure=int((rows.diagnosis_unsure[first] == 1.0).sum()),
        n_choices=int(n_choices),
        overall=overall,
        per_condition=tuple(per_condition),
        confusion=Confusion(
            tuple(codes),
            tuple(tuple(int(v) for v in r) for r in confusion[False]),
            tuple(tuple(int(v) for v in r) for r in confusion[True]),
        ),
        embodiment=tuple(embodiment),
    )


def _images(
    f_img: np.ndarray,
    f_says: np.ndarray,
    f_truth: np.ndarray,
    f_diag: np.ndarray,
    image_rows: list[tuple],
    img_token: list[str],
    img_syn: np.ndarray,
    img_cond: np.ndarray,
    conditions: dict[int, tuple[str, str]],
    w: _Warnings,
) -> ImagesSection:
    n_img = len(image_rows)
    n = np.bincount(f_img, minlength=n_img)
    n_syn_calls = np.bincount(f_img, weights=f_says.astype(float), minlength=n_img)
    answered = ~np.isnan(f_diag)
    diag_n = np.bincount(f_img[answered], minlength=n_img)
    diag_ok = np.bincount(
        f_img[answered], weights=(f_diag[answered] == img_cond[f_img[answered]]), minlength=n_img
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        syn_rate = np.where(n > 0, n_syn_calls / n, np.nan)
        diag_acc = np.where(diag_n > 0, diag_ok / diag_n, np.nan)
    correct_rate = np.where(img_syn, syn_rate, 1.0 - syn_rate)
    fooling = np.where(img_syn, 1.0 - syn_rate, np.nan)

    def f(v: float) -> float | None:
        return float(v) if math.isfinite(v) else None

    per_image = tuple(
        ImageRow(
            image_id=int(r[0]),
            token=r[1],
            kind=r[2],
            condition=conditions.get(int(r[3]), (str(r[3]), ""))[0],
            fitzpatrick=None if r[4] is None else int(r[4]),
            lesion_area_fraction=None if r[5] is None else float(r[5]),
            n=int(n[i]),
            n_says_synthetic=int(n_syn_calls[i]),
            says_synthetic_rate=f(syn_rate[i]),
            correct_rate=f(correct_rate[i]),
            fooling_rate=f(fooling[i]),
            diagnosis_accuracy=f(diag_acc[i]),
        )
        for i, r in enumerate(image_rows)
    )
    rated_syn = np.flatnonzero(img_syn & (n > 0))
    # Most convincing: highest fooling rate, then more judgments (firmer), then token.
    ranked = sorted(rated_syn.tolist(), key=lambda i: (-fooling[i], -n[i], img_token[i]))
    least = sorted(rated_syn.tolist(), key=lambda i: (fooling[i], -n[i], img_token[i]))
    if rated_syn.size == 0:
        w.add("no synthetic image has been rated yet: fooling rates are undefined")
    edges = np.linspace(0.0, 1.0, 11)
    counts, _ = np.histogram(fooling[rated_syn], bins=edges)
    return ImagesSection(
        per_image=per_image,
        most_convincing=tuple(img_token[i] for i in ranked[:N_CONVINCING]),
        least_convincing=tuple(img_token[i] for i in least[:N_CONVINCING]),
        fooling_rate_histogram=Histogram(tuple(float(e) for e in edges), tuple(int(c) for c in counts)),
    )


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


# --------------------------------------------------------------------------- renderers

FORMATS = ("json", "csv", "html")
CSV_COLUMNS = ("section", "subject", "statistic", "value")
_SUBJECT_KEYS = ("rater", "group", "token", "condition")


def render_json(report: StudyReport) -> str:
    """The ``to_dict()`` tree as JSON (strict: no NaN, UTF-8 kept readable)."""
    import json

    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def tidy_rows(report: StudyReport) -> list[tuple[str, str, str, Any]]:
    """The report as tidy ``(section, subject, statistic, value)`` rows.

    ``section`` is the dotted path to a table (``detection.per_rater``); ``subject`` names
    the row of that table (rater pseudonym, group, image token, condition code,
    ``kind/correct`` for response times, ``A|B`` for a rater pair or a
    ``true|answered`` confusion cell; empty for single values); ``statistic`` is the
    dotted path inside the row (``detection.accuracy.ci_low``). Values are numbers,
    strings or empty (None).
    """
    data = report.to_dict()
    out: list[tuple[str, str, str, Any]] = []

    def flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
        if isinstance(value, dict):
            items: list[tuple[str, Any]] = []
            for k, v in value.items():
                items += flat(f"{prefix}.{k}" if prefix else k, v)
            return items
        if isinstance(value, list):
            items = []
            for k, v in enumerate(value):
                items += flat(f"{prefix}.{k}" if prefix else str(k), v)
            return items
        return [(prefix, value)]

    def table(section: str, rows: list[dict], subject_of: Callable[[dict], str]) -> None:
        for row in rows:
            subject = subject_of(row)
            for stat, value in flat("", row):
                out.append((section, subject, stat, value))

    def subject(row: dict) -> str:
        return next((str(row[k]) for k in _SUBJECT_KEYS if k in row), "")

    pairwise = data["agreement"].pop("pairwise_kappa")
    confusion = data["diagnosis"].pop("confusion")
    list_tables = {
        "detection.per_rater": data["detection"].pop("per_rater"),
        "agreement.test_retest.per_rater": data["agreement"]["test_retest"].pop("per_rater"),
        "diagnosis.per_condition": data["diagnosis"].pop("per_condition"),
        "diagnosis.embodiment": data["diagnosis"].pop("embodiment"),
        "images.per_image": data["images"].pop("per_image"),
    }
    for name, rows in data.pop("breakdowns").items():
        list_tables[f"breakdowns.{name}"] = rows
    rt_groups = data["response_times"].pop("groups")
    warnings = data.pop("warnings")

    for stat, value in flat("", data):
        section, _, rest = stat.partition(".")
        out.append((section, "", rest, value))
    for section, rows in list_tables.items():
        table(section, rows, subject)
    table(
        "response_times.groups",
        rt_groups,
        lambda g: (
            f"{g['kind']}/{'any' if g['correct'] is None else ('correct' if g['correct'] else 'wrong')}"
        ),
    )
    raters = pairwise["raters"]
    for i, a in enumerate(raters):
        for j, b in enumerate(raters):
            if i < j:
                out.append(("agreement.pairwise_kappa", f"{a}|{b}", "kappa", pairwise["kappa"][i][j]))
                out.append(("agreement.pairwise_kappa", f"{a}|{b}", "n_common", pairwise["n_common"][i][j]))
    for stat, value in flat("", pairwise["summary"]):
        out.append(("agreement.pairwise_kappa", "", f"summary.{stat}", value))
    labels = confusion["labels"]
    for kind in ("real", "synthetic"):
        for i, t in enumerate(labels):
            for j, a in enumerate(labels):
                out.append((f"diagnosis.confusion.{kind}", f"{t}|{a}", "count", confusion[kind][i][j]))
    for k, message in enumerate(warnings):
        out.append(("warnings", str(k), "message", message))
    return out


def render_csv(report: StudyReport) -> str:
    """Tidy CSV with the columns ``section,subject,statistic,value`` (see :func:`tidy_rows`)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for section, subject, stat, value in tidy_rows(report):
        writer.writerow((section, subject, stat, "" if value is None else value))
    return buf.getvalue()


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value + 0.0:.{digits}f}".replace("-0.000", "0.000")
    return str(value)


def _fmt_p(value: float | None) -> str:
    """p-values keep their order of magnitude: 1M judgments give p far below 0.001."""
    if value is None:
        return "–"
    if value < 0.001:
        return "<1e-300" if value < 1e-300 else f"{value:.1e}"
    return f"{value:.3f}"


def _prop_cell(p: dict | None) -> str:
    if p is None:
        return "–"
    return f"{p['proportion']:.3f} [{p['ci_low']:.3f}, {p['ci_high']:.3f}] ({p['successes']}/{p['n']})"


def render_html(report: StudyReport) -> str:
    """A self-contained HTML document of the report's tables (no scripts, no external files)."""
    from html import escape

    d = report.to_dict()
    parts: list[str] = []

    def h(level: int, text: str) -> None:
        parts.append(f"<h{level}>{escape(text)}</h{level}>")

    def tbl(headers: list[str], rows: list[list[Any]]) -> None:
        parts.append(
            "<table><thead><tr>" + "".join(f"<th>{escape(x)}</th>" for x in headers) + "</tr></thead>"
        )
        parts.append("<tbody>")
        for row in rows:
            parts.append(
                "<tr>"
                + "".join(f"<td>{escape(_fmt(c) if not isinstance(c, str) else c)}</td>" for c in row)
                + "</tr>"
            )
        parts.append("</tbody></table>")

    def det_row(label: str, det: dict) -> list[Any]:
        auc = det["auc"]
        acc = det["accuracy"]
        return [
            label,
            det["n"],
            _prop_cell(acc),
            _fmt_p(None if acc is None else acc["p_value"]),
            _prop_cell(det["sensitivity"]),
            _prop_cell(det["specificity"]),
            det["d_prime"],
            det["criterion_c"],
            "–" if auc is None else f"{_fmt(auc['auc'])} [{_fmt(auc['ci_low'])}, {_fmt(auc['ci_high'])}]",
        ]

    det_headers = [
        "",
        "n",
        "accuracy [95% CI]",
        "p vs 50%",
        "sensitivity",
        "specificity",
        "d′",
        "c",
        "AUC [CI]",
    ]
    study = d["study"]
    h(1, f"Study report: {study['title']}")
    parts.append(
        f"<p>Study {study['id']} ({escape(study['status'])}), design hash "
        f"<code>{escape(study['config_sha256'] or '–')}</code>, generated {escape(study['generated_at'])}. "
        f"{d['meta']['n_first_showings']} first-showing judgments, {d['meta']['n_repeats']} repeats; "
        f"bootstrap {d['meta']['n_boot']} replicates, seed {d['meta']['seed']}.</p>"
    )
    if d["warnings"]:
        h(2, "Warnings")
        parts.append("<ul>" + "".join(f"<li>{escape(w)}</li>" for w in d["warnings"]) + "</ul>")
    h(2, "Progress")
    tbl(list(d["progress"]), [list(d["progress"].values())])
    h(2, "Detection: can raters tell synthetic from real?")
    tbl(det_headers, [det_row("pooled", d["detection"]["pooled"])])
    hype = d["detection"]["hype"]
    tbl(
        ["HYPE∞ error rate (0.5 = indistinguishable)", "estimate", "95% CI (raters × images bootstrap)"],
        [
            [name, b["estimate"], f"[{_fmt(b['ci_low'])}, {_fmt(b['ci_high'])}]"]
            for name, b in (("all images", hype["error_rate"]), ("real images", hype["real_error_rate"]),
                            ("synthetic images", hype["synthetic_error_rate"]))
            if b is not None
        ],
    )  # fmt: skip
    h(3, "Per rater")
    tbl(
        ["rater", "role", "years", *det_headers[1:]],
        [
            [r["rater"], r["role"], r["years_experience"], *det_row("", r["detection"])[1:]]
            for r in d["detection"]["per_rater"]
        ],
    )
    h(2, "Agreement")
    ag = d["agreement"]
    tbl(
        ["answer", "images", "raters", "Fleiss' κ", "images used (ratings each)", "Krippendorff's α"],
        [
            [name, a["n_images"], a["n_raters"], a["fleiss_kappa"],
             f"{a['fleiss_n_images']} ({_fmt(a['fleiss_raters_per_image'])})", a["krippendorff_alpha"]]
            for name, a in (("real/synthetic", ag["detection"]), ("diagnosis", ag["diagnosis"]))
        ],
    )  # fmt: skip
    s = ag["pairwise_kappa"]["summary"]
    parts.append(
        f"<p>Pairwise Cohen's κ over {s['n_pairs']} rater pairs: mean {_fmt(s['mean'])}, median "
        f"{_fmt(s['median'])}, range {_fmt(s['min'])} to {_fmt(s['max'])}.</p>"
    )
    tr = ag["test_retest"]
    tbl(
        ["test–retest", "pairs", "agreement [CI]", "κ", "diagnosis agreement"],
        [["pooled", tr["pooled"]["n_pairs"], _prop_cell(tr["pooled"]["agreement"]), tr["pooled"]["kappa"],
          _prop_cell(tr["pooled"]["diagnosis_agreement"])]]
        + [[r["rater"], r["n_pairs"], _prop_cell(r["agreement"]), r["kappa"], _prop_cell(r["diagnosis_agreement"])]
           for r in tr["per_rater"]],
    )  # fmt: skip
    h(2, "Diagnosis: do synthetic images carry their condition?")
    dx = d["diagnosis"]
    parts.append(
        f"<p>{dx['n_answered']} diagnoses answered, {dx['n_unanswered']} unanswered, {dx['n_unsure']} marked "
        f"unsure; {dx['n_choices']} choices (chance {_fmt(1 / dx['n_choices'])}).</p>"
    )

    def cmp_cells(c: dict | None) -> list[Any]:
        if c is None:
            return ["–", "–", "–"]
        return [
            f"{_fmt(c['difference'])} [{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]",
            _fmt_p(c["fisher_p"]),
            _fmt_p(c["chi2_p"]),
        ]

    tbl(
        ["condition", "real accuracy", "synthetic accuracy", "real − synthetic [CI]", "Fisher p", "χ² p"],
        [["all", _prop_cell(dx["overall"]["real"]), _prop_cell(dx["overall"]["synthetic"]), *cmp_cells(dx["overall"]["comparison"])]]
        + [[c["condition"], _prop_cell(c["real"]), _prop_cell(c["synthetic"]), *cmp_cells(c["comparison"])]
           for c in dx["per_condition"]],
    )  # fmt: skip
    tbl(
        [
            "condition",
            "synthetic images",
            "answers",
            "named the intended condition",
            "images with it as modal answer",
        ],
        [
            [e["condition"], e["n_images"], e["n_answered"], _prop_cell(e["rate"]), e["n_images_majority"]]
            for e in dx["embodiment"]
        ],
    )
    labels = dx["confusion"]["labels"]
    for kind in ("real", "synthetic"):
        h(3, f"Confusion matrix, {kind} images (rows: true, columns: answered)")
        tbl(["true \\ answered", *labels], [[t, *row] for t, row in zip(labels, dx["confusion"][kind])])
    h(2, "Images")
    im = d["images"]
    syn_rows = sorted(
        (r for r in im["per_image"] if r["fooling_rate"] is not None), key=lambda r: -r["fooling_rate"]
    )
    tbl(
        ["most convincing synthetic images", "condition", "raters", "fooling rate"],
        [[r["token"], r["condition"], r["n"], r["fooling_rate"]] for r in syn_rows[:N_CONVINCING]],
    )
    tbl(
        ["least convincing synthetic images", "condition", "raters", "fooling rate"],
        [[r["token"], r["condition"], r["n"], r["fooling_rate"]] for r in syn_rows[::-1][:N_CONVINCING]],
    )
    hist = im["fooling_rate_histogram"]
    tbl(
        ["fooling rate bin", "synthetic images"],
        [[f"{hist['edges'][k]:.1f}–{hist['edges'][k + 1]:.1f}", c] for k, c in enumerate(hist["counts"])],
    )
    h(2, "Detection by group")
    for name, rows in d["breakdowns"].items():
        h(3, name.replace("_", " "))
        tbl(
            [name, *det_headers[1:]],
            [det_row(g["group"], g["detection"]) for g in rows],
        )
    h(2, "Response times (ms)")
    rt = d["response_times"]
    tbl(
        ["images", "answers", "n", "missing", "mean", *[f"q{int(q * 100)}" for q in rt["quantiles"]]],
        [[g["kind"], "all" if g["correct"] is None else ("correct" if g["correct"] else "wrong"), g["n"],
          g["n_missing"], g["mean_ms"], *(g["q_ms"] or [None] * len(rt["quantiles"]))] for g in rt["groups"]],
    )  # fmt: skip
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "th,td{border:1px solid #bbb;padding:.2em .5em;text-align:left;font-variant-numeric:tabular-nums}"
        "th{background:#f0f0f0}code{font-size:.85em}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(study['title'])}: study report</title><style>{style}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def render(report: StudyReport, fmt: str) -> str:
    """``render(report, "json" | "csv" | "html")``."""
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "html":
        return render_html(report)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
