"""``python manage.py reencode_images [--dry-run] [--include-frozen]``: constant-size files for old rows.

Run once after upgrading to the uncompressed encoder (see ``turingtest.images``); running it
again changes nothing. Exits non-zero when files could not be read or would collide.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from turingtest.library.reencode import images_reencode


class Command(BaseCommand):
    help = (
        "Re-encode stored library images to the constant-size uncompressed PNG (same pixels, new "
        "sha256). Images of opened or closed studies are left alone unless --include-frozen."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")
        parser.add_argument(
            "--include-frozen",
            action="store_true",
            help="Also re-encode images of opened or closed studies (their frozen design hash then "
            "no longer verifies; the old sha256 is kept in provenance).",
        )

    def handle(self, *args, **o) -> None:
        report = images_reencode(include_frozen=o["include_frozen"], dry_run=o["dry_run"])
        prefix = "dry run: " if o["dry_run"] else ""
        self.stdout.write(prefix + report.summary())
        if report.skipped_frozen:
            self.stdout.write(
                f"{len(report.skipped_frozen)} images of opened studies still have content-dependent sizes; "
                "rerun with --include-frozen to re-encode them too"
            )
        if report.frozen_studies_changed:
            ids = ", ".join(str(pk) for pk in report.frozen_studies_changed)
            self.stdout.write(f"frozen design hashes changed for studies: {ids}")
        if report.off_size:
            self.stdout.write(
                f"{len(report.off_size)} images are not IMAGE_SIZE pixels: their byte length differs "
                "from the rest (re-import them)"
            )
        problems = [f"image {pk}: {reason}" for pk, reason in report.errors]
        problems += [f"image {pk}: same pixels as image {other}" for pk, other in report.conflicts]
        for line in problems:
            self.stderr.write(line)
        if problems:
            raise CommandError(f"{len(problems)} images could not be re-encoded")
