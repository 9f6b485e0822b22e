"""HTML pages of the studies app: rating flow (invitation, consent, instructions, rating page,
blinded image bytes) and the researchers' study pages.

Views are short: an access helper that raises 404/403, a form, one service call.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from turingtest.core import roles
from turingtest.studies import (
    candidates,
    forms,
    leakaudit,
    precision,
    protocol,
    rating,
    scheduling,
    services,
    withdrawal,
)
from turingtest.studies.markdown import render_markdown
from turingtest.studies.models import WITHDRAWAL_TEXT, Assignment, Judgment, Study
from turingtest.studies.progress import study_progress

# Identical for every image, real or synthetic: the browser cache behaves the same for both.
IMAGE_CACHE_CONTROL = "private, max-age=3600"
EXPOSED_CACHE_CONTROL = "private, no-store"
EXPOSED_ONCE = "This image was already shown once (time-limited study).\n"

_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"RIFF", "image/webp"))


def _content_type(data: bytes) -> str:
    """From the bytes, never from a file name or the image row (all stored files share one format)."""
    for magic, ctype in _MAGIC:
        if data.startswith(magic):
            return ctype
    return "application/octet-stream"


# --- rating flow ----------------------------------------------------------------------


def _refused(request: HttpRequest, study_id: int, exc: rating.RatingError) -> HttpResponse:
    """A rater page's answer to a refusal: to the consent page, a closed page, or 404."""
    if exc.reason == "consent_required":
        return redirect("rate-consent", study_id=study_id)
    if exc.reason == "closed":
        return _closed(request, exc.detail)
    if exc.reason == "paused":
        return render(request, "studies/paused.html", {"detail": exc.detail}, status=200)
    if exc.reason == "not_qualified":
        return render(request, "studies/not_qualified.html", {"detail": exc.detail}, status=200)
    raise Http404(exc.detail)


def _closed(request: HttpRequest, detail: str) -> HttpResponse:
    return render(request, "studies/closed.html", {"detail": detail}, status=410)


@never_cache
@login_required
@ensure_csrf_cookie
def rate(request: HttpRequest, study_id: int) -> HttpResponse:
    """The rating page shell; everything item-specific comes from the JSON API."""
    try:
        turn = rating.turn_for_rater(study_id=study_id, user=request.user)
    except rating.RatingError as exc:
        return _refused(request, study_id, exc)
    return render(
        request,
        "studies/rate.html",
        {
            "study": {"pk": turn.study_id, "title": turn.study_title},
            "state_url": reverse("rate-state", args=[study_id]),
            "answers_url": reverse("rate-answers", args=[study_id]),
        },
    )


@never_cache
@login_required
def rate_list(request: HttpRequest) -> HttpResponse:
    """The rater's assignments with progress (open studies first)."""
    assignments = (
        Assignment.objects.filter(rater=request.user)
        .exclude(study__status=Study.Status.DRAFT)
        .select_related("study")
        .annotate(
            n_answered=Count(
                "presentations",
                filter=Q(presentations__is_tutorial=False, presentations__answered_at__isnull=False),
            )
        )
        .order_by("-study__status", "-created")
    )
    return render(request, "studies/rate_list.html", {"assignments": assignments})


