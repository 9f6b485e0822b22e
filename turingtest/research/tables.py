"""The dashboard's report tables: ``turingtest.reports.tables`` as text for the template.

The dashboard shows the same tables as the downloadable HTML report (one table model,
one cell formatter); this module only turns cells into text and caps long tables, whose
full rows stay in the report JSON and CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from turingtest.reports.tables import report_tables

MAX_ROWS = 200


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    truncated: int = 0
    note: str = ""


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
                )
                for t in section.tables
            ],
        )
        for section in report_tables(report)
    ]
