"""The report tree: frozen dataclasses, their constants and the ``to_dict()`` JSON schema.

Every section of ``StudyReport`` is a frozen dataclass; ``to_dict()`` passes the tree
through ``turingtest.jsonsafe.json_safe``. The API, the dashboard, ``study_report`` and the
study package read this JSON: keep it stable and bump ``SCHEMA_VERSION`` when a field changes.

to_dict() schema (``schema_version`` 2)
---------------------------------------
Version 2 (issue 11) added ``headline`` (the first key: reader-study estimates whose
intervals treat raters and images as random samples) and, per breakdown group,
``inference`` and ``balanced_accuracy``; ``detection.pooled`` and the Wilson/binomial/
DeLong figures elsewhere are unchanged but are now documented and shown as
judgment-level (they assume independent judgments and are too narrow for a
reader study; quote the headline instead). Nothing was removed or renamed.

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

    Crossed = {"estimate": float, "se": float, "df": float | None,   # None: infinite df
               "ci_low": float, "ci_high": float,
               "p_value": float | None,          # two-sided against 0.5
               "n_raters": int, "n_images": int, # the raters and images it rests on
               "components": {"rater": float, "image": float, "residual": float}}
               # per-unit variance components σ²_R, σ²_I, σ²_E: a fully crossed study of
               # R raters × I images has variance σ²_R/R + σ²_I/I + σ²_E/(R·I)
               # (turingtest.stats.planning turns them into a planned half-width)
    Rate = {"estimate": float, "ci_low": float, "ci_high": float}   # 1 − a Crossed

    {
      "headline": {                     # stats.headline_estimates on first showings
        "sentence": str,                # one plain-language sentence, true to the CI
        "verdict": "above_chance" | "not_distinguishable" | "below_chance" | "not_estimable",
        "confidence": 0.95,
        "balanced_accuracy": Crossed | None,   # (sensitivity + specificity)/2, reader-averaged
        "sensitivity": Crossed | None,         # synthetic called synthetic = 1 − fooling rate
        "specificity": Crossed | None,         # real called real
        "auc": Crossed | None,                 # reader-averaged AUC of confidence-signed ratings
        "hype": {"error_rate": Rate | None,            # 1 − balanced accuracy
                 "real_error_rate": Rate | None,       # 1 − specificity
                 "synthetic_error_rate": Rate | None}, # 1 − sensitivity (fooling rate)
        "d_prime": float | None, "criterion_c": float | None,  # from the pooled rates
        "n_raters": int,                # raters in the estimates
        "n_raters_judged": int,         # raters with first-showing judgments
        "n_raters_left_out": int,       # judged < 2 real or < 2 synthetic images
        "n_images": int, "n_real_images": int, "n_synthetic_images": int,  # judged
        "equal_kinds": bool,            # the pool has as many real as synthetic images
        "method": str,                  # the interval method, for a methods section
        "notes": [str],                 # caveats (few raters/images, unequal ratio, …)
      },
      "schema_version": 2,
      "study": {"id": int, "title": str, "status": str, "config_sha256": str,
                "generated_at": str (ISO 8601)},
      "meta": {"confidence": 0.95, "n_boot": int, "seed": int, "chance": 0.5,
               "n_judgments_total": int, "n_first_showings": int, "n_repeats": int},
      "progress": {"n_invited": int, "n_invitations_used": int, "n_assignments": int,
                   "n_started": int, "n_finished": int, "n_raters_with_judgments": int,
                   "n_images": int, "n_real_images": int, "n_synthetic_images": int},
      "detection": {                    # judgment-level: assumes independent judgments
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
        # every group: {"group": str, "inference": "crossed" | "rough" | "descriptive",
        #   "balanced_accuracy": Crossed | None, "detection": Detection}; crossed when the
        #   group has >= 2 raters who judged >= 2 images of each kind ("rough": fewer than
        #   5 raters or 10 images of a kind), else descriptive (judgment-level figures only)
        "condition": [{"group": code, "detection": Detection}],
        "fitzpatrick": [{"group": "I".."VI" | "no label", "detection": Detection}],  # labels only
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
      # Rater quality control (issue 13; additions only, so the version stays 2). Raters the
      # researcher excluded and raters below the tutorial qualification threshold are left out
      # of every section above; attention-check (catch image) judgments never enter them.
      "headline_all_raters": Headline | None,   # the headline with every rater kept; None
                  # unless a rater is excluded or leaving raters out drops judgments (it would repeat it)
      "rater_quality": {
        "n_excluded": int, "n_unqualified": int,  # raters left out of the statistics
        "qualification_min_correct": int | None,  # correct tutorial answers needed; None: not asked
        "excluded": [{"rater": pseudonym, "reason": str}],          # sorted by pseudonym
        "attention_checks": [{"rater": pseudonym, "n_passed": int, "n_failed": int}],
      },
    }
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from turingtest import stats
from turingtest.jsonsafe import json_safe

SCHEMA_VERSION = 2
CHANCE = 0.5
RT_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
N_CONVINCING = 10
LESION_EDGES = (0.0, 0.05, 0.15, 0.35)
LESION_LABELS = ("0–5%", "5–15%", "15–35%", "35–100%")
EXPERIENCE_EDGES = (0, 5, 10, 20)
EXPERIENCE_LABELS = ("0–4 y", "5–9 y", "10–19 y", "20+ y")
FITZPATRICK_LABELS = ("I", "II", "III", "IV", "V", "VI")


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
class Crossed:
    """A ``stats.CrossedEstimate`` as the report shows it (p-value against 0.5)."""

    estimate: float
    se: float
    df: float | None
    ci_low: float
    ci_high: float
    p_value: float | None
    n_raters: int
    n_images: int
    components: stats.VarianceComponents


@dataclass(frozen=True)
class Rate:
    """An error rate: 1 − a crossed estimate, with the interval flipped."""

    estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class HeadlineHype:
    error_rate: Rate | None  # 1 − balanced accuracy (0.5 = indistinguishable)
    real_error_rate: Rate | None  # 1 − specificity: real images called synthetic
    synthetic_error_rate: Rate | None  # 1 − sensitivity: the fooling rate


@dataclass(frozen=True)
class Headline:
    sentence: str
    verdict: str
    confidence: float
    balanced_accuracy: Crossed | None
    sensitivity: Crossed | None
    specificity: Crossed | None
    auc: Crossed | None
    hype: HeadlineHype
    d_prime: float | None
    criterion_c: float | None
    n_raters: int
    n_raters_judged: int
    n_raters_left_out: int
    n_images: int
    n_real_images: int
    n_synthetic_images: int
    equal_kinds: bool
    method: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class GroupDetection:
    group: str
    inference: str  # "crossed" | "rough" | "descriptive"
    balanced_accuracy: Crossed | None
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
class ExcludedRater:
    rater: str
    reason: str


@dataclass(frozen=True)
class AttentionScore:
    rater: str
    n_passed: int
    n_failed: int


@dataclass(frozen=True)
class RaterQuality:
    n_excluded: int = 0
    n_unqualified: int = 0
    qualification_min_correct: int | None = None
    excluded: tuple[ExcludedRater, ...] = ()
    attention_checks: tuple[AttentionScore, ...] = ()


@dataclass(frozen=True)
class StudyReport:
    headline: Headline
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
    headline_all_raters: Headline | None = None
    rater_quality: RaterQuality = RaterQuality()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict (see the module docstring); NaN and ±inf become None."""
        return json_safe(self)
