"""Roles: the ``raters`` and ``researchers`` groups; staff and superusers are admins.

Every view checks roles server-side through these helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.core.exceptions import PermissionDenied

RATERS = "raters"
RESEARCHERS = "researchers"


def is_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and (user.is_staff or user.is_superuser))


def is_researcher(user: AbstractBaseUser | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    return is_admin(user) or user.groups.filter(name=RESEARCHERS).exists()


def is_rater(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.groups.filter(name=RATERS).exists())


def add_to_role(user: Any, role: str) -> None:
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)


def researcher_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Login required, then 403 unless the user is a researcher or an admin."""

    @wraps(view)
    def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_researcher(request.user):
            raise PermissionDenied("Researchers only.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)
