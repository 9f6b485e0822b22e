"""The report-to-tables renderer: every scalar in the report reaches a table cell."""

from __future__ import annotations

from turingtest.research.tables import report_sections

REPORT = {
    "schema_version": 1,
    "detection": {
        "pooled": {
            "n": 40,
            "accuracy": {"proportion": 0.625, "ci_low": 0.47, "ci_high": 0.76},
            "d_prime": None,
        },
        "per_rater": [
            {"rater": "abc", "role": "resident", "detection": {"n": 20, "accuracy": {"proportion": 0.5}}},
            {
                "rater": "def",
                "role": "dermatologist",
                "detection": {"n": 20, "accuracy": {"proportion": 0.75}},
            },
        ],
    },
    "images": {"most_convincing": ["t1", "t2"]},
    "diagnosis": {
        "confusion": {"labels": ["MEL", "NEV"], "real": [[3, 1], [0, 4]], "synthetic": [[2, 2], [1, 3]]}
    },
    "warnings": ["ignored"],
}


def _cells(sections) -> list[str]:
    return [cell for s in sections for t in s.tables for row in t.rows for cell in row]


def test_each_top_level_key_becomes_a_section_and_warnings_are_left_to_the_page():
    sections = report_sections(REPORT)
    assert [s.title for s in sections] == ["Schema version", "Detection", "Images", "Diagnosis"]


def test_nested_values_lists_of_records_and_missing_values_are_readable():
    sections = report_sections(REPORT)
    cells = _cells(sections)
    assert "0.625" in cells and "—" in cells  # d_prime None shows as a dash
    per_rater = next(t for s in sections for t in s.tables if t.title.endswith("Per rater"))
    assert [row[per_rater.headers.index("rater")] for row in per_rater.rows] == ["abc", "def"]
    assert "[t1, t2]" in cells


def test_long_tables_are_truncated_with_a_count():
    report = {"images": {"per_image": [{"token": str(i), "n": i} for i in range(250)]}}
    table = report_sections(report)[0].tables[0]
    assert len(table.rows) == 200 and table.truncated == 50


def test_labelled_matrices_become_labelled_tables():
    tables = {t.title: t for s in report_sections(REPORT) for t in s.tables}
    real = tables["Diagnosis › Confusion › Real"]
    assert real.headers == ["", "MEL", "NEV"]
    assert real.rows == [["MEL", "3", "1"], ["NEV", "0", "4"]]
    assert "Diagnosis › Confusion › Synthetic" in tables


def test_a_matrix_too_wide_for_a_page_points_to_the_json():
    names = [f"r{i}" for i in range(40)]
    report = {"agreement": {"raters": names, "kappa": [[1.0] * 40 for _ in names]}}
    tables = report_sections(report)[0].tables
    assert any("40 × 40 matrix" in t.rows[0][0] for t in tables)
