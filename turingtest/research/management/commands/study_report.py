"""``python manage.py study_report STUDY [--format json|csv|html] [--output PATH]``.

json: the ``StudyReport.to_dict()`` tree (schema in ``turingtest/reports/schema.py``).
csv:  tidy rows ``section,subject,statistic,value`` — one statistic per line, e.g.
      ``detection.per_rater,<pseudonym>,detection.accuracy.ci_low,0.41``
      (see ``turingtest.reports.tidy_rows``).
html: one self-contained page of tables (no scripts, no external files).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from turingtest import reports
from turingtest.studies.models import Study


class Command(BaseCommand):
    help = (
        "Print (or write) the statistics report of a study: detection, agreement, diagnosis, "
        "per-image fooling rates, breakdowns and response times."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", type=int, help="Study id.")
        parser.add_argument("--format", choices=reports.FORMATS, default="json", dest="fmt")
        parser.add_argument(
            "--output",
            type=Path,
            help="File to write atomically (a failure leaves no partial file). Default: stdout.",
        )
        parser.add_argument("--n-boot", type=int, default=1000, help="Bootstrap replicates (default 1000).")
        parser.add_argument(
            "--seed", type=int, default=None, help="Bootstrap seed (default: the study's seed)."
        )

    def handle(
        self,
        *args: Any,
        study: int,
        fmt: str,
        output: Path | None,
        n_boot: int,
        seed: int | None,
        **options: Any,
    ) -> None:
        if n_boot < 1:
            raise CommandError(f"--n-boot must be at least 1, got {n_boot}")
        try:
            study_obj = Study.objects.get(pk=study)
        except Study.DoesNotExist:
            raise CommandError(f"study {study} does not exist") from None
        if output is not None and not output.parent.is_dir():
            raise CommandError(f"output folder {output.parent} does not exist")
        text = reports.render(reports.build(study_obj, n_boot=n_boot, seed=seed), fmt)
        if output is None:
            self.stdout.write(text, ending="")
            return
        fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
            os.replace(tmp, output)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.stderr.write(f"wrote {len(text.encode())} bytes to {output}")
