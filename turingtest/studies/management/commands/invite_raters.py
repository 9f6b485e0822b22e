"""python manage.py invite_raters STUDY_ID --count N: one absolute invitation URL per line."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from turingtest.studies import services
from turingtest.studies.models import Study


class Command(BaseCommand):
    help = "Create single-use rater invitations and print their URLs (tokens are stored hashed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study_id", type=int)
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument("--days", type=int, default=services.INVITATION_DAYS, help="Validity in days.")

    def handle(self, *args, **o) -> None:
        study = Study.objects.filter(pk=o["study_id"]).first()
        if study is None:
            raise CommandError(f"no study {o['study_id']}")
        if o["count"] < 1 or o["days"] < 1:
            raise CommandError("--count and --days must be at least 1")
        try:
            tokens = services.invitation_create(study=study, count=o["count"], days=o["days"])
        except services.StudyFrozen as exc:
            raise CommandError(str(exc)) from None
        for token in tokens:
            self.stdout.write(services.invitation_url(token))
