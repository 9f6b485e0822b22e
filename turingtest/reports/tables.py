"""The report as tables: one model for the HTML report and the results dashboard.

``report_tables(report.to_dict())`` returns titled sections of ``Table``s whose cells keep
their raw values (numbers, strings, ``None``, a ``Prop`` dict) or a small wrapper that
says how to print them (``PValue``, ``Estimate``, ``Interval``). ``cell_text`` is the one
formatter: three decimals, an en dash for a missing value, p-values that keep their order
of magnitude, a proportion as ``0.625 [0.470, 0.760] (15/24)``. ``render.render_html``
prints these tables as a page; ``turingtest.research.tables`` hands them to the dashboard
template. The tidy CSV (``render.tidy_rows``) is not a view of these tables: it lists
every statistic of ``to_dict()`` at full precision, which the display tables merge or
leave out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from turingtest.reports.schema import N_CONVINCING

MISSING = "–"


@dataclass(frozen=True)
class PValue:
    """A p-value cell: below 0.001 it keeps its order of magnitude (1M judgments)."""

    value: float | None


@dataclass(frozen=True)
class Estimate:
    """An estimate with its interval: ``0.806 [0.640, 0.972]``."""

    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Interval:
    """An interval alone: ``[0.200, 0.400]``."""

    low: float | None
    high: float | None


@dataclass(frozen=True)
class Table:
    """One table; ``heading`` puts the title above it in the HTML report, ``note`` a line."""

    key: str  # where the numbers live in to_dict(), e.g. "detection.per_rater"
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    heading: bool = False
    note: str = ""

    def text_rows(self, limit: int | None = None) -> list[list[str]]:
        return [[cell_text(c) for c in row] for row in self.rows[:limit]]


@dataclass(frozen=True)
class Section:
    title: str
    tables: tuple[Table, ...]


def _number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return MISSING
    return f"{value + 0.0:.{digits}f}".replace("-0.000", "0.000")


def _p_value(value: float | None) -> str:
    if value is None:
        return MISSING
    if value < 0.001:
        return "<1e-300" if value < 1e-300 else f"{value:.1e}"
    return f"{value:.3f}"


def cell_text(value: Any) -> str:
    """The one way a report value is printed in a table cell."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, PValue):
        return _p_value(value.value)
    if isinstance(value, Estimate):
        if value.value is None:
            return MISSING
        return f"{_number(value.value)} [{_number(value.low)}, {_number(value.high)}]"
    if isinstance(value, Interval):
        return f"[{_number(value.low)}, {_number(value.high)}]"
    if isinstance(value, dict) and "proportion" in value:  # a Prop of the schema
        return (
            f"{value['proportion']:.3f} [{value['ci_low']:.3f}, {value['ci_high']:.3f}] "
            f"({value['successes']}/{value['n']})"
        )
    return str(value)


DETECTION_HEADERS = (
    "n",
    "accuracy [95% CI]",
    "p vs 50%",
    "sensitivity",
    "specificity",
    "d′",
    "c",
    "AUC [CI]",
)


def _detection_cells(det: dict[str, Any]) -> tuple[Any, ...]:
    auc, acc = det["auc"], det["accuracy"]
    return (
        det["n"],
        acc,
        PValue(None if acc is None else acc["p_value"]),
        det["sensitivity"],
        det["specificity"],
        det["d_prime"],
        det["criterion_c"],
        None if auc is None else Estimate(auc["auc"], auc["ci_low"], auc["ci_high"]),
    )


def _comparison_cells(c: dict[str, Any] | None) -> tuple[Any, ...]:
    if c is None:
        return (None, None, None)
    return (Estimate(c["difference"], c["ci_low"], c["ci_high"]), PValue(c["fisher_p"]), PValue(c["chi2_p"]))


def _correct_label(correct: bool | None) -> str:
    return "all" if correct is None else ("correct" if correct else "wrong")


def _rows(rows: Sequence[Sequence[Any]]) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(r) for r in rows)


JUDGMENT_LEVEL = "Judgment-level, assumes independent judgments"
JUDGMENT_LEVEL_NOTE = (
    "These Wilson, exact binomial and DeLong figures count every judgment as independent; "
    "judgments that share a rater or an image are not, so these intervals are too narrow "
    "and their p-values too small for a reader study. Quote the headline instead."
)
CROSSED_HEADERS = ("estimate [95% CI]", "p vs 0.5", "df", "raters", "images")


def _crossed_cell(c: dict[str, Any] | None) -> Estimate | None:
    return None if c is None else Estimate(c["estimate"], c["ci_low"], c["ci_high"])


