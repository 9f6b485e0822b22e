"""The study report: one query into numpy arrays, then ``turingtest.stats``.

``build(study)`` answers the questions of the DermGAN Turing test — can raters tell
synthetic images from real ones, do they agree, do synthetic images still carry their
diagnosis — as a tree of frozen dataclasses. ``StudyReport.to_dict()`` is the JSON the
dashboard, the API, ``study_report`` and the study package use (schema in ``schema``).

Modules, each importing only those below it: ``render`` (JSON, tidy CSV, HTML) →
``tables`` (the one table model, shared with the dashboard) → ``build`` (arrays → report,
no query) → ``headline`` (the reader-study headline) / ``sections`` → ``common`` →
``inputs`` / ``schema``; ``load`` runs the queries and fills ``inputs``.

Which judgments count
---------------------
Tutorial presentations (``Presentation.is_tutorial`` or ``StudyItem.is_tutorial``) are
excluded. Repeated presentations (``repeat_of`` set) are used only for test–retest
agreement; every other statistic uses first showings only, so a repeated image is not
counted twice. A judgment is "correct" when ``says_synthetic`` matches the image kind.

Queries
-------
The judgment rows come from ONE ``values_list`` query (numeric columns only). Image,
rater, condition and progress attributes come from a constant number of small lookup
queries (about seven in all, whatever the size of the study) instead of being repeated
on every joined judgment row: 200 raters × 5,000 images would otherwise carry every
image token 200 times.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from turingtest.reports.build import build_headline, build_report
from turingtest.reports.inputs import Rows, StudyData
from turingtest.reports.load import ROW_FIELDS, judgment_queryset, load_study, read_rows
from turingtest.reports.render import (
    FORMATS,
    headline_csv,
    render,
    render_csv,
    render_html,
    render_json,
    tidy_rows,
)
from turingtest.reports.schema import RT_QUANTILES, SCHEMA_VERSION, Headline, StudyReport
from turingtest.studies.models import Study

__all__ = [
    "FORMATS",
    "Headline",
    "ROW_FIELDS",
    "RT_QUANTILES",
    "SCHEMA_VERSION",
    "Rows",
    "StudyData",
    "StudyReport",
    "build",
    "build_headline",
    "build_report",
    "headline",
    "headline_csv",
    "judgment_queryset",
    "load_study",
    "read_rows",
    "render",
    "render_csv",
    "render_html",
    "render_json",
    "tidy_rows",
]


def build(
    study: Study, *, n_boot: int = 1000, seed: int | None = None, confidence: float = 0.95
) -> StudyReport:
    """Build the full report of ``study`` from its judgments (constant number of queries).

    ``seed`` (default: the study's own seed) makes the bootstrap intervals reproducible;
    ``n_boot`` replicates resample raters and images together.
    """
    rows = read_rows(study)
    return build_report(
        load_study(study),
        rows,
        generated_at=timezone.now().astimezone(dt.UTC).isoformat(),
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
    )


def headline(study: Study, *, confidence: float = 0.95) -> Headline:
    """The headline section of ``study`` alone (the report's queries, no bootstrap).

    Precision planning reads a pilot's variance components from it without paying for
    the full report.
    """
    return build_headline(load_study(study), read_rows(study), confidence=confidence)
