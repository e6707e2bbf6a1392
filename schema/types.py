"""Types shared by several domains: roles, the signed-in user, tenant-scoped querysets; and
`as_type`, how every resolver hands a model row over where the schema declares its type."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TypeVar, cast, overload

import strawberry
import strawberry_django
from django.db.models import Model

from apps.accounts.models import Role, User
from schema.ids import TenantNode


@strawberry.enum(name="Role")
class RoleEnum(enum.Enum):
    OWNER = Role.OWNER.value
    ADMIN = Role.ADMIN.value
    STAFF = Role.STAFF.value
    ANALYST = Role.ANALYST.value
    VIEWER = Role.VIEWER.value


class TenantScoped:
    """strawberry-django types of public-schema rows that belong to one tenant: every fetch,
    by list or by global id, sees the current tenant's rows only."""

    @classmethod
    def get_queryset(cls, queryset, info, **kwargs):
        return queryset.filter(tenant=info.context.tenant)


@strawberry_django.type(User, name="User")
class UserType(TenantNode):
    email: str
    full_name: str

    @classmethod
    def get_queryset(cls, queryset, info, **kwargs):
        tenant = info.context.tenant
        return (
            queryset.filter(memberships__tenant=tenant) if tenant is not None else queryset.none()
        )


Shown = TypeVar("Shown")
Row = TypeVar("Row", bound=Model)


@overload
def as_type(graphql_type: type[Shown], row: Model) -> Shown: ...
@overload
def as_type(graphql_type: type[Shown], row: Model | None) -> Shown | None: ...
def as_type(graphql_type: type[Shown], row: Model | None) -> Shown | None:
    """`row` where the schema declares `graphql_type`, its strawberry-django type.

    Such a type's fields resolve on the model instance itself, so resolvers and payloads hand over
    the row as it is. mypy knows the type by its annotations only and cannot tell that it stands
    for the model (strawberry-django #256, #349); this says so, in one place. Nothing happens at
    run time: no copy, no check. Connection resolvers need none of it: their decorator names the
    connection type, and they are annotated with the rows they return, as strawberry-django's
    own examples are."""
    return cast("Shown | None", row)


@overload
def as_types(graphql_type: type[Shown], rows: list[Row]) -> list[Shown]: ...
@overload
def as_types(graphql_type: type[Shown], rows: Iterable[Model]) -> Iterable[Shown]: ...
def as_types(graphql_type: type[Shown], rows: Iterable[Model]) -> Iterable[Shown]:
    """`as_type` for many rows, still the same object: a list stays that list, a queryset that
    queryset (which strawberry-django optimizes and paginates)."""
    return cast("Iterable[Shown]", rows)
