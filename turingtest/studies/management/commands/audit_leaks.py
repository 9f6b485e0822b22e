"""python manage.py audit_leaks STUDY_ID: does anything but the pixels separate real from synthetic?

Fetches every item as a rater's browser would (rolled back afterwards), prints a table of
per-feature AUCs with 95% CIs and a cross-validated classifier, and exits non-zero when a
feature that is not content-driven is flagged (byte size included: stored images are
constant-size). It also reports whether real and synthetic images share a native
resolution (a warning, not a failure: it is a property of the pixels). Run it before
opening a study.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from django.core.management.base import BaseCommand, CommandError, CommandParser

from turingtest.studies import audit
from turingtest.studies.models import Study


class Command(BaseCommand):
    help = "Audit a study's rater-visible responses for ground-truth leaks (exit 1 when one is flagged)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study_id", type=int)
        parser.add_argument(
            "--json", action="store_true", help="Print the results as JSON instead of a table."
        )

    def handle(self, *args, **o) -> None:
        study = Study.objects.filter(pk=o["study_id"]).first()
        if study is None:
            raise CommandError(f"no study {o['study_id']}")
        try:
            outcome = audit.audit_study(study=study)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if outcome.unconfirmed:
            self.stderr.write(
                "flagged once but not on a second fetch (noise): " + ", ".join(outcome.unconfirmed)
            )
        parity = audit.resolution_parity(study=study)
        if o["json"]:
            payload = {
                "study": study.pk,
                "n_items": outcome.n_items,
                "features": [r.__dict__ | {"flagged": r.flagged} for r in outcome.table],
                "resolution_parity": asdict(parity),
                "failed": outcome.flagged,
            }
            self.stdout.write(json.dumps(payload, indent=2))
        else:
            self.stdout.write(
                f"audit of study {study.pk}: {outcome.n_items} items ({outcome.n_synthetic} synthetic) "
                "fetched as a rater"
            )
            self.stdout.write(audit.format_table(outcome.results, outcome.classifier, outcome.classifier_all))
            self.stdout.write("")
            self.stdout.write(audit.format_resolution_parity(parity))
        if outcome.flagged:
            raise CommandError("features separate real from synthetic: " + ", ".join(outcome.flagged))
        if not o["json"]:  # --json prints one JSON document and nothing else
            self.stdout.write("no leak flagged (AUC > 0.6 with CI above 0.5) outside content-driven features")
