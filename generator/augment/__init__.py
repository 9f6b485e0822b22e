"""The rare-condition augmentation experiment (DermGAN's third proof), as a library function.

DermGAN (Ghorbani et al. 2020, arXiv:1911.08716) added synthetic images of rare
conditions to a classifier's training data and measured the change on real test
images. :func:`run_augmentation_experiment` does exactly that, reproducibly:

1. split the real images into train and test **by patient** (no patient's images
   on both sides, so the test measures generalisation to new patients, not
   recognition of a patient's other photos), stratified by condition;
2. train the compact classifier (``generator.classifier``) twice with the same
   seed and settings — on the real training images only, and on those plus
   synthetic images of the chosen conditions (default: the rarest) at ``ratio``
   synthetic images per real training image of that condition;
3. evaluate both on the same real test images: top-1 and top-3 accuracy and
   per-condition sensitivity with patient-clustered bootstrap confidence
   intervals, and an exact McNemar test on the paired top-1 outcomes;
4. write ``report.json``, ``report.html`` (with matplotlib plots) and both
   models' checkpoints into ``out_dir``.

Synthetic images come from a :class:`SyntheticSource`: :class:`PoolSource` for
images already in hand (a library generation batch) or :class:`RendererSource`
to render them on the fly from a DermGAN checkpoint.

Modules: ``config`` (the options, declared once) · ``sources`` · ``stats`` (split,
McNemar, clustered bootstrap) · ``experiment`` (the steps: data, train an arm, evaluate,
compare) · ``report`` (plots, HTML, report.json). Every public name is re-exported here.
"""

from __future__ import annotations

from generator.augment.config import (
    DEFAULT_MALIGNANT,
    AugmentationConfig,
    config_arguments,
    config_option_names,
)
from generator.augment.experiment import (
    REPORT_VERSION,
    Arm,
    Evaluation,
    ExperimentData,
    compare,
    evaluate,
    experiment_data,
    run_augmentation_experiment,
    train_arm,
)
from generator.augment.report import render_html, write_report
from generator.augment.sources import ImageLike, PoolSource, RendererSource, SyntheticSource
from generator.augment.stats import evaluate_arms, grouped_split, mcnemar_exact

__all__ = [
    "DEFAULT_MALIGNANT",
    "REPORT_VERSION",
    "Arm",
    "AugmentationConfig",
    "Evaluation",
    "ExperimentData",
    "ImageLike",
    "PoolSource",
    "RendererSource",
    "SyntheticSource",
    "compare",
    "config_arguments",
    "config_option_names",
    "evaluate",
    "evaluate_arms",
    "experiment_data",
    "grouped_split",
    "mcnemar_exact",
    "render_html",
    "run_augmentation_experiment",
    "train_arm",
    "write_report",
]
