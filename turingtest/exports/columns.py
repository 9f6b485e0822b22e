"""The export's one column list, ``COLUMNS``: header, queryset and data dictionary read it.

Each ``Column`` names its value type, the ORM expression that reads it and what it
means; the CSV header, both writers, the data dictionary and the tests all come from
this list, so they cannot drift apart.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    ExpressionWrapper,
    F,
    FloatField,
    Q,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from turingtest.csvsafe import NOTE as FORMULA_NOTE
from turingtest.csvsafe import csv_text
from turingtest.studies.models import Judgment, Study

_P = "presentation"
_IMG = "presentation__item__image"
_RATER = "presentation__assignment__rater"


@dataclass(frozen=True)
class Column:
    """One export column: its name, value type, how to read it, and what it means."""

    name: str
    kind: str  # int | float | text | bool | datetime
    expr: Any  # an ORM expression evaluated on Judgment
    description: str
    identities_only: bool = False


def _json_text(key: str, field: str) -> KeyTextTransform:
    return KeyTextTransform(key, field)


def _is_correct() -> Case:
    synthetic = Q(**{f"{_IMG}__kind": "synthetic"})
    return Case(
        When(Q(says_synthetic=True) & synthetic, then=Value(True)),
        When(Q(says_synthetic=False) & ~synthetic, then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )


def _bbox(i: int) -> Cast:
    return Cast(_json_text(str(i), f"{_IMG}__lesion_bbox"), FloatField())


COLUMNS: tuple[Column, ...] = (
    Column("judgment_id", "int", F("id"), "Primary key of the judgment (stable across exports)."),
    Column("study_id", "int", F(f"{_P}__assignment__study_id"), "The study."),
    Column(
        "assignment_id",
        "int",
        F(f"{_P}__assignment_id"),
        "The rater's run through this study: one per rater and study, a pseudonymous rater key.",
    ),
    Column(
        "rater_pseudonym",
        "text",
        F(f"{_RATER}__rater_profile__pseudonym"),
        "Random pseudonym of the rater (RaterProfile.pseudonym); empty if the rater has no profile.",
    ),
    Column(
        "rater_username",
        "text",
        F(f"{_RATER}__username"),
        "Login name. Only present when an admin exported identities.",
        identities_only=True,
    ),
    Column(
        "rater_email",
        "text",
        F(f"{_RATER}__email"),
        "E-mail address. Only present when an admin exported identities.",
        identities_only=True,
    ),
    Column(
        "rater_role",
        "text",
        F(f"{_RATER}__rater_profile__role"),
        "Professional role: dermatologist, resident, clinician or other.",
    ),
    Column(
        "rater_years_experience",
        "int",
        F(f"{_RATER}__rater_profile__years_experience"),
        "Years of professional experience, as the rater declared it.",
    ),
    Column("item_id", "int", F(f"{_P}__item_id"), "The study item (image in the study's pool)."),
    Column(
        "image_public_token",
        "text",
        F(f"{_IMG}__public_token"),
        "Opaque random token of the library image (Image.public_token); joins repeats and raters.",
    ),
    Column(
        "presentation_position",
        "int",
        F(f"{_P}__position"),
        "0-based position in the rater's sequence (tutorial positions included in the count).",
    ),
    Column(
        "is_repeat",
        "bool",
        ExpressionWrapper(Q(**{f"{_P}__repeat_of__isnull": False}), output_field=BooleanField()),
        "true when this showing repeats an earlier one (test-retest item).",
    ),
    Column(
        "repeat_of_position",
        "int",
        F(f"{_P}__repeat_of__position"),
        "For repeats, the position of the first showing; empty otherwise.",
    ),
    Column(
        "is_anchor",
        "bool",
        F(f"{_P}__item__is_anchor"),
        "true for anchor items every rater sees.",
    ),
    Column(
        "is_attention_check",
        "bool",
        F(f"{_P}__item__is_attention_check"),
        "true for a catch image the researcher designated (an attention check): left out of the "
        "report's statistics; passed when the call matches truth_kind.",
    ),
    Column("truth_kind", "text", F(f"{_IMG}__kind"), "Ground truth: real or synthetic."),
    Column(
        "truth_condition",
        "text",
        F(f"{_IMG}__condition__code"),
        "Ground-truth condition code (fixtures/conditions.json, e.g. MEL, BCC, NEV).",
    ),
    Column("fitzpatrick", "int", F(f"{_IMG}__fitzpatrick"), "Fitzpatrick skin type 1-6; empty if unknown."),
    Column(
        "lesion_area_fraction",
        "float",
        F(f"{_IMG}__lesion_area_fraction"),
        "Lesion area as a fraction of the image (0-1); empty if unknown.",
    ),
    Column("lesion_bbox_x0", "float", _bbox(0), "Lesion bounding box, left edge as an image fraction."),
    Column("lesion_bbox_y0", "float", _bbox(1), "Lesion bounding box, top edge as an image fraction."),
    Column("lesion_bbox_x1", "float", _bbox(2), "Lesion bounding box, right edge as an image fraction."),
    Column("lesion_bbox_y1", "float", _bbox(3), "Lesion bounding box, bottom edge as an image fraction."),
    Column(
        "synthetic_batch",
        "text",
        _json_text("batch", f"{_IMG}__provenance"),
        "Generation batch that rendered the image (provenance.batch); empty for real images.",
    ),
    Column(
        "synthetic_index",
        "int",
        Cast(_json_text("index", f"{_IMG}__provenance"), BigIntegerField()),
        "Index of the image within its batch (provenance.index).",
    ),
    Column(
        "synthetic_seed",
        "int",
        # Only synthetic images: a procedural demo stand-in is kind real with a provenance seed, and a
        # real row carrying a seed would hint at how it was made.
        Case(
            When(
                Q(**{f"{_IMG}__kind": "synthetic"}),
                then=Cast(_json_text("seed", f"{_IMG}__provenance"), BigIntegerField()),
            ),
            default=None,
            output_field=BigIntegerField(),
        ),
        "Per-image seed of a synthetic image (provenance.seed); empty for real images.",
    ),
    Column(
        "synthetic_checkpoint_sha256",
        "text",
        _json_text("checkpoint_sha256", f"{_IMG}__provenance"),
        "sha256 of the generator checkpoint that rendered the image.",
    ),
    Column(
        "says_synthetic", "bool", F("says_synthetic"), "The rater's call: true = synthetic, false = real."
    ),
    Column("is_correct", "bool", _is_correct(), "true when the call matches truth_kind."),
    Column("confidence", "int", F("confidence"), "Confidence 1 (guess) to 5 (certain); empty if not asked."),
    Column(
        "diagnosis_code",
        "text",
        F("diagnosis__code"),
        "Condition code the rater chose; empty if not asked or not answered.",
    ),
    Column("diagnosis_unsure", "bool", F("diagnosis_unsure"), "true when the rater ticked 'unsure'."),
    Column("comment", "text", F("comment"), "Free-text comment; empty if none."),
    Column(
        "response_ms",
        "int",
        F("response_ms"),
        "Milliseconds from image shown to answer given, measured in the browser.",
    ),
    Column(
        "revision",
        "int",
        F("revision"),
        "1 for a first answer; higher when an editable study's answer was changed.",
    ),
    Column("shown_at", "datetime", F(f"{_P}__shown_at"), "Server time the image was first served (UTC)."),
    Column("answered_at", "datetime", F("answered_at"), "Server time the answer was recorded (UTC)."),
    Column("edited_at", "datetime", F("edited_at"), "Server time of the last edit (UTC); empty if never."),
    Column(
        "is_late",
        "bool",
        F("is_late"),
        "true when, in a study with an exposure limit, the answer arrived later than the limit plus the "
        "answer window after the server sent the image (kept, flagged, never dropped).",
    ),
)


# --- the study's audit trail (audit.csv in the package) -----------------------------------

# ``expr`` here is an ``AuditEvent`` field name (turingtest.trail); json values are written as
# compact JSON with sorted keys. The client address is personal data: identities only.
AUDIT_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "int", "id", "Primary key of the audit event (events are never changed or deleted)."),
    Column("at", "datetime", "at", "Server time of the event (UTC)."),
    Column(
        "action",
        "text",
        "action",
        "What happened: study_created, study_updated, study_opened, study_closed, collaborator_added, "
        "invitation_created, invitation_used, consent_given, judgment_changed, export, … "
        "(turingtest.trail.models.AuditEvent.Action).",
    ),
    Column("actor_id", "int", "actor_id", "User id of who did it; empty for the system or the command line."),
    Column("actor_name", "text", "actor_name", "Who did it: a rater by pseudonym, anyone else by username."),
    Column("object_type", "text", "object_type", 'The changed object\'s model ("app_label.model").'),
    Column("object_id", "text", "object_id", "The changed object's primary key."),
    Column("study_id", "int", "study_id", "The study."),
    Column("before", "json", "before", "The changed values before, as JSON; empty when none."),
    Column("after", "json", "after", "The values after (or what the action did), as JSON; empty when none."),
    Column(
        "request_id", "text", "request_id", "The web request's id (X-Request-ID); empty outside requests."
    ),
    Column(
        "client_address",
        "text",
        "client_address",
        "Client IP address. Only present when an admin exported identities.",
        identities_only=True,
    ),
)


def audit_columns(*, identities: bool = False) -> list[Column]:
    return [c for c in AUDIT_COLUMNS if identities or not c.identities_only]


def columns(*, identities: bool = False) -> list[Column]:
    """The export's columns, in order; identity columns only when asked for."""
    return [c for c in COLUMNS if identities or not c.identities_only]


