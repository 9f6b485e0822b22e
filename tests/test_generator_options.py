"""generator.options: options declared once on a dataclass build the command line."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from generator.augment import AugmentationConfig, config_arguments, config_option_names
from generator.options import command_line_arguments, option


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    for flag, kwargs in config_arguments():
        parser.add_argument(flag, **kwargs)
    return parser


def test_the_command_line_defaults_are_the_configs_defaults():
    parsed = vars(_parser().parse_args([]))
    assert list(parsed) == config_option_names()
    assert AugmentationConfig(**parsed) == AugmentationConfig()


def test_flags_parse_to_the_fields_types_and_lists_split_on_commas():
    argv = ["--conditions", "MEL, VASC", "--ratio", "2", "--n-bootstrap", "50", "--device", "cpu"]
    config = AugmentationConfig(**vars(_parser().parse_args(argv)))
    assert config.conditions == ("MEL", "VASC") and config.ratio == 2.0 and config.n_bootstrap == 50
    assert config.device == "cpu"


def test_values_the_platform_sets_stay_off_the_command_line():
    assert {"malignant", "rare", "progress"}.isdisjoint(config_option_names())
    flags = [flag for flag, _ in config_arguments()]
    assert "--n-rarest" in flags and "--test-fraction" in flags


def test_an_option_without_a_command_line_form_fails_when_the_command_is_built():
    @dataclasses.dataclass(frozen=True)
    class Odd:
        weights: dict[str, float] | None = option(None, "no flag can say this")

    with pytest.raises(TypeError, match="Odd.weights"):
        command_line_arguments(Odd)
    with pytest.raises(TypeError, match="mutable"):
        option([], "a shared list")
