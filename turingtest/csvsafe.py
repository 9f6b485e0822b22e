"""``csv_text(value)``: a text cell a spreadsheet will show as text, never run as a formula.

Spreadsheets (Excel, LibreOffice, Google Sheets) treat a cell that starts with ``=``, ``+``,
``-`` or ``@`` as a formula, and a leading tab or carriage return can hide one; a rater's
comment ``=HYPERLINK("http://evil", "click")`` would otherwise become a live link in the
researcher's spreadsheet (CSV injection). OWASP's rule: prefix such a cell with a single
quote, which spreadsheets display as text. A cell that already starts with a quote gets one
too, so the rule is exactly reversible: every text cell that starts with ``'`` had one added.

Every CSV the platform writes passes its *text* cells through this one function (numbers
stay numbers: ``-0.25`` in a numeric column is left alone, the column list says which
columns are text). The PostgreSQL ``COPY`` export applies the same rule in SQL
(``SQL_FORMULA_START``); JSON and JSON Lines keep every value verbatim.

>>> csv_text("=1+2"), csv_text("-2+3"), csv_text("'quoted"), csv_text("plain"), csv_text("")
("'=1+2", "'-2+3", "''quoted", 'plain', '')
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
PREFIX = "'"

# The same test in SQL, for the COPY writer (one character, so no escaping rules apply).
SQL_FORMULA_START = r"""('=', '+', '-', '@', E'\t', E'\r', '''')"""
SQL_PREFIX = "''''"  # PREFIX as an SQL string literal

NOTE = (
    "Text cells that start with =, +, -, @, a tab or a carriage return are prefixed with a single "
    "quote (') so spreadsheets show them as text instead of running them as formulas (OWASP's "
    "CSV-injection rule); text that already starts with a quote gets one too, so every text cell "
    "that starts with ' had exactly one added: drop it to get the original. Numeric columns are "
    "never changed, and JSON/JSON Lines exports keep every value verbatim."
)


def csv_text(value: str) -> str:
    """``value`` prefixed with ``'`` when a spreadsheet would read it as a formula."""
    return PREFIX + value if value.startswith(FORMULA_START) else value


def csv_cell(value: object) -> object:
    """A cell for ``csv.writer``: strings made safe with :func:`csv_text`, anything else as is."""
    return csv_text(value) if isinstance(value, str) else value
