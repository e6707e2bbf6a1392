"""Types shared by several domains: roles, the signed-in user, tenant-scoped querysets."""

from __future__ import annotations

import enum

import strawberry
import strawberry_django
from strawberry import relay

from apps.accounts.models import Role, User
from apps.common.ids import parse_id


@strawberry.enum(name="Role")
class RoleEnum(enum.Enum):
    OWNER = Role.OWNER.value
    ADMIN = Role.ADMIN.value
    STAFF = Role.STAFF.value
    ANALYST = Role.ANALYST.value
    VIEWER = Role.VIEWER.value


def pk_of(global_id: relay.GlobalID, type_name: str) -> int:
    """The database id in a global id of `type_name`; -1 (found nowhere) for anything else."""
    pk = parse_id(global_id.node_id) if global_id.type_name == type_name else None
    return -1 if pk is None else pk


class TenantScoped:
    """strawberry-django types of public-schema rows that belong to one tenant: every fetch,
    by list or by global id, sees the current tenant's rows only."""

    @classmethod
    def get_queryset(cls, queryset, info, **kwargs):
        return queryset.filter(tenant=info.context.tenant)


@strawberry_django.type(User, name="User")
class UserType(relay.Node):
    email: str
    full_name: str

    @classmethod
    def get_queryset(cls, queryset, info, **kwargs):
        tenant = info.context.tenant
        return queryset.filter(memberships__tenant=tenant) if tenant is not None else queryset.none()
