"""``python manage.py import_images MANIFEST.csv [--images-root DIR] [--format ...] [--dry-run] [--auto-masks]``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from turingtest.library.imports import IMPORT_FORMATS, images_import
from turingtest.library.models import Image
from turingtest.library.scheduling import mask_job_schedule
from turingtest.library.store import LibraryError


class Command(BaseCommand):
    help = (
        "Import real images from a manifest CSV (image, mask, condition, fitzpatrick, bbox, source, licence), "
        "a PAD-UFES-20 metadata.csv or an ISIC ground-truth CSV. Bad rows are reported with their line "
        "numbers; the good ones are imported together; pixels already in the library are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("manifest", type=Path)
        parser.add_argument(
            "--images-root",
            type=Path,
            default=None,
            help="Folder the image paths are relative to (default: the manifest's folder; "
            "PAD-UFES-20: its images/ subfolder).",
        )
        parser.add_argument("--format", choices=IMPORT_FORMATS, default="auto")
        parser.add_argument("--dry-run", action="store_true", help="Validate and report; write nothing.")
        parser.add_argument("--limit", type=int, default=None, help="Only the first N rows (a trial run).")
        parser.add_argument("--strict", action="store_true", help="Exit non-zero when any row is bad.")
        parser.add_argument(
            "--auto-masks",
            action="store_true",
            help="Compute automatic lesion masks (generator.segmentation) for imported images without "
            "one, in the background (a mask job on the default queue; in-process without a broker).",
        )

    def handle(self, *args, **options) -> None:
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if options["verbosity"] < 1:
                return
            if bar is None:
                bar = tqdm(total=total, unit="img", desc="checking", file=self.stderr._out)
            bar.update(done - bar.n)

        try:
            report = images_import(
                manifest=options["manifest"],
                images_root=options["images_root"],
                format=options["format"],
                dry_run=options["dry_run"],
                limit=options["limit"],
                progress=progress,
            )
        except LibraryError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if bar is not None:
                bar.close()
        for error in report.errors:
            self.stderr.write(f"line {error['line']}: {error['reason']}")
        self.stdout.write(("dry run: " if report.is_dry_run else "") + report.summary())
        if options["auto_masks"] and report.imported:
            try:
                job = mask_job_schedule(images=Image.objects.filter(pk__in=report.imported))
            except LibraryError as exc:
                raise CommandError(f"imported, but automatic masks were not scheduled: {exc}") from None
            self.stdout.write(
                f"mask job {job.pk}: {job.status}, {job.n_computed} automatic masks computed, "
                f"{job.n_skipped} images already had one"
            )
        if options["strict"] and report.errors:
            raise CommandError(f"{len(report.errors)} bad rows")
