"""What the evaluation tasks execute: claim a queued run once, compute, store the outcome on the row.

The mathematics is in ``generator.metrics`` / ``generator.augment`` (pure, and loading
torch: imported inside the functions that compute); this module is the bridge from the
library's rows and files to those functions and back to ``FidelityRun`` /
``AugmentationRun`` rows. ``*_execute`` claims a queued run exactly once (conditional
UPDATE), so a redelivered task does nothing twice; any failure is written to the row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from turingtest.evaluation.models import AugmentationRun, FidelityRun
from turingtest.evaluation.selection import EvaluationError, images_ordered, pixels_load
from turingtest.library.models import Condition, Image

if TYPE_CHECKING:
    from generator.augment import AugmentationConfig
    from generator.metrics import FeatureExtractor

logger = logging.getLogger(__name__)

AUTO_CLASSIFIER = "classifier:auto"
MIN_COUNT = 20  # per-condition fidelity rows from fewer images per set carry a warning


def _claim(model: type[FidelityRun] | type[AugmentationRun], run_pk: int) -> bool:
    """queued -> running exactly once; False when another delivery already took it."""
    return bool(
        model.objects.filter(pk=run_pk, status=model.Status.QUEUED).update(
            status=model.Status.RUNNING, started=timezone.now(), progress=0.0, error=""
        )
    )


def _progress(
    model: type[FidelityRun] | type[AugmentationRun], run_pk: int, fraction: float, message: str
) -> None:
    model.objects.filter(pk=run_pk).update(progress=round(float(fraction), 4), progress_message=message[:200])


def _storage_to_temp(name: str, directory: Path) -> Path:
    path = directory / Path(name).name
    with default_storage.open(name, "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def extractor_resolve(
    *, spec: str, seed: int, config: dict[str, Any], workdir: Path
) -> tuple[FeatureExtractor, str]:
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
            pixels_load(reals, cls_config.image_size),
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


def _execute(
    model: type[FidelityRun] | type[AugmentationRun],
    run_pk: int,
    *,
    what: str,
    work: Callable[[Any, Path], dict[str, Any]],
) -> Any:
    """Claim the run, call ``work(run, workdir)`` and store the fields it returns as the outcome.

    Any exception becomes the row's error (a task never raises into the broker); the
    scratch folder is removed either way; a run another delivery claimed is left alone.
    """
    if not _claim(model, run_pk):
        return model.objects.get(pk=run_pk)
    run = model.objects.get(pk=run_pk)
    workdir = Path(tempfile.mkdtemp(prefix=f"dermgan-{what}-"))
    try:
        outcome = work(run, workdir)
        model.objects.filter(pk=run_pk).update(
            status=model.Status.SUCCEEDED,
            progress=1.0,
            progress_message="done",
            finished=timezone.now(),
            **outcome,
        )
    except Exception as exc:
        logger.exception("%s run %s failed", what, run_pk)
        model.objects.filter(pk=run_pk).update(
            status=model.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished=timezone.now()
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return model.objects.get(pk=run_pk)


def fidelity_run_execute(*, run_pk: int) -> FidelityRun:
    """Compute and store the metrics of a queued run; failures are stored on the row."""
    return _execute(FidelityRun, run_pk, what="fidelity", work=_fidelity)


def _fidelity(run: FidelityRun, workdir: Path) -> dict[str, Any]:
    from generator.metrics import evaluate_images

    cfg = run.config
    _progress(FidelityRun, run.pk, 0.05, "preparing the feature extractor")
    extractor, extractor_file = extractor_resolve(
        spec=run.extractor_spec, seed=run.seed, config=cfg, workdir=workdir
    )
    FidelityRun.objects.filter(pk=run.pk).update(
        extractor_name=extractor.name, extractor_sha256=extractor.sha256, extractor_file=extractor_file
    )
    _progress(FidelityRun, run.pk, 0.4, "loading images")
    real = images_ordered(run.real_image_ids)
    synthetic = images_ordered(run.synthetic_image_ids)
    _progress(FidelityRun, run.pk, 0.5, "computing metrics")
    result = evaluate_images(
        pixels_load(real),
        pixels_load(synthetic),
        extractor,
        real_labels=[im.condition.code for im in real],
        fake_labels=[im.condition.code for im in synthetic],
        k=int(cfg["k"]),
        kid_subsets=int(cfg["kid_subsets"]),
        kid_subset_size=int(cfg["kid_subset_size"]),
        seed=run.seed,
        ms_ssim_size=int(cfg["ms_ssim_size"]) or None,
        # the real-vs-real baseline splits the real set in halves by patient, so one patient's
        # near-identical photos cannot sit on both sides and flatter the baseline
        real_groups=[im.patient_id or None for im in real],
        min_count=int(cfg.get("min_count", MIN_COUNT)),  # runs stored before min_count existed
    )
    return {"results": result.to_dict()}


def augmentation_config(
    *, conditions: Sequence[str], ratio: float, seed: int, settings: dict[str, Any]
) -> AugmentationConfig:
    """A run's ``AugmentationConfig`` from its columns and stored settings (lists back to tuples,
    as JSON stores them), with the library's rare and malignant conditions highlighted.
    Not validated here: ``AugmentationConfig.validate`` raises ``ValueError``."""
    from generator.augment import AugmentationConfig

    conditions_meta = list(Condition.objects.all())
    settings = {"progress": False, **settings}
    if settings.get("arms") is not None:
        settings["arms"] = tuple(settings["arms"])
    return AugmentationConfig(
        conditions=tuple(conditions) or None,
        ratio=ratio,
        seed=seed,
        rare=tuple(c.code for c in conditions_meta if c.is_rare) or None,
        malignant=tuple(c.code for c in conditions_meta if c.is_malignant),
        **settings,
    )


def augmentation_run_execute(*, run_pk: int) -> AugmentationRun:
    """Run the experiment (every arm, every seed); store the report JSON on the row and its files in storage."""
    return _execute(AugmentationRun, run_pk, what="augmentation", work=_augmentation)


def _augmentation(run: AugmentationRun, workdir: Path) -> dict[str, Any]:
    from generator.augment import PoolSource, RendererSource, run_augmentation_experiment

    config = augmentation_config(
        conditions=run.conditions, ratio=run.ratio, seed=run.seed, settings=run.config
    )
    real = images_ordered(run.real_image_ids)
    if run.checkpoint_id:
        source = RendererSource(_storage_to_temp(run.checkpoint.file.name, workdir))
    else:
        synthetic = images_ordered(run.synthetic_image_ids)
        pool: dict[str, list] = {}
        for im, pixels in zip(synthetic, pixels_load(synthetic, config.image_size)):
            pool.setdefault(im.condition.code, []).append((pixels, {"image_id": im.pk, **im.provenance}))
        source = PoolSource(pool)
    out = workdir / "report"
    report = run_augmentation_experiment(
        images=pixels_load(real, config.image_size),
        labels=[im.condition.code for im in real],
        groups=[im.patient_id or None for im in real],
        ids=[str(im.pk) for im in real],
        synthetic=source,
        config=config,
        out_dir=out,
        on_progress=lambda f, m: _progress(AugmentationRun, run.pk, 0.9 * f, m),
    )
    prefix = f"evaluation/augmentation/run-{run.pk}-{timezone.now():%Y%m%d%H%M%S}"
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        with open(path, "rb") as fh:
            default_storage.save(f"{prefix}/{rel}", ContentFile(fh.read()))
    return {"results": report, "report_prefix": prefix}
