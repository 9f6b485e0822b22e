"""``manage.py study_report`` in its three formats, on the hand-built study."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

import pytest
from django.core.management import CommandError, call_command

from tests.report_study import make_study

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("study_report", *args, "--n-boot", "50", stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def study():
    return make_study()[0]


def test_json_format_prints_the_report_tree(study):
    data = json.loads(_run(str(study.pk), "--format", "json"))
    assert data["study"]["id"] == study.pk
    assert data["detection"]["pooled"]["accuracy"]["successes"] == 17
    assert data["meta"]["n_boot"] == 50


def test_csv_format_is_tidy_one_statistic_per_row(study):
    rows = list(csv.DictReader(io.StringIO(_run(str(study.pk), "--format", "csv"))))
    assert list(rows[0]) == ["section", "subject", "statistic", "value"]
    lookup = {(r["section"], r["subject"], r["statistic"]): r["value"] for r in rows}
    assert lookup[("detection", "", "pooled.accuracy.successes")] == "17"
    assert lookup[("detection.per_rater", f"p-R3-{study.pk}", "detection.accuracy.successes")] == "8"
    pair = f"p-R1-{study.pk}|p-R3-{study.pk}"
    assert float(lookup[("agreement.pairwise_kappa", pair, "kappa")]) == pytest.approx(0.5)
    assert lookup[("diagnosis.confusion.real", "NEV|MEL", "count")] == "2"
    assert lookup[("response_times.groups", "all/correct", "q_ms.2")] == "1000.0"
    # undefined values are empty cells, never "nan"
    assert "nan" not in {r["value"].lower() for r in rows}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            assert name not in ("src", "href", "style"), f"external or inline resource: {name}={value}"

    def handle_data(self, data):
        self.text.append(data)


def test_html_format_is_a_self_contained_document_of_tables(study):
    html = _run(str(study.pk), "--format", "html")
    parser = _Collector()
    parser.feed(html)
    assert "script" not in parser.tags
    assert parser.tags.count("table") >= 10
    text = " ".join(parser.text)
    assert "0.708 [" in text  # pooled accuracy 17/24 with its CI
    assert f"p-R3-{study.pk}" in text


def test_output_is_written_atomically_to_a_file(study, tmp_path):
    target = tmp_path / "report.json"
    _run(str(study.pk), "--output", str(target))
    assert json.loads(target.read_text())["study"]["id"] == study.pk
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_unknown_study_and_bad_arguments_fail_clearly(study, tmp_path):
    with pytest.raises(CommandError, match="study 999999 does not exist"):
        _run("999999")
    with pytest.raises(CommandError, match="output folder"):
        _run(str(study.pk), "--output", str(tmp_path / "missing" / "r.json"))
    with pytest.raises(CommandError, match="invalid choice"):
        _run(str(study.pk), "--format", "xml")
