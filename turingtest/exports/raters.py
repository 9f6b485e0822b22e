"""``raters.csv`` of the study package: one row per rater who joined, with what they agreed to.

Raters appear by pseudonym, as in ``judgments.csv`` (join on ``assignment_id``). The columns are
defined once in ``RATER_COLUMNS``: the header, the rows and the data dictionary read that list.
Values are formatted by the judgments writer's formatter (``writers.csv_value``), so both files
follow one convention (true/false, ISO 8601 UTC, empty for missing).
"""

from __future__ import annotations

import csv
import io

from django.db.models import Case, ExpressionWrapper, F, Q, Value, When
from django.db.models.fields import BooleanField, CharField

from turingtest.exports.columns import KIND_TEXT, Column
from turingtest.exports.writers import csv_value
from turingtest.studies.models import Assignment, Study

_PROFILE = "rater__rater_profile"

RATER_COLUMNS: tuple[Column, ...] = (
    Column("assignment_id", "int", F("pk"), "The rater's run through this study (as in judgments.csv)."),
    Column("rater_pseudonym", "text", F(f"{_PROFILE}__pseudonym"), "The rater's stable pseudonym."),
    Column(
        "rater_role",
        "text",
        F(f"{_PROFILE}__role"),
        "dermatologist, resident, clinician or other, as the rater declared it.",
    ),
    Column(
        "rater_years_experience", "int", F(f"{_PROFILE}__years_experience"), "Declared years of practice."
    ),
    Column("joined_at", "datetime", F("created"), "When the rater joined the study (UTC)."),
    Column("consented_at", "datetime", F("consented_at"), "When the rater agreed to the consent text (UTC)."),
    Column(
        "consent_sha256",
        "text",
        F("consent_sha256"),
        "sha256 (hex, of the UTF-8 text) of the consent text the rater agreed to: the study's own "
        "text, or the platform's default when the study left it blank.",
    ),
    Column("consent_version", "text", F("consent_version"), "The consent text's version agreed to."),
    Column(
        "finished_at", "datetime", F("finished_at"), "When the rater answered the last item; empty if not."
    ),
    Column(
        "qualification_result",
        "text",
        Case(
            When(qualified=True, then=Value("passed")),
            When(qualified=False, then=Value("failed")),
            default=Value(""),
            output_field=CharField(),
        ),
        "passed or failed: the rater's correct tutorial answers against the study's qualification "
        "threshold (failed: thanked, and no study item was shown); empty while the study asks no "
        "qualification or the tutorial is unfinished.",
    ),
    Column(
        "tutorial_correct",
        "int",
        F("n_tutorial_correct"),
        "Correct tutorial answers, counted when a qualification was decided; empty otherwise.",
    ),
    Column(
        "excluded",
        "bool",
        ExpressionWrapper(Q(excluded_at__isnull=False), output_field=BooleanField()),
        "true when the researcher excluded the rater from the statistics (false: no exclusion).",
    ),
    Column(
        "exclusion_reason",
        "text",
        F("exclusion_reason"),
        "The researcher's reason for the exclusion (empty when not excluded).",
    ),
)

RATER_KINDS = {c.name: c.kind for c in RATER_COLUMNS}


def raters_csv(study: Study) -> str:
    """The whole file (one row per rater: small, built in memory), ordered by assignment."""
    aliases = {f"x_{c.name}": c.expr for c in RATER_COLUMNS}
    rows = Assignment.objects.filter(study=study).annotate(**aliases).order_by("pk").values_list(*aliases)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.name for c in RATER_COLUMNS])
    for row in rows:
        writer.writerow([csv_value(c.kind, v) for c, v in zip(RATER_COLUMNS, row)])
    return out.getvalue()


def raters_dictionary_csv() -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["column", "type", "description"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {"column": c.name, "type": KIND_TEXT[c.kind], "description": c.description} for c in RATER_COLUMNS
    )
    return out.getvalue()


def raters_dictionary_markdown() -> str:
    lines = [
        "# Raters: data dictionary (raters.csv)",
        "",
        "One row per rater who joined the study, by pseudonym; join judgments.csv on `assignment_id`.",
        "",
        "| column | type | description |",
        "|---|---|---|",
    ]
    lines += [f"| `{c.name}` | {KIND_TEXT[c.kind]} | {c.description} |" for c in RATER_COLUMNS]
    return "\n".join(lines) + "\n"
