"""Roles: the ``raters``, ``researchers`` and ``admins`` groups, and two explicit permissions.

Every view checks roles server-side through these helpers.

What an admin may do beyond a researcher is two permissions on ``studies.Study`` (granted
to the ``admins`` group by a migration; superusers hold every permission implicitly):

- ``studies.view_all_studies``: see and manage every study, not only one's own and shared ones;
- ``studies.export_identities``: add rater usernames and e-mails to an export.

The ``is_staff`` flag only opens the Django admin site, where Django's model permissions
decide what a staff member sees; on its own it grants neither of the two above (a staff
account without permissions once downloaded identities through its API token).
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
ADMINS = "admins"

VIEW_ALL_STUDIES = "studies.view_all_studies"
EXPORT_IDENTITIES = "studies.export_identities"


def is_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    """May use the Django admin site (staff or superuser); grants no study access by itself."""
    return bool(user.is_authenticated and (user.is_staff or user.is_superuser))


def may_view_all_studies(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Sees and manages every study (``studies.view_all_studies``; superusers implicitly)."""
    return bool(user.is_authenticated and user.has_perm(VIEW_ALL_STUDIES))


def may_export_identities(user: AbstractBaseUser | AnonymousUser) -> bool:
    """May add rater usernames and e-mails to exports (``studies.export_identities``)."""
    return bool(user.is_authenticated and user.has_perm(EXPORT_IDENTITIES))


def is_researcher(user: AbstractBaseUser | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    return may_view_all_studies(user) or user.groups.filter(name=RESEARCHERS).exists()


def is_rater(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.groups.filter(name=RATERS).exists())


def add_to_role(user: Any, role: str) -> None:
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)


def researcher_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Login required, then 403 unless the user is a researcher or may see every study."""

    @wraps(view)
    def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_researcher(request.user):
            raise PermissionDenied("Researchers only.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)
