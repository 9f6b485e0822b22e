"""The rare-condition augmentation experiment (DermGAN's third proof), as a library function.

DermGAN (Ghorbani et al. 2020, arXiv:1911.08716) added synthetic images of rare
conditions to a classifier's training data and measured the change on real test
images. A gain measured that way can come from noise — from merely giving the rare class
more weight, or from one lucky training seed — so :func:`run_augmentation_experiment`
measures it against the cheap alternatives, reproducibly:

1. split the real images into train and test **by patient** (no patient's images on
   both sides), stratified by condition — one split for every arm and seed;
2. build the arms (:mod:`generator.augment.arms`): ``baseline``; ``oversample`` (the
   chosen conditions' real images repeated, as many as the synthetic arm adds);
   ``reweight`` (class-weighted loss); ``synthetic`` (plus DermGAN images of the chosen
   conditions, default the rarest, ``ratio`` per real training image); optionally
   ``synthetic_oversample``; and the null check ``copies`` (the repeats, each flipped or
   rotated once: no new information);
3. train every arm with ``n_seeds`` training seeds (the same seeds for every arm);
4. evaluate all on the same real test images — balanced accuracy (primary), macro-F1,
   top-1/top-3 and per-condition sensitivity/specificity — with 95% CIs from a
   seed-and-patient bootstrap (:mod:`generator.augment.bootstrap`), so they include
   training-seed variance; differences are paired by patient and seed;
5. headline: synthetic vs the **best non-synthetic arm**, with the null check (copies vs
   oversampling, which must show no significant gain) beside it;
6. write ``report.json``, ``report.html`` with plots, and the classifiers into ``out_dir``.

Synthetic images come from a :class:`SyntheticSource`: :class:`PoolSource` for
images already in hand (a library generation batch) or :class:`RendererSource`
to render them on the fly from a DermGAN checkpoint.

Modules: ``config`` (the options, declared once) · ``sources`` · ``stats`` (split, seeds,
McNemar) · ``arms`` · ``bootstrap`` (CIs) · ``experiment`` (the steps) · ``report`` (plots,
HTML, report.json). Every public name is re-exported here.
"""

from __future__ import annotations

from generator.augment.arms import ARM_DESCRIPTIONS, Arm, build_arms, repeat_indexes, train_arm
from generator.augment.bootstrap import ArmPredictions, predictions_of, seed_patient_bootstrap
from generator.augment.config import (
    ALL_ARMS,
    DEFAULT_ARMS,
    DEFAULT_MALIGNANT,
    AugmentationConfig,
    config_arguments,
    config_option_names,
)
from generator.augment.experiment import (
    PRIMARY_METRIC,
    REPORT_VERSION,
    Evaluation,
    ExperimentData,
    compare,
    evaluate,
    experiment_data,
    run_augmentation_experiment,
)
from generator.augment.report import render_html, write_report
from generator.augment.sources import ImageLike, PoolSource, RendererSource, SyntheticSource
from generator.augment.stats import grouped_split, mcnemar_exact

__all__ = [
    "ALL_ARMS",
    "ARM_DESCRIPTIONS",
    "DEFAULT_ARMS",
    "DEFAULT_MALIGNANT",
    "PRIMARY_METRIC",
    "REPORT_VERSION",
    "Arm",
    "ArmPredictions",
    "AugmentationConfig",
    "Evaluation",
    "ExperimentData",
    "ImageLike",
    "PoolSource",
    "RendererSource",
    "SyntheticSource",
    "build_arms",
    "compare",
    "config_arguments",
    "config_option_names",
    "evaluate",
    "experiment_data",
    "grouped_split",
    "mcnemar_exact",
    "predictions_of",
    "render_html",
    "repeat_indexes",
    "run_augmentation_experiment",
    "seed_patient_bootstrap",
    "train_arm",
    "write_report",
]
