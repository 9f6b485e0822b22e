"""Evaluation services: choose image sets, create runs, enqueue them, and execute them.

The mathematics is in ``generator.metrics`` / ``generator.augment`` (pure); this
module is the bridge from the library's rows and files to those functions and
back to ``FidelityRun`` / ``AugmentationRun`` rows. ``*_create`` resolves the
image ids at creation (what the run will use is fixed and recorded), then
enqueues after commit; ``*_execute`` claims a queued run exactly once
(conditional UPDATE), so a redelivered task does nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from PIL import Image as PILImage

from turingtest.evaluation.models import AugmentationRun, FidelityRun
from turingtest.library.models import Condition, GenerationBatch, GeneratorCheckpoint, Image

logger = logging.getLogger(__name__)

AUTO_CLASSIFIER = "classifier:auto"
FILTER_KEYS = ("condition", "fitzpatrick", "batch", "ids", "procedural", "patient")


class EvaluationError(ValueError):
    """A request the evaluation refuses; the message is meant for the person who made it."""


# ---------------------------------------------------------------------------
# Image sets
# ---------------------------------------------------------------------------


def filter_parse(items: Iterable[str]) -> dict[str, Any]:
    """``["condition=MEL,NEV", "fitzpatrick=5,6"]`` -> ``{"condition": ["MEL", "NEV"], "fitzpatrick": [5, 6]}``.

    Keys: condition (codes), fitzpatrick (1–6), batch (generation batch ids), ids
    (image ids), patient (patient ids), procedural (true/false: procedural demo stand-ins).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in FILTER_KEYS:
            raise EvaluationError(
                f"bad filter {item!r}: use KEY=V1,V2 with KEY one of {', '.join(FILTER_KEYS)}"
            )
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not values:
            raise EvaluationError(f"filter {key} has no values")
        if key == "procedural":
            if len(values) != 1 or values[0].lower() not in {"true", "false"}:
                raise EvaluationError("procedural must be true or false")
            out[key] = values[0].lower() == "true"
        elif key in {"fitzpatrick", "batch", "ids"}:
            try:
                out[key] = sorted(int(v) for v in values)
            except ValueError:
                raise EvaluationError(f"filter {key} takes integers, got {raw!r}") from None
        else:
            out[key] = sorted(values)
    return out


def images_select(*, kind: str, filter: dict[str, Any]) -> QuerySet[Image]:
    """Library images of ``kind`` matching a parsed filter, in id order."""
    unknown = set(filter) - set(FILTER_KEYS)
    if unknown:
        raise EvaluationError(f"unknown filter keys: {sorted(unknown)}")
    qs = Image.objects.filter(kind=kind).select_related("condition").order_by("pk")
    if "condition" in filter:
        codes = list(filter["condition"])
        known = set(Condition.objects.filter(code__in=codes).values_list("code", flat=True))
        if set(codes) - known:
            raise EvaluationError(f"unknown condition codes: {sorted(set(codes) - known)}")
        qs = qs.filter(condition__code__in=codes)
    if "fitzpatrick" in filter:
        qs = qs.filter(fitzpatrick__in=filter["fitzpatrick"])
    if "batch" in filter:
        qs = qs.filter(batch_id__in=filter["batch"])
    if "ids" in filter:
        qs = qs.filter(pk__in=filter["ids"])
    if "patient" in filter:
        qs = qs.filter(patient_id__in=filter["patient"])
    if "procedural" in filter:
        qs = (
            qs.filter(provenance__procedural=True)
            if filter["procedural"]
            else qs.exclude(provenance__procedural=True)
        )
    return qs


def _inputs_sha256(*sets: Sequence[Image]) -> str:
    digest = hashlib.sha256()
    for images in sets:
        for sha in sorted(im.sha256 for im in images):
            digest.update(sha.encode())
        digest.update(b"|")
    return digest.hexdigest()


def _load_pixels(images: Sequence[Image], size: int | None = None) -> list[PILImage.Image]:
    """RGB pixels of library images; ``size`` downsizes on load so large sets stay small in memory."""
    out = []
    for image in images:
        with image.file.open("rb") as fh, PILImage.open(fh) as im:
            rgb = im.convert("RGB")
            out.append(
                rgb.resize((size, size), PILImage.BILINEAR) if size and rgb.size != (size, size) else rgb
            )
    return out


def _ordered(ids: Sequence[int]) -> list[Image]:
    by_id = Image.objects.select_related("condition").in_bulk(list(ids))
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise EvaluationError(f"images of this run were deleted since it was created: {missing[:10]}")
    return [by_id[i] for i in ids]


