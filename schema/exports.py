"""Data exports (apps.exports): `exportCreate` queues a file of orders, customers, products,
events or a report's rows as CSV, XLSX or JSON; `exports` lists them (newest first) and
`Export.downloadUrl` is a signed link on the tenant's host while the file exists;
`exportProgress(id)` streams how far the task has got.

Members who see analytics export; each sees the exports they asked for, owners and admins all of
the tenant's (a staff member's file holds contact details an analyst's has masked)."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import strawberry
import strawberry_django
from channels.db import database_sync_to_async
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry_django.relay import DjangoListConnection

from apps.exports import filters, links, selectors, services
from apps.exports.models import FINISHED, Export, ExportFormat, ExportKind, ExportStatus, JsonLayout
from apps.live import bus
from schema.context import principal, tenant
from schema.errors import ApiError, ExportError, payload_or_errors
from schema.ids import TenantNode, pk_of
from schema.live import subscription_slot
from schema.types import as_type

if TYPE_CHECKING:  # their members are the models' choices: mypy reads them from the models
    ExportKindEnum: TypeAlias = ExportKind
    ExportFormatEnum: TypeAlias = ExportFormat
    ExportLayoutEnum: TypeAlias = JsonLayout
    ExportStatusEnum: TypeAlias = ExportStatus
else:
    ExportKindEnum = strawberry.enum(
        enum.Enum("ExportKind", {kind.name: kind.value for kind in ExportKind}), name="ExportKind"
    )
    ExportFormatEnum = strawberry.enum(
        enum.Enum("ExportFormat", {f.name: f.value for f in ExportFormat}), name="ExportFormat"
    )
    ExportLayoutEnum = strawberry.enum(
        enum.Enum("ExportJsonLayout", {f.name: f.value for f in JsonLayout}),
        name="ExportJsonLayout",
        description="JSON as one array, or one object a line.",
    )
    ExportStatusEnum = strawberry.enum(
        enum.Enum("ExportStatus", {s.name: s.value for s in ExportStatus}), name="ExportStatus"
    )


def _member(info: Info) -> dict[str, Any]:
    """The caller as selectors.visible and visible_export take them."""
    who = principal(info)
    return {"role": who.role, "user_id": getattr(who.user, "pk", None)}


@strawberry_django.type(Export, name="Export")
class ExportType(TenantNode):
    rows_done: int = strawberry_django.field(description="Rows written so far.")
    rows_total: int | None = strawberry_django.field(
        description="Rows the export holds, once counted."
    )
    size: int | None = strawberry_django.field(description="Bytes, once written.")
    error: str
    created: datetime
    finished: datetime | None
    expires_at: datetime | None = strawberry_django.field(description="When the file is deleted.")

    @classmethod
    def get_queryset(cls, queryset, info: Info, **kwargs):
        return selectors.visible(queryset, **_member(info))

    @strawberry_django.field(only=["kind"])
    def kind(self, root: Export) -> ExportKindEnum:
        return ExportKindEnum(root.kind)

    @strawberry_django.field(only=["format"])
    def format(self, root: Export) -> ExportFormatEnum:
        return ExportFormatEnum(root.format)

    @strawberry_django.field(only=["layout"])
    def layout(self, root: Export) -> ExportLayoutEnum:
        return ExportLayoutEnum(root.layout)

    @strawberry_django.field(only=["status"])
    def status(self, root: Export) -> ExportStatusEnum:
        return ExportStatusEnum(root.status)

    @strawberry_django.field(only=["filters"], description="As checked and stored.")
    def filters(self, root: Export) -> JSON:
        return root.filters

    @strawberry_django.field(only=["file_name"], description="What the downloaded file is called.")
    def file_name(self, root: Export) -> str | None:
        return root.file_name or None

    @strawberry_django.field(
        only=["redact_contacts"],
        description="Customers' emails and phones masked "
        "(asked for by a role that sees them masked).",
    )
    def contacts_redacted(self, root: Export) -> bool:
        return root.redact_contacts

    @strawberry_django.field(
        only=["status", "file"],
        description="A signed link to the file on this host, valid "
        "for EXPORT_URL_MAX_AGE seconds (an hour by default); null until the export is done "
        "and after it expires.",
    )
    def download_url(self, root: Export, info: Info) -> str | None:
        if root.status != ExportStatus.DONE or not root.file:
            return None
        path = links.path(tenant(info).schema_name, root.pk)
        request = info.context.request
        return request.build_absolute_uri(path) if hasattr(request, "build_absolute_uri") else path


@strawberry.type
class ExportPayload:
    export: ExportType | None = None
    user_errors: list[ExportError] = strawberry.field(default_factory=list)


@strawberry.type(description="How far an export has got.")
class ExportProgress:
    export_id: strawberry.ID
    status: ExportStatusEnum
    rows_done: int
    rows_total: int | None

    @classmethod
    def of(cls, export_id: str, status: str, rows: int, total: int | None) -> ExportProgress:
        return cls(
            export_id=strawberry.ID(export_id),
            status=ExportStatusEnum(status),
            rows_done=rows,
            rows_total=total,
        )


FILTERS = filters.__doc__.split("\n\n")[1].strip()


@strawberry.type
class Query:
    @strawberry_django.connection(
        DjangoListConnection[ExportType],
        description="Newest first: the caller's exports (owners and admins: all of them).",
    )
    def exports(self) -> Iterable[Export]:
        return selectors.exports()  # ExportType.get_queryset keeps the caller's


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Queues an export; follow it with `exportProgress` or `exports`. Filters "
        "by kind:\n" + FILTERS
    )
    def export_create(
        self,
        info: Info,
        kind: ExportKindEnum,
        format: ExportFormatEnum,
        filters: JSON | None = None,
        layout: ExportLayoutEnum = ExportLayoutEnum.ARRAY,
    ) -> ExportPayload:
        return payload_or_errors(
            lambda: ExportPayload(
                export=as_type(
                    ExportType,
                    services.create_export(
                        actor=principal(info),
                        tenant=tenant(info),
                        kind=kind.value,
                        format=format.value,
                        filters=filters,
                        layout=layout.value,
                    ),
                )
            ),
            lambda errors: ExportPayload(user_errors=errors),
            ExportError,
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The export's state now, then each change (every 10,000 rows, and the "
        "end); the stream ends when the export is done or has failed."
    )
    async def export_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[ExportProgress, None]:
        pk = pk_of(id, "Export", info)
        # Listening before the state is read: nothing published in between is missed.
        async with (
            subscription_slot(info),
            bus.listen(info.context.request, tenant(info).schema_name, "exports") as messages,
        ):
            current = await database_sync_to_async(
                lambda: selectors.visible_export(pk, **_member(info))
            )()
            if current is None:
                raise ApiError("No such export.", code="NOT_FOUND")
            yield ExportProgress.of(id, current.status, current.rows_done, current.rows_total)
            if current.status in FINISHED:
                return
            async for payload in messages:
                if payload["export"] != pk:
                    continue
                yield ExportProgress.of(id, payload["status"], payload["rows"], payload["total"])
                if payload["status"] in FINISHED:
                    return


__all__ = ["ExportType", "Mutation", "Query", "Subscription"]