def _rater_assignment(request: HttpRequest, study_id: int) -> Assignment:
    try:
        return rating.assignment_for_rater(study_id=study_id, user=request.user)
    except rating.RatingError as exc:
        raise Http404(exc.detail) from None


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def rate_consent(request: HttpRequest, study_id: int) -> HttpResponse:
    assignment = _rater_assignment(request, study_id)
    if assignment.study.status == Study.Status.CLOSED:
        return _closed(request, "This study is closed.")
    form = forms.ConsentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.assignment_consent(assignment=assignment)
        return redirect("rate-instructions", study_id=study_id)
    return render(
        request,
        "studies/consent.html",
        {
            "study": assignment.study,
            "form": form,
            "consent_html": render_markdown(assignment.study.consent_text_shown()),
            "already": assignment.consented_at is not None,
        },
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def rate_withdraw(request: HttpRequest, study_id: int) -> HttpResponse:
    """The rater withdraws from the study after confirming; what happens to their answers is the
    study's stated policy, and their identity is erased if they ask."""
    assignment = _rater_assignment(request, study_id)
    form = forms.WithdrawForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            done = withdrawal.consent_withdraw(
                assignment=assignment, erase_identity=form.cleaned_data["erase_identity"]
            )
        except withdrawal.WithdrawalRefused as exc:
            form.add_error(None, str(exc))
        else:
            kept = "were deleted" if done.is_deleted else "stay in the analysis under your pseudonym"
            text = f"You have withdrawn from “{assignment.study.title}”. Your answers {kept}."
            if done.is_identity_erased:
                logout(request)
                messages.success(request, f"{text} Your name, username and e-mail address were erased.")
                return redirect("home")
            messages.success(request, text)
            return redirect("rate-list")
    return render(
        request,
        "studies/withdraw.html",
        {
            "study": assignment.study,
            "form": form,
            "policy_text": WITHDRAWAL_TEXT[assignment.study.withdrawal_policy],
        },
    )


@never_cache
@login_required
def rate_instructions(request: HttpRequest, study_id: int) -> HttpResponse:
    assignment = _rater_assignment(request, study_id)
    if assignment.consented_at is None:
        return redirect("rate-consent", study_id=study_id)
    config = protocol.config_with_defaults(assignment.study.config)
    return render(
        request,
        "studies/instructions.html",
        {
            "study": assignment.study,
            "instructions_html": render_markdown(assignment.study.instructions),
            "config": config,
            "estimate": rating.assignment_time_estimate(assignment=assignment),
        },
    )


@require_GET
def rate_image(request: HttpRequest, token: str) -> HttpResponse:
    """Image bytes for the requesting rater's current or next item (or an answered one, if editable).

    Everything else is a plain 404, so a token reveals nothing, not even that it exists.
    Headers are the same for every image: no file name, no ETag or Last-Modified.
    """
    p = rating.presentation_for_image(token=token, user=request.user)
    if p is None:
        raise Http404
    exposure_ms = (p.assignment.study.config or {}).get("exposure_ms")
    if not rating.presentation_serve_image(presentation=p, exposure_ms=exposure_ms):
        # Exposure-limited: the image was sent once already. The same bare 410 for every item.
        response = HttpResponse(EXPOSED_ONCE, status=410, content_type="text/plain")
        response["Cache-Control"] = "no-store"
        return response
    with p.item.image.file.open("rb") as fh:
        data = fh.read()
    response = HttpResponse(data, content_type=_content_type(data))
    response["Content-Length"] = str(len(data))
    # No never_cache here: it would add a time-stamped Expires. One policy for every image of
    # a study; an exposure-limited one must not keep the image where it could be looked at again.
    response["Cache-Control"] = EXPOSED_CACHE_CONTROL if exposure_ms else IMAGE_CACHE_CONTROL
    return response


# --- invitations ------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest, token: str) -> HttpResponse:
    """Follow an invitation: register (new rater) or log in (existing one), then consent."""
    try:
        invitation = services.invitation_lookup(token=token)
    except services.InvitationInvalid as exc:
        return _invitation_invalid(request, exc)
    if request.user.is_authenticated:
        if (
            request.method == "POST"
            or Assignment.objects.filter(study=invitation.study, rater=request.user).exists()
        ):
            return _accept(request, token)
        return render(request, "studies/invite_accept.html", {"study": invitation.study})
    form = forms.RaterRegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():  # no account without its assignment, and vice versa
                user = form.save()
                services.invitation_accept(token=token, user=user)
        except services.InvitationInvalid as exc:
            return _invitation_invalid(request, exc)
        except IntegrityError:
            # A concurrent registration took the email between the form's check and the insert.
            if not get_user_model().objects.filter(username=form.cleaned_data["email"]).exists():
                raise
            form.add_error("email", form.EMAIL_TAKEN)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("rate-consent", study_id=invitation.study_id)
    login_url = reverse("login") + "?next=" + reverse("invite", args=[token])
    return render(
        request, "studies/invite.html", {"study": invitation.study, "form": form, "login_url": login_url}
    )


def _invitation_invalid(request: HttpRequest, exc: services.InvitationInvalid) -> HttpResponse:
    status = 410 if exc.reason in services.InvitationInvalid.GONE else 404
    return render(request, "studies/invite_invalid.html", {"detail": exc.detail}, status=status)


def _accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        assignment = services.invitation_accept(token=token, user=request.user)
    except services.InvitationInvalid as exc:
        return _invitation_invalid(request, exc)
    if assignment.consented_at is None:
        return redirect("rate-consent", study_id=assignment.study_id)
    return redirect("rate", study_id=assignment.study_id)


# --- researchers --------------------------------------------------------------------------


def _visible_study(request: HttpRequest, study_id: int) -> Study:
    """404 for studies the user may not see (no existence oracle), 403 for non-researchers."""
    if not roles.is_researcher(request.user):
        raise PermissionDenied("Researchers only.")
    study = Study.objects.visible_to(request.user).select_related("owner").filter(pk=study_id).first()
    if study is None:
        raise Http404("No such study.")
    return study


@never_cache
@roles.researcher_required
def study_list(request: HttpRequest) -> HttpResponse:
    studies = (
        Study.objects.visible_to(request.user)
        .select_related("owner")
        .annotate(n_items=Count("items", filter=Q(items__is_tutorial=False), distinct=True))
        .annotate(n_raters=Count("assignments", distinct=True))
    )
    return render(request, "studies/study_list.html", {"studies": studies})


@never_cache
@roles.researcher_required
@require_http_methods(["GET", "POST"])
def study_new(request: HttpRequest) -> HttpResponse:
    form = forms.StudyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            study = services.study_create(owner=request.user, **form.service_kwargs())
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                "Study created as a draft. Check the stratum table, run the leak audit, then open it.",
            )
            return redirect("study-detail", study_id=study.pk)
    plan_form, plan = precision.plan_from_request(request)
    return render(
        request,
        "studies/study_form.html",
        {
            "form": form,
            "study": None,
            "plan_form": plan_form,
            "plan": plan,
            "candidates_url": reverse("study-candidates"),
        },
    )


