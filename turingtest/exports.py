"""Streaming exports of a study's judgments: tidy CSV, JSON Lines and the study package ZIP.

One row per judgment, the columns defined once in ``COLUMNS``: the CSV header, the data
dictionary and the tests all read that list, so they cannot drift apart.

Memory stays constant whatever the study size (a million judgments is the design point):

- On PostgreSQL the CSV comes straight from ``COPY (SELECT …) TO STDOUT WITH CSV HEADER``
  through psycopg2's ``copy_expert``; the server formats every value, so the export runs at
  COPY speed. ``copy_expert`` writes into a file object, so it runs in a helper thread that
  hands ~1 MiB chunks through a small bounded queue to the generator the response iterates.
- Elsewhere (SQLite, and JSON Lines on any database) rows come from the ORM's chunked
  ``.iterator()`` and are formatted in Python, the same way the SQL formats them: same
  columns, same order, same text (a test compares both writers byte for byte on PostgreSQL).

Conventions (also in the data dictionary and the package README):

- Raters appear by their pseudonym. Usernames and e-mails are added only when an admin asks
  for identities; the request is logged to the ``turingtest.audit`` logger, named in the
  package README and, over HTTP, in the ``X-Export-Identities`` response header.
- Tutorial answers are not study data: they live in their own table and are never exported;
  a judgment on a tutorial presentation, should one exist, is excluded as well.
- Booleans are ``true``/``false``, timestamps ISO 8601 in UTC with microseconds and a ``Z``,
  missing values and empty text are empty fields.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import math
import os
import queue
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.db import connection
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

from turingtest.studies.models import Judgment, Study

audit_log = logging.getLogger("turingtest.audit")

FORMATS = ("csv", "jsonl")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
COPY_CHUNK_BYTES = 1 << 20
ITERATOR_CHUNK_ROWS = 1000

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


def _judgment_has(field: str) -> bool:
    return any(f.name == field for f in Judgment._meta.get_fields())


_COLUMNS: list[Column | None] = [
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
        Cast(_json_text("seed", f"{_IMG}__provenance"), BigIntegerField()),
        "Per-image seed (provenance.seed); procedural demo stand-ins carry one too.",
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
    )
    if _judgment_has("revision")
    else None,
    Column("shown_at", "datetime", F(f"{_P}__shown_at"), "Server time the image was first served (UTC)."),
    Column("answered_at", "datetime", F("answered_at"), "Server time the answer was recorded (UTC)."),
    Column("edited_at", "datetime", F("edited_at"), "Server time of the last edit (UTC); empty if never.")
    if _judgment_has("edited_at")
    else None,
]
COLUMNS: tuple[Column, ...] = tuple(c for c in _COLUMNS if c is not None)


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


# --- Python formatting (the iterator writer) --------------------------------------------


def _fmt_float(v: float) -> str:
    # PostgreSQL prints float8 in the shortest exact form, without a trailing ".0".
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def _fmt_datetime(v: dt.datetime) -> str:
    return v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _csv_value(kind: str, v: Any) -> str:
    if v is None:
        return ""
    if kind == "bool":
        return "true" if v else "false"
    if kind == "datetime":
        return _fmt_datetime(v)
    if kind == "float":
        return _fmt_float(v)
    return str(v)


def _json_value(kind: str, v: Any) -> Any:
    if v is None:
        return None
    if kind == "bool":
        return bool(v)
    if kind == "datetime":
        return _fmt_datetime(v)
    if kind == "float":
        return float(v)
    if kind == "int":
        return int(v)
    return str(v) if str(v) != "" else None


class _LineBuffer:
    """csv.writer target that hands back what was written since the last take()."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, s: str) -> None:
        self._parts.append(s)

    def take(self) -> str:
        out = "".join(self._parts)
        self._parts.clear()
        return out


def iter_csv_python(study: Study, *, identities: bool = False) -> Iterator[bytes]:
    """CSV from the ORM's chunked iterator, formatted in Python (any database)."""
    cols = columns(identities=identities)
    kinds = [c.kind for c in cols]
    buf = _LineBuffer()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.name for c in cols])
    for n, row in enumerate(
        judgment_queryset(study, identities=identities).iterator(chunk_size=ITERATOR_CHUNK_ROWS)
    ):
        writer.writerow([_csv_value(k, v) for k, v in zip(kinds, row)])
        if n % 256 == 255:
            yield buf.take().encode()
    tail = buf.take()
    if tail:
        yield tail.encode()


def iter_jsonl(study: Study, *, identities: bool = False) -> Iterator[bytes]:
    """JSON Lines: one object per judgment, keys in column order, typed values."""
    cols = columns(identities=identities)
    names = [c.name for c in cols]
    kinds = [c.kind for c in cols]
    parts: list[str] = []
    for row in judgment_queryset(study, identities=identities).iterator(chunk_size=ITERATOR_CHUNK_ROWS):
        obj = {name: _json_value(k, v) for name, k, v in zip(names, kinds, row)}
        parts.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        parts.append("\n")
        if len(parts) >= 512:
            yield "".join(parts).encode()
            parts.clear()
    if parts:
        yield "".join(parts).encode()


