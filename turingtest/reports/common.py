"""Small helpers shared by the section builders: warnings, guarded statistics, grouping."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from turingtest import stats
from turingtest.reports.schema import CHANCE


class Warnings(list):
    """The report's warning lines, each once, in the order they first arose."""

    def add(self, message: str) -> None:
        if message not in self:
            self.append(message)


def clean(value: float | None, label: str, warnings: Warnings) -> float | None:
    """A finite float, or None plus a warning: NaN means "undefined for these data"."""
    if value is None or not math.isfinite(value):
        warnings.add(f"{label} is undefined for these data")
        return None
    return float(value)


def attempt(label: str, warnings: Warnings, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a statistic; a ValueError (too little data) becomes a warning and None."""
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        warnings.add(f"{label}: {exc}")
        return None


def prop(
    successes: int, n: int, label: str, warnings: Warnings, *, p0: float = CHANCE, confidence: float = 0.95
) -> stats.ProportionResult | None:
    if n == 0:
        warnings.add(f"{label}: no judgments")
        return None
    return stats.proportion(int(successes), int(n), p0=p0, confidence=confidence)


def group_order(codes: np.ndarray) -> np.ndarray:
    """Stable order grouping equal codes; small codes go through NumPy's O(n) radix sort."""
    if codes.size and 0 <= codes.min() and codes.max() < 2**15:
        return np.argsort(codes.astype(np.int16), kind="stable")
    return np.argsort(codes, kind="stable")


def bin_codes(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Bin index of each value (``len(edges)`` for unknown/NaN); bins are [edge_k, edge_k+1)."""
    codes = np.full(values.shape, len(edges), dtype=np.int64)
    known = np.isfinite(values)
    codes[known] = np.clip(
        np.searchsorted(np.asarray(edges), values[known], side="right") - 1, 0, len(edges) - 1
    )
    return codes


def finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