@never_cache
@roles.researcher_required
@require_http_methods(["GET", "POST"])
def study_edit(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _managed_study(request, study_id)
    if study.is_frozen:
        messages.error(request, "This study is open or closed: its design is frozen. Copy it to change it.")
        return redirect("study-detail", study_id=study.pk)
    form = forms.StudyForm(request.POST or None, initial=forms.StudyForm.initial_from(study))
    if request.method == "POST" and form.is_valid():
        try:
            services.study_update(study=study, **form.service_kwargs())
        except (ValueError, services.StudyFrozen) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Study saved; the pool was redrawn.")
            return redirect("study-detail", study_id=study.pk)
    plan_form, plan = precision.plan_from_request(request)
    return render(
        request,
        "studies/study_form.html",
        {
            "form": form,
            "study": study,
            "plan_form": plan_form,
            "plan": plan,
            "candidates_url": reverse("study-edit-candidates", args=[study.pk]),
        },
    )


@never_cache
@roles.researcher_required
@require_POST
def study_candidates(request: HttpRequest, study_id: int | None = None) -> JsonResponse:
    """The design form's live preview: what the library holds for the posted filters.

    Posted by static/js/study-form.js as the researcher types. Answers the form's field errors
    and, for a valid design, the stratum table and the draw's problems (nothing is saved).
    """
    study = _managed_study(request, study_id) if study_id is not None else None
    form = forms.StudyForm(request.POST)
    errors = form.design_errors()
    if errors:
        return JsonResponse({"ok": False, "errors": errors, "problems": [], "strata": None})
    try:
        config = protocol.config_with_defaults(form.config())
    except ValueError as exc:
        return JsonResponse({"ok": False, "errors": {}, "problems": [str(exc)], "strata": None})
    preview = candidates.pool_preview(config=config, seed=form.cleaned_data["seed"] or 0, study=study)
    return JsonResponse(
        {
            "ok": preview.ok,
            "errors": {},
            "problems": preview.problems,
            "strata": preview.strata,
            "n_real": preview.n_real,
            "n_synthetic": preview.n_synthetic,
        }
    )


@never_cache
@roles.researcher_required
def study_detail(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _visible_study(request, study_id)
    config = protocol.config_with_defaults(study.config)
    counts = study.items.aggregate(
        n_real=Count("pk", filter=Q(is_tutorial=False, image__kind="real")),
        n_synthetic=Count("pk", filter=Q(is_tutorial=False, image__kind="synthetic")),
        n_anchors=Count("pk", filter=Q(is_anchor=True)),
        n_tutorial=Count("pk", filter=Q(is_tutorial=True)),
    )
    invite_urls = request.session.pop(f"invite_urls_{study.pk}", None)
    audit = leakaudit.leak_audit_latest(study_id=study.pk)
    return render(
        request,
        "studies/study_detail.html",
        {
            "study": study,
            "config": config,
            "counts": counts,
            "pool": study.pool_summary or {},
            "n_late": Judgment.objects.filter(presentation__assignment__study=study, is_late=True).count()
            if config["exposure_ms"]
            else 0,
            "audit": audit,
            "audit_is_current": audit is not None
            and not study.is_frozen
            and audit.design_sha256 == services.study_design_sha256(study),
            "open_form": forms.OpenForm(),
            "progress": study_progress(study),
            "invite_urls": invite_urls,
            "invite_form": forms.InviteForm(),
            "share_form": forms.ShareForm(),
            "collaborators": study.collaborators.order_by("username"),
            "instructions_html": render_markdown(study.instructions),
            "can_manage": study.is_managed_by(request.user),
        },
    )


def _managed_study(request: HttpRequest, study_id: int) -> Study:
    """Editing, opening, closing, inviting, sharing and leak audits are for the owner and admins;
    collaborators only look (403), others get the 404 of ``_visible_study``."""
    study = _visible_study(request, study_id)
    if not study.is_managed_by(request.user):
        raise PermissionDenied("Only the study's owner can do this.")
    return study


@roles.researcher_required
@require_POST
def study_open(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _managed_study(request, study_id)
    form = forms.OpenForm(request.POST)
    override = form.is_valid() and form.cleaned_data["override_leaks"]
    try:
        study = services.study_open(study=study, override_leaks=override)
    except (ValueError, services.StudyFrozen) as exc:
        messages.error(request, str(exc))
    else:
        if study.leak_audit_overridden:
            messages.warning(
                request, "The study is open over a flagged leak audit; the override is recorded."
            )
        else:
            messages.success(request, "The study is open; its design is frozen.")
    return redirect("study-detail", study_id=study.pk)


@roles.researcher_required
@require_POST
def study_audit(request: HttpRequest, study_id: int) -> HttpResponse:
    """Run the leak audit of a draft's design in the background; the study page shows its table."""
    study = _managed_study(request, study_id)
    if study.is_frozen:
        messages.error(request, "The leak audit runs on drafts; run audit_leaks from the command line.")
        return redirect("study-detail", study_id=study.pk)
    row = scheduling.leak_audit_request(study=study, requested_by=request.user)
    messages.info(request, f"Leak audit {row.pk}: {row.get_status_display().lower()}.")
    return redirect("study-detail", study_id=study.pk)


@roles.researcher_required
@require_POST
def study_close(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _managed_study(request, study_id)
    services.study_close(study=study)
    messages.success(request, "The study is closed.")
    return redirect("study-detail", study_id=study.pk)


@roles.researcher_required
@require_POST
def study_copy(request: HttpRequest, study_id: int) -> HttpResponse:
    # Looking is enough: the copy is a new draft owned by the requester; the original is untouched.
    study = _visible_study(request, study_id)
    copy = services.study_copy(study=study, owner=request.user)
    messages.success(request, "Copied as a new draft.")
    return redirect("study-detail", study_id=copy.pk)


@roles.researcher_required
@require_POST
def study_invite(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _managed_study(request, study_id)
    form = forms.InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a number of invitations between 1 and 500.")
        return redirect("study-detail", study_id=study.pk)
    try:
        tokens = services.invitation_create(study=study, count=form.cleaned_data["count"])
    except services.StudyFrozen as exc:
        messages.error(request, str(exc))
        return redirect("study-detail", study_id=study.pk)
    # Shown once on the next page only: the raw tokens are never stored.
    request.session[f"invite_urls_{study.pk}"] = [services.invitation_url(t) for t in tokens]
    return redirect("study-detail", study_id=study.pk)


@roles.researcher_required
@require_POST
def study_share(request: HttpRequest, study_id: int) -> HttpResponse:
    """The owner (or an admin) shares a study with another researcher, who can then see it."""
    study = _managed_study(request, study_id)
    form = forms.ShareForm(request.POST)
    if form.is_valid():
        services.study_share(study=study, user=form.cleaned_data["user"])
        messages.success(request, f"Shared with {form.cleaned_data['user'].get_username()}.")
    else:
        messages.error(request, " ".join(form.errors.get("username", ["Unknown user."])))
    return redirect("study-detail", study_id=study.pk)
