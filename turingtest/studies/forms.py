"""Forms: rater registration and consent, researcher study design, invitations."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from turingtest.core import roles
from turingtest.library.models import Condition
from turingtest.studies import protocol
from turingtest.studies.models import SEED_MAX, SEED_MIN, RaterProfile, Study


class ConsentForm(forms.Form):
    agree = forms.BooleanField(required=True, label="I have read the text above and agree to take part.")


class WithdrawForm(forms.Form):
    confirm = forms.BooleanField(label="Yes, I withdraw my consent to take part in this study.")
    erase_identity = forms.BooleanField(
        required=False,
        label="Also erase my name, username and e-mail address (this account can then no longer log in).",
    )


class RaterRegistrationForm(forms.Form):
    """A new rater: the email is the login; role and experience feed the statistics."""

    name = forms.CharField(max_length=150)
    # The email becomes the username: no longer than that column (else a database error, a 500).
    email = forms.EmailField(max_length=get_user_model()._meta.get_field("username").max_length)
    password = forms.CharField(widget=forms.PasswordInput, strip=False, help_text="At least 8 characters.")
    role = forms.ChoiceField(choices=RaterProfile.Role.choices)
    years_experience = forms.IntegerField(min_value=0, max_value=70, label="Years of clinical experience")

    EMAIL_TAKEN = "An account with this email exists: log in instead."

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        User = get_user_model()
        if (
            User.objects.filter(username__iexact=email).exists()
            or User.objects.filter(email__iexact=email).exists()
        ):
            raise forms.ValidationError(self.EMAIL_TAKEN)
        return email

    def clean(self) -> dict:
        data = super().clean()
        if data.get("password"):
            User = get_user_model()
            email = data.get("email") or ""
            try:
                validate_password(data["password"], User(username=email, email=email))
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data

    @transaction.atomic
    def save(self):
        data = self.cleaned_data
        User = get_user_model()
        user = User.objects.create_user(
            username=data["email"],
            email=data["email"],
            password=data["password"],
            first_name=data["name"][:150],
        )
        roles.add_to_role(user, roles.RATERS)
        RaterProfile.objects.create(user=user, role=data["role"], years_experience=data["years_experience"])
        return user


class ShareForm(forms.Form):
    username = forms.CharField(max_length=150, label="Share with researcher (username)")

    def clean_username(self) -> str:
        name = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=name).first()
        if user is None or not roles.is_researcher(user):
            raise forms.ValidationError(f"No researcher called {name!r}.")
        self.cleaned_data["user"] = user
        return name


class OpenForm(forms.Form):
    """Opening a draft; the override is only needed when the leak audit of its design flagged."""

    override_leaks = forms.BooleanField(
        required=False,
        label="Open anyway, although the leak audit flagged a feature",
        help_text="Raters' browsers can then tell real from synthetic without looking at the images, so "
        "accuracy near chance no longer shows that the images are realistic. The override is recorded "
        "in the frozen design and the report warns about it.",
    )


class InviteForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=500, initial=5, label="Number of invitation links")


def _ids(text: str, what: str = "batch") -> list[int]:
    try:
        return [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise forms.ValidationError(f"Give {what} ids as numbers separated by commas.") from None


def _threshold(text: str) -> int | float | None:
    """ "3" is a count of correct tutorial answers, "0.75" or "75%" a fraction; blank: none."""
    text = text.strip()
    if not text:
        return None
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100
        return float(text) if "." in text else int(text)
    except ValueError:
        raise forms.ValidationError("Give a count (3), a fraction (0.75) or a percentage (75%).") from None


class StudyForm(forms.Form):
    """The study design. Maps onto ``protocol.DEFAULT_CONFIG``; the service validates the rest."""

    title = forms.CharField(max_length=200)
    instructions = forms.CharField(
        widget=forms.Textarea, required=False, help_text="Markdown, shown to raters."
    )
    consent_text = forms.CharField(
        widget=forms.Textarea, required=False, help_text="Markdown. Blank: a default consent text."
    )
    withdrawal_policy = forms.ChoiceField(
        choices=Study.WithdrawalPolicy.choices,
        required=False,
        initial=Study.WithdrawalPolicy.KEEP,
        label="When a rater withdraws",
        help_text="Stated at the end of the consent text raters agree to.",
    )
    pool_size = forms.IntegerField(min_value=1, initial=40, help_text="Images in the rated pool.")
    synthetic_percent = forms.IntegerField(
        min_value=0,
        max_value=100,
        initial=50,
        label="Synthetic share (%)",
        help_text="50 gives a 50:50 ratio.",
    )
    conditions = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Pool filter and diagnosis list. None ticked: all conditions.",
    )
    fitzpatrick = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(str(i), f"Type {i}") for i in range(1, 7)],
        help_text="Skin types to include. None ticked: all.",
    )
    batches = forms.CharField(
        required=False, help_text="Generation batch ids (synthetic side), comma-separated."
    )
    balance_conditions = forms.BooleanField(required=False, initial=True, label="Balance conditions")
    match_fitzpatrick = forms.BooleanField(
        required=False,
        label="Also match labelled Fitzpatrick skin type",
        help_text="Strata become condition × skin type; images whose type is only estimated are left out.",
    )
    unmatched = forms.BooleanField(
        required=False,
        label="Unmatched design (not recommended)",
        help_text="Draw real and synthetic images without matching them within each condition. The "
        "diagnosis can then give the answer away; this choice is recorded in the frozen design and "
        "the report warns about it.",
    )
    items_per_rater = forms.IntegerField(
        min_value=1, required=False, help_text="Blank: every rater sees the whole pool."
    )
    n_anchors = forms.IntegerField(min_value=0, initial=0, label="Anchor items every rater sees")
    n_tutorial = forms.IntegerField(min_value=0, initial=4, label="Tutorial examples (with feedback)")
    repeat_fraction = forms.FloatField(
        min_value=0, max_value=0.5, initial=0.1, help_text="Share of items shown twice (test-retest)."
    )
    repeat_min_gap = forms.IntegerField(
        min_value=2, initial=5, help_text="Minimum positions between showings."
    )
    exposure_ms = forms.IntegerField(
        min_value=100,
        required=False,
        help_text="Blank: no time limit. With a limit each image is sent once and never prefetched.",
    )
    answer_window_ms = forms.IntegerField(
        min_value=0,
        required=False,
        initial=protocol.DEFAULT_CONFIG["answer_window_ms"],
        label="Answer window (ms)",
        help_text="With an exposure limit: answers arriving later than exposure + this after the image "
        "was sent are flagged late (kept, and reported).",
    )
    answers_editable = forms.BooleanField(required=False)
    show_score = forms.BooleanField(required=False, label="Show raters their score at the end")
    ask_confidence = forms.BooleanField(required=False, initial=True, label="Ask confidence (1–5)")
    ask_diagnosis = forms.BooleanField(required=False, label="Ask a diagnosis")
    ask_comment = forms.BooleanField(required=False, label="Allow a comment")
    qualification_min_correct = forms.CharField(
        required=False,
        label="Qualification: correct tutorial answers needed",
        help_text="A count (3), a fraction (0.75) or a percentage (75%) of the tutorial examples; "
        "raters below it are thanked and stop after the tutorial. Blank: no qualification.",
    )
    attention_checks = forms.CharField(
        required=False,
        label="Attention checks (library image ids)",
        help_text="Catch images every rater sees once at a seeded position, e.g. unmistakable real "
        "photos or broken renders; kept out of the pool draw and of the statistics.",
    )
    seed = forms.IntegerField(
        required=False, min_value=SEED_MIN, max_value=SEED_MAX, help_text="Blank: random (recorded)."
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["conditions"].choices = [(c.code, str(c)) for c in Condition.objects.all()]

    def clean_batches(self) -> list[int]:
        return _ids(self.cleaned_data.get("batches") or "")

    # The form page's groups, in order (every field in exactly one; a test checks it).
    FIELDSETS = (
        ("Study", ("title", "instructions", "consent_text", "withdrawal_policy")),
        (
            "Pool",
            (
                "pool_size",
                "synthetic_percent",
                "conditions",
                "fitzpatrick",
                "batches",
                "balance_conditions",
                "match_fitzpatrick",
                "unmatched",
            ),
        ),
        (
            "What each rater sees",
            ("items_per_rater", "n_anchors", "n_tutorial", "repeat_fraction", "repeat_min_gap"),
        ),
        ("Timing", ("exposure_ms", "answer_window_ms")),
        (
            "Questions and feedback",
            ("ask_confidence", "ask_diagnosis", "ask_comment", "answers_editable", "show_score"),
        ),
        ("Rater quality control", ("qualification_min_correct", "attention_checks")),
        ("Reproducibility", ("seed",)),
    )

    def fieldsets(self) -> list[tuple[str, list]]:
        """(legend, bound fields) per group of ``FIELDSETS``, for the template."""
        return [(legend, [self[name] for name in names]) for legend, names in self.FIELDSETS]

    # Fields that do not shape the pool: the live preview neither needs nor checks them.
    TEXT_FIELDS = ("title", "instructions", "consent_text", "withdrawal_policy")

    def clean_qualification_min_correct(self) -> int | float | None:
        return _threshold(self.cleaned_data.get("qualification_min_correct") or "")

    def clean_attention_checks(self) -> list[int]:
        return _ids(self.cleaned_data.get("attention_checks") or "", "image")

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        kwargs = {
            "title": d["title"],
            "instructions": d["instructions"],
            "consent_text": d["consent_text"],
            "withdrawal_policy": d["withdrawal_policy"] or Study.WithdrawalPolicy.KEEP,
            "config": self.config(),
        }
        if d["seed"] is not None:
            kwargs["seed"] = d["seed"]
        return kwargs

    def design_errors(self) -> dict[str, list[str]]:
        """Field errors of the design (not its texts), for the live preview; validates the form."""
        return {
            name: [str(e) for e in errors]
            for name, errors in self.errors.items()
            if name not in self.TEXT_FIELDS
        }

    def config(self) -> dict:
        """The study config of a validated design (``design_errors()`` empty); unchecked by protocol."""
        d = self.cleaned_data
        n_syn = round(d["pool_size"] * d["synthetic_percent"] / 100)
        kinds = [k for k, n in ((protocol.REAL, d["pool_size"] - n_syn), (protocol.SYNTHETIC, n_syn)) if n]
        return {
            "pool": {
                "kinds": kinds,
                "conditions": list(d["conditions"]),
                "fitzpatrick": [int(x) for x in d["fitzpatrick"]],
                "batches": d["batches"],
            },
            "n_real": d["pool_size"] - n_syn,
            "n_synthetic": n_syn,
            "balance_conditions": d["balance_conditions"],
            "match_fitzpatrick": d["match_fitzpatrick"],
            "unmatched": d["unmatched"],
            "items_per_rater": d["items_per_rater"],
            "n_anchors": d["n_anchors"],
            "n_tutorial": d["n_tutorial"],
            "repeat_fraction": d["repeat_fraction"],
            "repeat_min_gap": d["repeat_min_gap"],
            "exposure_ms": d["exposure_ms"],
            "answer_window_ms": protocol.DEFAULT_CONFIG["answer_window_ms"]
            if d["answer_window_ms"] is None
            else d["answer_window_ms"],
            "answers_editable": d["answers_editable"],
            "show_score": d["show_score"],
            "questions": {
                "confidence": d["ask_confidence"],
                "diagnosis": d["ask_diagnosis"],
                "comment": d["ask_comment"],
            },
            "qualification_min_correct": d["qualification_min_correct"],
            "attention_checks": d["attention_checks"],
        }

    @staticmethod
    def initial_from(study: Study) -> dict:
        c = protocol.config_with_defaults(study.config)
        pool = c["n_real"] + c["n_synthetic"]
        return {
            "title": study.title,
            "instructions": study.instructions,
            "consent_text": study.consent_text,
            "withdrawal_policy": study.withdrawal_policy,
            "pool_size": pool,
            "synthetic_percent": round(100 * c["n_synthetic"] / pool) if pool else 50,
            "conditions": c["pool"]["conditions"],
            "fitzpatrick": [str(x) for x in c["pool"]["fitzpatrick"]],
            "batches": ", ".join(str(b) for b in c["pool"]["batches"]),
            "balance_conditions": c["balance_conditions"],
            "match_fitzpatrick": c["match_fitzpatrick"],
            "unmatched": c["unmatched"],
            "items_per_rater": c["items_per_rater"],
            "n_anchors": c["n_anchors"],
            "n_tutorial": c["n_tutorial"],
            "repeat_fraction": c["repeat_fraction"],
            "repeat_min_gap": c["repeat_min_gap"],
            "exposure_ms": c["exposure_ms"],
            "answer_window_ms": c["answer_window_ms"],
            "answers_editable": c["answers_editable"],
            "show_score": c["show_score"],
            "ask_confidence": c["questions"]["confidence"],
            "ask_diagnosis": c["questions"]["diagnosis"],
            "ask_comment": c["questions"]["comment"],
            "qualification_min_correct": ""
            if c["qualification_min_correct"] is None
            else str(c["qualification_min_correct"]),
            "attention_checks": ", ".join(str(i) for i in c["attention_checks"]),
            "seed": study.seed,
        }
