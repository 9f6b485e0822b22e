"""Streaming exports of a study's judgments: tidy CSV, JSON Lines and the study package ZIP.

One row per judgment, the columns defined once in ``COLUMNS``: the CSV header, the data
dictionary and the tests all read that list, so they cannot drift apart.

Modules: ``columns`` (``COLUMNS``, the queryset, the data dictionary), ``writers`` (Python
CSV / JSON Lines, ``iter_export``, ``write_atomic``), ``pgcopy`` (PostgreSQL ``COPY``) and
``package`` (the study ZIP). This package re-exports their public names.

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
- Every export (judgments or package) leaves an ``export`` event in the audit trail
  (``turingtest.trail``) naming whether it included identities; the package carries the study's
  events as ``audit.csv`` (``AUDIT_COLUMNS``; the client address only with identities).
- Tutorial answers are not study data: they live in their own table and are never exported;
  a judgment on a tutorial presentation, should one exist, is excluded as well.
- Booleans are ``true``/``false``, timestamps ISO 8601 in UTC with microseconds and a ``Z``,
  missing values and empty text are empty fields.
- CSV text cells that a spreadsheet would run as a formula (leading ``=``, ``+``, ``-``, ``@``,
  tab, carriage return, or a quote) get a ``'`` prefix (``turingtest.csvsafe``); numeric
  columns and JSON Lines are verbatim.
"""

from __future__ import annotations

from turingtest.exports.columns import (
    AUDIT_COLUMNS,
    COLUMNS,
    Column,
    columns,
    data_dictionary_csv,
    data_dictionary_markdown,
    data_dictionary_rows,
    header,
    judgment_queryset,
)
from turingtest.exports.package import build_package_file, frozen_config, write_package
from turingtest.exports.pgcopy import COPY_CHUNK_BYTES, copy_sql, iter_copy, uses_copy
from turingtest.exports.writers import (
    CONTENT_TYPES,
    FORMATS,
    ITERATOR_CHUNK_ROWS,
    audit_log,
    iter_audit_csv,
    iter_csv,
    iter_csv_python,
    iter_export,
    iter_jsonl,
    write_atomic,
)
from turingtest.jsonsafe import json_safe

__all__ = [
    "AUDIT_COLUMNS",
    "COLUMNS",
    "CONTENT_TYPES",
    "COPY_CHUNK_BYTES",
    "FORMATS",
    "ITERATOR_CHUNK_ROWS",
    "Column",
    "audit_log",
    "build_package_file",
    "columns",
    "copy_sql",
    "data_dictionary_csv",
    "data_dictionary_markdown",
    "data_dictionary_rows",
    "frozen_config",
    "header",
    "iter_audit_csv",
    "iter_copy",
    "iter_csv",
    "iter_csv_python",
    "iter_export",
    "iter_jsonl",
    "json_safe",
    "judgment_queryset",
    "uses_copy",
    "write_atomic",
    "write_package",
]
