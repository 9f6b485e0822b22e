"""A small constructed study whose answers are known by hand (for the report tests).

Three raters see four real and four synthetic images of two conditions, once each;
rater R1 also has a tutorial judgment (never counted) and two repeats (test–retest).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from django.utils import timezone

from tests.factories import (
    AssignmentFactory,
    ConditionFactory,
    ImageFactory,
    RaterFactory,
    StudyFactory,
    StudyItemFactory,
)
from turingtest.studies.models import Invitation, Judgment, Presentation, RaterProfile

T, F = True, False
# says_synthetic of each rater on r1 r2 r3 r4 | s1 s2 s3 s4
ANSWERS = {
    "R1": [F, F, F, T, T, T, T, F],  # 6/8 correct
    "R2": [F, T, F, T, T, F, F, F],  # 3/8 correct
    "R3": [F, F, F, F, T, T, T, T],  # 8/8 correct
}
CONFIDENCE = {"R1": 3, "R2": 3, "R3": 5}
# Diagnosis answered: "ok" = true condition, "MEL" = always melanoma, "swap" = the other one.
DIAGNOSIS_MODE = {"R1": "ok", "R2": "MEL", "R3": "real-ok-synthetic-swap"}
PROFILES = {
    "R1": (RaterProfile.Role.DERMATOLOGIST, 12),
    "R2": (RaterProfile.Role.RESIDENT, 2),
    "R3": (RaterProfile.Role.CLINICIAN, 25),
}


def make_study(raters=("R1", "R2", "R3"), *, extra_raters: int = 0):
    mel = ConditionFactory(code="MEL", name="Melanoma", map_index=0)
    nev = ConditionFactory(code="NEV", name="Nevus", map_index=1)
    study = StudyFactory(seed=11)
    study.conditions.set([mel, nev])
    images = {}
    for name in ["r1", "r2", "r3", "r4", "s1", "s2", "s3", "s4"]:
        images[name] = ImageFactory(
            kind="synthetic" if name.startswith("s") else "real",
            condition=mel if name[1] in "12" else nev,
            fitzpatrick=2 if name[1] == "1" else 5,
            lesion_area_fraction=0.02 if name[1] in "12" else 0.2,
            sha256=hashlib.sha256(f"{study.pk}-{name}".encode()).hexdigest(),
        )
    items = {name: StudyItemFactory(study=study, image=img) for name, img in images.items()}
    tutorial = StudyItemFactory(study=study, image=ImageFactory(kind="real", condition=mel), is_tutorial=True)
    base = timezone.now() - dt.timedelta(hours=1)
    users = {}
    names = list(raters) + [f"X{k}" for k in range(extra_raters)]
    for name in names:
        user = RaterFactory()
        role, years = PROFILES.get(name, (RaterProfile.Role.OTHER, 7))
        RaterProfile.objects.filter(user=user).update(
            pseudonym=f"p-{name}-{study.pk}", role=role, years_experience=years
        )
        users[name] = user
        answers = ANSWERS.get(name, ANSWERS["R1"])
        assignment = AssignmentFactory(
            study=study, rater=user, started_at=base, finished_at=None if name == "R2" else base
        )
        first = {}
        position = 0
        if name == "R1":  # a tutorial judgment that must never count
            p = Presentation.objects.create(
                assignment=assignment, item=tutorial, position=position, is_tutorial=True
            )
            judge(p, says=True, confidence=5, diagnosis=nev, ms=50)
            position += 1
        for k, img_name in enumerate(images):
            p = Presentation.objects.create(assignment=assignment, item=items[img_name], position=position)
            position += 1
            first[img_name] = p
            truth_syn = img_name.startswith("s")
            img = images[img_name]
            mode = DIAGNOSIS_MODE.get(name, "ok")
            other = nev if img.condition_id == mel.pk else mel
            if mode == "ok":
                diag = img.condition
            elif mode == "MEL":
                diag = mel
            else:
                diag = other if truth_syn else img.condition
            if name == "R3" and img_name == "s4":
                diag = None
            correct = answers[k] == truth_syn
            judge(
                p,
                says=answers[k],
                confidence=CONFIDENCE.get(name, 3),
                diagnosis=diag,
                ms=(1000 if correct else 3000) if not (name == "R2" and img_name == "r1") else None,
            )
        if name == "R1":  # repeats: s1 answered the same, r1 answered differently
            for img_name, says in (("s1", True), ("r1", True)):
                p = Presentation.objects.create(
                    assignment=assignment, item=items[img_name], position=position, repeat_of=first[img_name]
                )
                position += 1
                judge(p, says=says, confidence=2, diagnosis=images[img_name].condition, ms=999_999)
    # a rater who accepted but never started, and invitations
    AssignmentFactory(study=study, rater=RaterFactory())
    for k in range(5):
        Invitation.objects.create(
            study=study,
            token_sha256=hashlib.sha256(f"{study.pk}-{k}".encode()).hexdigest(),
            expires_at=timezone.now() + dt.timedelta(days=3),
            used_at=timezone.now() if k < 4 else None,
        )
    return study, images, users


def judge(p, *, says, confidence, diagnosis, ms):
    Judgment.objects.create(
        presentation=p,
        client_key=uuid.uuid4(),
        says_synthetic=says,
        confidence=confidence,
        diagnosis=diagnosis,
        response_ms=ms,
    )