# ---------------------------------------------------------------------------
# Enqueueing
# ---------------------------------------------------------------------------


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError

    return (OperationalError, ConnectionError, OSError, TimeoutError)


def _enqueue(model: type[FidelityRun] | type[AugmentationRun], task_name: str, run_pk: int) -> None:
    from turingtest.evaluation import tasks

    try:
        getattr(tasks, task_name).apply_async(kwargs={"run_pk": run_pk})
    except _broker_errors() as exc:
        model.objects.filter(pk=run_pk, status=model.Status.QUEUED).update(
            status=model.Status.FAILED, error=f"could not enqueue the run: {exc}", finished=timezone.now()
        )


def _claim(model: type[FidelityRun] | type[AugmentationRun], run_pk: int) -> bool:
    """queued -> running exactly once; False when another delivery already took it."""
    return bool(
        model.objects.filter(pk=run_pk, status=model.Status.QUEUED).update(
            status=model.Status.RUNNING, started=timezone.now(), progress=0.0, error=""
        )
    )


def _progress(model, run_pk: int, fraction: float, message: str) -> None:
    model.objects.filter(pk=run_pk).update(progress=round(float(fraction), 4), progress_message=message[:200])


# ---------------------------------------------------------------------------
# Feature extractors
# ---------------------------------------------------------------------------


