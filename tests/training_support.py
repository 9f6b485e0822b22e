"""Helpers for the training-job tests: a few procedural "real" photos with exact masks, stored
through the library's one door, and the options of a tiny job (64 px, ngf 8, a few steps)."""

from __future__ import annotations

from django.core.management import call_command

from turingtest.library.models import Condition, Image
from turingtest.library.store import image_store

# 6 steps in segments of 2 with a checkpoint every 3: three segments, checkpoints at 2, 3, 4, 6.
TINY_JOB = {
    "image_size": 64,
    "ngf": 8,
    "steps": 6,
    "batch_size": 2,
    "checkpoint_every": 3,
    "segment_steps": 2,
}


def library_photos(
    specs=(("MEL", 2), ("NEV", 3), ("MEL", 5), ("NEV", 2)), *, with_mask: bool = True
) -> list[Image]:
    """Procedural stand-ins for real photos, one per (condition, Fitzpatrick type), with their masks."""
    from generator.data import procedural_sample

    if not Condition.objects.filter(code="MEL").exists():
        call_command("loaddata", "fixtures/conditions.json", verbosity=0)
    photos = []
    for seed, (condition, fitzpatrick) in enumerate(specs, start=100 * Image.objects.count()):
        sample = procedural_sample(seed=seed, size=64, condition=condition, fitzpatrick=fitzpatrick)
        photos.append(
            image_store(
                pil_image=sample.image,
                kind=Image.Kind.REAL,
                condition=condition,
                provenance={"procedural": True, "seed": seed},
                mask=sample.mask if with_mask else None,
                fitzpatrick=fitzpatrick,
            )
        )
    return photos
