"""The report's one table model: the HTML report and the dashboard print the same tables.

Cells are checked against the hand-counted study of ``tests/report_study.py`` (the counts
are those of ``tests/test_reports.py``).
"""

from __future__ import annotations

import math
import re

import pytest

from tests.factories import StudyFactory
from tests.report_study import make_study
from turingtest import reports
from turingtest.reports.tables import Estimate, Interval, PValue, cell_text, report_tables
from turingtest.research.tables import MAX_ROWS, report_sections

POOLED = "Pooled (judgment-level, assumes independent judgments)"

pytestmark = pytest.mark.django_db


@pytest.fixture
def known():
    study, images, _ = make_study()
    report = reports.build(study, n_boot=200)
    return study, images, report, report.to_dict()


def _wilson(x: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _prop_text(x: int, n: int) -> str:
    low, high = _wilson(x, n)
    return f"{x / n:.3f} [{low:.3f}, {high:.3f}] ({x}/{n})"


def _tables(d: dict) -> dict[str, reports.tables.Table]:
    return {t.title: t for s in report_tables(d) for t in s.tables}


def test_one_formatter_prints_missing_values_booleans_numbers_and_p_values():
    assert cell_text(None) == "–"
    assert (cell_text(True), cell_text(False)) == ("yes", "no")
    assert cell_text(0.80555) == "0.806" and cell_text(-0.0001) == "0.000" and cell_text(7) == "7"
    assert cell_text(PValue(0.0123)) == "0.012"
    assert cell_text(PValue(2.5e-7)) == "2.5e-07"  # a million judgments: keep the magnitude
    assert cell_text(PValue(0.0)) == "<1e-300"
    assert cell_text(Estimate(0.5, None, 0.75)) == "0.500 [–, 0.750]"
    assert cell_text(Estimate(None, 0.1, 0.2)) == "–"
    assert cell_text(Interval(0.2, 0.4)) == "[0.200, 0.400]"
    prop = {"successes": 3, "n": 4, "proportion": 0.75, "ci_low": 0.3, "ci_high": 0.95}
    assert cell_text(prop) == "0.750 [0.300, 0.950] (3/4)"


def test_the_pooled_detection_table_holds_the_hand_counted_cells(known):
    _, _, _, d = known
    pooled = _tables(d)[POOLED]
    assert pooled.headers == (
        "", "n", "accuracy [95% CI]", "p vs 50%", "sensitivity", "specificity", "d′", "c", "AUC [CI]",
    )  # fmt: skip
    (row,) = pooled.text_rows()
    assert row[:2] == ["pooled", "24"]
    assert row[2] == _prop_text(17, 24)
    assert row[4] == _prop_text(8, 12) and row[5] == _prop_text(9, 12)
    assert row[8].startswith("0.806 [")  # 116 of 144 pairs


def test_per_rater_confusion_and_convincing_tables_name_their_rows(known):
    study, images, _, d = known
    tables = _tables(d)
    per_rater = tables["Per rater"]
    assert per_rater.headers[:4] == ("rater", "role", "years", "n")
    rows = {r[0]: r for r in per_rater.text_rows()}
    assert rows[f"p-R3-{study.pk}"][4] == _prop_text(8, 8)
    assert rows[f"p-R1-{study.pk}"][1:3] == ["dermatologist", "12"]
    real = tables["Confusion matrix, real images (rows: true, columns: answered)"]
    assert real.headers == ("true \\ answered", "MEL", "NEV")
    assert real.text_rows() == [["MEL", "6", "0"], ["NEV", "2", "4"]]
    most = tables["Most convincing synthetic images"]
    assert most.text_rows()[0][:3] == [images["s4"].public_token, "NEV", "3"]
    assert most.text_rows()[0][3] == "0.667"


def test_the_html_report_prints_exactly_the_model_tables(known):
    _, _, report, d = known
    html = reports.render(report, "html")
    model = [t for s in report_tables(d) for t in s.tables]
    assert html.count("<table>") == len(model) >= 10
    for section in report_tables(d):
        assert f"<h2>{section.title}</h2>" in html
    assert f"<td>{_prop_text(17, 24)}</td>" in html
    assert "<p>Pairwise Cohen's κ over 3 rater pairs" in html


def test_the_dashboard_shows_the_same_tables_as_text_and_caps_long_ones(known):
    _, _, _, d = known
    sections = report_sections(d)
    assert [s.title for s in sections] == [s.title for s in report_tables(d)]
    model = _tables(d)
    for s in sections:
        for t in s.tables:
            assert t.rows == model[t.title].text_rows() and t.truncated == 0
    d["detection"]["per_rater"] = d["detection"]["per_rater"] * 84  # 252 rows
    per_rater = next(t for s in report_sections(d) for t in s.tables if t.title == "Per rater")
    assert (len(per_rater.rows), per_rater.truncated) == (MAX_ROWS, 252 - MAX_ROWS)


def test_an_empty_study_still_renders_every_table_with_dashes():
    report = reports.build(StudyFactory(), n_boot=20)
    html = reports.render(report, "html")
    assert "<h2>Warnings</h2>" in html and "the study has no judgments yet" in html
    pooled = _tables(report.to_dict())[POOLED]
    assert pooled.text_rows() == [["pooled", "0", "–", "–", "–", "–", "–", "–", "–"]]
    assert not re.search(r"<script", html)
