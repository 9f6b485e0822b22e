"""Admin screens for studies. An open or closed study's design fields are read-only there too."""

from __future__ import annotations

from django.contrib import admin

from turingtest.studies.models import (
    Assignment,
    Invitation,
    Judgment,
    LeakAudit,
    RaterProfile,
    Study,
    StudyItem,
)

DESIGN_FIELDS = (
    "config",
    "config_sha256",
    "seed",
    "instructions",
    "consent_text",
    "consent_version",
    "conditions",
    "status",
)


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("title", "status", "owner", "created", "opened_at", "closed_at")
    list_filter = ("status",)
    search_fields = ("title",)
    filter_horizontal = ("collaborators",)

    def get_readonly_fields(self, request, obj=None):
        base = ("config_sha256", "opened_at", "closed_at", "status")
        return base + DESIGN_FIELDS if obj is not None and obj.is_frozen else base

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.is_frozen


@admin.register(RaterProfile)
class RaterProfileAdmin(admin.ModelAdmin):
    list_display = ("pseudonym", "user", "role", "years_experience")
    list_filter = ("role",)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("study", "rater", "seed", "consented_at", "started_at", "finished_at")
    list_filter = ("study",)
    readonly_fields = ("seed",)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("study", "created", "expires_at", "used_at", "used_by")
    list_filter = ("study",)
    readonly_fields = ("token_sha256", "used_at", "used_by")


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = (
        "presentation",
        "says_synthetic",
        "confidence",
        "response_ms",
        "answered_at",
        "revision",
        "is_late",
    )
    readonly_fields = [f.name for f in Judgment._meta.fields]

    def has_add_permission(self, request):
        return False


admin.site.register(StudyItem)


@admin.register(LeakAudit)
class LeakAuditAdmin(admin.ModelAdmin):
    """Leak audits run from study pages: status, flagged features and errors stay on the row."""

    list_display = ("study", "status", "flagged", "created", "finished")
    list_filter = ("status",)
    readonly_fields = [f.name for f in LeakAudit._meta.fields]

    def has_add_permission(self, request):
        return False
