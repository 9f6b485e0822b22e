"""The one JSON sanitizer: strict JSON out of numpy values, NaN, dataclasses and dates."""

from __future__ import annotations

import datetime as dt
import doctest
import json
from dataclasses import dataclass

import numpy as np

from turingtest import jsonsafe
from turingtest.jsonsafe import json_safe


@dataclass(frozen=True)
class _Point:
    x: float
    tags: tuple[str, ...]


def test_the_docstring_example_runs():
    result = doctest.testmod(jsonsafe)
    assert (result.failed, result.attempted) == (0, 2)


def test_nan_infinities_and_numpy_become_plain_json_values():
    out = json_safe({"a": float("nan"), "b": np.float64(0.5), "c": np.arange(3), 4: (np.int64(2), -np.inf)})
    assert out == {"a": None, "b": 0.5, "c": [0, 1, 2], "4": [2, None]}
    assert type(out["b"]) is float and type(out["4"][0]) is int
    assert json_safe(np.float32(np.nan)) is None and json_safe(np.bool_(False)) is False
    json.dumps(out, allow_nan=False)


def test_dataclasses_dates_and_other_objects():
    assert json_safe(_Point(float("inf"), ("a",))) == {"x": None, "tags": ["a"]}
    assert json_safe(dt.date(2024, 5, 6)) == "2024-05-06"
    assert json_safe(dt.datetime(2024, 5, 6, 7, 8, tzinfo=dt.UTC)) == "2024-05-06T07:08:00+00:00"
    assert json_safe(ValueError("bad")) == "bad"  # str() of anything else
