"""Library rows with real pixels for the evaluation tests: procedural 32 px images, tiny and varied."""

from __future__ import annotations

import hashlib
import io

from django.core.files.base import ContentFile

from generator.data import procedural_sample
from tests.factories import ConditionFactory, ImageFactory
from turingtest.library.models import GenerationBatch, GeneratorCheckpoint, Image

SIZE = 32


def png(seed: int, condition: str) -> bytes:
    buf = io.BytesIO()
    procedural_sample(seed=seed, size=SIZE, condition=condition).image.save(buf, format="PNG")
    return buf.getvalue()


def conditions() -> dict[str, object]:
    return {
        "MEL": ConditionFactory(code="MEL", is_malignant=True, map_index=0),
        "NEV": ConditionFactory(code="NEV", map_index=5),
        "VASC": ConditionFactory(code="VASC", is_rare=True, map_index=13),
    }


def image(*, kind: str, code: str, seed: int, patient: str = "", batch=None, index=None) -> Image:
    data = png(seed, code)
    return ImageFactory(
        kind=kind,
        condition=conditions()[code],
        file=ContentFile(data, name=f"{hashlib.sha256(data).hexdigest()[:16]}.png"),
        sha256=hashlib.sha256(data + kind.encode()).hexdigest(),
        patient_id=patient,
        batch=batch,
        batch_index=index,
        width=SIZE,
        height=SIZE,
    )


def real_images(counts: dict[str, int], *, per_patient: int = 2, seed0: int = 0) -> list[Image]:
    out, seed = [], seed0
    for code, n in counts.items():
        for i in range(n):
            out.append(
                image(kind=Image.Kind.REAL, code=code, seed=seed, patient=f"{code}-p{i // per_patient}")
            )
            seed += 1
    return out


def batch_with_images(counts: dict[str, int], *, seed0: int = 50_000) -> GenerationBatch:
    ckpt = GeneratorCheckpoint.objects.create(
        name="test",
        file=ContentFile(b"not used", name="c.pt"),
        sha256=hashlib.sha256(str(seed0).encode()).hexdigest(),
    )
    batch = GenerationBatch.objects.create(
        checkpoint=ckpt, count=sum(counts.values()), seed=1, image_size=SIZE, distribution={}
    )
    index, seed = 0, seed0
    for code, n in counts.items():
        for _ in range(n):
            image(kind=Image.Kind.SYNTHETIC, code=code, seed=seed, batch=batch, index=index)
            index += 1
            seed += 1
    return batch
