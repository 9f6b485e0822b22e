"""python manage.py create_study --title T --real N --synthetic M [--items-per-rater K] [--open] ...

Draws a balanced pool from the image library. The last printed line is ``study <id>``.
``--pilot ID [--plan-raters R] [--target-half-width W]`` also prints the CI half-width to
expect from that study's variance components (``plan:`` lines); unequal real and synthetic
counts are allowed and print a ``note:`` on what that means for raw accuracy.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from turingtest.core import roles
from turingtest.studies import precision, services
from turingtest.studies.models import Study


def default_owner():
    User = get_user_model()
    return (
        User.objects.filter(Q(groups__name=roles.RESEARCHERS) | Q(is_superuser=True)).order_by("pk").first()
    )


class Command(BaseCommand):
    help = "Create a study from the image library (draft unless --open); prints 'study <id>' last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--title", required=True)
        parser.add_argument("--real", type=int, required=True, help="Real images in the pool.")
        parser.add_argument("--synthetic", type=int, required=True, help="Synthetic images in the pool.")
        parser.add_argument("--items-per-rater", type=int, default=None, help="Default: the whole pool.")
        parser.add_argument("--anchors", type=int, default=0, help="Items every rater sees.")
        parser.add_argument("--tutorial", type=int, default=0, help="Labelled examples with feedback first.")
        parser.add_argument("--repeat-fraction", type=float, default=0.0)
        parser.add_argument("--repeat-min-gap", type=int, default=5)
        parser.add_argument("--exposure-ms", type=int, default=None)
        parser.add_argument(
            "--conditions", default="", help="Comma-separated condition codes (default: all)."
        )
        parser.add_argument(
            "--fitzpatrick", default="", help="Comma-separated skin types 1-6 (default: all)."
        )
        parser.add_argument("--no-balance", action="store_true", help="Do not balance conditions.")
        parser.add_argument(
            "--match-fitzpatrick",
            action="store_true",
            help="Match real and synthetic within labelled skin type too (estimated types are left out).",
        )
        parser.add_argument(
            "--unmatched",
            action="store_true",
            help="Explicitly give up matching within condition (recorded in the design; the report warns).",
        )
        parser.add_argument("--diagnosis", action="store_true", help="Ask a diagnosis.")
        parser.add_argument("--no-confidence", action="store_true", help="Do not ask confidence.")
        parser.add_argument("--comment", action="store_true", help="Allow a comment.")
        parser.add_argument("--editable", action="store_true", help="Answers may be changed.")
        parser.add_argument("--show-score", action="store_true")
        parser.add_argument("--instructions", default="", help="Markdown instructions.")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--owner", default=None, help="Username (default: first researcher or superuser)."
        )
        parser.add_argument("--open", action="store_true", help="Open the study (freezes the design).")
        parser.add_argument(
            "--pilot",
            type=int,
            default=None,
            help="Study id of a pilot (or finished study): print the CI half-width to expect from its "
            "variance components.",
        )
        parser.add_argument(
            "--plan-raters", type=int, default=None, help="Raters to plan for (default: the pilot's)."
        )
        parser.add_argument(
            "--target-half-width", type=float, default=None, help="Print the raters or images it needs."
        )

    def handle(self, *args, **o) -> None:
        User = get_user_model()
        if o["owner"]:
            owner = User.objects.filter(username=o["owner"]).first()
            if owner is None:
                raise CommandError(f"no user {o['owner']!r}")
        else:
            owner = default_owner()
            if owner is None:
                raise CommandError("no researcher or superuser exists; create one or pass --owner")
        pilot = None
        if o["pilot"] is not None:
            pilot = Study.objects.filter(pk=o["pilot"]).first()
            if pilot is None:
                raise CommandError(f"no study {o['pilot']} to plan from (--pilot)")
        kinds = [k for k, n in (("real", o["real"]), ("synthetic", o["synthetic"])) if n]
        try:
            fitz = [int(x) for x in o["fitzpatrick"].split(",") if x.strip()]
        except ValueError:
            raise CommandError("--fitzpatrick takes numbers 1-6 separated by commas") from None
        config = {
            "pool": {
                "kinds": kinds or ["real", "synthetic"],
                "conditions": [c.strip() for c in o["conditions"].split(",") if c.strip()],
                "fitzpatrick": fitz,
                "batches": [],
            },
            "n_real": o["real"],
            "n_synthetic": o["synthetic"],
            "balance_conditions": not o["no_balance"],
            "match_fitzpatrick": o["match_fitzpatrick"],
            "unmatched": o["unmatched"],
            "items_per_rater": o["items_per_rater"],
            "n_anchors": o["anchors"],
            "n_tutorial": o["tutorial"],
            "repeat_fraction": o["repeat_fraction"],
            "repeat_min_gap": o["repeat_min_gap"],
            "exposure_ms": o["exposure_ms"],
            "answers_editable": o["editable"],
            "show_score": o["show_score"],
            "questions": {
                "confidence": not o["no_confidence"],
                "diagnosis": o["diagnosis"],
                "comment": o["comment"],
            },
        }
        try:
            study = services.study_create(
                owner=owner, title=o["title"], config=config, instructions=o["instructions"], seed=o["seed"]
            )
            if o["open"]:
                study = services.study_open(study=study)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        n_items = study.items.filter(is_tutorial=False).count()
        self._strata(study)
        self.stdout.write(
            f"{study.status} study {study.title!r}: {n_items} items, owner {owner.get_username()}, seed {study.seed}"
            + (f", design sha256 {study.config_sha256}" if study.config_sha256 else "")
        )
        if o["real"] != o["synthetic"]:
            # Allowed, but the headline must not be read as raw accuracy against 0.5.
            majority = max(o["real"], o["synthetic"]) / (o["real"] + o["synthetic"])
            self.stdout.write(
                f"note: {o['real']} real and {o['synthetic']} synthetic images: raw accuracy is not "
                f"comparable to 0.5 (always giving the majority answer scores {majority:.2f}); the "
                "report's headline is the balanced accuracy, whose chance level is 0.5 for any ratio"
            )
        if pilot is not None:
            self._plan(pilot, o, n_images=o["items_per_rater"] or (o["real"] + o["synthetic"]))
        self.stdout.write(f"study {study.pk}")

    def _strata(self, study) -> None:
        """The stratum table (condition × type × kind: wanted / available / drawn)."""
        pool = study.pool_summary or {}
        self.stdout.write(
            ("matched" if pool.get("matched") else "UNMATCHED (explicit choice)")
            + f"; kept apart from tutorials elsewhere: {pool.get('n_removed_shown_with_feedback', 0)}, "
            f"from rated items elsewhere: {pool.get('n_removed_rated_elsewhere', 0)}"
        )
        self.stdout.write(
            f"{'condition':<10} {'type':<5} {'kind':<10} {'wanted':>6} {'available':>9} {'drawn':>5}"
        )
        for r in pool.get("strata", []):
            wanted = "-" if r["wanted"] is None else r["wanted"]
            fitz = r["fitzpatrick"] or "any"
            self.stdout.write(
                f"{r['condition']:<10} {fitz!s:<5} {r['kind']:<10} {wanted!s:>6} {r['available']:>9} {r['drawn']:>5}"
            )

    def _plan(self, pilot: Study, o: dict, *, n_images: int) -> None:
        try:
            plan = precision.precision_plan(
                pilot=pilot, n_raters=o["plan_raters"], n_images=n_images, target=o["target_half_width"]
            )
        except ValueError as exc:
            raise CommandError(f"precision plan: {exc}") from None
        for line in plan.lines:
            self.stdout.write(f"plan: {line}")
