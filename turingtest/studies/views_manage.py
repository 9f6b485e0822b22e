"""The researcher's pages for running a study: the pool, confirmations before opening and
closing, pause and resume, the invitation list, and e-mail.

Every page is for researchers who may see the study (``Study.objects.visible_to``: 404
otherwise, so existence is not confirmed); every change is for those who manage it
(``Study.is_managed_by``: the owner and admins; 403 otherwise).
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from turingtest.core import roles
from turingtest.library.models import Condition
from turingtest.studies import forms, forms_manage, invitations, leakaudit, lifecycle, mailing, services
from turingtest.studies.models import EmailRecord, Invitation, Study, StudyItem
from turingtest.studies.views import _content_type  # one sniffing rule for every image view

POOL_PAGE_SIZE = 48
# New links stay on the invitations page (and downloadable as CSV) this long after creation,
# then only their hashes remain: the raw tokens are never stored anywhere else.
NEW_LINKS_SECONDS = 3600
THUMB_CACHE_CONTROL = "private, max-age=600"


def _visible(request: HttpRequest, study_id: int) -> Study:
    study = Study.objects.visible_to(request.user).select_related("owner").filter(pk=study_id).first()
    if study is None:
        raise Http404("No such study.")
    return study


def _managed(request: HttpRequest, study_id: int) -> Study:
    study = _visible(request, study_id)
    if not study.is_managed_by(request.user):
        raise PermissionDenied("Only the study's owner can do this.")
    return study


# --- the pool ---------------------------------------------------------------------------


def _source(image) -> str:
    """Where an image comes from, for the researcher: batch, dataset or the demo renderer."""
    prov = image.provenance or {}
    if image.batch_id:
        return f"generation batch {image.batch_id}"
    if prov.get("procedural"):
        return "procedural demo image"
    return str(prov.get("source") or prov.get("dataset") or "—")


@never_cache
@roles.researcher_required
@require_GET
def study_pool(request: HttpRequest, study_id: int) -> HttpResponse:
    """Every image of the pool with its kind, condition, skin type (label or estimate) and
    source, filterable; the stratum table and the latest leak audit beside it."""
    study = _visible(request, study_id)
    conditions = list(
        Condition.objects.filter(images__study_items__study=study).distinct().values_list("code", "name")
    )
    form = forms_manage.PoolFilterForm(request.GET or None, conditions=conditions)
    items = (
        StudyItem.objects.filter(study=study, **form.filters())
        .select_related("image__condition")
        .order_by("is_tutorial", "image__condition__map_index", "image__kind", "pk")
    )
    page = Paginator(items, POOL_PAGE_SIZE).get_page(request.GET.get("page"))
    totals = study.items.aggregate(
        n=Count("pk"),
        n_real=Count("pk", filter=Q(image__kind="real")),
        n_synthetic=Count("pk", filter=Q(image__kind="synthetic")),
        n_tutorial=Count("pk", filter=Q(is_tutorial=True)),
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "studies/pool.html",
        {
            "study": study,
            "form": form,
            "page": page,
            "rows": [(item, _source(item.image)) for item in page.object_list],
            "totals": totals,
            "query": query.urlencode(),
            "pool": study.pool_summary or {},
            "audit": leakaudit.leak_audit_latest(study_id=study.pk),
            "can_manage": study.is_managed_by(request.user),
        },
    )


@roles.researcher_required
@require_GET
def study_pool_image(request: HttpRequest, study_id: int, item_id: int) -> HttpResponse:
    """A pool image for the researchers of its study: never through the raters' /img/ path,
    whose tokens belong to assignments."""
    study = _visible(request, study_id)
    item = get_object_or_404(StudyItem.objects.select_related("image"), pk=item_id, study=study)
    with item.image.file.open("rb") as fh:
        data = fh.read()
    response = HttpResponse(data, content_type=_content_type(data))
    response["Cache-Control"] = THUMB_CACHE_CONTROL
    return response


# --- open, close, pause, resume -----------------------------------------------------------


@never_cache
@roles.researcher_required
@require_GET
def study_open_confirm(request: HttpRequest, study_id: int) -> HttpResponse:
    """What opening does, before it is done; the button posts to ``study-open``."""
    study = _managed(request, study_id)
    if study.status != Study.Status.DRAFT:
        messages.info(request, f"The study is {study.get_status_display().lower()} already.")
        return redirect("study-detail", study_id=study.pk)
    audit = leakaudit.leak_audit_latest(study_id=study.pk)
    audit_is_current = audit is not None and audit.design_sha256 == services.study_design_sha256(study)
    return render(
        request,
        "studies/confirm_open.html",
        {
            "study": study,
            "audit": audit,
            "audit_is_current": audit_is_current,
            "open_form": forms.OpenForm(),
            "n_items": study.items.filter(is_tutorial=False).count(),
            "n_tutorial": study.items.filter(is_tutorial=True).count(),
        },
    )


@never_cache
@roles.researcher_required
@require_GET
def study_close_confirm(request: HttpRequest, study_id: int) -> HttpResponse:
    """Who closing cuts off, before it is done; the button posts to ``study-close``."""
    study = _managed(request, study_id)
    if study.status not in (Study.Status.OPEN, Study.Status.PAUSED):
        messages.info(
            request, f"The study is {study.get_status_display().lower()}: there is nothing to close."
        )
        return redirect("study-detail", study_id=study.pk)
    return render(
        request,
        "studies/confirm_close.html",
        {"study": study, "c": lifecycle.close_consequences(study)},
    )


@roles.researcher_required
@require_POST
def study_pause(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _managed(request, study_id)
    try:
        lifecycle.study_pause(study=study)
    except lifecycle.WrongStatus as exc:
        messages.error(request, str(exc).capitalize() + ".")
    else:
        messages.success(
            request, "The study is paused: raters are asked to come back later; nothing is lost."
        )
    return redirect("study-detail", study_id=study.pk)


@roles.researcher_required
@require_POST
def study_resume(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _managed(request, study_id)
    try:
        lifecycle.study_resume(study=study)
    except lifecycle.WrongStatus as exc:
        messages.error(request, str(exc).capitalize() + ".")
    else:
        messages.success(request, "The study is open again: raters continue where they stopped.")
    return redirect("study-detail", study_id=study.pk)


# --- invitations -------------------------------------------------------------------------


def _session_key(study: Study) -> str:
    return f"new_links_{study.pk}"


def _remember_links(request: HttpRequest, study: Study, links: list[invitations.NewLink]) -> None:
    """New links, for the one-time display and CSV: added to any made in the last hour."""
    held = _new_links(request, study)
    request.session[_session_key(study)] = {
        "made": timezone.now().isoformat(),
        "links": held
        + [
            {
                "id": link.invitation_id,
                "url": link.url,
                "email": link.email,
                "expires": link.expires_at.isoformat(),
            }
            for link in links
        ],
    }


def _new_links(request: HttpRequest, study: Study) -> list[dict]:
    held = request.session.get(_session_key(study))
    if not held:
        return []
    if timezone.now() - dt.datetime.fromisoformat(held["made"]) > dt.timedelta(seconds=NEW_LINKS_SECONDS):
        del request.session[_session_key(study)]
        return []
    return held["links"]


@never_cache
@roles.researcher_required
@require_GET
def study_invitations(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _visible(request, study_id)
    rows = invitations.invitation_rows(study)
    can_manage = study.is_managed_by(request.user)
    counts = {state: 0 for state in Invitation.State.values}
    for row in rows:
        counts[row.state] += 1
    return render(
        request,
        "studies/invitations.html",
        {
            "study": study,
            "rows": rows,
            "counts": counts,
            "can_manage": can_manage,
            "new_links": _new_links(request, study) if can_manage else [],
            "count_form": forms_manage.LinkCountForm(),
            "email_form": forms_manage.EmailInviteForm(),
            "refusal": None
            if study.takes_invitations
            else (
                "Links are made once the study is open: a draft's design can still change."
                if study.status == Study.Status.DRAFT
                else "The study is closed: it takes no new raters."
            ),
        },
    )


@roles.researcher_required
@require_POST
def study_invitations_create(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _managed(request, study_id)
    form = forms_manage.LinkCountForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Give a number of links between 1 and {forms_manage.MAX_LINKS}.")
        return redirect("study-invitations", study_id=study.pk)
    try:
        links = invitations.invitation_create_links(study=study, count=form.cleaned_data["count"])
    except services.StudyFrozen as exc:
        messages.error(request, str(exc).capitalize() + ".")
    else:
        _remember_links(request, study, links)
        messages.success(
            request, f"{len(links)} new link{'s' if len(links) != 1 else ''}: copy or download them now."
        )
    return redirect("study-invitations", study_id=study.pk)


@roles.researcher_required
@require_POST
def study_invitations_email(request: HttpRequest, study_id: int) -> HttpResponse:
    """Personal links e-mailed with the study's invitation text; each mail is recorded."""
    study = _managed(request, study_id)
    form = forms_manage.EmailInviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("recipients", ["Give e-mail addresses."])))
        return redirect("study-invitations", study_id=study.pk)
    try:
        links, records = mailing.invitation_send_emails(
            study=study, recipients=form.cleaned_data["recipients"], sent_by=request.user
        )
    except services.StudyFrozen as exc:
        messages.error(request, str(exc).capitalize() + ".")
        return redirect("study-invitations", study_id=study.pk)
    _remember_links(request, study, links)
    failed = [r for r in records if r.error]
    if failed:
        messages.error(
            request,
            f"{len(failed)} of {len(records)} invitation e-mails failed ({failed[0].error}); "
            "their links are below to pass on by hand.",
        )
    else:
        messages.success(request, f"{len(records)} invitation e-mail{'s' if len(records) != 1 else ''} sent.")
    return redirect("study-invitations", study_id=study.pk)


