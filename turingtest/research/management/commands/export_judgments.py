"""``python manage.py export_judgments STUDY --format csv|jsonl [--output PATH] [--identities]``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from turingtest import exports
from turingtest.studies.models import Study


class Command(BaseCommand):
    help = (
        "Export a study's judgments, one row per judgment (tutorial answers excluded), streamed with "
        "constant memory. Raters appear by pseudonym unless --identities is given (audited)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", type=int, help="Study id.")
        parser.add_argument("--format", choices=exports.FORMATS, default="csv", dest="fmt")
        parser.add_argument(
            "--output",
            type=Path,
            help="File to write (atomically: a failed export leaves no partial file). Default: stdout.",
        )
        parser.add_argument(
            "--identities",
            action="store_true",
            help="Add rater usernames and e-mails. Logged to the turingtest.audit logger.",
        )

    def handle(
        self, *args: Any, study: int, fmt: str, output: Path | None, identities: bool, **options: Any
    ) -> None:
        try:
            study_obj = Study.objects.get(pk=study)
        except Study.DoesNotExist:
            raise CommandError(f"study {study} does not exist") from None
        if output is not None and not output.parent.is_dir():
            raise CommandError(f"output folder {output.parent} does not exist")
        chunks = exports.iter_export(study_obj, fmt=fmt, identities=identities, requested_by="manage.py")
        if output is None:
            out = sys.stdout.buffer if self.stdout._out is sys.stdout else None
            for chunk in chunks:
                if out is not None:
                    out.write(chunk)
                else:
                    self.stdout.write(chunk.decode(), ending="")
            if out is not None:
                out.flush()
            return
        n_bytes = exports.write_atomic(output, chunks)
        self.stderr.write(f"wrote {n_bytes} bytes to {output}")
