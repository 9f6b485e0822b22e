"""Turn the report dict into titled tables for the dashboard, whatever its nesting.

The report (``reports.build(study).to_dict()``) is nested dicts and lists of scalars. Rather
than hard-coding every field in a template, each level becomes a table:

- a dict of scalars: a two-column (name, value) table;
- a list of dicts, or a dict of dicts: one row per element, one column per scalar key;
- anything deeper becomes its own titled section.

So new statistics in the report show up on the dashboard without a template change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_ROWS = 200
MAX_MATRIX = 30  # wider matrices stay in the report JSON (and the plots)


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    truncated: int = 0


@dataclass
class Section:
    title: str
    tables: list[Table] = field(default_factory=list)


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _short_list(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= 6 and all(_scalar(x) for x in v)


def _small_dict(v: Any) -> bool:
    """Folded into its parent's table by ``_flat`` (e.g. a CI as {low, high})."""
    return isinstance(v, dict) and len(v) <= 4 and all(_scalar(x) for x in v.values())


def _matrix(v: Any) -> bool:
    return (
        isinstance(v, list) and bool(v) and all(isinstance(r, list) and all(_scalar(x) for x in r) for r in v)
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and all(_scalar(x) for x in v) and len(v) <= 6:
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, list | dict):
        return f"({len(v)} values)"
    return str(v)


def _title(key: str) -> str:
    return key.replace("_", " ").strip().capitalize()


_PROP_KEYS = ("proportion", "ci_low", "ci_high")


def _flat(d: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Flatten nested dicts into space-joined keys (``accuracy ci_low``).

    Only small dicts are folded at the top level (``depth`` 0, used for name/value tables);
    row tables fold deeper (``depth`` > 0). A proportion keeps its estimate and CI only.
    """
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and "proportion" in v and depth > 0:
            out.update({f"{key} {p}": v.get(p) for p in _PROP_KEYS})
        elif _small_dict(v) or (isinstance(v, dict) and 0 < depth <= 3):
            out.update(_flat(v, f"{key} ", depth + 1 if depth else 0))
        else:
            out[key] = v
    return out


def _rows_table(title: str, records: list[tuple[str | None, dict[str, Any]]]) -> Table:
    flat = [(label, _flat(r, depth=1)) for label, r in records]
    headers: list[str] = []
    for _, r in flat:
        for k, v in r.items():
            if k not in headers and (_scalar(v) or isinstance(v, list)):
                headers.append(k)
    label_col = any(label is not None for label, _ in flat)
    rows = [
        ([label or ""] if label_col else []) + [_fmt(r.get(h)) for h in headers]
        for label, r in flat[:MAX_ROWS]
    ]
    return Table(
        title=title,
        headers=([""] if label_col else []) + headers,
        rows=rows,
        truncated=max(0, len(flat) - MAX_ROWS),
    )


def _tables(title: str, value: Any, out: list[Table], depth: int = 0) -> None:
    if isinstance(value, list):
        if value and all(isinstance(x, dict) for x in value):
            out.append(_rows_table(title, [(None, x) for x in value]))
        elif value:
            out.append(Table(title=title, headers=["value"], rows=[[_fmt(x)] for x in value[:MAX_ROWS]]))
        return
    if not isinstance(value, dict):
        out.append(Table(title=title, headers=["value"], rows=[[_fmt(value)]]))
        return
    scalars = {k: v for k, v in _flat(value).items() if _scalar(v) or _short_list(v)}
    if scalars:
        out.append(
            Table(title=title, headers=["", "value"], rows=[[_title(k), _fmt(v)] for k, v in scalars.items()])
        )
    nested = {k: v for k, v in value.items() if not (_scalar(v) or _short_list(v) or _small_dict(v))}
    # Matrices (confusion, pairwise kappa) labelled by a sibling "labels" / "raters" list.
    names = next((value[k] for k in ("labels", "raters") if isinstance(value.get(k), list)), None)
    for k in list(nested):
        if _matrix(nested[k]) and names is not None and len(names) == len(nested[k]) <= MAX_MATRIX:
            matrix = nested.pop(k)
            out.append(
                Table(
                    title=f"{title} › {_title(k)}",
                    headers=["", *map(str, names)],
                    rows=[[str(n), *map(_fmt, row)] for n, row in zip(names, matrix)][:MAX_ROWS],
                )
            )
    nested.pop("labels", None)
    nested.pop("raters", None)
    for k in [k for k, v in nested.items() if _matrix(v)]:
        matrix = nested.pop(k)
        out.append(
            Table(
                title=f"{title} › {_title(k)}",
                headers=["value"],
                rows=[[f"{len(matrix)} × {len(matrix[0])} matrix: see the report JSON"]],
            )
        )
    # A dict whose values are all dicts of scalars reads best as one table (e.g. per condition).
    if (
        nested
        and all(
            isinstance(v, dict) and all(_scalar(x) or isinstance(x, dict) for x in v.values())
            for v in nested.values()
        )
        and len(nested) > 1
    ):
        out.append(_rows_table(title, [(str(k), v) for k, v in nested.items()]))
        return
    for k, v in nested.items():
        if depth >= 3:
            continue
        _tables(f"{title} › {_title(k)}", v, out, depth + 1)


def report_sections(report: dict[str, Any]) -> list[Section]:
    sections = []
    for key, value in report.items():
        if key in {"warnings"}:
            continue
        tables: list[Table] = []
        _tables(_title(key), value, tables)
        if tables:
            sections.append(Section(title=_title(key), tables=tables))
    return sections
