"""The admin form that schedules a training job; it only parses input, the service does the work."""

from __future__ import annotations

from django import forms
from django.conf import settings

from turingtest.library.models import Condition
from turingtest.training.models import TrainingJob

SIZES = (64, 128, 256, 512)


class TrainingJobForm(forms.Form):
    name = forms.CharField(max_length=120, required=False, help_text="Name of the checkpoint it registers.")
    conditions = forms.ModelMultipleChoiceField(
        queryset=Condition.objects.all(),
        to_field_name="code",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Real photos of these conditions; none ticked = every condition.",
    )
    masks = forms.ChoiceField(
        choices=TrainingJob.Masks.choices,
        initial=TrainingJob.Masks.ANY,
        help_text="Only photos with a lesion mask are used; “reviewed only” takes the masks a person "
        "accepted in the mask editor (Library › Images › Review masks).",
    )
    skin_types = forms.TypedMultipleChoiceField(
        choices=[(t, f"Fitzpatrick {t}") for t in range(1, 7)],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked = every skin type (and photos without one).",
    )
    image_size = forms.TypedChoiceField(
        choices=[(s, f"{s} px") for s in SIZES], coerce=int, initial=settings.IMAGE_SIZE
    )
    ngf = forms.IntegerField(
        min_value=4,
        max_value=128,
        initial=16,
        label="Network width (ngf)",
        help_text="16 ≈ 2.5 M parameters.",
    )
    steps = forms.IntegerField(min_value=1, initial=10_000)
    batch_size = forms.IntegerField(min_value=1, max_value=256, initial=4)
    lr = forms.FloatField(min_value=1e-7, max_value=1.0, initial=2e-4, label="Learning rate")
    seed = forms.IntegerField(min_value=0, initial=0)
    checkpoint_every = forms.IntegerField(min_value=1, initial=500, help_text="Steps between checkpoints.")
    segment_seconds = forms.IntegerField(
        min_value=10,
        max_value=1500,
        initial=600,
        help_text="Training time per task; keep it well under the broker's delivery timeout "
        "(RabbitMQ: 30 min, Redis: its visibility timeout).",
    )