@never_cache
@roles.researcher_required
@require_GET
def study_invitations_csv(request: HttpRequest, study_id: int) -> HttpResponse:
    """The links made in the last hour, as CSV: the only other place their URLs ever appear."""
    study = _managed(request, study_id)
    links = _new_links(request, study)
    if not links:
        raise Http404("No new links to download: links are offered once, right after they are made.")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["invitation_id", "url", "email", "expires_at"])
    for link in links:
        writer.writerow([link["id"], link["url"], link["email"], link["expires"]])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-new-invitations.csv"'
    return response


@roles.researcher_required
@require_POST
def study_invitations_forget(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _managed(request, study_id)
    request.session.pop(_session_key(study), None)
    messages.info(request, "The new links are no longer shown; only their hashes are kept.")
    return redirect("study-invitations", study_id=study.pk)


def _invitation(study: Study, invitation_id: int) -> Invitation:
    return get_object_or_404(Invitation, pk=invitation_id, study=study)


@roles.researcher_required
@require_POST
def invitation_revoke(request: HttpRequest, study_id: int, invitation_id: int) -> HttpResponse:
    study = _managed(request, study_id)
    try:
        invitations.invitation_revoke(invitation=_invitation(study, invitation_id))
    except ValueError as exc:
        messages.error(request, str(exc).capitalize() + ".")
    else:
        messages.success(request, f"Invitation {invitation_id} revoked: its link no longer works.")
    return redirect("study-invitations", study_id=study.pk)


@roles.researcher_required
@require_POST
def invitation_reissue(request: HttpRequest, study_id: int, invitation_id: int) -> HttpResponse:
    study = _managed(request, study_id)
    try:
        link = invitations.invitation_reissue(invitation=_invitation(study, invitation_id))
    except (ValueError, services.StudyFrozen) as exc:
        messages.error(request, str(exc).capitalize() + ".")
    else:
        _remember_links(request, study, [link])
        messages.success(request, f"Invitation {invitation_id} replaced by invitation {link.invitation_id}.")
    return redirect("study-invitations", study_id=study.pk)


# --- e-mail texts, reminders and the record -------------------------------------------------


@never_cache
@roles.researcher_required
@require_http_methods(["GET", "POST"])
def study_emails(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _visible(request, study_id)
    can_manage = study.is_managed_by(request.user)
    if request.method == "POST" and not can_manage:
        raise PermissionDenied("Only the study's owner can do this.")
    form = forms_manage.EmailTextsForm(request.POST or None, instance=study)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "E-mail texts saved.")
        return redirect("study-emails", study_id=study.pk)
    return render(
        request,
        "studies/emails.html",
        {
            "study": study,
            "form": form,
            "can_manage": can_manage,
            "records": EmailRecord.objects.filter(study=study).select_related("sent_by")[:500],
            "n_reminder_recipients": mailing.reminder_recipients(study).count(),
        },
    )


@roles.researcher_required
@require_POST
def study_reminders(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _managed(request, study_id)
    try:
        records = mailing.reminder_send(study=study, sent_by=request.user)
    except services.StudyFrozen as exc:
        messages.error(request, str(exc).capitalize() + ".")
        return redirect("study-emails", study_id=study.pk)
    failed = [r for r in records if r.error]
    if not records:
        messages.info(request, "Nobody to remind: every rater with an address has finished.")
    elif failed:
        messages.error(request, f"{len(failed)} of {len(records)} reminders failed: {failed[0].error}")
    else:
        messages.success(request, f"{len(records)} reminder{'s' if len(records) != 1 else ''} sent.")
    return redirect("study-emails", study_id=study.pk)
