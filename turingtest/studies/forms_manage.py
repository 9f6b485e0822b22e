"""Forms of the researcher's running-a-study pages: pool filters, invitations, e-mail texts."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from turingtest.library.models import Image
from turingtest.studies import mailing
from turingtest.studies.models import Study

MAX_LINKS = 500


class PoolFilterForm(forms.Form):
    """GET filters of the pool page; every field optional, a bad value is simply ignored."""

    PARTS = [("", "Rated and tutorial"), ("rated", "Rated items"), ("tutorial", "Tutorial examples")]
    TYPES = [("", "Any skin type"), *[(str(t), f"Type {t}") for t in range(1, 7)], ("none", "No type")]

    kind = forms.ChoiceField(choices=[("", "Real and synthetic"), *Image.Kind.choices], required=False)
    condition = forms.ChoiceField(choices=[("", "Any condition")], required=False)
    fitzpatrick = forms.ChoiceField(choices=TYPES, required=False, label="Skin type")
    part = forms.ChoiceField(choices=PARTS, required=False, label="Part of the pool")

    def __init__(self, *args, conditions: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["condition"].choices = [("", "Any condition"), *conditions]

    def filters(self) -> dict:
        """Queryset lookups on StudyItem for the valid, non-empty fields."""
        if not self.is_valid():
            return {}
        d = self.cleaned_data
        out: dict = {}
        if d["kind"]:
            out["image__kind"] = d["kind"]
        if d["condition"]:
            out["image__condition__code"] = d["condition"]
        if d["fitzpatrick"] == "none":
            out["image__fitzpatrick__isnull"] = True
        elif d["fitzpatrick"]:
            out["image__fitzpatrick"] = int(d["fitzpatrick"])
        if d["part"]:
            out["is_tutorial"] = d["part"] == "tutorial"
        return out


class LinkCountForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=MAX_LINKS, initial=5, label="Number of links")


class EmailInviteForm(forms.Form):
    recipients = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line: an address, or a name and an address (Dr A. Smith <a.smith@example.org>).",
    )

    def clean_recipients(self) -> list[tuple[str, str]]:
        recipients = mailing.parse_recipients(self.cleaned_data["recipients"])
        if not recipients:
            raise ValidationError("Give at least one address.")
        if len(recipients) > MAX_LINKS:
            raise ValidationError(f"At most {MAX_LINKS} addresses at a time.")
        return recipients


class EmailTextsForm(forms.ModelForm):
    """The study's e-mail wording; blank fields use the defaults (shown as placeholders)."""

    class Meta:
        model = Study
        fields = ["invitation_subject", "invitation_body", "reminder_subject", "reminder_body"]
        widgets = {
            "invitation_body": forms.Textarea(attrs={"rows": 9}),
            "reminder_body": forms.Textarea(attrs={"rows": 8}),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field.widget.attrs["placeholder"] = mailing.DEFAULTS[name]
            field.required = False
        self.fields["invitation_body"].help_text = "Placeholders: " + ", ".join(
            "{" + p + "}" for p in sorted(mailing.PLACEHOLDERS["invitation"])
        )
        self.fields["reminder_body"].help_text = "Placeholders: " + ", ".join(
            "{" + p + "}" for p in sorted(mailing.PLACEHOLDERS["reminder"])
        )

    def clean(self) -> dict:
        data = super().clean()
        for name in self.Meta.fields:
            kind = name.split("_")[0]
            text = data.get(name) or ""
            try:
                mailing.check_placeholders(text, kind=kind, needs_link=name.endswith("body") and bool(text))
            except ValidationError as exc:
                self.add_error(name, exc)
        return data
