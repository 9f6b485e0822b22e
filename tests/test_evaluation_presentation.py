"""turingtest.evaluation.presentation: stored results JSON -> the rows and bars the run pages show."""

from __future__ import annotations

from turingtest.evaluation.presentation import (
    arm_order,
    fidelity_bars,
    fidelity_rows,
    interval_text,
    kid_text,
)


def _metrics(**values) -> dict:
    return {"n_real": 10, "n_fake": 8, "fid": None, "kid_mean": None, "kid_std": None, **values}


def test_each_fidelity_row_sits_above_its_real_vs_real_row_with_the_kid_std_method():
    result = {
        "overall": _metrics(fid=12.5, kid_mean=0.02, kid_std=0.004, kid_std_method="bootstrap"),
        "per_condition": {"NEV": _metrics(fid=30.0), "MEL": _metrics(fid=20.0)},
        "baseline": {
            "method": "two disjoint halves of the real set, split by patient",
            "overall": _metrics(fid=9.0, kid_mean=0.001, kid_std=0.002, kid_std_method="subsets"),
            "per_condition": {"MEL": _metrics(fid=15.0)},
        },
    }
    groups = fidelity_rows(result)
    assert [g["name"] for g in groups] == ["overall", "MEL", "NEV"]
    assert groups[0]["cells"][2:4] == ["12.5", "0.02 ± 0.004 (bootstrap)"]
    assert groups[0]["baseline_cells"][2:4] == ["9", "0.001 ± 0.002 (subsets)"]
    assert groups[1]["baseline_cells"][2] == "15" and groups[2]["baseline_cells"] is None

    fid = fidelity_bars(groups)[0]
    assert fid["label"] == "FID"
    assert [(r["name"], r["synthetic"]["px"], r["real"] and r["real"]["px"]) for r in fid["rows"]] == [
        ("overall", 125, 90),
        ("MEL", 200, 150),
        ("NEV", 300, None),  # scaled to the largest value; no baseline, no bar
    ]


def test_a_negative_kid_is_drawn_as_an_empty_bar_and_a_result_without_baseline_has_none():
    groups = fidelity_rows({"overall": _metrics(kid_mean=-0.001, kid_std=0.0, kid_std_method="bootstrap")})
    assert groups[0]["baseline"] is None and groups[0]["baseline_cells"] is None
    assert fidelity_bars(groups) == []  # nothing above zero to scale by
    groups = fidelity_rows(
        {
            "overall": _metrics(kid_mean=-0.001, kid_std=0.0),
            "baseline": {"method": "m", "overall": _metrics(kid_mean=0.002, kid_std=0.001)},
        }
    )
    kid = fidelity_bars(groups)[0]["rows"][0]
    assert (kid["synthetic"]["px"], kid["synthetic"]["text"], kid["real"]["px"]) == (1, "-0.001", 300)


def test_intervals_read_as_value_ci_and_p():
    assert interval_text({"value": 0.5, "ci_low": 0.25, "ci_high": 0.75}) == "0.500 [0.250, 0.750]"
    diff = {"value": 0.1, "ci_low": -0.05, "ci_high": 0.2, "p_value": 0.2}
    assert interval_text(diff, signed=True) == "+0.100 [-0.050, 0.200], p = 0.2"
    assert interval_text({"value": None}) == "–" and kid_text({"kid_mean": None}) == "–"


def test_arms_keep_the_order_the_experiment_ran_them_in_even_when_jsonb_shuffled_the_keys():
    # PostgreSQL's jsonb orders keys by length: this is how a stored report's arms come back
    report = {
        "config": {"arms": ["baseline", "oversample", "reweight", "synthetic", "copies"]},
        "arms": {"copies": {}, "baseline": {}, "reweight": {}, "synthetic": {}, "oversample": {}},
    }
    assert arm_order(report) == ["baseline", "oversample", "reweight", "synthetic", "copies"]
