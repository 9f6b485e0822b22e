"""Researcher API representations of a study."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from turingtest.research.progress import study_progress
from turingtest.studies.models import Study


class ProgressSerializer(serializers.Serializer):
    invited = serializers.IntegerField(help_text="Invitations issued.")
    invitations_accepted = serializers.IntegerField()
    joined = serializers.IntegerField(help_text="Raters with an assignment.")
    started = serializers.IntegerField()
    finished = serializers.IntegerField()
    n_items = serializers.IntegerField(help_text="Study items, tutorial excluded.")
    n_judgments = serializers.IntegerField()
    last_answered_at = serializers.DateTimeField(allow_null=True)


class StudySummarySerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    links = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields = [
            "id",
            "title",
            "status",
            "owner",
            "created",
            "opened_at",
            "closed_at",
            "config_sha256",
            "links",
        ]

    def get_links(self, study: Study) -> dict[str, str]:
        kw = {"study_id": study.pk}
        return {
            "detail": reverse("api-study-detail", kwargs=kw),
            "report": reverse("api-study-report", kwargs=kw),
            "judgments_csv": reverse("api-study-judgments", kwargs={**kw, "fmt": "csv"}),
            "judgments_jsonl": reverse("api-study-judgments", kwargs={**kw, "fmt": "jsonl"}),
            "package": reverse("api-study-package", kwargs=kw),
            "dashboard": reverse("study-results", kwargs=kw),
        }


class StudyDetailSerializer(StudySummarySerializer):
    progress = serializers.SerializerMethodField()

    class Meta(StudySummarySerializer.Meta):
        fields = [*StudySummarySerializer.Meta.fields, "config", "progress"]

    def get_progress(self, study: Study) -> dict[str, Any]:
        return ProgressSerializer(study_progress(study)).data
