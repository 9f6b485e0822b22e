"""``event_record``: the one way anything enters the audit trail.

Callers name the action and, where they have them, the actor, the object, the study and the
values before and after; the request (its id, client address and user) comes from
``middleware.RequestIdMiddleware`` through a context variable, so services deep below a view
need no ``request`` argument. Called inside the caller's transaction, an event commits or
rolls back with the change it describes.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from typing import Any

from django.db.models import Model, QuerySet
from django.forms.models import model_to_dict
from django.http import HttpRequest

from turingtest.jsonsafe import json_safe
from turingtest.trail.models import AuditEvent

Action = AuditEvent.Action

# Actions the platform names but does not perform yet (no pause, no invitation revoke, no rater
# exclusion): the issues that add them call ``event_record`` with these.
RESERVED = frozenset(
    {
        Action.COLLABORATOR_REMOVED,
    }
)

_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("trail_request", default=None)


def current_request() -> HttpRequest | None:
    """The request being served in this context (``None`` in commands, tasks and tests without one)."""
    return _request.get()


def request_bind(request: HttpRequest | None) -> contextvars.Token:
    return _request.set(request)


def request_unbind(token: contextvars.Token) -> None:
    _request.reset(token)


def client_address(request: HttpRequest) -> str:
    """The client's address as django-axes resolves it (its configured proxy rules, else REMOTE_ADDR),
    so lockouts and the audit trail name the same address."""
    try:
        from axes.helpers import get_client_ip_address
    except ImportError:  # axes not installed: the socket peer
        return (request.META.get("REMOTE_ADDR") or "")[:45]
    return (get_client_ip_address(request) or "")[:45]


def actor_name(user: Any) -> str:
    """A rater by pseudonym (erasing a rater's identity later leaves the event intact), anyone
    else by username."""
    profile = getattr(user, "rater_profile", None)  # the reverse one-to-one raises AttributeError
    pseudonym = getattr(profile, "pseudonym", "")
    return (pseudonym or user.get_username())[:150]


def event_record(
    *,
    action: str,
    actor: Any = None,
    obj: Model | tuple[str, Any] | None = None,
    study: Model | int | None = None,
    before: Any = None,
    after: Any = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Append one event. ``actor`` defaults to the current request's authenticated user, ``obj`` is
    a model instance or ``(type, id)``, ``study`` a study or its id (taken from ``obj`` when it is
    a study); ``before``/``after`` go through ``json_safe``."""
    if action not in Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    request = request if request is not None else current_request()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    object_type, object_id = "", ""
    if isinstance(obj, tuple):
        object_type, object_id = obj[0], str(obj[1])
    elif obj is not None:
        object_type, object_id = obj._meta.label_lower, str(obj.pk)
    if study is None and object_type == "studies.study":
        study = int(object_id)
    return AuditEvent.objects.create(
        action=action,
        actor_id=getattr(actor, "pk", None),
        actor_name=actor_name(actor) if actor is not None else "",
        object_type=object_type,
        object_id=object_id,
        study_id=getattr(study, "pk", study),
        before=json_safe(before),
        after=json_safe(after),
        request_id=getattr(request, "request_id", "") if request is not None else "",
        client_address=client_address(request) if request is not None else "",
    )


def event_record_form(
    *, action: str, form: Any, fields: Iterable[str], study: Any = None, request: HttpRequest | None = None
) -> AuditEvent | None:
    """Record what a saved ``ModelForm`` changed among ``fields`` (values as ``model_to_dict``
    gives them: foreign keys as ids); nothing when none of them changed."""
    changed = [f for f in fields if f in form.changed_data]
    if not changed:
        return None
    return event_record(
        action=action,
        obj=form.instance,
        study=study,
        before={f: form.initial.get(f) for f in changed},
        after=model_to_dict(form.instance, fields=changed),
        request=request,
    )


def study_events(*, study_id: int) -> QuerySet[AuditEvent]:
    """A study's events, oldest first (the study package's ``audit.csv``)."""
    return AuditEvent.objects.filter(study_id=study_id).order_by("at", "id")
