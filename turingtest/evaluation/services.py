"""Evaluation services: fix a run's image sets, create the queued row, enqueue it after commit.

What a run computes is in ``runs`` (executed by ``tasks``); enqueueing goes through
``turingtest.queue``, so a broker that cannot take the task leaves the run failed with
its message instead of queued forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from django.db import transaction

from turingtest import queue
from turingtest.evaluation import tasks
from turingtest.evaluation.models import AugmentationRun, FidelityRun
from turingtest.evaluation.runs import AUTO_CLASSIFIER, MIN_COUNT, augmentation_config
from turingtest.evaluation.selection import EvaluationError, images_select, inputs_sha256
from turingtest.library.models import GenerationBatch, GeneratorCheckpoint, Image

FIDELITY_DEFAULTS = {
    "k": 3,
    "kid_subsets": 100,
    "kid_subset_size": 1000,
    "ms_ssim_size": 64,
    "min_count": MIN_COUNT,
}


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
            inputs_sha256=inputs_sha256(real, synthetic),
            extractor_spec=extractor,
            seed=seed,
            config={**FIDELITY_DEFAULTS, **(config or {})},
            created_by=user,
        )
        if enqueue:
            queue.enqueue_on_commit(
                partial(tasks.compute_fidelity.apply_async, kwargs={"run_pk": run.pk}),
                model=FidelityRun,
                pk=run.pk,
                what="the run",
            )
    run.refresh_from_db()
    return run


# conditions, ratio and seed are columns of the run; every other option declared on
# AugmentationConfig is a setting stored in run.config (plus "progress", set by the platform).
RUN_COLUMNS = ("conditions", "ratio", "seed")


def augmentation_settings() -> set[str]:
    """The option names a run may store in ``config`` (read lazily: generator.augment imports torch)."""
    from generator.augment import config_option_names

    return {name for name in config_option_names() if name not in RUN_COLUMNS} | {"progress"}


def _augmentation_settings_clean(config: dict[str, Any]) -> dict[str, Any]:
    """Refuse unknown settings; store ``arms`` as a JSON list (a command line gives a tuple, a
    ``call_command`` keyword may give "a,b")."""
    unknown = set(config) - augmentation_settings()
    if unknown:
        raise EvaluationError(f"unknown experiment settings: {sorted(unknown)}")
    settings = dict(config)
    arms = settings.get("arms")
    if isinstance(arms, str):
        settings["arms"] = [a.strip() for a in arms.split(",") if a.strip()]
    elif arms is not None:
        settings["arms"] = list(arms)
    return settings


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
    """Fix the real images and the synthetic source, and create a queued run.

    ``config`` holds the experiment's other options (``n_seeds``, ``arms``, ``epochs`` …);
    they are checked here, so a bad one is refused before anything is queued.
    """
    if bool(synthetic_batches) == bool(checkpoint):
        raise EvaluationError("give either synthetic batches or a checkpoint to render from (exactly one)")
    settings = _augmentation_settings_clean(config or {})
    try:
        augmentation_config(conditions=conditions, ratio=ratio, seed=seed, settings=settings).validate()
    except ValueError as exc:
        raise EvaluationError(str(exc)) from None
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
            config=settings,
            created_by=user,
        )
        if synthetic_batches:
            run.synthetic_batches.set(synthetic_batches)
        if enqueue:
            queue.enqueue_on_commit(
                partial(tasks.run_augmentation.apply_async, kwargs={"run_pk": run.pk}),
                model=AugmentationRun,
                pk=run.pk,
                what="the run",
            )
    run.refresh_from_db()
    return run