def _crossed_cells(c: dict[str, Any] | None) -> tuple[Any, ...]:
    if c is None:
        return (None,) * len(CROSSED_HEADERS)
    return (_crossed_cell(c), PValue(c["p_value"]), c["df"], c["n_raters"], c["n_images"])


def headline_rows(h: dict[str, Any]) -> tuple[tuple[Any, ...], ...]:
    """The four headline numbers: (label, *CROSSED_HEADERS cells); shared with the dashboard card."""
    return _rows(
        (label, *_crossed_cells(h[key]))
        for key, label in (
            ("balanced_accuracy", "balanced accuracy"),
            ("sensitivity", "sensitivity (1 − fooling rate)"),
            ("specificity", "specificity"),
            ("auc", "AUC (confidence ratings)"),
        )
    )


def component_rows(h: dict[str, Any]) -> tuple[tuple[Any, ...], ...]:
    """Variance components of each headline number: (label, rater, image, residual)."""
    return _rows(
        (label, c["components"]["rater"], c["components"]["image"], c["components"]["residual"])
        for key, label in (("balanced_accuracy", "balanced accuracy"), ("auc", "AUC"))
        if (c := h[key]) is not None
    )


def _headline_section(d: dict[str, Any]) -> Section:
    h = d["headline"]
    boot = d["detection"]["hype"]
    hype_rows = [
        (name, _crossed_cell(h["hype"][key]), None if b is None else Estimate(b["estimate"], b["ci_low"], b["ci_high"]))
        for name, key in (("all images (1 − balanced accuracy)", "error_rate"),
                          ("real images (1 − specificity)", "real_error_rate"),
                          ("synthetic images (1 − sensitivity: fooling rate)", "synthetic_error_rate"))
        for b in (boot[key],)
    ]  # fmt: skip
    notes = " ".join(f"Note: {n}." for n in h["notes"])
    return Section(
        "Headline: can raters tell synthetic from real?",
        (
            Table(
                "headline",
                "Reader-study estimates (raters and images as random samples)",
                ("", *CROSSED_HEADERS),
                headline_rows(h),
                note=(
                    f"{h['sentence']} {h['n_raters']} of {h['n_raters_judged']} raters "
                    f"({h['n_raters_left_out']} left out), {h['n_real_images']} real and "
                    f"{h['n_synthetic_images']} synthetic images; d′ {cell_text(h['d_prime'])} "
                    f"from the pooled rates. Method: {h['method']}. {notes}"
                ).strip(),
            ),
            Table(
                "headline.hype",
                "HYPE∞ error rates (0.5 = indistinguishable)",
                (
                    "HYPE∞ error rate",
                    "crossed estimate [95% CI]",
                    "judgment share [raters × images bootstrap CI]",
                ),
                _rows(hype_rows),
            ),
            Table(
                "headline.balanced_accuracy.components",
                "Variance components (per rater, per image, residual)",
                ("estimate", "σ²_rater", "σ²_image", "σ²_residual"),
                component_rows(h),
                note=(
                    "An R raters × I images study has variance σ²_rater/R + σ²_image/I + "
                    "σ²_residual/(R·I): more images cannot remove the rater term."
                ),
            ),
        ),
    )


def _detection_section(d: dict[str, Any]) -> Section:
    det = d["detection"]
    return Section(
        f"Detection: {JUDGMENT_LEVEL.lower()}",
        (
            Table(
                "detection.pooled",
                f"Pooled ({JUDGMENT_LEVEL.lower()})",
                ("", *DETECTION_HEADERS),
                (("pooled", *_detection_cells(det["pooled"])),),
                heading=True,
                note=JUDGMENT_LEVEL_NOTE,
            ),
            Table(
                "detection.per_rater",
                "Per rater",
                ("rater", "role", "years", *DETECTION_HEADERS),
                _rows(
                    (r["rater"], r["role"], r["years_experience"], *_detection_cells(r["detection"]))
                    for r in det["per_rater"]
                ),
                heading=True,
            ),
        ),
    )


