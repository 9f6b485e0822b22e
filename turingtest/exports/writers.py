"""The plain writers: CSV and JSON Lines from the ORM's chunked iterator, any database.

Values are formatted in Python exactly as ``pgcopy``'s SQL formats them (a test compares
both byte for byte on PostgreSQL); ``iter_export`` picks the writer and audits identity
requests; ``write_atomic`` puts chunks into a file without leaving a partial one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from turingtest.csvsafe import csv_text
from turingtest.exports.columns import audit_columns, columns, judgment_queryset
from turingtest.exports.pgcopy import copy_sql, iter_copy, uses_copy
from turingtest.studies.models import Study
from turingtest.trail.services import Action, event_record, study_events

audit_log = logging.getLogger("turingtest.audit")

FORMATS = ("csv", "jsonl")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
ITERATOR_CHUNK_ROWS = 1000


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
    if kind == "json":
        return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if kind == "text":
        return csv_text(str(v))  # never a spreadsheet formula (JSON Lines stays verbatim)
    return str(v)


csv_value = _csv_value  # the one CSV value convention, also for the package's raters.csv


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


_NEEDS_QUOTES = re.compile(r'[",\n\r]').search


def _csv_field(text: str) -> str:
    """One CSV field by PostgreSQL's rule (RFC 4180): quoted when it holds a comma, a quote, LF or CR.

    ``csv.writer`` with ``"\n"`` line ends leaves a bare CR unquoted, which splits the row for
    readers and differs from ``COPY``; so the fields are formatted here.
    """
    return '"' + text.replace('"', '""') + '"' if _NEEDS_QUOTES(text) else text


def iter_csv_python(study: Study, *, identities: bool = False) -> Iterator[bytes]:
    """CSV from the ORM's chunked iterator, formatted in Python (any database)."""
    cols = columns(identities=identities)
    kinds = [c.kind for c in cols]
    parts = [",".join(_csv_field(c.name) for c in cols), "\n"]
    for n, row in enumerate(
        judgment_queryset(study, identities=identities).iterator(chunk_size=ITERATOR_CHUNK_ROWS)
    ):
        parts.append(",".join([_csv_field(_csv_value(k, v)) for k, v in zip(kinds, row)]))
        parts.append("\n")
        if n % 256 == 255:
            yield "".join(parts).encode()
            parts.clear()
    if parts:
        yield "".join(parts).encode()


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


def iter_csv(study: Study, *, identities: bool = False) -> Iterator[bytes]:
    """The judgments CSV, by ``COPY`` on PostgreSQL, by the iterator writer elsewhere."""
    if uses_copy():
        return iter_copy(copy_sql(study, identities=identities))
    return iter_csv_python(study, identities=identities)


def iter_audit_csv(study: Study, *, identities: bool = False) -> Iterator[bytes]:
    """The study's audit events as CSV (``AUDIT_COLUMNS``), oldest first; the client address
    only with identities."""
    cols = audit_columns(identities=identities)
    parts = [",".join(_csv_field(c.name) for c in cols), "\n"]
    rows = study_events(study_id=study.pk).values_list(*[c.expr for c in cols])
    for n, row in enumerate(rows.iterator(chunk_size=ITERATOR_CHUNK_ROWS)):
        parts.append(",".join([_csv_field(_csv_value(c.kind, v)) for c, v in zip(cols, row)]))
        parts.append("\n")
        if n % 256 == 255:
            yield "".join(parts).encode()
            parts.clear()
    yield "".join(parts).encode()


def iter_export(
    study: Study, *, fmt: str, identities: bool = False, requested_by: str = "", export: str = "judgments"
) -> Iterator[bytes]:
    """Entry point for every export: validates the format, leaves an audit event (``export``
    names which one: ``judgments``, or ``package`` when the study package streams its CSV)
    and logs identity requests."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    event_record(
        action=Action.EXPORT,
        obj=study,
        after={"export": export, "format": fmt, "identities": identities, "requested_by": requested_by},
    )
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
