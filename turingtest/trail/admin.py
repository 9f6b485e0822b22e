"""The audit trail in the admin: browse and filter, never add, change or delete (superusers too)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from turingtest.trail.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "at",
        "action",
        "actor_name",
        "actor_id",
        "object_type",
        "object_id",
        "study_id",
        "client_address",
    ]
    list_filter = ["action", "study_id", "actor_name", "object_type"]
    search_fields = ["actor_name", "object_id", "request_id", "client_address"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    list_per_page = 100
    # The changelist counts with an estimate-free query per filter; the table only grows.
    show_full_result_count = False

    # These return False for everyone: ModelAdmin asks them even for superusers, so no account
    # can add, edit or delete an event here (and the delete action disappears with them).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