def _agreement_section(d: dict[str, Any]) -> Section:
    ag = d["agreement"]
    s = ag["pairwise_kappa"]["summary"]
    tr = ag["test_retest"]
    return Section(
        "Agreement",
        (
            Table(
                "agreement",
                "Fleiss' κ and Krippendorff's α",
                ("answer", "images", "raters", "Fleiss' κ", "images used (ratings each)", "Krippendorff's α"),
                _rows(
                    (
                        name,
                        a["n_images"],
                        a["n_raters"],
                        a["fleiss_kappa"],
                        f"{a['fleiss_n_images']} ({cell_text(a['fleiss_raters_per_image'])})",
                        a["krippendorff_alpha"],
                    )
                    for name, a in (("real/synthetic", ag["detection"]), ("diagnosis", ag["diagnosis"]))
                ),
            ),  # fmt: skip
            Table(
                "agreement.test_retest",
                "Test–retest",
                ("test–retest", "pairs", "agreement [CI]", "κ", "diagnosis agreement"),
                _rows(
                    [
                        (
                            "pooled",
                            tr["pooled"]["n_pairs"],
                            tr["pooled"]["agreement"],
                            tr["pooled"]["kappa"],
                            tr["pooled"]["diagnosis_agreement"],
                        )
                    ]
                    + [
                        (r["rater"], r["n_pairs"], r["agreement"], r["kappa"], r["diagnosis_agreement"])
                        for r in tr["per_rater"]
                    ]
                ),
                note=(
                    f"Pairwise Cohen's κ over {s['n_pairs']} rater pairs: mean {cell_text(s['mean'])}, median "
                    f"{cell_text(s['median'])}, range {cell_text(s['min'])} to {cell_text(s['max'])}."
                ),
            ),  # fmt: skip
        ),
    )


def _diagnosis_section(d: dict[str, Any]) -> Section:
    dx = d["diagnosis"]
    labels = dx["confusion"]["labels"]
    confusion = tuple(
        Table(
            f"diagnosis.confusion.{kind}",
            f"Confusion matrix, {kind} images (rows: true, columns: answered)",
            ("true \\ answered", *labels),
            _rows((t, *row) for t, row in zip(labels, dx["confusion"][kind], strict=True)),
            heading=True,
        )
        for kind in ("real", "synthetic")
    )
    return Section(
        "Diagnosis: do synthetic images carry their condition?",
        (
            Table(
                "diagnosis.per_condition",
                "Diagnosis accuracy, real vs synthetic",
                (
                    "condition",
                    "real accuracy",
                    "synthetic accuracy",
                    "real − synthetic [CI]",
                    "Fisher p",
                    "χ² p",
                ),
                _rows(
                    [
                        (
                            "all",
                            dx["overall"]["real"],
                            dx["overall"]["synthetic"],
                            *_comparison_cells(dx["overall"]["comparison"]),
                        )
                    ]
                    + [
                        (c["condition"], c["real"], c["synthetic"], *_comparison_cells(c["comparison"]))
                        for c in dx["per_condition"]
                    ]
                ),
                note=(
                    f"{dx['n_answered']} diagnoses answered, {dx['n_unanswered']} unanswered, {dx['n_unsure']} "
                    f"marked unsure; {dx['n_choices']} choices (chance {cell_text(1 / dx['n_choices'])})."
                ),
            ),  # fmt: skip
            Table(
                "diagnosis.embodiment",
                "Embodiment of the intended condition",
                (
                    "condition",
                    "synthetic images",
                    "answers",
                    "named the intended condition",
                    "images with it as modal answer",
                ),
                _rows(
                    (e["condition"], e["n_images"], e["n_answered"], e["rate"], e["n_images_majority"])
                    for e in dx["embodiment"]
                ),
            ),  # fmt: skip
            *confusion,
        ),
    )


def _images_section(d: dict[str, Any]) -> Section:
    im = d["images"]
    syn_rows = sorted(
        (r for r in im["per_image"] if r["fooling_rate"] is not None), key=lambda r: -r["fooling_rate"]
    )
    hist = im["fooling_rate_histogram"]

    def convincing(title: str, rows: list[dict[str, Any]]) -> Table:
        return Table(
            "images.per_image",
            title.capitalize(),
            (title, "condition", "raters", "fooling rate"),
            _rows((r["token"], r["condition"], r["n"], r["fooling_rate"]) for r in rows[:N_CONVINCING]),
        )

    return Section(
        "Images",
        (
            convincing("most convincing synthetic images", syn_rows),
            convincing("least convincing synthetic images", syn_rows[::-1]),
            Table(
                "images.fooling_rate_histogram",
                "Fooling rates",
                ("fooling rate bin", "synthetic images"),
                _rows(
                    (f"{hist['edges'][k]:.1f}–{hist['edges'][k + 1]:.1f}", c)
                    for k, c in enumerate(hist["counts"])
                ),
            ),
        ),
    )


# Readable names for the report's keys, in one place (the dashboard, the HTML report and the
# plots print these; the JSON and CSV keep the keys).
PROGRESS_LABELS = {
    "n_invited": "links issued",
    "n_invitations_used": "links used",
    "n_assignments": "raters joined",
    "n_started": "started",
    "n_finished": "finished",
    "n_raters_with_judgments": "raters with answers",
    "n_images": "images",
    "n_real_images": "real images",
    "n_synthetic_images": "synthetic images",
}
BREAKDOWN_LABELS = {  # lower case but for names: "by <label>" reads as a sentence
    "condition": "condition",
    "fitzpatrick": "Fitzpatrick skin type",
    "lesion_size": "lesion size (share of image)",
    "role": "rater role",
    "experience": "rater experience",
}