def _storage_to_temp(name: str, directory: Path) -> Path:
    path = directory / Path(name).name
    with default_storage.open(name, "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def extractor_resolve(*, spec: str, seed: int, config: dict[str, Any], workdir: Path):
    """(extractor, storage name of an auto-trained classifier or "").

    ``classifier:auto`` trains the compact classifier on *all* real library images
    (seeded) and caches it in storage under a name derived from those images'
    sha256s, the config and the seed — so every run over the same library uses
    the same feature space (same sha256) and its numbers stay comparable.
    """
    from generator.metrics import load_extractor

    if spec != AUTO_CLASSIFIER:
        try:
            return load_extractor(spec), ""
        except ValueError as exc:
            raise EvaluationError(str(exc)) from None
    from generator.classifier import ClassifierConfig, ClassifierExtractor, save_classifier, train_classifier

    reals = list(Image.objects.filter(kind=Image.Kind.REAL).select_related("condition").order_by("pk"))
    codes = sorted({im.condition.code for im in reals})
    if len(codes) < 2:
        raise EvaluationError(
            "classifier:auto trains on the library's real images and needs at least 2 conditions; "
            "import real images or pass --extractor classifier:PATH / inception:PATH"
        )
    cls_config = ClassifierConfig(
        conditions=tuple(codes),
        image_size=int(config.get("classifier_image_size", 64)),
        width=int(config.get("classifier_width", 16)),
        depth=int(config.get("classifier_depth", 4)),
    )
    epochs = int(config.get("classifier_epochs", 10))
    key = hashlib.sha256(
        json.dumps(
            {
                "images": sorted(im.sha256 for im in reals),
                "config": cls_config.to_dict(),
                "epochs": epochs,
                "seed": seed,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    name = f"evaluation/extractors/classifier-auto-{key[:32]}.pt"
    if not default_storage.exists(name):
        model, history = train_classifier(
            _load_pixels(reals, cls_config.image_size),
            [im.condition.code for im in reals],
            cls_config,
            epochs=epochs,
            seed=seed,
            progress=False,
        )
        tmp = workdir / "classifier-auto.pt"
        save_classifier(
            tmp,
            model=model,
            metadata={
                "trained_on": "all real library images",
                "n_images": len(reals),
                "inputs_key": key,
                "loss": history.loss,
            },
        )
        with open(tmp, "rb") as fh:
            saved = default_storage.save(name, ContentFile(fh.read()))
        if saved != name:  # a concurrent run cached it first: use theirs, drop ours
            default_storage.delete(saved)
    local = _storage_to_temp(name, workdir)
    return ClassifierExtractor.from_path(local), name


# ---------------------------------------------------------------------------
# Fidelity
# ---------------------------------------------------------------------------

FIDELITY_DEFAULTS = {"k": 3, "kid_subsets": 100, "kid_subset_size": 1000, "ms_ssim_size": 64}


def fidelity_run_create(
    *,
    batch: GenerationBatch | None = None,
    real_filter: dict[str, Any] | None = None,
    synthetic_filter: dict[str, Any] | None = None,
    extractor: str = AUTO_CLASSIFIER,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    user=None,
    enqueue: bool = True,
) -> FidelityRun:
    """Fix the two image sets and create a queued run (enqueued after commit unless ``enqueue=False``).

    With a ``batch``, the synthetic set is the batch's images and the real set
    defaults to the real images of the conditions the batch contains.
    """
    synthetic_filter = dict(synthetic_filter or {})
    if batch is not None:
        synthetic_filter["batch"] = [batch.pk]
    if not synthetic_filter:
        raise EvaluationError("choose the synthetic set: a batch or a synthetic filter")
    synthetic = list(images_select(kind=Image.Kind.SYNTHETIC, filter=synthetic_filter))
    if not synthetic:
        raise EvaluationError(f"no synthetic images match {synthetic_filter}")
    if real_filter is None:
        real_filter = {"condition": sorted({im.condition.code for im in synthetic})}
    real = list(images_select(kind=Image.Kind.REAL, filter=real_filter))
    if not real:
        raise EvaluationError(f"no real images match {real_filter}")
    if len(real) < 2 or len(synthetic) < 2:
        raise EvaluationError(
            f"need at least 2 images per set, got {len(real)} real and {len(synthetic)} synthetic"
        )
    unknown = (
        set(config or {})
        - set(FIDELITY_DEFAULTS)
        - {
            "classifier_image_size",
            "classifier_width",
            "classifier_depth",
            "classifier_epochs",
        }
    )
    if unknown:
        raise EvaluationError(f"unknown fidelity settings: {sorted(unknown)}")
    with transaction.atomic():
        run = FidelityRun.objects.create(
            batch=batch,
            real_filter=real_filter,
            synthetic_filter=synthetic_filter,
            real_image_ids=[im.pk for im in real],
            synthetic_image_ids=[im.pk for im in synthetic],
            inputs_sha256=_inputs_sha256(real, synthetic),
            extractor_spec=extractor,
            seed=seed,
            config={**FIDELITY_DEFAULTS, **(config or {})},
            created_by=user,
        )
        if enqueue:
            transaction.on_commit(partial(_enqueue, FidelityRun, "compute_fidelity", run.pk))
    run.refresh_from_db()
    return run


def fidelity_run_execute(*, run_pk: int) -> FidelityRun:
    """Compute and store the metrics of a queued run; failures are stored on the row."""
    from generator.metrics import evaluate_images

    if not _claim(FidelityRun, run_pk):
        return FidelityRun.objects.get(pk=run_pk)
    run = FidelityRun.objects.get(pk=run_pk)
    workdir = Path(tempfile.mkdtemp(prefix="dermgan-fidelity-"))
    try:
        cfg = run.config
        _progress(FidelityRun, run_pk, 0.05, "preparing the feature extractor")
        extractor, extractor_file = extractor_resolve(
            spec=run.extractor_spec, seed=run.seed, config=cfg, workdir=workdir
        )
        FidelityRun.objects.filter(pk=run_pk).update(
            extractor_name=extractor.name, extractor_sha256=extractor.sha256, extractor_file=extractor_file
        )
        _progress(FidelityRun, run_pk, 0.4, "loading images")
        real = _ordered(run.real_image_ids)
        synthetic = _ordered(run.synthetic_image_ids)
        _progress(FidelityRun, run_pk, 0.5, "computing metrics")
        result = evaluate_images(
            _load_pixels(real),
            _load_pixels(synthetic),
            extractor,
            real_labels=[im.condition.code for im in real],
            fake_labels=[im.condition.code for im in synthetic],
            k=int(cfg["k"]),
            kid_subsets=int(cfg["kid_subsets"]),
            kid_subset_size=int(cfg["kid_subset_size"]),
            seed=run.seed,
            ms_ssim_size=int(cfg["ms_ssim_size"]) or None,
        )
        FidelityRun.objects.filter(pk=run_pk).update(
            status=FidelityRun.Status.SUCCEEDED,
            results=result.to_dict(),
            progress=1.0,
            progress_message="done",
            finished=timezone.now(),
        )
    except Exception as exc:
        logger.exception("fidelity run %s failed", run_pk)
        FidelityRun.objects.filter(pk=run_pk).update(
            status=FidelityRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished=timezone.now()
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return FidelityRun.objects.get(pk=run_pk)


# ---------------------------------------------------------------------------
# Augmentation experiment
# ---------------------------------------------------------------------------

AUGMENTATION_SETTINGS = {
    "n_rarest",
    "test_fraction",
    "image_size",
    "width",
    "depth",
    "epochs",
    "batch_size",
    "lr",
    "n_bootstrap",
    "device",
    "progress",
}


def augmentation_run_create(
    *,
    real_filter: dict[str, Any] | None = None,
    synthetic_batches: Sequence[GenerationBatch] = (),
    checkpoint: GeneratorCheckpoint | None = None,
    conditions: Sequence[str] = (),
    ratio: float = 1.0,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    user=None,
    enqueue: bool = True,
) -> AugmentationRun:
    """Fix the real images and the synthetic source, and create a queued run."""
    if bool(synthetic_batches) == bool(checkpoint):
        raise EvaluationError("give either synthetic batches or a checkpoint to render from (exactly one)")
    if not ratio > 0:
        raise EvaluationError(f"ratio must be > 0, got {ratio}")
    unknown = set(config or {}) - AUGMENTATION_SETTINGS
    if unknown:
        raise EvaluationError(f"unknown experiment settings: {sorted(unknown)}")
    real_filter = dict(real_filter or {})
    real = list(images_select(kind=Image.Kind.REAL, filter=real_filter))
    codes = {im.condition.code for im in real}
    if len(codes) < 2:
        raise EvaluationError(
            f"the experiment needs real images of at least 2 conditions, got {sorted(codes)}"
        )
    missing = sorted(set(conditions) - codes)
    if missing:
        raise EvaluationError(f"chosen conditions without real images: {missing}")
    synthetic: list[Image] = []
    if synthetic_batches:
        synthetic = list(
            Image.objects.filter(kind=Image.Kind.SYNTHETIC, batch__in=list(synthetic_batches)).order_by("pk")
        )
        if not synthetic:
            raise EvaluationError("the chosen batches hold no images yet")
    with transaction.atomic():
        run = AugmentationRun.objects.create(
            real_filter=real_filter,
            real_image_ids=[im.pk for im in real],
            synthetic_image_ids=[im.pk for im in synthetic],
            checkpoint=checkpoint,
            checkpoint_sha256=checkpoint.sha256 if checkpoint else "",
            conditions=sorted(conditions),
            ratio=ratio,
            seed=seed,
            config=dict(config or {}),
            created_by=user,
        )
        if synthetic_batches:
            run.synthetic_batches.set(synthetic_batches)
        if enqueue:
            transaction.on_commit(partial(_enqueue, AugmentationRun, "run_augmentation", run.pk))
    run.refresh_from_db()
    return run


def augmentation_run_execute(*, run_pk: int) -> AugmentationRun:
    """Run the two-arm experiment; store the report JSON on the row and its files in storage."""
    from generator.augment import AugmentationConfig, PoolSource, RendererSource, run_augmentation_experiment

    if not _claim(AugmentationRun, run_pk):
        return AugmentationRun.objects.get(pk=run_pk)
    run = AugmentationRun.objects.get(pk=run_pk)
    workdir = Path(tempfile.mkdtemp(prefix="dermgan-augment-"))
    try:
        real = _ordered(run.real_image_ids)
        if run.checkpoint_id:
            source = RendererSource(_storage_to_temp(run.checkpoint.file.name, workdir))
        else:
            synthetic = _ordered(run.synthetic_image_ids)
            pool: dict[str, list] = {}
            for im, pixels in zip(synthetic, _load_pixels(synthetic, int(run.config.get("image_size", 64)))):
                pool.setdefault(im.condition.code, []).append((pixels, {"image_id": im.pk, **im.provenance}))
            source = PoolSource(pool)
        conditions_meta = Condition.objects.all()
        config = AugmentationConfig(
            conditions=tuple(run.conditions) or None,
            ratio=run.ratio,
            seed=run.seed,
            rare=tuple(c.code for c in conditions_meta if c.is_rare) or None,
            malignant=tuple(c.code for c in conditions_meta if c.is_malignant),
            **{"progress": False, **run.config},
        )
        out = workdir / "report"
        report = run_augmentation_experiment(
            images=_load_pixels(real, config.image_size),
            labels=[im.condition.code for im in real],
            groups=[im.patient_id or None for im in real],
            ids=[str(im.pk) for im in real],
            synthetic=source,
            config=config,
            out_dir=out,
            on_progress=lambda f, m: _progress(AugmentationRun, run_pk, 0.9 * f, m),
        )
        prefix = f"evaluation/augmentation/run-{run_pk}-{timezone.now():%Y%m%d%H%M%S}"
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            rel = path.relative_to(out).as_posix()
            with open(path, "rb") as fh:
                default_storage.save(f"{prefix}/{rel}", ContentFile(fh.read()))
        AugmentationRun.objects.filter(pk=run_pk).update(
            status=AugmentationRun.Status.SUCCEEDED,
            results=report,
            report_prefix=prefix,
            progress=1.0,
            progress_message="done",
            finished=timezone.now(),
        )
    except Exception as exc:
        logger.exception("augmentation run %s failed", run_pk)
        AugmentationRun.objects.filter(pk=run_pk).update(
            status=AugmentationRun.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            finished=timezone.now(),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return AugmentationRun.objects.get(pk=run_pk)
