"""The current tenant (tenant hosts) and the platform's tenant administration (platform host)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
import strawberry_django
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry_django.relay import DjangoListConnection

from apps.common.errors import UserError as ServiceUserError
from apps.provisioning import services
from schema.context import principal, tenant, tenant_or_none
from schema.customers import FromDate, ToDate
from schema.errors import ApiError, TenantError, bad_request, payload_or_errors
from schema.ids import TenantNode, pk_of, pk_or_none
from schema.types import as_type
from tenants.models import Tenant

if TYPE_CHECKING:
    from schema.analytics_overview import TenantAnalyticsSummary


@strawberry.enum(name="TenantStatus")
class TenantStatusEnum(enum.Enum):
    ACTIVE = Tenant.Status.ACTIVE.value
    SUSPENDED = Tenant.Status.SUSPENDED.value


@strawberry_django.type(Tenant, name="Tenant")
class TenantType(TenantNode):
    name: str
    slug: str
    time_zone: str
    currency: str
    settings: JSON
    created: datetime

    @strawberry_django.field(only=["status"])
    def status(self, root: Tenant) -> TenantStatusEnum:
        return TenantStatusEnum(root.status)

    @strawberry_django.field(prefetch_related=["domains"])
    def domains(self, root: Tenant) -> list[str]:
        return [domain.domain for domain in root.domains.all()]

    @strawberry_django.field(
        only=["time_zone", "currency", "schema_name"],
        description="KPIs over a range of the tenant's days (default the last 30): for its members "
        "who may read analytics, and for platform staff on the platform host.",
    )
    def analytics_summary(
        self, root: Tenant, info: Info, from_: FromDate = None, to: ToDate = None
    ) -> Annotated[TenantAnalyticsSummary, strawberry.lazy("schema.analytics_overview")]:
        from schema.analytics_overview import analytics_summary

        return analytics_summary(info, root, from_, to)

    @classmethod
    def get_queryset(cls, queryset, info, **kwargs):
        queryset = queryset.filter(is_template=False)
        current = info.context.tenant
        return queryset if current is None else queryset.filter(pk=current.pk)


@strawberry.input
class TenantUpdateInput:
    name: str | None = strawberry.UNSET
    time_zone: str | None = strawberry.UNSET
    currency: str | None = strawberry.UNSET
    settings: JSON | None = strawberry.UNSET


@strawberry.input
class TenantCreateInput:
    name: str
    slug: str
    owner_email: str
    owner_password: str
    time_zone: str = "UTC"
    currency: str = "USD"


@strawberry.type
class TenantPayload:
    tenant: TenantType | None = None
    user_errors: list[TenantError] = strawberry.field(default_factory=list)


def _changes(data: TenantUpdateInput) -> dict[str, object]:
    return {
        name: value
        for name, value in vars(data).items()
        if value is not strawberry.UNSET and value is not None
    }


def _tenant_payload(make: Callable[[], Tenant]) -> TenantPayload:
    return payload_or_errors(
        lambda: TenantPayload(tenant=as_type(TenantType, make())),
        lambda e: TenantPayload(user_errors=e),
        TenantError,
    )


@strawberry.type
class Query:
    tenants: DjangoListConnection[TenantType] = strawberry_django.connection()

    @strawberry.field(
        name="tenant",
        description="On a tenant host, the current tenant (`id`, if given, must name "
        "it). On the platform host, for platform staff, the tenant `id` names.",
    )
    def current_tenant(self, info: Info, id: strawberry.ID | None = None) -> TenantType:
        current = tenant_or_none(info)
        wanted = pk_or_none(id, "Tenant", info)
        if current is not None:
            if wanted not in (None, current.pk):
                raise ApiError("No such tenant.", code="NOT_FOUND")
            return as_type(TenantType, current)
        if wanted is None:
            raise bad_request("On the platform host, `id` names the tenant.")
        try:
            return as_type(TenantType, services.tenant_by_id(wanted))
        except ServiceUserError as missing:
            raise ApiError(missing.message, code="NOT_FOUND") from missing


@strawberry.type
class Mutation:
    @strawberry.mutation
    def tenant_create(self, info: Info, input: TenantCreateInput) -> TenantPayload:
        """Sign-up: a tenant, its domain and its owner, on the platform host."""
        return _tenant_payload(
            lambda: services.provision_tenant(
                name=input.name,
                slug=input.slug,
                owner_email=input.owner_email,
                owner_password=input.owner_password,
                time_zone=input.time_zone,
                currency=input.currency,
                actor=principal(info),
            )
        )

    @strawberry.mutation
    def tenant_update(self, info: Info, input: TenantUpdateInput) -> TenantPayload:
        return _tenant_payload(
            lambda: services.update_tenant(
                actor=principal(info), tenant=tenant(info), changes=_changes(input)
            )
        )

    @strawberry.mutation
    def platform_tenant_update(
        self, info: Info, id: strawberry.ID, input: TenantUpdateInput
    ) -> TenantPayload:
        return _tenant_payload(
            lambda: services.update_tenant(
                actor=principal(info),
                tenant=services.tenant_by_id(pk_of(id, "Tenant", info)),
                changes=_changes(input),
            )
        )

    @strawberry.mutation
    def tenant_suspend(self, info: Info, id: strawberry.ID) -> TenantPayload:
        return _tenant_payload(
            lambda: services.set_tenant_status(
                actor=principal(info),
                tenant_id=pk_of(id, "Tenant", info),
                status=Tenant.Status.SUSPENDED,
            )
        )

    @strawberry.mutation
    def tenant_resume(self, info: Info, id: strawberry.ID) -> TenantPayload:
        return _tenant_payload(
            lambda: services.set_tenant_status(
                actor=principal(info),
                tenant_id=pk_of(id, "Tenant", info),
                status=Tenant.Status.ACTIVE,
            )
        )
