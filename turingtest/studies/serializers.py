"""Rater API payloads. Request validation, plus response shapes for the OpenAPI schema.

The response serializers only document what ``rating.assignment_state`` builds:
they list every key a rater's browser receives, which is also the blinding surface.
"""

from __future__ import annotations

import copy

from rest_framework import serializers


class AnswerSerializer(serializers.Serializer):
    """The answer body, validated once per answer: the rating path's hottest serializer."""

    token = serializers.CharField(max_length=64)
    client_key = serializers.UUIDField(help_text="A fresh uuid4 per answer; resend the same key on retry.")
    says_synthetic = serializers.BooleanField()
    confidence = serializers.IntegerField(
        min_value=1, max_value=5, allow_null=True, required=False, default=None
    )
    diagnosis = serializers.CharField(
        max_length=16,
        allow_null=True,
        required=False,
        default=None,
        help_text="A condition code or 'unsure'.",
    )
    comment = serializers.CharField(
        max_length=2000, allow_blank=True, required=False, default="", trim_whitespace=True
    )
    response_ms = serializers.IntegerField(
        min_value=0, max_value=24 * 3600 * 1000, allow_null=True, required=False, default=None
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # DRF deep-copies the declared fields per instance, which rebuilds every field from its
        # arguments: that was most of the answer path's CPU. A shallow copy gets each request
        # its own bound field; what they share (arguments, validators) is never mutated.
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


for _field in AnswerSerializer._declared_fields.values():
    _field.validators  # noqa: B018 - built lazily on first use: build it once, before copies share it


class QuestionsSerializer(serializers.Serializer):
    confidence = serializers.BooleanField()
    diagnosis = serializers.BooleanField()
    comment = serializers.BooleanField()


class StudyInfoSerializer(serializers.Serializer):
    title = serializers.CharField()
    questions = QuestionsSerializer()
    exposure_ms = serializers.IntegerField(allow_null=True)
    answers_editable = serializers.BooleanField()
    show_score = serializers.BooleanField()


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class ItemSerializer(serializers.Serializer):
    token = serializers.CharField()
    image_url = serializers.CharField()
    position = serializers.IntegerField(help_text="1-based, within the tutorial or within the study items.")
    is_tutorial = serializers.BooleanField()


class PreviousAnswerSerializer(serializers.Serializer):
    says_synthetic = serializers.BooleanField()
    confidence = serializers.IntegerField(allow_null=True)
    diagnosis = serializers.CharField(allow_null=True)
    comment = serializers.CharField()


class PreviousSerializer(serializers.Serializer):
    token = serializers.CharField()
    image_url = serializers.CharField()
    answer = PreviousAnswerSerializer()


class ChoiceSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class ScoreSerializer(serializers.Serializer):
    n_correct = serializers.IntegerField()
    n_answered = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)


class StateSerializer(serializers.Serializer):
    study = StudyInfoSerializer()
    progress = ProgressSerializer()
    tutorial = ProgressSerializer()
    finished = serializers.BooleanField()
    item = ItemSerializer(allow_null=True)
    next_image_url = serializers.CharField(allow_null=True, help_text="Prefetch this image.")
    previous = PreviousSerializer(allow_null=True, help_text="Only when answers are editable.")
    diagnosis_choices = ChoiceSerializer(many=True)
    score = ScoreSerializer(allow_null=True, help_text="Only when finished and the study shows scores.")


class FeedbackSerializer(serializers.Serializer):
    correct = serializers.BooleanField()
    truth = serializers.ChoiceField(choices=["real", "synthetic"])


class AnswerResultSerializer(serializers.Serializer):
    recorded = serializers.BooleanField()
    feedback = FeedbackSerializer(required=False, help_text="Tutorial items only.")
    state = StateSerializer()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
