"""Types shared by several domains: roles, the signed-in user, tenant-scoped querysets."""

from __future__ import annotations

import enum

import strawberry
import strawberry_django

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
