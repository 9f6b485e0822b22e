"""A small but complete study with judgments, shared by the exports and research tests.

Real model rows throughout (no mocks): raters with profiles, real and synthetic images with
provenance and lesion geometry, repeats, a tutorial presentation, answers with awkward text.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field

from django.utils import timezone

from tests.factories import (
    AssignmentFactory,
    ConditionFactory,
    ImageFactory,
    RaterFactory,
    ResearcherFactory,
    StudyFactory,
    StudyItemFactory,
)
from turingtest.studies.models import Judgment, Presentation, RaterProfile, Study


@dataclass
class SmallStudy:
    study: Study
    raters: list = field(default_factory=list)
    n_judgments: int = 0
    awkward_comment: str = ""


AWKWARD = 'looks "too smooth", à la GAN;\nsecond line'


def build_small_study(
    *, n_raters: int = 4, n_real: int = 6, n_synthetic: int = 6, seed: int = 7, owner=None
) -> SmallStudy:
    """Every rater answers every item once, plus one repeat; rater 0 also has a tutorial item."""
    rng = random.Random(seed)
    conditions = [
        ConditionFactory(code=code, name=name, map_index=idx)
        for idx, (code, name) in enumerate([("MEL", "Melanoma"), ("NEV", "Nevus"), ("BCC", "Basal cell")])
    ]
    study = StudyFactory(
        owner=owner or ResearcherFactory(),
        status=Study.Status.OPEN,
        config={"questions": {"confidence": True, "diagnosis": True}, "repeat_fraction": 0.1},
        config_sha256="ab" * 32,
        opened_at=timezone.now() - dt.timedelta(days=1),
    )
    study.conditions.set(conditions)
    items = []
    for i in range(n_real + n_synthetic):
        synthetic = i >= n_real
        provenance = (
            {"batch": 3, "index": i, "seed": 1000 + i, "checkpoint_sha256": "c0ffee" * 10 + "abcd"}
            if synthetic
            else {"source": "test"}
        )
        image = ImageFactory(
            kind="synthetic" if synthetic else "real",
            condition=conditions[i % 3],
            fitzpatrick=1 + i % 6,
            lesion_area_fraction=0.05 + 0.02 * i,
            lesion_bbox=[0.1, 0.2, 0.5 + 0.01 * i, 0.75],
            provenance=provenance,
        )
        items.append(StudyItemFactory(study=study, image=image, is_anchor=i == 0))
    tutorial_item = StudyItemFactory(
        study=study, image=ImageFactory(kind="real", condition=conditions[0]), is_tutorial=True
    )
    roles = [RaterProfile.Role.DERMATOLOGIST, RaterProfile.Role.RESIDENT, RaterProfile.Role.CLINICIAN]
    out = SmallStudy(study=study, awkward_comment=AWKWARD)
    base = timezone.now() - dt.timedelta(hours=2)
    for r in range(n_raters):
        rater = RaterFactory()
        RaterProfile.objects.filter(user=rater).update(role=roles[r % 3], years_experience=2 + 3 * r)
        out.raters.append(rater)
        assignment = AssignmentFactory(study=study, rater=rater, seed=r, started_at=base)
        position = 0
        if r == 0:
            Presentation.objects.create(
                assignment=assignment, item=tutorial_item, position=position, is_tutorial=True
            )
            position += 1
        order = items[:]
        rng.shuffle(order)
        skill = 0.5 + 0.1 * r
        presentations = []
        for item in order:
            p = Presentation.objects.create(
                assignment=assignment,
                item=item,
                position=position,
                shown_at=base + dt.timedelta(seconds=position * 10),
            )
            presentations.append(p)
            position += 1
        rep = Presentation.objects.create(
            assignment=assignment,
            item=presentations[0].item,
            position=position,
            repeat_of=presentations[0],
            shown_at=base + dt.timedelta(seconds=position * 10),
        )
        presentations.append(rep)
        for k, p in enumerate(presentations):
            truth = p.item.image.kind == "synthetic"
            says = truth if rng.random() < skill else not truth
            Judgment.objects.create(
                presentation=p,
                client_key=uuid.uuid4(),
                says_synthetic=says,
                confidence=None if k == 1 else rng.randint(1, 5),
                diagnosis=None if k == 2 else p.item.image.condition if rng.random() < 0.7 else conditions[0],
                diagnosis_unsure=k == 3,
                comment=AWKWARD if (r == 0 and k == 0) else "",
                response_ms=800 + rng.randint(0, 4000),
            )
            out.n_judgments += 1
        if r < n_raters - 1:
            assignment.finished_at = base + dt.timedelta(hours=1)
            assignment.save(update_fields=["finished_at"])
    return out


def add_bulk_judgments(study: Study, n: int) -> None:
    """n more judgments by one new rater (items cycled), inserted with bulk_create: for size tests."""
    rater = RaterFactory()
    assignment = AssignmentFactory(study=study, rater=rater, seed=99)
    items = list(study.items.filter(is_tutorial=False))
    now = timezone.now()
    presentations = Presentation.objects.bulk_create(
        [
            Presentation(assignment=assignment, item=items[i % len(items)], position=i, shown_at=now)
            for i in range(n)
        ],
        batch_size=2000,
    )
    Judgment.objects.bulk_create(
        [
            Judgment(
                presentation=p,
                client_key=uuid.uuid4(),
                says_synthetic=i % 3 == 0,
                confidence=1 + i % 5,
                comment="plain, with a comma" if i % 7 == 0 else "",
                response_ms=1000 + i,
            )
            for i, p in enumerate(presentations)
        ],
        batch_size=2000,
    )
