"""Reading exports: the tenant's list (newest first) and one by id."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Role
from apps.common.errors import NotFound
from apps.exports.models import Export

KEEPERS = frozenset({Role.OWNER, Role.ADMIN})  # see every export of the tenant


def exports() -> QuerySet[Export]:
    return Export.objects.all()


def export(export_id: int) -> Export:
    found = Export.objects.filter(pk=export_id).first()
    if found is None:
        raise NotFound("No such export.")
    return found


def visible(
    queryset: QuerySet[Export], *, role: str | None, user_id: int | None
) -> QuerySet[Export]:
    """The exports of `queryset` a member may see: owners and admins all, the others their own
    (another's file may hold contact details the caller sees masked)."""
    return queryset if role in KEEPERS else queryset.filter(requested_by_id=user_id)


def visible_export(export_id: int, *, role: str | None, user_id: int | None) -> Export | None:
    """The export `export_id` if the member may see it (`visible`), else None."""
    return visible(exports(), role=role, user_id=user_id).filter(pk=export_id).first()