# --- PostgreSQL COPY (the fast writer) ---------------------------------------------------


def _sql_format(c: Column) -> str:
    col = f't."x_{c.name}"'
    if c.kind == "bool":
        expr = f"CASE WHEN {col} THEN 'true' WHEN NOT {col} THEN 'false' END"
    elif c.kind == "datetime":
        expr = f"""to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    elif c.kind == "text":
        expr = f"NULLIF({col}::text, '')"
    else:
        expr = col
    return f'{expr} AS "{c.name}"'


def copy_sql(study: Study, *, identities: bool = False) -> str:
    """The ``COPY (SELECT …) TO STDOUT WITH CSV HEADER`` statement, parameters inlined.

    The inner query is the ORM queryset of ``judgment_queryset`` (same joins, filter and
    order); the outer select only formats values the way the Python writer does.
    """
    qs = judgment_queryset(study, identities=identities)
    inner, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        inner_sql = cursor.mogrify(inner, params).decode()
    select = ", ".join(_sql_format(c) for c in columns(identities=identities))
    return f"COPY (SELECT {select} FROM ({inner_sql}) AS t) TO STDOUT WITH (FORMAT csv, HEADER true)"


class _CopyAborted(Exception):
    pass


def iter_copy(sql: str, *, chunk_bytes: int | None = None) -> Iterator[bytes]:
    """Stream the output of a ``COPY … TO STDOUT`` statement in ~chunk_bytes pieces.

    psycopg2's ``copy_expert`` pushes data into a file object and returns only at the end,
    so it runs in a thread on this request's own connection (this thread makes no query
    until the generator finishes); at most 4 chunks wait in the queue. Closing the
    generator early cancels the statement on the server (outside a transaction) or drops
    the remaining output (inside one).
    """
    chunk_bytes = chunk_bytes or COPY_CHUNK_BYTES
    connection.ensure_connection()
    raw = connection.connection
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def put(item: bytes | BaseException | None) -> None:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    class Sink:
        def __init__(self) -> None:
            self.parts: list[bytes] = []
            self.size = 0

        def write(self, data: bytes | str) -> None:
            if stop.is_set():
                return  # the server is being cancelled; drop what still arrives
            if isinstance(data, str):
                data = data.encode()
            self.parts.append(data)
            self.size += len(data)
            if self.size >= chunk_bytes:
                self.flush()

        def flush(self) -> None:
            if self.parts:
                put(b"".join(self.parts))
                self.parts, self.size = [], 0

    def run() -> None:
        sink = Sink()
        try:
            with raw.cursor() as cursor:
                cursor.copy_expert(sql, sink, size=1 << 16)
            sink.flush()
            put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc if not stop.is_set() else _CopyAborted())

    worker = threading.Thread(target=run, name="export-copy", daemon=True)
    worker.start()
    finished = False
    try:
        while True:
            item = chunks.get()
            if item is None:
                finished = True
                return
            if isinstance(item, BaseException):
                finished = True
                raise item
            yield item
    finally:
        if not finished:
            stop.set()
            if not connection.in_atomic_block:
                # Outside a transaction a cancelled statement harms nothing: stop the server now.
                # Inside one it would abort the transaction, so the rest is drained and dropped.
                try:
                    raw.cancel()
                except Exception:  # noqa: BLE001 - the statement may have just ended
                    pass
        worker.join()


def uses_copy() -> bool:
    return connection.vendor == "postgresql"


def iter_csv(study: Study, *, identities: bool = False) -> Iterator[bytes]:
    """The judgments CSV, by ``COPY`` on PostgreSQL, by the iterator writer elsewhere."""
    if uses_copy():
        return iter_copy(copy_sql(study, identities=identities))
    return iter_csv_python(study, identities=identities)


def iter_export(
    study: Study, *, fmt: str, identities: bool = False, requested_by: str = ""
) -> Iterator[bytes]:
    """Entry point for every export: validates the format and audits identity requests."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if identities:
        audit_log.warning(
            "export with rater identities: study=%s format=%s requested_by=%s",
            study.pk,
            fmt,
            requested_by or "command line",
        )
    if fmt == "csv":
        return iter_csv(study, identities=identities)
    return iter_jsonl(study, identities=identities)


