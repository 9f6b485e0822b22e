"""``manage.py fidelity``: FID/KID/precision-recall/diversity for library images, stored as a FidelityRun."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from turingtest.evaluation import runs, services
from turingtest.evaluation.models import FidelityRun
from turingtest.evaluation.selection import EvaluationError, filter_parse
from turingtest.library.models import GenerationBatch


class Command(BaseCommand):
    help = (
        "Fidelity metrics between real and synthetic library images. Either --batch ID (its images vs the real "
        "images of its conditions) or --synthetic-batch/--synthetic-filter with an optional --real-filter. "
        "Filters are KEY=V1,V2 with KEY in condition, fitzpatrick, batch, ids, patient, procedural. "
        "Every metric is printed beside its real-vs-real baseline (two patient-disjoint halves of the real set). "
        "The last line printed is 'fidelity run <id>'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, help="generation batch id: the synthetic set")
        parser.add_argument("--synthetic-batch", type=int, action="append", default=[], help="repeatable")
        parser.add_argument("--synthetic-filter", action="append", default=[], metavar="KEY=V1,V2")
        parser.add_argument("--real-filter", action="append", default=[], metavar="KEY=V1,V2")
        parser.add_argument(
            "--extractor",
            default=runs.AUTO_CLASSIFIER,
            help="classifier:auto (default: the compact classifier trained on all real library images, cached), "
            "classifier:PATH, or inception[:PATH] (pytorch-fid's pt_inception-2015-12-05-6726825d.pth)",
        )
        parser.add_argument(
            "--inception-weights", metavar="PATH", help="shorthand for --extractor inception:PATH"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--k", type=int, default=3, help="neighbours for precision/recall")
        parser.add_argument("--kid-subsets", type=int, default=100)
        parser.add_argument("--kid-subset-size", type=int, default=1000)
        parser.add_argument(
            "--min-count",
            type=int,
            default=services.FIDELITY_DEFAULTS["min_count"],
            help="per-condition rows from fewer images per set carry a warning",
        )
        parser.add_argument(
            "--async", dest="run_async", action="store_true", help="enqueue instead of waiting"
        )
        parser.add_argument("--json", action="store_true", help="print the results JSON")

    def handle(self, *args, **opts) -> None:
        from generator.metrics import FidelityResult, format_table

        batch = None
        if opts["batch"] is not None:
            batch = GenerationBatch.objects.filter(pk=opts["batch"]).first()
            if batch is None:
                raise CommandError(f"no generation batch {opts['batch']}")
        extractor = (
            f"inception:{opts['inception_weights']}" if opts["inception_weights"] else opts["extractor"]
        )
        try:
            synthetic_filter = filter_parse(opts["synthetic_filter"])
            if opts["synthetic_batch"]:
                synthetic_filter["batch"] = sorted(opts["synthetic_batch"])
            real_filter = filter_parse(opts["real_filter"]) if opts["real_filter"] else None
            run = services.fidelity_run_create(
                batch=batch,
                real_filter=real_filter,
                synthetic_filter=synthetic_filter,
                extractor=extractor,
                seed=opts["seed"],
                config={
                    "k": opts["k"],
                    "kid_subsets": opts["kid_subsets"],
                    "kid_subset_size": opts["kid_subset_size"],
                    "min_count": opts["min_count"],
                },
                enqueue=opts["run_async"],
            )
        except EvaluationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{len(run.real_image_ids)} real vs {len(run.synthetic_image_ids)} synthetic images, extractor {extractor}"
        )
        if opts["run_async"]:
            run.refresh_from_db()
            if run.status == FidelityRun.Status.FAILED:
                raise CommandError(run.error)
            self.stdout.write(f"fidelity run {run.pk}")
            return
        run = runs.fidelity_run_execute(run_pk=run.pk)
        if run.status != FidelityRun.Status.SUCCEEDED:
            raise CommandError(f"fidelity run {run.pk} failed: {run.error}")
        if opts["json"]:
            self.stdout.write(json.dumps(run.results, indent=2))
        else:
            self.stdout.write(format_table(FidelityResult.from_dict(run.results)))
        self.stdout.write(f"fidelity run {run.pk}")
