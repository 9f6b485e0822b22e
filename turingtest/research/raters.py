"""The study's raters page: quality control per rater, and excluding a rater with a reason.

Everyone who may see the study's results sees the page; only those who manage the study
(owner, admins: ``Study.is_managed_by``) may exclude a rater or lift an exclusion. The report
leaves excluded raters out and shows the headline with every rater beside it.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from turingtest.core.roles import researcher_required
from turingtest.research.access import study_for
from turingtest.studies import protocol, quality
from turingtest.studies.models import Assignment


class ExclusionForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "why (e.g. answered every image in under a second)"}),
    )
    action = forms.ChoiceField(choices=[("exclude", "Exclude"), ("include", "Include again")])

    def clean(self) -> dict:
        data = super().clean()
        if data.get("action") == "exclude" and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why the rater is excluded: the reason is recorded.")
        return data


@require_GET
@researcher_required
def study_raters(request: HttpRequest, study_id: int) -> HttpResponse:
    study = study_for(request.user, int(study_id))
    return _page(request, study, form_errors={})


def _page(request: HttpRequest, study, *, form_errors: dict, status: int = 200) -> HttpResponse:
    scores = {r.assignment_id: r for r in quality.rater_quality_rows(study.pk)}
    assignments = list(
        Assignment.objects.filter(study=study)
        .select_related("rater__rater_profile")
        .order_by("created", "pk")
    )
    rows = [{"assignment": a, "quality": scores[a.pk], "errors": form_errors.get(a.pk)} for a in assignments]
    config = {**protocol.DEFAULT_CONFIG, **(study.config or {})}
    return render(
        request,
        "research/study_raters.html",
        {
            "study": study,
            "rows": rows,
            "may_manage": study.is_managed_by(request.user),
            "qualification_needed": protocol.qualification_needed(config),
            "n_attention_checks": len(config.get("attention_checks") or []),
            "n_excluded": sum(a.is_excluded for a in assignments),
        },
        status=status,
    )


@require_POST
@researcher_required
def study_rater_exclusion(request: HttpRequest, study_id: int, assignment_id: int) -> HttpResponse:
    study = study_for(request.user, int(study_id))
    if not study.is_managed_by(request.user):
        raise PermissionDenied("Only the study's owner or an admin may exclude raters.")
    assignment = get_object_or_404(Assignment, pk=assignment_id, study=study)
    form = ExclusionForm(request.POST)
    if not form.is_valid():
        return _page(request, study, form_errors={assignment.pk: form.errors}, status=400)
    if form.cleaned_data["action"] == "exclude":
        quality.assignment_exclude(assignment=assignment, by=request.user, reason=form.cleaned_data["reason"])
    else:
        quality.assignment_include(assignment=assignment, by=request.user)
    return redirect("study-raters", study_id=study.pk)