def label(key: str, labels: dict[str, str]) -> str:
    """The readable name of a report key; an unknown key reads as words, never as ``snake_case``."""
    return labels.get(key, key.replace("_", " "))


BREAKDOWN_NOTE = (
    "Balanced accuracy with a crossed CI (raters and images random) where the group has at least "
    '2 raters who judged 2 images of each kind ("rough": fewer than 5 raters or 10 images of a '
    'kind); "descriptive" groups have only the judgment-level columns, which assume '
    "independent judgments."
)


def report_tables(d: dict[str, Any]) -> tuple[Section, ...]:
    """The report's sections and tables, in reading order (``d`` is ``to_dict()``)."""
    progress = d["progress"]
    rt = d["response_times"]
    return (
        _headline_section(d),
        Section(
            "Progress",
            (
                Table(
                    "progress",
                    "Invitation links, raters and images",
                    tuple(label(k, PROGRESS_LABELS) for k in progress),
                    (tuple(progress.values()),),
                    note="Raters can join without a link (added from the command line), so more raters "
                    "may have joined than links were used.",
                ),
            ),
        ),
        _detection_section(d),
        _agreement_section(d),
        _diagnosis_section(d),
        _images_section(d),
        Section(
            "Detection by group (condition, skin type, lesion size, rater)",
            tuple(
                Table(
                    f"breakdowns.{name}",
                    f"By {label(name, BREAKDOWN_LABELS)}",
                    (
                        label(name, BREAKDOWN_LABELS),
                        "balanced accuracy [crossed CI]",
                        "inference",
                        *DETECTION_HEADERS,
                    ),
                    _rows(
                        (
                            g["group"],
                            _crossed_cell(g["balanced_accuracy"]),
                            g["inference"],
                            *_detection_cells(g["detection"]),
                        )
                        for g in rows
                    ),  # fmt: skip
                    heading=True,
                    note=BREAKDOWN_NOTE if k == 0 else "",
                )
                for k, (name, rows) in enumerate(d["breakdowns"].items())
            ),
        ),
        Section(
            "Response times (ms)",
            (
                Table(
                    "response_times.groups",
                    "Response times (ms)",
                    (
                        "images",
                        "answers",
                        "n",
                        "missing",
                        "mean",
                        *[f"q{int(q * 100)}" for q in rt["quantiles"]],
                    ),
                    _rows(
                        (
                            g["kind"],
                            _correct_label(g["correct"]),
                            g["n"],
                            g["n_missing"],
                            g["mean_ms"],
                            *(g["q_ms"] or [None] * len(rt["quantiles"])),
                        )
                        for g in rt["groups"]
                    ),
                ),  # fmt: skip
            ),
        ),
    ) + _quality_sections(d)


def _quality_sections(d: dict[str, Any]) -> tuple[Section, ...]:
    """Rater quality control, when the study uses any: the headline with every rater kept beside
    the one above (which leaves excluded and unqualified raters out), exclusions, attention checks."""
    q = d.get("rater_quality") or {}
    every = d.get("headline_all_raters")
    if not (every or q.get("excluded") or q.get("attention_checks") or q.get("n_unqualified")):
        return ()
    tables = []
    if every:
        tables.append(
            Table(
                "headline_all_raters",
                "Headline with every rater (excluded and unqualified raters kept)",
                ("", *CROSSED_HEADERS),
                headline_rows(every),
                heading=True,
                note=f"{every['sentence']} Compare with the headline above, which leaves "
                f"{q.get('n_excluded', 0)} excluded and {q.get('n_unqualified', 0)} unqualified raters out.",
            )
        )
    tables.append(
        Table(
            "rater_quality.excluded",
            "Raters excluded by the researcher",
            ("rater", "reason"),
            _rows((e["rater"], e["reason"]) for e in q.get("excluded") or ()),
            heading=True,
            note=f"{q.get('n_unqualified', 0)} raters stopped below the tutorial qualification threshold "
            f"({q.get('qualification_min_correct') or 'none asked'} correct answers needed).",
        )
    )
    tables.append(
        Table(
            "rater_quality.attention_checks",
            "Attention checks per rater (catch images, not in the statistics)",
            ("rater", "passed", "failed"),
            _rows((a["rater"], a["n_passed"], a["n_failed"]) for a in q.get("attention_checks") or ()),
            heading=True,
        )
    )
    return (Section("Rater quality control", tuple(tables)),)
