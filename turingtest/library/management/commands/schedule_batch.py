"""``python manage.py schedule_batch --checkpoint PATH_OR_ID --count N --seed S [--wait]``,
or ``--match-real [--conditions MEL,BCC] [--fitzpatrick 1,2] [--per-real K]`` instead of ``--count``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.forms import ValidationError
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from turingtest import queue
from turingtest.library.checkpoints import checkpoint_register
from turingtest.library.forms import distribution_from_options, parse_codes
from turingtest.library.models import GenerationBatch, GeneratorCheckpoint
from turingtest.library.scheduling import (
    DEFAULT_CHUNK_SIZE,
    batch_schedule,
    batch_schedule_matched,
    batch_wait,
    real_images_select,
)
from turingtest.library.store import LibraryError

# The lesion and skin options of a drawn batch; a matched batch takes these from each real image.
SHAPE_OPTIONS = {
    "area_range": "--area-range",
    "location": "--location",
    "lesions": "--lesions",
    "skin_rgb": "--skin-rgb",
}


class Command(BaseCommand):
    help = (
        "Schedule a DermGAN generation batch. A checkpoint path is registered first (validated by the "
        "generator's loader). Without a broker (the embedded default) the batch renders right here; "
        "with one, workers on queue 'gpu' render it and --wait shows a progress bar until it is done. "
        "With --match-real it renders --per-real synthetic mirrors of every real image that passes "
        "--conditions and --fitzpatrick (same condition, lesion area, location and skin colour). "
        "The last line is 'batch <id> <status> <done>/<count>'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint", required=True, help="A checkpoint file path or a GeneratorCheckpoint id."
        )
        parser.add_argument(
            "--count", type=int, default=None, help="Images to render (not with --match-real)."
        )
        parser.add_argument("--seed", type=int, required=True)
        parser.add_argument("--name", default="", help="Name for a newly registered checkpoint.")
        parser.add_argument(
            "--match-real",
            action="store_true",
            help="Mirror real images: --conditions and --fitzpatrick then filter them ('MEL,BCC', '1,2').",
        )
        parser.add_argument(
            "--per-real",
            type=int,
            default=None,
            help="With --match-real: mirrors per real image (default 1).",
        )
        parser.add_argument(
            "--conditions", default="", help="Condition weights 'MEL=2,NEV=1' (default: all, equally)."
        )
        parser.add_argument(
            "--area-range", default=None, help="Lesion area fraction range 'low,high' (default 0.01,0.08)."
        )
        parser.add_argument("--location", default=None, help="anywhere (default) | centre | 'x0,y0,x1,y1'.")
        parser.add_argument("--lesions", default=None, help="Lesions per image 'min,max' (default 1,1).")
        parser.add_argument(
            "--fitzpatrick", default="", help="Skin type mix '1=1,2=1,...' (default: uniform)."
        )
        parser.add_argument("--skin-rgb", default="", help="Explicit skin colours 'r,g,b;r,g,b' instead.")
        parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
        parser.add_argument("--priority", type=int, default=0, help="0–9.")
        parser.add_argument("--start-at", default="", help="ISO date-time: do not start before.")
        parser.add_argument("--wait", action="store_true", help="Show progress until the batch finishes.")
        parser.add_argument(
            "--timeout", type=float, default=None, help="With --wait: give up after N seconds."
        )

    def _checkpoint(self, value: str, name: str) -> GeneratorCheckpoint:
        if value.isdigit() and not Path(value).exists():
            try:
                return GeneratorCheckpoint.objects.get(pk=int(value))
            except GeneratorCheckpoint.DoesNotExist:
                raise CommandError(f"no checkpoint with id {value}") from None
        try:
            checkpoint = checkpoint_register(path=value, name=name)
        except LibraryError as exc:
            raise CommandError(f"checkpoint rejected: {exc}") from None
        self.stdout.write(f"checkpoint {checkpoint.pk} {checkpoint.sha256[:12]} ({checkpoint.name})")
        return checkpoint

    def handle(self, *args, **options) -> None:
        self._check_combination(options)
        checkpoint = self._checkpoint(options["checkpoint"], options["name"])
        start_at = None
        if options["start_at"]:
            start_at = parse_datetime(options["start_at"])
            if start_at is None:
                raise CommandError(f"--start-at {options['start_at']!r} is not an ISO date-time")
        try:
            if options["match_real"]:
                batch = self._schedule_matched(checkpoint, options, start_at)
            else:
                batch = self._schedule(checkpoint, options, start_at)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except LibraryError as exc:
            raise CommandError(str(exc)) from None
        if options["wait"] and not batch.is_finished and not queue.is_eager():
            batch = self._wait(batch, options["timeout"], options["verbosity"])
        if batch.status == GenerationBatch.Status.FAILED:
            self.stderr.write(f"batch {batch.pk} failed: {batch.error}")
        self.stdout.write(f"batch {batch.pk} {batch.status} {batch.n_done}/{batch.count}")
        if batch.status == GenerationBatch.Status.FAILED:
            raise CommandError(f"batch {batch.pk} failed")

    def _check_combination(self, options: dict) -> None:
        """Refuse options that contradict each other before anything is registered or written."""
        if not options["match_real"]:
            if options["count"] is None:
                raise CommandError("--count is required (or --match-real to mirror real images)")
            if options["per_real"] is not None:
                raise CommandError("--per-real only applies with --match-real")
            return
        if options["count"] is not None:
            raise CommandError(
                "--count does not combine with --match-real: the count is the number of real images "
                "that pass the filters times --per-real"
            )
        given = [flag for key, flag in SHAPE_OPTIONS.items() if options[key]]
        if given:
            raise CommandError(
                f"{', '.join(given)} do not combine with --match-real: each mirror takes its lesion "
                "and skin colour from its real image"
            )

    def _schedule(self, checkpoint: GeneratorCheckpoint, options: dict, start_at) -> GenerationBatch:
        distribution = distribution_from_options(
            conditions=options["conditions"],
            default_conditions=checkpoint.conditions,
            area_range=options["area_range"] or "0.01,0.08",
            location=options["location"] or "anywhere",
            lesions=options["lesions"] or "1,1",
            fitzpatrick="" if options["skin_rgb"] else (options["fitzpatrick"] or "1,2,3,4,5,6"),
            skin_rgbs=options["skin_rgb"].replace(";", "\n"),
        )
        return batch_schedule(
            checkpoint=checkpoint,
            count=options["count"],
            seed=options["seed"],
            distribution=distribution,
            chunk_size=options["chunk_size"],
            start_at=start_at,
            priority=options["priority"],
        )

    def _schedule_matched(self, checkpoint: GeneratorCheckpoint, options: dict, start_at) -> GenerationBatch:
        conditions = parse_codes(options["conditions"], field="--conditions")
        fitzpatrick = parse_codes(options["fitzpatrick"], field="--fitzpatrick")
        types = [int(t) for t in fitzpatrick if t.isdigit() and 1 <= int(t) <= 6]
        if len(types) != len(fitzpatrick):
            raise CommandError(f"--fitzpatrick: {options['fitzpatrick']!r} is not a list of types 1–6")
        images = list(real_images_select(conditions=conditions, fitzpatrick=types))
        if not images:
            raise CommandError(
                "no real image matches --conditions "
                f"{','.join(conditions) or '(any)'} and --fitzpatrick {','.join(fitzpatrick) or '(any)'}"
            )
        per_real = options["per_real"] if options["per_real"] is not None else 1
        batch = batch_schedule_matched(
            checkpoint=checkpoint,
            images=images,
            seed=options["seed"],
            per_real=per_real,
            chunk_size=options["chunk_size"],
            start_at=start_at,
            priority=options["priority"],
        )
        self.stdout.write(f"matching {len(images)} real image(s), {per_real} mirror(s) each")
        n_default = sum(1 for entry in batch.specs[::per_real] if entry["geometry"] == "default")
        if n_default:
            self.stderr.write(
                f"{n_default} real image(s) have no lesion mask or box: their mirrors have a centred lesion"
            )
        return batch

    def _wait(self, batch: GenerationBatch, timeout: float | None, verbosity: int) -> GenerationBatch:
        with tqdm(
            total=batch.count,
            unit="img",
            desc=f"batch {batch.pk}",
            disable=verbosity < 1,
            file=self.stderr._out,
        ) as bar:

            def show(b: GenerationBatch) -> None:
                bar.update(b.n_done - bar.n)
                bar.set_postfix_str(b.status)

            batch = batch_wait(batch=batch, timeout=timeout, on_progress=show)
        if not batch.is_finished:
            raise CommandError(
                f"batch {batch.pk} still {batch.status} after {timeout}s ({batch.n_done}/{batch.count})"
            )
        return batch
