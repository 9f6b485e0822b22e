"""Logins, failed logins, lockouts, and role and permission changes, from Django's and axes' signals.

Role changes arrive wherever they are made (admin, ``roles.add_to_role``, a shell), so they are
caught at the model: group and permission memberships by ``m2m_changed``, the staff and
superuser flags by comparing the row before and after a save.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from turingtest.trail.services import Action, event_record

User = get_user_model()
_FLAGS = ("is_staff", "is_superuser")


@receiver(user_logged_in, dispatch_uid="trail_login")
def _login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    event_record(action=Action.LOGIN, actor=user, obj=user, request=request)


@receiver(user_login_failed, dispatch_uid="trail_login_failed")
def _login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    # Django has already masked the password in ``credentials``; only the name tried is kept.
    tried = credentials.get("username") or credentials.get(User.USERNAME_FIELD) or ""
    event_record(action=Action.LOGIN_FAILED, after={"username": str(tried)[:150]}, request=request)


@receiver(user_locked_out, dispatch_uid="trail_lockout")
def _lockout(
    sender: Any, request: Any = None, username: str = "", ip_address: str = "", **kwargs: Any
) -> None:
    event_record(
        action=Action.LOCKOUT, after={"username": username or "", "ip_address": ip_address}, request=request
    )


# --- the staff and superuser flags --------------------------------------------------------


@receiver(pre_save, sender=User, dispatch_uid="trail_user_flags_before")
def _flags_before(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and not set(update_fields) & set(_FLAGS):
        return  # e.g. the last_login stamp of every login: no extra query
    old = None
    if not instance._state.adding:
        old = sender.objects.filter(pk=instance.pk).values(*_FLAGS).first()
    instance._trail_flags = old or dict.fromkeys(_FLAGS, False)


@receiver(post_save, sender=User, dispatch_uid="trail_user_flags_after")
def _flags_after(sender: Any, instance: Any, **kwargs: Any) -> None:
    before = instance.__dict__.pop("_trail_flags", None)
    if before is None:
        return
    after = {f: bool(getattr(instance, f)) for f in _FLAGS}
    if after != before:
        event_record(action=Action.ROLE_CHANGED, obj=instance, before=before, after=after)


# --- memberships: groups of a user, permissions of a user or a group -----------------------


def _group_name(pk_set: set[int]) -> dict[int, str]:
    return dict(Group.objects.filter(pk__in=pk_set).values_list("pk", "name"))


def _permission_name(pk_set: set[int]) -> dict[int, str]:
    rows = Permission.objects.filter(pk__in=pk_set).values_list("pk", "content_type__app_label", "codename")
    return {pk: f"{app}.{codename}" for pk, app, codename in rows}


# through model -> (owner field, related field, owner model, names of related pks, action)
_MEMBERSHIPS = {
    User.groups.through: ("user", "group", User, _group_name, Action.ROLE_CHANGED),
    User.user_permissions.through: ("user", "permission", User, _permission_name, Action.PERMISSION_CHANGED),
    Group.permissions.through: ("group", "permission", Group, _permission_name, Action.PERMISSION_CHANGED),
}
_CHANGE = {"post_add": "added", "post_remove": "removed", "pre_clear": "removed"}


def _membership_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    if action not in _CHANGE:
        return
    owner_field, related_field, owner_model, names, audit_action = _MEMBERSHIPS[sender]
    # Pairs (owner, related), whichever side the change was made from.
    if action == "pre_clear":  # the set is about to go: read it while it is there
        mine = related_field if reverse else owner_field
        rows = sender.objects.filter(**{f"{mine}_id": instance.pk})
        pairs = list(rows.values_list(f"{owner_field}_id", f"{related_field}_id"))
    elif reverse:
        pairs = [(pk, instance.pk) for pk in pk_set or ()]
    else:
        pairs = [(instance.pk, pk) for pk in pk_set or ()]
    by_owner: dict[int, set[int]] = defaultdict(set)
    for owner, related in pairs:
        by_owner[owner].add(related)
    if not by_owner:
        return
    labels = names({r for rs in by_owner.values() for r in rs})
    owners = {instance.pk: instance} if not reverse else owner_model.objects.in_bulk(list(by_owner))
    for owner_pk, related in sorted(by_owner.items()):
        owner = owners.get(owner_pk) or (owner_model._meta.label_lower, owner_pk)
        event_record(
            action=audit_action,
            obj=owner,
            after={_CHANGE[action]: sorted(labels.get(r, str(r)) for r in related)},
        )


for _through in _MEMBERSHIPS:
    m2m_changed.connect(_membership_changed, sender=_through, dispatch_uid=f"trail_m2m_{_through.__name__}")