def write_atomic(path: Path, chunks: Iterable[bytes]) -> int:
    """Write chunks to ``path`` through a temporary file in the same folder, then rename.

    A failure midway leaves any earlier file at ``path`` untouched and no partial file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    total = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                total += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return total


# --- data dictionary ----------------------------------------------------------------------

_KIND_TEXT = {
    "int": "integer",
    "float": "decimal number",
    "text": "text",
    "bool": "true/false",
    "datetime": "ISO 8601 UTC timestamp",
}


def data_dictionary_rows(*, identities: bool = False) -> list[dict[str, str]]:
    return [
        {"column": c.name, "type": _KIND_TEXT[c.kind], "description": c.description}
        for c in columns(identities=identities)
    ]


def data_dictionary_csv(*, identities: bool = False) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["column", "type", "description"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(data_dictionary_rows(identities=identities))
    return out.getvalue()


def data_dictionary_markdown(*, identities: bool = False) -> str:
    lines = [
        "# Judgments export: data dictionary",
        "",
        "One row per judgment (tutorial answers excluded), ordered by rater run then position.",
        "Booleans are `true`/`false`; timestamps ISO 8601 UTC; missing values are empty.",
        "",
        "| column | type | description |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{r['column']}` | {r['type']} | {r['description']} |"
        for r in data_dictionary_rows(identities=identities)
    ]
    return "\n".join(lines) + "\n"


def json_safe(value: Any) -> Any:
    """Plain JSON: NaN and infinities become null (strict JSON has neither), other objects str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return json_safe(value.tolist())
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


# --- study package ------------------------------------------------------------------------


def frozen_config(study: Study) -> dict[str, Any]:
    """The study's frozen design and the hash stored when it opened (empty hash for drafts)."""
    return {
        "study_id": study.pk,
        "title": study.title,
        "status": study.status,
        "seed": study.seed,
        "opened_at": study.opened_at.isoformat() if study.opened_at else None,
        "closed_at": study.closed_at.isoformat() if study.closed_at else None,
        "config": study.config,
        "config_sha256": study.config_sha256,
    }


def _readme(study: Study, *, identities: bool, requested_by: str, config_digest: str) -> str:
    ident = (
        f"This package INCLUDES RATER IDENTITIES (usernames, e-mails), exported by admin "
        f"{requested_by or '(command line)'} on {dt.datetime.now(dt.UTC).isoformat()}. Handle as personal data."
        if identities
        else "Raters appear only by pseudonym (rater_pseudonym, assignment_id)."
    )
    return f"""DermGAN Turing Test - study package
Study {study.pk}: {study.title}
Status: {study.status}; config_sha256 (stored when the study opened): {study.config_sha256 or "(draft: not frozen)"}
Generated: {dt.datetime.now(dt.UTC).isoformat()}

Files
- judgments.csv        one row per judgment (tutorial answers excluded); see data_dictionary.csv
- data_dictionary.csv  every column of judgments.csv: name, type, meaning (also data_dictionary.md)
- report.json          the study report (detection, agreement, diagnosis, per-image, response times)
- study_config.json    the frozen study design; study_config.json.sha256 is this file's own sha256,
                       config_sha256 inside it is the hash stored when the study opened
                       (sha256 of study_config.json: {config_digest})

{ident}
Booleans are true/false, timestamps ISO 8601 UTC, missing values are empty fields.
"""


def write_package(
    study: Study,
    target: IO[bytes],
    *,
    identities: bool = False,
    requested_by: str = "",
    report_builder: Callable[[Study], dict[str, Any]] | None = None,
) -> None:
    """Write the study package ZIP into ``target`` (a seekable binary file).

    The judgments CSV is streamed into the archive entry chunk by chunk, so memory stays
    constant; the report is built first, before the export occupies the connection.
    """
    if report_builder is None:
        from turingtest import reports

        def report_builder(s: Study) -> dict[str, Any]:
            return reports.build(s).to_dict()

    report = report_builder(study)
    config_bytes = (json.dumps(frozen_config(study), indent=2, sort_keys=True) + "\n").encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        zf.writestr(
            "README.txt",
            _readme(study, identities=identities, requested_by=requested_by, config_digest=config_digest),
        )
        zf.writestr("study_config.json", config_bytes)
        zf.writestr("study_config.json.sha256", f"{config_digest}  study_config.json\n")
        zf.writestr("report.json", json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")
        zf.writestr("data_dictionary.csv", data_dictionary_csv(identities=identities))
        zf.writestr("data_dictionary.md", data_dictionary_markdown(identities=identities))
        with zf.open("judgments.csv", "w", force_zip64=True) as entry:
            for chunk in iter_export(study, fmt="csv", identities=identities, requested_by=requested_by):
                entry.write(chunk)


def build_package_file(study: Study, **kwargs: Any) -> tempfile._TemporaryFileWrapper:
    """The complete package in a temporary file, rewound; nothing is sent until it is whole."""
    tmp = tempfile.TemporaryFile(prefix="study-package-", suffix=".zip")  # noqa: SIM115 - caller closes
    try:
        write_package(study, tmp, **kwargs)
        tmp.seek(0)
    except BaseException:
        tmp.close()
        raise
    return tmp
