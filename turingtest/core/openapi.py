"""drf-spectacular hooks: make the published schema say what the URL patterns accept."""

from __future__ import annotations

from typing import Any


def path_integers_are_non_negative(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """``<int:…>`` path segments match ``[0-9]+`` only: a negative id never reaches the API view
    (Django answers its HTML 404), so the schema must not offer one (schemathesis found it)."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for param in operation.get("parameters", []) if isinstance(operation, dict) else []:
                schema = param.get("schema", {})
                if param.get("in") == "path" and schema.get("type") == "integer":
                    schema["minimum"] = 0
    return result
