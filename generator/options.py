"""Options declared once, on a dataclass: a field's default and one-line help build command lines.

A config dataclass (e.g. ``generator.augment.AugmentationConfig``) declares each option as
``name: type = option(default, "help")``; :func:`command_line_arguments` turns those fields
into ``add_argument`` calls for argparse or a Django management command, so the default and
help text live in one place and the command lines cannot drift from the library.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

HELP, ON_COMMAND_LINE = "help", "command_line"


def option(default: Any, help: str, *, command_line: bool = True) -> Any:
    """A dataclass field with one line of help; ``command_line=False`` for values that callers
    set themselves (e.g. from the database) rather than users."""
    if isinstance(default, list | dict | set):
        raise TypeError("use a tuple or None as an option's default, not a mutable container")
    return dataclasses.field(default=default, metadata={HELP: help, ON_COMMAND_LINE: command_line})


def comma_list(value: str) -> tuple[str, ...]:
    """``"MEL, BCC"`` -> ``("MEL", "BCC")``; blanks are dropped, so ``""`` is ``()``."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def command_line_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of dataclass ``cls`` declared with :func:`option` and meant for command lines."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get(ON_COMMAND_LINE)]


def command_line_arguments(cls: type) -> list[tuple[str, dict[str, Any]]]:
    """``(flag, add_argument keywords)`` for each command-line field of ``cls``, in field order.

    ``int``/``float``/``str`` fields parse as that type; ``tuple[str, ...]`` fields take a
    comma-separated list. ``Optional`` is allowed (the default ``None`` means "not given").
    Other types raise TypeError, so an unsupported option fails when the command is built.
    """
    hints = typing.get_type_hints(cls)
    arguments = []
    for f in command_line_fields(cls):
        kind = hints[f.name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if kind in (int, float, str):
            parse = kind
        elif typing.get_origin(kind) is tuple and typing.get_args(kind) == (str, ...):
            parse = comma_list
        else:
            raise TypeError(f"option {cls.__name__}.{f.name}: no command-line form for {kind!r}")
        text = f.metadata[HELP] + ("" if f.default is None else " (default %(default)s)")
        arguments.append(
            ("--" + f.name.replace("_", "-"), {"type": parse, "default": f.default, "help": text})
        )
    return arguments
