"""The study report as a plain dict, cached until new judgments arrive.

``turingtest.reports.build(study).to_dict()`` does the work (one query, arrays, stats); the
cache key carries the judgment count and the latest answer time, so a new or edited answer
gives a new key and nothing stale is ever served.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache

from turingtest import reports
from turingtest.jsonsafe import json_safe
from turingtest.research.progress import state_key
from turingtest.studies.models import Study

REPORT_TIMEOUT_S = 24 * 3600


def study_report(study: Study) -> dict[str, Any]:
    key = f"research:report:v{reports.SCHEMA_VERSION}:{state_key(study)}"  # no stale schema
    report = cache.get(key)
    if report is None:
        report = json_safe(reports.build(study).to_dict())
        cache.set(key, report, REPORT_TIMEOUT_S)
    return report