def header(*, identities: bool = False) -> list[str]:
    return [c.name for c in columns(identities=identities)]


def judgment_queryset(study: Study, *, identities: bool = False):
    """Rows of the export as tuples, in the column order, one per non-tutorial judgment.

    Ordered by rater run, then position: the order a rater saw the images.
    """
    cols = columns(identities=identities)
    aliases = {f"x_{c.name}": c.expr for c in cols}
    return (
        Judgment.objects.filter(**{f"{_P}__assignment__study": study, f"{_P}__is_tutorial": False})
        .annotate(**aliases)
        .order_by(f"{_P}__assignment_id", f"{_P}__position")
        .values_list(*aliases)
    )


# --- data dictionary ----------------------------------------------------------------------

_KIND_TEXT = {
    "int": "integer",
    "float": "decimal number",
    "text": "text (formula-safe: a leading = + - @ tab CR or ' gets a ' prefix in CSV)",
    "bool": "true/false",
    "datetime": "ISO 8601 UTC timestamp",
    "json": "JSON text",
}


KIND_TEXT = _KIND_TEXT  # shared with the package's raters.csv dictionary


def data_dictionary_rows(*, identities: bool = False) -> list[dict[str, str]]:
    return [
        {"column": c.name, "type": _KIND_TEXT[c.kind], "description": c.description}
        for c in columns(identities=identities)
    ]


def data_dictionary_csv(*, identities: bool = False) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["column", "type", "description"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {k: csv_text(v) for k, v in row.items()} for row in data_dictionary_rows(identities=identities)
    )
    return out.getvalue()


def data_dictionary_markdown(*, identities: bool = False) -> str:
    lines = [
        "# Judgments export: data dictionary",
        "",
        "One row per judgment (tutorial answers excluded), ordered by rater run then position.",
        "Booleans are `true`/`false`; timestamps ISO 8601 UTC; missing values are empty.",
        "",
        f"Formula-safe text (CSV only): {FORMULA_NOTE}",
        "",
        "| column | type | description |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{r['column']}` | {r['type']} | {r['description']} |"
        for r in data_dictionary_rows(identities=identities)
    ]
    lines += [
        "",
        "# audit.csv: the study's audit trail",
        "",
        "One row per audit event naming this study, oldest first.",
        "",
        "| column | type | description |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{c.name}` | {_KIND_TEXT[c.kind]} | {c.description} |"
        for c in audit_columns(identities=identities)
    ]
    return "\n".join(lines) + "\n"
