"""Custom reports (apps.analytics.reports): saved definitions any member who sees analytics can
list and run; `reportRun` answers a saved report (or a definition not saved yet) through the
metrics engine, with the same AnalyticsResult as `analytics` (rows, totals, series) and a chart
image drawn on the server."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any

import strawberry
import strawberry_django
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry_django.relay import DjangoListConnection

from apps.analytics import definitions, reports
from apps.analytics.models import Report
from apps.analytics.query import Result
from schema import dashboards
from schema.analytics import AnalyticsResult, result_of
from schema.charts import ChartFormatEnum, ChartImage, ChartKindEnum, Height, Width, chart_image
from schema.context import principal, tenant
from schema.errors import AnalyticsError, payload_or_errors
from schema.ids import TenantNode, minted_in, pk_of, pk_or_none
from schema.types import as_type

DEFINITION = dashboards.DEFINITION.replace("one for a widget", "one to ten")
RangeOverride = Annotated[
    JSON | None,
    strawberry.argument(
        description='Instead of the definition\'s range: a preset ("last_30_days", …), {"lastDays": n} or '
        '{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}.'
    ),
]


@strawberry_django.type(Report, name="Report")
class ReportType(TenantNode):
    name: str
    created: datetime
    updated: datetime

    @strawberry_django.field(
        only=["definition"], description="Normalised: every key, ids as global ids."
    )
    def definition(self, root: Report, info: Info) -> JSON:
        return JSON(definitions.public(root.definition, schema=minted_in(info)))

    @strawberry_django.field(only=["user_id"], description="Saved by the caller.")
    def mine(self, root: Report, info: Info) -> bool:
        user = principal(info).user
        return user is not None and root.user_id == user.pk


@strawberry.type(
    description="A report's figures: the engine's answer, and the chart of it; or, for a definition "
    "or range the engine cannot answer, userErrors (field and code) and no result."
)
class ReportRun:
    report: ReportType | None = strawberry.field(description="Null for a definition not saved.")
    title: str = ""
    answer: strawberry.Private[Result | None] = None
    user_errors: list[AnalyticsError] = strawberry.field(default_factory=list)

    @strawberry.field(
        description="Rows (one per bucket or item: label and a value per metric), totals, the "
        "previous period when asked, and chart-ready series."
    )
    def result(self) -> AnalyticsResult | None:
        return None if self.answer is None else result_of(self.answer)

    @strawberry.field(description="The figures drawn as an image (a table by default).")
    def chart(
        self,
        format: ChartFormatEnum,
        kind: ChartKindEnum = ChartKindEnum.TABLE,
        width: Width = None,
        height: Height = None,
    ) -> ChartImage | None:
        if self.answer is None:
            return None
        return chart_image(
            self.answer, kind=kind, format=format, title=self.title, width=width, height=height
        )


@strawberry.type
class ReportPayload:
    report: ReportType | None = None
    user_errors: list[AnalyticsError] = strawberry.field(default_factory=list)


@strawberry.type
class ReportDeletePayload:
    deleted_id: strawberry.ID | None = None
    user_errors: list[AnalyticsError] = strawberry.field(default_factory=list)


def _payload(make: Callable[[], Report]) -> ReportPayload:
    return payload_or_errors(
        lambda: ReportPayload(report=as_type(ReportType, make())),
        lambda errors: ReportPayload(user_errors=errors),
        AnalyticsError,
    )


@strawberry.input
class ReportInput:
    name: str
    definition: JSON = strawberry.field(description=DEFINITION)


@strawberry.input
class ReportUpdateInput:
    name: str | None = strawberry.UNSET
    definition: JSON | None = strawberry.field(default=strawberry.UNSET, description=DEFINITION)


@strawberry.type
class Query:
    @strawberry_django.connection(DjangoListConnection[ReportType], description="By name.")
    def reports(self) -> Iterable[Report]:
        return reports.reports()

    @strawberry.field
    def report(self, info: Info, id: strawberry.ID) -> ReportType | None:
        return as_type(ReportType, reports.report_or_none(pk_of(id, "Report", info)))

    @strawberry.field(
        description="Runs a saved report (`id`) or a definition not saved yet (`definition`), "
        "optionally over another `range`."
    )
    def report_run(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        definition: JSON | None = None,
        range: RangeOverride = None,
    ) -> ReportRun:
        current = tenant(info)

        def make() -> ReportRun:
            saved, answer = reports.run_report(
                tenant=current,
                report_id=pk_or_none(id, "Report", info),
                definition=definition,
                range=range,
            )
            return ReportRun(
                report=as_type(ReportType, saved),
                title="" if saved is None else saved.name,
                answer=answer,
            )

        return payload_or_errors(
            make, lambda errors: ReportRun(report=None, user_errors=errors), AnalyticsError
        )


def _changes(data: ReportUpdateInput) -> dict[str, Any]:
    return {name: value for name, value in vars(data).items() if value is not strawberry.UNSET}


@strawberry.type
class Mutation:
    @strawberry.mutation
    def report_create(self, info: Info, input: ReportInput) -> ReportPayload:
        return _payload(
            lambda: reports.create_report(
                actor=principal(info),
                tenant=tenant(info),
                name=input.name,
                definition=input.definition,
            )
        )

    @strawberry.mutation(description="By whoever saved the report, an owner or an admin.")
    def report_update(
        self, info: Info, id: strawberry.ID, input: ReportUpdateInput
    ) -> ReportPayload:
        return _payload(
            lambda: reports.update_report(
                actor=principal(info),
                tenant=tenant(info),
                report_id=pk_of(id, "Report", info),
                changes=_changes(input),
            )
        )

    @strawberry.mutation(description="By whoever saved the report, an owner or an admin.")
    def report_delete(self, info: Info, id: strawberry.ID) -> ReportDeletePayload:
        def make() -> ReportDeletePayload:
            reports.delete_report(actor=principal(info), report_id=pk_of(id, "Report", info))
            return ReportDeletePayload(deleted_id=id)

        return payload_or_errors(
            make, lambda errors: ReportDeletePayload(user_errors=errors), AnalyticsError
        )


__all__ = ["Mutation", "Query", "ReportType"]
