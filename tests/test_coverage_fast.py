"""A fast run of benchmarks/coverage.py: the headline intervals cover in simulated studies.

Four cells of the full benchmark (the smallest designs, where a crossed interval is
hardest to get right), 300 seeded studies each. With 300 studies a 95% interval's
empirical coverage has a standard error of about 0.013, so the bounds below are
about three standard errors around the nominal level: a pooled (binomial or DeLong)
interval covers only 0.3–0.7 in these designs and fails them at once.
"""

from __future__ import annotations

import pytest

from benchmarks import coverage

FAST_CELLS = [
    coverage.Cell("crossed", 5, 40, 0.5),
    coverage.Cell("crossed", 5, 40, 0.85),
    coverage.Cell("half", 20, 40, 0.5, seen=0.5),
    coverage.Cell("1:3 biased", 5, 40, 0.5, synthetic_share=0.75, bias=-1.0),
]


@pytest.fixture(scope="module")
def results() -> list[coverage.CellResult]:
    return coverage.run_cells(FAST_CELLS, n_studies=300)


def test_fast_cells_are_cells_of_the_full_benchmark():
    assert set(FAST_CELLS) <= set(coverage.default_cells())


def test_balanced_accuracy_and_auc_intervals_cover_near_nominal(results):
    for r in results:
        assert 0.91 <= r.cover_ba <= 0.985, r
        assert 0.91 <= r.cover_auc <= 0.985, r


def test_type_i_error_at_chance_stays_near_five_percent(results):
    for r in results:
        if r.cell.chance:
            assert r.reject_ba <= 0.09, r
            assert r.reject_auc <= 0.09, r


def test_truth_is_the_intended_balanced_accuracy():
    cell = coverage.Cell("crossed", 5, 40, 0.65)
    d0 = coverage.ability_for(cell)
    ba, auc = coverage.population_truth(cell, d0)
    assert ba == pytest.approx(0.65)
    assert 0.65 < auc < 0.8


def test_the_last_line_is_the_headline(capsys, monkeypatch):
    monkeypatch.setattr(coverage, "default_cells", lambda: FAST_CELLS[:1])
    monkeypatch.setattr("sys.argv", ["coverage.py", "--studies", "20", "--jobs", "1"])
    coverage.main()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("coverage: ratio=") and last.endswith("target=>=0.93")
