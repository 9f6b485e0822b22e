"""The experiment's options, declared once: defaults and one-line help per field.

The management command and the platform's run settings are built from these fields
(:func:`generator.options.command_line_arguments`), so they never restate a default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from generator.options import command_line_arguments, command_line_fields, option

DEFAULT_MALIGNANT = ("MEL", "BCC", "SCC")
# every arm the experiment knows (descriptions in generator.augment.arms); the default runs all
# but synthetic_oversample. The four in REQUIRED_ARMS make the headline and the null check.
ALL_ARMS = ("baseline", "oversample", "reweight", "synthetic", "copies", "synthetic_oversample")
DEFAULT_ARMS = ALL_ARMS[:5]
REQUIRED_ARMS = ("baseline", "oversample", "synthetic", "copies")
SAVE_MODELS = ("first", "all", "none")


@dataclass(frozen=True)
class AugmentationConfig:
    conditions: tuple[str, ...] | None = option(
        None, "comma-separated codes that get synthetic images; default: the rarest"
    )
    n_rarest: int = option(1, "how many rarest conditions (by training count) when --conditions is not given")
    ratio: float = option(1.0, "synthetic images per real training image of each chosen condition")
    test_fraction: float = option(0.25, "share of each condition's patients held out for testing")
    image_size: int = option(64, "classifier input size in pixels")
    width: int = option(16, "classifier first-stage channels")
    depth: int = option(4, "classifier stages")
    epochs: int = option(10, "training epochs per arm")
    batch_size: int = option(32, "training batch size")
    lr: float = option(1e-3, "learning rate")
    seed: int = option(
        0,
        "one seed for the split, synthetic draws, repeats and the bootstrap; training seeds are seed, seed+1, ...",
    )
    n_seeds: int = option(5, "training seeds per arm; the confidence intervals include their spread")
    arms: tuple[str, ...] = option(DEFAULT_ARMS, "comma-separated arms, from " + ", ".join(ALL_ARMS))
    n_bootstrap: int = option(1000, "seed-and-patient bootstrap draws for the confidence intervals")
    min_count: int = option(20, "per-condition results from fewer test images carry a warning")
    save_models: str = option(
        "first", "classifiers kept beside the report: first (each arm's first seed), all, none"
    )
    device: str = option("auto", "auto = CUDA when available, else cpu, cuda, cuda:1 ...")
    malignant: tuple[str, ...] = option(DEFAULT_MALIGNANT, "highlighted in the report", command_line=False)
    rare: tuple[str, ...] | None = option(
        None, "highlighted as rare; None = the chosen conditions", command_line=False
    )
    progress: bool = option(True, "tqdm bars while training", command_line=False)

    def validate(self) -> None:
        if not self.ratio > 0:
            raise ValueError(f"ratio must be > 0, got {self.ratio}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.n_rarest < 1:
            raise ValueError(f"n_rarest must be ≥ 1, got {self.n_rarest}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be ≥ 1 and batch_size ≥ 2")
        if self.n_bootstrap < 1:
            raise ValueError(f"n_bootstrap must be ≥ 1, got {self.n_bootstrap}")
        if self.n_seeds < 2:
            raise ValueError(
                f"n_seeds must be ≥ 2 (≥ 5 recommended) so the CIs see training variance, got {self.n_seeds}"
            )
        unknown = sorted(set(self.arms) - set(ALL_ARMS))
        missing = [a for a in REQUIRED_ARMS if a not in self.arms]
        if unknown or missing or len(set(self.arms)) != len(self.arms):
            raise ValueError(
                f"arms must be distinct names from {ALL_ARMS} including {REQUIRED_ARMS}; got {self.arms}"
            )
        if self.save_models not in SAVE_MODELS:
            raise ValueError(f"save_models must be one of {SAVE_MODELS}, got {self.save_models!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("conditions", "malignant", "rare", "arms"):
            d[key] = None if d[key] is None else list(d[key])
        return d


def config_arguments() -> list[tuple[str, dict[str, Any]]]:
    """``(flag, add_argument keywords)`` for every option a user sets on a command line."""
    return command_line_arguments(AugmentationConfig)


def config_option_names() -> list[str]:
    """The names of those options (argparse ``dest`` names), in declaration order."""
    return [f.name for f in command_line_fields(AugmentationConfig)]
