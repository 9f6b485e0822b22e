"""The report as a file: JSON (the ``to_dict()`` tree), tidy CSV, or one HTML page.

``render(report, "json" | "csv" | "html")``. The HTML page prints the tables of
``tables.report_tables`` (the same tables the dashboard shows); the CSV is the long form
of ``to_dict()``, one statistic per row, its text cells formula-safe (``turingtest.csvsafe``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from html import escape
from typing import Any

from turingtest.csvsafe import csv_cell
from turingtest.reports.schema import StudyReport
from turingtest.reports.tables import MISSING, Table, cell_text, report_tables

FORMATS = ("json", "csv", "html")
CSV_COLUMNS = ("section", "subject", "statistic", "value")
_SUBJECT_KEYS = ("rater", "group", "token", "condition")


def render_json(report: StudyReport) -> str:
    """The ``to_dict()`` tree as JSON (strict: no NaN, UTF-8 kept readable)."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """``(dotted path, scalar)`` for every leaf under ``value``; list items by index."""
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = []
        for k, v in value.items():
            items += _flat(f"{prefix}.{k}" if prefix else k, v)
        return items
    if isinstance(value, list):
        items = []
        for k, v in enumerate(value):
            items += _flat(f"{prefix}.{k}" if prefix else str(k), v)
        return items
    return [(prefix, value)]


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

    def table(section: str, rows: list[dict], subject_of: Callable[[dict], str]) -> None:
        for row in rows:
            subject = subject_of(row)
            for stat, value in _flat("", row):
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

    for stat, value in _flat("", data):
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
    for stat, value in _flat("", pairwise["summary"]):
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
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for section, subject, stat, value in tidy_rows(report):
        # Text cells never become spreadsheet formulas; numbers (negative ones too) stay numbers.
        writer.writerow([csv_cell(x) for x in (section, subject, stat, "" if value is None else value)])
    return buf.getvalue()


HEADLINE_CSV_COLUMNS = (
    "statistic", "estimate", "se", "df", "ci_low", "ci_high", "p_value", "n_raters", "n_images",
    "var_rater", "var_image", "var_residual",
)  # fmt: skip


def headline_csv(d: dict[str, Any]) -> str:
    """The headline of ``to_dict()`` as a small CSV, one statistic per row (for the package).

    Rows: the four crossed estimates (with their variance components), the three HYPE
    error rates (1 − them, no se), d′ and c from the pooled rates (estimate only). Empty
    fields are undefined values; ``df`` is empty when infinite.
    """
    h = d["headline"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADLINE_CSV_COLUMNS)

    def row(name: str, values: dict[str, Any] | None) -> None:
        v = values or {}
        comp = v.get("components") or {}
        cells = (
            name, v.get("estimate"), v.get("se"), v.get("df"), v.get("ci_low"), v.get("ci_high"),
            v.get("p_value"), v.get("n_raters"), v.get("n_images"),
            comp.get("rater"), comp.get("image"), comp.get("residual"),
        )  # fmt: skip
        writer.writerow(["" if c is None else c for c in cells])

    for key in ("balanced_accuracy", "sensitivity", "specificity", "auc"):
        row(key, h[key])
    for key in ("error_rate", "real_error_rate", "synthetic_error_rate"):
        row(f"hype_{key}", h["hype"][key])
    row("d_prime", {"estimate": h["d_prime"]})
    row("criterion_c", {"estimate": h["criterion_c"]})
    return buf.getvalue()


def _html_table(table: Table) -> list[str]:
    parts = []
    if table.heading:
        parts.append(f"<h3>{escape(table.title)}</h3>")
    if table.note:
        parts.append(f"<p>{escape(table.note, quote=False)}</p>")
    parts.append(
        "<table><thead><tr>" + "".join(f"<th>{escape(x)}</th>" for x in table.headers) + "</tr></thead>"
    )
    parts.append("<tbody>")
    for row in table.rows:
        parts.append("<tr>" + "".join(f"<td>{escape(cell_text(c))}</td>" for c in row) + "</tr>")
    parts.append("</tbody></table>")
    return parts


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #bbb;padding:.2em .5em;text-align:left;font-variant-numeric:tabular-nums}"
    "th{background:#f0f0f0}code{font-size:.85em}"
)


def render_html(report: StudyReport) -> str:
    """A self-contained HTML document of the report's tables (no scripts, no external files)."""
    d = report.to_dict()
    study, meta = d["study"], d["meta"]
    parts = [
        f"<h1>{escape('Study report: ' + study['title'])}</h1>",
        f"<p>Study {study['id']} ({escape(study['status'])}), design hash "
        f"<code>{escape(study['config_sha256'] or MISSING)}</code>, generated {escape(study['generated_at'])}. "
        f"{meta['n_first_showings']} first-showing judgments, {meta['n_repeats']} repeats; "
        f"bootstrap {meta['n_boot']} replicates, seed {meta['seed']}.</p>",
    ]
    parts.append(f'<p class="headline"><strong>{escape(d["headline"]["sentence"])}</strong></p>')
    if d["warnings"]:
        parts.append("<h2>Warnings</h2>")
        parts.append("<ul>" + "".join(f"<li>{escape(w)}</li>" for w in d["warnings"]) + "</ul>")
    for section in report_tables(d):
        parts.append(f"<h2>{escape(section.title)}</h2>")
        for table in section.tables:
            parts += _html_table(table)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(study['title'])}: study report</title><style>{_STYLE}</style></head><body>\n"
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
