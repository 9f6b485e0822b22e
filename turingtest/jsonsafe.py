"""``json_safe(value)``: any result tree as plain, strict JSON values.

Strict JSON (``json.dumps(..., allow_nan=False)``, browsers' ``JSON.parse``) has no NaN or
infinity, and ``json`` cannot encode numpy scalars or arrays, so every JSON answer of the
platform (the study report, the study package, checkpoint metadata) goes through this one
function instead of a private copy per module:

- NaN, +inf and −inf become ``None`` (the report adds a warning wherever that happens);
- numpy scalars and arrays become Python numbers and lists (``.tolist()``);
- frozen dataclasses (the report tree) become dicts of their fields, in field order;
- dict keys become strings (JSON object keys are strings), tuples become lists;
- dates and datetimes become ISO 8601 strings; anything else becomes ``str(value)``.

>>> import numpy as np
>>> json_safe({"a": float("nan"), 1: (np.float64(0.5), np.arange(2), np.bool_(True))})
{'a': None, '1': [0.5, [0, 1], True]}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types (see the module docstring for each conversion)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):  # np.float64 is a float subclass: plain float out
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return json_safe(value.tolist())
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)
