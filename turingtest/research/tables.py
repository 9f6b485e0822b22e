"""The dashboard's report tables and headline card: ``turingtest.reports.tables`` as text.

The dashboard shows the same tables as the downloadable HTML report (one table model,
one cell formatter); this module only turns cells into text and caps long tables, whose
full rows stay in the report JSON and CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from turingtest.reports.tables import CROSSED_HEADERS, cell_text, component_rows, headline_rows, report_tables

MAX_ROWS = 200
TALL_ROWS = 12  # longer tables scroll inside their card (a fixed height, sticky headers)


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    truncated: int = 0
    note: str = ""
    tall: bool = False


@dataclass
class Section:
    title: str
    tables: list[Table] = field(default_factory=list)


def report_sections(report: dict[str, Any]) -> list[Section]:
    """Sections of text tables from ``reports.build(study).to_dict()`` (warnings: the page's)."""
    return [
        Section(
            title=section.title,
            tables=[
                Table(
                    title=t.title,
                    headers=list(t.headers),
                    rows=t.text_rows(MAX_ROWS),
                    truncated=max(0, len(t.rows) - MAX_ROWS),
                    note=t.note,
                    tall=min(len(t.rows), MAX_ROWS) > TALL_ROWS,
                )
                for t in section.tables
            ],
        )
        for section in report_tables(report)
    ]


@dataclass
class HeadlineCard:
    """The card the dashboard opens on: the sentence, four numbers, the variance components."""

    sentence: str
    verdict: str
    headers: list[str]
    rows: list[list[str]]
    components: list[list[str]]
    d_prime: str
    n_raters: int
    n_raters_judged: int
    n_raters_left_out: int
    n_real_images: int
    n_synthetic_images: int
    notes: list[str]
    method: str
    # With raters left out (excluded, not qualified): the headline with every rater beside it.
    compare: list[list[str]] = field(default_factory=list)
    n_raters_all: int = 0
    n_excluded: int = 0
    n_unqualified: int = 0


def headline_card(report: dict[str, Any]) -> HeadlineCard:
    """The report's headline as text, through the report's own table rows and cell formatter."""
    h = report["headline"]
    return HeadlineCard(
        sentence=h["sentence"],
        verdict=h["verdict"],
        headers=["", *CROSSED_HEADERS],
        rows=[[cell_text(c) for c in row] for row in headline_rows(h)],
        components=[[cell_text(c) for c in row] for row in component_rows(h)],
        d_prime=cell_text(h["d_prime"]),
        n_raters=h["n_raters"],
        n_raters_judged=h["n_raters_judged"],
        n_raters_left_out=h["n_raters_left_out"],
        n_real_images=h["n_real_images"],
        n_synthetic_images=h["n_synthetic_images"],
        notes=list(h["notes"]),
        method=h["method"],
        **_comparison(h, report.get("headline_all_raters"), report.get("rater_quality") or {}),
    )


NO_JUDGMENTS = ": no judgments"


@dataclass
class ReportWarnings:
    """The report's warnings for the page: the ones to read, and the many "<group>: no
    judgments" lines (one per empty group) that the page folds into one summary."""

    messages: list[str]
    no_judgments: list[str]


def report_warnings(report: dict[str, Any], *, limit: int = 50) -> ReportWarnings:
    warnings = [str(w) for w in report.get("warnings") or []]
    return ReportWarnings(
        messages=[w for w in warnings if not w.endswith(NO_JUDGMENTS)][:limit],
        no_judgments=[w.removesuffix(NO_JUDGMENTS) for w in warnings if w.endswith(NO_JUDGMENTS)],
    )


_COMPARED = (
    ("balanced_accuracy", "balanced accuracy"),
    ("sensitivity", "sensitivity (1 − fooling rate)"),
    ("specificity", "specificity"),
    ("auc", "AUC (confidence ratings)"),
)


def _estimate_text(c: dict[str, Any] | None) -> str:
    if c is None:
        return "not estimable"
    return f"{cell_text(c['estimate'])} ({cell_text(c['ci_low'])}–{cell_text(c['ci_high'])})"


def _comparison(h: dict[str, Any], all_raters: dict[str, Any] | None, q: dict[str, Any]) -> dict[str, Any]:
    """The headline without and with the left-out raters, one row per estimate (empty when no
    rater is left out)."""
    if not all_raters:
        return {}
    return {
        "compare": [
            [label, _estimate_text(h[key]), _estimate_text(all_raters[key])] for key, label in _COMPARED
        ],
        "n_raters_all": all_raters["n_raters_judged"],
        "n_excluded": q.get("n_excluded", 0),
        "n_unqualified": q.get("n_unqualified", 0),
    }
