"""The fast CSV writer: PostgreSQL ``COPY (SELECT …) TO STDOUT`` streamed from a thread.

The server formats every value (the outer select mirrors the Python writer's text, formula
neutralisation of text cells included: ``turingtest.csvsafe``), so
the export runs at COPY speed; ``iter_copy`` hands ~1 MiB chunks through a small bounded
queue to the generator the response iterates.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from django.db import connection

from turingtest.csvsafe import SQL_FORMULA_START, SQL_PREFIX
from turingtest.exports.columns import Column, columns, judgment_queryset
from turingtest.studies.models import Study

COPY_CHUNK_BYTES = 1 << 20


# --- PostgreSQL COPY (the fast writer) ---------------------------------------------------


def _sql_format(c: Column) -> str:
    col = f't."x_{c.name}"'
    if c.kind == "bool":
        expr = f"CASE WHEN {col} THEN 'true' WHEN NOT {col} THEN 'false' END"
    elif c.kind == "datetime":
        expr = f"""to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    elif c.kind == "text":
        # csvsafe.csv_text in SQL: a leading formula character gets a quote (CSV injection).
        text = f"{col}::text"
        expr = (
            f"CASE WHEN left({text}, 1) IN {SQL_FORMULA_START} THEN {SQL_PREFIX} || {text} "
            f"ELSE NULLIF({text}, '') END"
        )
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
