"""The report's queries: one streamed judgment query plus a constant number of lookups.

``read_rows`` is the one judgment query (numeric columns only, so a chunk converts to a
float array in C); ``load_study`` runs the small lookups (images, conditions, profiles and
the invitation/assignment counts) once, whatever the size of the study. Nothing here
computes a statistic.
"""

from __future__ import annotations

from itertools import islice

import numpy as np
from django.db.models import QuerySet

from turingtest.library.models import Condition, Image, is_labelled_fitzpatrick
from turingtest.reports.inputs import Images, Rows, StudyData
from turingtest.studies import protocol, quality
from turingtest.studies.models import Judgment, RaterProfile, Study
from turingtest.studies.progress import study_participation

ROW_FIELDS = (
    "presentation_id",
    "presentation__repeat_of_id",
    "presentation__assignment__rater_id",
    "presentation__item__image_id",
    "says_synthetic",
    "confidence",
    "diagnosis_id",
    "response_ms",
    "diagnosis_unsure",
)
_CHUNK = 65_536


def judgment_queryset(study: Study) -> QuerySet:
    """The study's non-tutorial judgments as the report reads them (one query)."""
    return (
        Judgment.objects.filter(
            presentation__assignment__study=study,
            presentation__is_tutorial=False,
            presentation__item__is_tutorial=False,
            presentation__item__is_attention_check=False,  # catch images never enter the statistics
        )
        .order_by()
        .values_list(*ROW_FIELDS)
    )


def read_rows(study: Study) -> Rows:
    """Read every judgment row of ``study`` into arrays with one query.

    Streams in chunks (a server-side cursor on PostgreSQL) and converts each chunk
    with one ``np.array`` call, so a million rows never exist as Python tuples at once.
    ``benchmarks/report.py`` times this alone as the baseline of the report.
    """
    iterator = judgment_queryset(study).iterator(chunk_size=_CHUNK)
    pieces: list[list[np.ndarray]] = [[] for _ in ROW_FIELDS]
    while batch := list(islice(iterator, _CHUNK)):
        block = np.array(batch, dtype=np.float64)
        del batch
        for k, column in enumerate(pieces):
            column.append(block[:, k].copy())  # column pieces: the block is freed right away
    columns = []
    for k in range(len(ROW_FIELDS)):
        columns.append(np.concatenate(pieces[k]) if pieces[k] else np.empty(0))
        pieces[k] = []  # peak memory: the arrays plus one column's pieces
    return Rows(*columns)


def _images(study: Study) -> Images:
    rows = list(
        Image.objects.filter(
            study_items__study=study, study_items__is_tutorial=False, study_items__is_attention_check=False
        )
        .order_by("pk")
        .values_list(
            "pk",
            "public_token",
            "kind",
            "condition_id",
            "fitzpatrick",
            "lesion_area_fraction",
            "fitzpatrick_source",
        )
    )
    return Images(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        token=[r[1] for r in rows],
        kind=[r[2] for r in rows],
        is_synthetic=np.array([r[2] == Image.Kind.SYNTHETIC for r in rows], dtype=bool),
        condition=np.array([r[3] for r in rows], dtype=np.int64),
        # Labels only: a type estimated from the photo is not a phototype (ARCHITECTURE.md invariant 9).
        fitzpatrick=np.array(
            [r[4] if is_labelled_fitzpatrick(fitzpatrick=r[4], source=r[6]) else np.nan for r in rows],
            dtype=np.float64,
        ),
        lesion_area_fraction=np.array([np.nan if r[5] is None else r[5] for r in rows], dtype=np.float64),
    )


def load_study(study: Study) -> StudyData:
    """The study's lookups (a constant number of small queries)."""
    conditions = {pk: (code, name) for pk, code, name in Condition.objects.values_list("pk", "code", "name")}
    progress = study_participation(study)  # the same counts the study page and dashboard show
    profiles = {
        user_id: (pseudonym, role, years)
        for user_id, pseudonym, role, years in RaterProfile.objects.filter(
            user__assignments__study=study
        ).values_list("user_id", "pseudonym", "role", "years_experience")
    }
    return StudyData(
        id=int(study.pk),
        title=study.title,
        status=study.status,
        config_sha256=study.config_sha256,
        seed=int(study.seed),
        images=_images(study),
        conditions=conditions,
        n_choices=study.conditions.count() or len(conditions) or 1,
        profiles=profiles,
        roles=tuple(RaterProfile.Role.values),
        n_invited=progress.n_invited,
        n_invitations_used=progress.n_invitations_used,
        n_assignments=progress.n_assignments,
        n_started=progress.n_started,
        n_finished=progress.n_finished,
        design_warnings=tuple(study.design_warnings()),
        **_quality(study),
    )


def _quality(study: Study) -> dict:
    """Rater quality control as plain values: who is left out, and the attention-check scores."""
    rows = quality.rater_quality_rows(study.pk)
    return {
        "excluded": tuple((r.rater_id, r.reason) for r in rows if r.is_excluded),
        "unqualified": tuple(r.rater_id for r in rows if not r.is_excluded and r.qualified is False),
        "attention": tuple((r.rater_id, r.n_passed, r.n_failed) for r in rows if r.n_passed + r.n_failed),
        "qualification_min_correct": protocol.qualification_needed(
            {**protocol.DEFAULT_CONFIG, **(study.config or {})}
        ),
    }
