"""Which library images a study's pool may draw, and what the library can fill.

``candidate_images`` is the one query the pool draw (``services.study_build_pool``) and the
new-study form's live preview (``pool_preview``) share, so the counts a researcher sees while
typing are the ones the draw will meet; ``pool_preview`` runs the very draw on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q

from turingtest.library.models import Condition, Image, is_labelled_fitzpatrick
from turingtest.studies import protocol
from turingtest.studies.models import Study, StudyItem


def candidate_images(config: dict, *, study: Study | None = None) -> list[protocol.Candidate]:
    """The library images the pool filters of ``config`` let a draw consider (the one query).

    ``study``: a draft being redrawn, whose own items do not count as "used elsewhere".
    """
    pool = config["pool"]
    qs = Image.objects.filter(kind__in=pool["kinds"])
    if pool["conditions"]:
        qs = qs.filter(condition__code__in=pool["conditions"])
    if pool["fitzpatrick"]:
        qs = qs.filter(fitzpatrick__in=pool["fitzpatrick"])
    if pool["batches"]:
        # Synthetic images belong to a generation batch; real images have none,
        # so a batch filter only narrows the synthetic side.
        qs = qs.filter(Q(kind=Image.Kind.REAL) | Q(batch_id__in=pool["batches"]))
    other_items = StudyItem.objects.filter(image=OuterRef("pk"))
    if study is not None:
        other_items = other_items.exclude(study=study)
    qs = qs.annotate(
        tutorial_elsewhere=Exists(other_items.filter(is_tutorial=True)),
        rated_elsewhere=Exists(other_items.filter(is_tutorial=False, is_attention_check=False)),
    )
    rows = qs.values_list(
        "pk",
        "kind",
        "condition_id",
        "fitzpatrick",
        "fitzpatrick_source",
        "tutorial_elsewhere",
        "rated_elsewhere",
    )
    return [
        protocol.Candidate(
            pk,
            kind,
            cond,
            fitz if is_labelled_fitzpatrick(fitzpatrick=fitz, source=source) else None,
            tut,
            rated,
        )
        for pk, kind, cond, fitz, source, tut, rated in rows
    ]


def _short_strata(
    exc: protocol.MatchError, codes: dict[int, str]
) -> list[tuple[str, list[protocol.StratumRow]]]:
    """(stratum name, its short kinds) for each stratum ``exc`` names: "MEL × type 3", rows."""
    by_stratum: dict[tuple, dict[str, protocol.StratumRow]] = {}
    for row in exc.strata:
        by_stratum.setdefault((row.condition, row.fitzpatrick), {})[row.kind] = row
    out = []
    for cond, fitz in exc.short:
        rows = by_stratum[(cond, fitz)]
        name = codes.get(cond, str(cond)) + (f" × type {fitz}" if fitz is not None else "")
        kinds = (protocol.REAL, protocol.SYNTHETIC)
        out.append((name, [rows[k] for k in kinds if rows[k].available < (rows[k].wanted or 0)]))
    return out


def match_error(exc: protocol.MatchError) -> ValueError:
    """The protocol's ``MatchError`` with the short strata named by condition code and type."""
    codes = dict(Condition.objects.values_list("pk", "code"))
    parts = [
        name + ": " + ", ".join(f"{r.available} of {r.wanted} {r.kind}" for r in short)
        for name, short in _short_strata(exc, codes)
    ]
    return ValueError(
        f"{exc}. Short strata (available of wanted): {'; '.join(parts) or 'none'}. Add images to those "
        "strata, narrow the pool filters, lower the pool size, or explicitly choose an unmatched design."
    )


def strata_table(rows: list, *, codes: dict[int, str] | None = None) -> list[dict]:
    """The stratum table as plain dicts (condition code, type, kind, wanted, available, drawn)."""
    codes = codes if codes is not None else dict(Condition.objects.values_list("pk", "code"))
    return [
        {
            "condition": codes.get(r[0], str(r[0])),
            "fitzpatrick": r[1],
            "kind": r[2],
            "wanted": r[3],
            "available": r[4],
            "drawn": r[5],
        }
        for r in rows
    ]


@dataclass(frozen=True)
class PoolPreview:
    """What the library can give a design: the stratum table and, if the draw fails, why.

    ``strata``: ``strata_table`` rows (``wanted``/``drawn`` filled when the draw got that far);
    ``problems``: one short line each ("MEL: 2 of 6 real wanted are available"); empty when
    the draw succeeds with these filters.
    """

    strata: list[dict]
    n_real: int  # candidates the rated pool may use, per kind
    n_synthetic: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def pool_preview(*, config: dict, seed: int = 0, study: Study | None = None) -> PoolPreview:
    """Run the pool draw of ``config`` on the library without storing anything.

    Feasibility does not depend on the seed (every stratum's counts are what they are), so a
    form without a seed previews with 0. ``config`` must have passed ``config_with_defaults``.
    """
    candidates = candidate_images(config, study=study)
    codes = dict(Condition.objects.values_list("pk", "code"))
    problems: list[str] = []
    try:
        rows = protocol.draw_pool(candidates=candidates, config=config, seed=seed).strata
    except protocol.MatchError as exc:
        rows = exc.strata
        problems = [
            f"{name}: {r.available} of {r.wanted} {r.kind} wanted "
            f"{'is' if r.available == 1 else 'are'} available"
            for name, short in _short_strata(exc, codes)
            for r in short
        ]
    except ValueError as exc:  # a kind or the tutorial set runs short over the whole pool
        rows = protocol.available_strata(candidates=candidates, config=config)
        text = str(exc)
        problems = [text[:1].upper() + text[1:] + "."]
    table = strata_table(rows, codes=codes)
    return PoolPreview(
        strata=table,
        n_real=sum(r["available"] for r in table if r["kind"] == protocol.REAL),
        n_synthetic=sum(r["available"] for r in table if r["kind"] == protocol.SYNTHETIC),
        problems=problems,
    )
