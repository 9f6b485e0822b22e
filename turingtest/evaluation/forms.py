"""Admin forms that start evaluation runs (they call services; nothing is saved by the form)."""

from __future__ import annotations

from django import forms

from turingtest.evaluation.runs import AUTO_CLASSIFIER
from turingtest.evaluation.selection import EvaluationError, filter_parse
from turingtest.library.models import GenerationBatch, GeneratorCheckpoint


class FidelityRunForm(forms.Form):
    batch = forms.ModelChoiceField(queryset=GenerationBatch.objects.all(), help_text="The synthetic set.")
    real_filter = forms.CharField(
        required=False,
        help_text="Optional, one KEY=V1,V2 per line (condition, fitzpatrick, ids, patient, procedural). "
        "Default: the real images of the batch's conditions.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    extractor = forms.CharField(initial=AUTO_CLASSIFIER, max_length=300)
    seed = forms.IntegerField(initial=0)

    def clean_real_filter(self):
        lines = [line for line in self.cleaned_data["real_filter"].splitlines() if line.strip()]
        try:
            return filter_parse(lines) if lines else None
        except EvaluationError as exc:
            raise forms.ValidationError(str(exc)) from None


class AugmentationRunForm(forms.Form):
    synthetic_batches = forms.ModelMultipleChoiceField(queryset=GenerationBatch.objects.all(), required=False)
    checkpoint = forms.ModelChoiceField(
        queryset=GeneratorCheckpoint.objects.all(),
        required=False,
        help_text="Or render on the fly from this.",
    )
    real_filter = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional, one KEY=V1,V2 per line.",
    )
    conditions = forms.CharField(required=False, help_text="Comma-separated codes; empty = the rarest.")
    ratio = forms.FloatField(initial=1.0, min_value=0.01)
    seed = forms.IntegerField(initial=0)
    n_seeds = forms.IntegerField(
        initial=5, min_value=2, help_text="Training seeds per arm; the CIs include their spread."
    )
    epochs = forms.IntegerField(initial=10, min_value=1)
    image_size = forms.IntegerField(initial=64, min_value=16)

    def clean_real_filter(self):
        lines = [line for line in self.cleaned_data["real_filter"].splitlines() if line.strip()]
        try:
            return filter_parse(lines)
        except EvaluationError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        if bool(data.get("synthetic_batches")) == bool(data.get("checkpoint")):
            raise forms.ValidationError("Choose synthetic batches or a checkpoint (exactly one).")
        return data
