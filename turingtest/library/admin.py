from __future__ import annotations

from django.contrib import admin

from turingtest.library.models import Condition, Image


@admin.register(Condition)
class ConditionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "is_malignant", "is_rare", "map_index"]
    list_filter = ["is_malignant", "is_rare"]
    search_fields = ["code", "name"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "condition", "fitzpatrick", "width", "height", "created"]
    list_filter = ["kind", "condition", "fitzpatrick"]
    search_fields = ["public_token", "sha256", "patient_id"]
    readonly_fields = ["public_token", "sha256", "width", "height", "provenance", "created"]
