"""``manage.py augmentation_experiment``: the classifier augmentation experiment (every arm, every
training seed, the headline and the null check), stored as an AugmentationRun."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator.augment import config_arguments, config_option_names
from generator.options import comma_list
from turingtest.evaluation import runs, services
from turingtest.evaluation.models import AugmentationRun
from turingtest.evaluation.presentation import arm_order, interval_text
from turingtest.evaluation.selection import EvaluationError, filter_parse
from turingtest.evaluation.services import RUN_COLUMNS
from turingtest.library.checkpoints import checkpoint_register
from turingtest.library.models import GenerationBatch, GeneratorCheckpoint
from turingtest.library.store import LibraryError


class Command(BaseCommand):
    help = (
        "Train the compact classifier on a patient-grouped split of real library images in several arms "
        "(baseline, oversampling, class-reweighting, + synthetic images of the chosen conditions (default the "
        "rarest), and the 'copies' null check), each with --n-seeds training seeds, and compare them on the same "
        "real test images with seed-and-patient bootstrap CIs. The headline is synthetic vs the best "
        "non-synthetic arm; the null check (copies vs oversampling) must show no significant gain. Synthetic "
        "images come from --synthetic-batch IDs or are rendered from --checkpoint. "
        "The last line printed is 'augmentation run <id>'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--real-filter", action="append", default=[], metavar="KEY=V1,V2")
        parser.add_argument("--synthetic-batch", type=int, action="append", default=[], help="repeatable")
        parser.add_argument("--checkpoint", help="library checkpoint id, or a checkpoint file to register")
        for flag, kwargs in config_arguments():  # the experiment's options, declared on AugmentationConfig
            parser.add_argument(flag, **kwargs)
        parser.add_argument("--out", help="also copy the report files into this folder")
        parser.add_argument(
            "--async", dest="run_async", action="store_true", help="enqueue instead of waiting"
        )

    def _checkpoint(self, value: str | None) -> GeneratorCheckpoint | None:
        if not value:
            return None
        if value.isdigit():
            ckpt = GeneratorCheckpoint.objects.filter(pk=int(value)).first()
            if ckpt is None:
                raise CommandError(f"no checkpoint {value}")
            return ckpt
        try:
            return checkpoint_register(path=Path(value))
        except LibraryError as exc:
            raise CommandError(str(exc)) from None

    def handle(self, *args, **opts) -> None:
        batches = list(GenerationBatch.objects.filter(pk__in=opts["synthetic_batch"]))
        missing = sorted(set(opts["synthetic_batch"]) - {b.pk for b in batches})
        if missing:
            raise CommandError(f"no generation batch {missing}")
        # conditions, ratio and seed are columns of the run; every other option is a setting
        config = {key: opts[key] for key in config_option_names() if key not in RUN_COLUMNS}
        conditions = opts["conditions"]
        if isinstance(conditions, str):  # call_command(conditions="A,B") skips the parser's type
            conditions = comma_list(conditions)
        config["progress"] = not opts["run_async"]  # tqdm bars on stderr while training here
        try:
            run = services.augmentation_run_create(
                real_filter=filter_parse(opts["real_filter"]),
                synthetic_batches=batches,
                checkpoint=self._checkpoint(opts["checkpoint"]),
                conditions=list(conditions or ()),
                ratio=opts["ratio"],
                seed=opts["seed"],
                config=config,
                enqueue=opts["run_async"],
            )
        except EvaluationError as exc:
            raise CommandError(str(exc)) from None
        if opts["run_async"]:
            run.refresh_from_db()
            if run.status == AugmentationRun.Status.FAILED:
                raise CommandError(run.error)
            self.stdout.write(f"augmentation run {run.pk}")
            return
        run = runs.augmentation_run_execute(run_pk=run.pk)
        if run.status != AugmentationRun.Status.SUCCEEDED:
            raise CommandError(f"augmentation run {run.pk} failed: {run.error}")
        report = run.results
        for name in arm_order(report):  # the row's jsonb does not keep the report's key order
            cell = report["arms"][name]["test"]["balanced_accuracy"]
            self.stdout.write(f"{name:20s} balanced accuracy {interval_text(cell)}")
        self.stdout.write(f"headline: {report['headline']['claim']}")
        null = report["null_check"]
        self.stdout.write(
            f"null check ({null['arm']} − {null['comparator']}): {null['metric']} "
            f"{interval_text(null['difference'], signed=True)} — {'passed' if null['passed'] else 'FAILED'}"
        )
        if not null["passed"]:
            self.stdout.write(f"  {null['meaning']}")
        self.stdout.write(f"report: {default_storage.url(run.file_name('report.html'))}")
        if opts["out"]:
            out = Path(opts["out"])
            files = report["files"]
            for rel in [files["json"], files["html"], *files["plots"], *files["models"]]:
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                with default_storage.open(run.file_name(rel), "rb") as src, open(out / rel, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            self.stdout.write(f"copied the report into {out}")
        self.stdout.write(f"augmentation run {run.pk}")
