"""Dashboard widgets (apps.analytics.dashboards): the shared dashboard and each member's own,
CRUD and reorder; each widget's `data` is the engine's answer to its definition (the same
AnalyticsResult as `analytics`), and `chart` draws it on the server.

A definition is JSON, checked against a whitelist (apps.analytics.definitions):
`{"metrics": ["gross_sales"], "dimension": "time", "granularity": "day", "range": "last_30_days",
"filters": {"productIds": [], "categoryIds": []}, "compare": false, "limit": null}`."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry
import strawberry_django
from strawberry.scalars import JSON
from strawberry.types import Info

from apps.analytics import dashboards, definitions
from apps.analytics.models import Widget
from apps.analytics.query import Result
from schema.analytics import AnalyticsResult, result_of
from schema.charts import ChartFormatEnum, ChartImage, ChartKindEnum, Height, Width, chart_image
from schema.context import principal, tenant
from schema.errors import AnalyticsError, payload_or_errors, read_or_bad_request
from schema.ids import TenantNode, minted_in, pk_of
from schema.types import as_type, as_types

DEFINITION = (
    "JSON with only these keys: metrics (names of AnalyticsMetric, lower case; one for a widget), "
    'dimension ("time", "product", "category" or null), granularity ("day", "week", "month"), range '
    "(a preset: today, yesterday, last_7_days, last_30_days, last_90_days, last_365_days, month_to_date, "
    'year_to_date, last_month; or {"lastDays": n}; or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}; presets '
    'end today in the tenant\'s time zone), filters ({"productIds": [ID], "categoryIds": [ID]}), compare '
    "(bool), limit (1 to 100)."
)


@strawberry.enum(name="WidgetKind")
class WidgetKindEnum(enum.Enum):
    KPI = Widget.Kind.KPI.value
    LINE = Widget.Kind.LINE.value
    BAR = Widget.Kind.BAR.value
    PIE = Widget.Kind.PIE.value
    TABLE = Widget.Kind.TABLE.value


@strawberry_django.type(Widget, name="Widget")
class WidgetType(TenantNode):
    title: str
    position: int = strawberry_django.field(description="Order on its dashboard, from 0.")
    created: datetime
    updated: datetime

    @classmethod
    def get_queryset(cls, queryset, info: Info, **kwargs):
        return queryset.filter(dashboards.visible_to(principal(info)))

    @strawberry_django.field(only=["kind"])
    def kind(self, root: Widget) -> WidgetKindEnum:
        return WidgetKindEnum(root.kind)

    @strawberry_django.field(
        only=["user_id"], description="On the tenant's shared dashboard (else the caller's own)."
    )
    def shared(self, root: Widget) -> bool:
        return root.user_id is None

    @strawberry_django.field(
        only=["definition"], description="Normalised: every key, ids as global ids."
    )
    def definition(self, root: Widget, info: Info) -> JSON:
        return JSON(definitions.public(root.definition, schema=minted_in(info)))

    @strawberry_django.field(
        only=["definition"],
        description="The figures, through the metrics engine (cached "
        "there): relative ranges end today in the tenant's time zone.",
    )
    def data(self, root: Widget, info: Info) -> AnalyticsResult:
        return result_of(_result(root, info))

    @strawberry_django.field(
        only=["definition", "kind", "title"], description="The widget drawn as an image."
    )
    def chart(
        self,
        root: Widget,
        info: Info,
        format: ChartFormatEnum,
        width: Width = None,
        height: Height = None,
    ) -> ChartImage:
        return chart_image(
            _result(root, info),
            kind=ChartKindEnum(root.kind),
            format=format,
            title=root.title,
            width=width,
            height=height,
        )


def _result(widget: Widget, info: Info) -> Result:
    """The widget's answer, asked once per operation however many fields show it. Keyed by its
    definition too: a widget changed by a mutation earlier in the operation is asked again."""
    key = f"widget:{widget.pk}:{json.dumps(widget.definition, sort_keys=True)}"
    return info.context.once(
        key,
        lambda: read_or_bad_request(lambda: dashboards.widget_result(widget, tenant=tenant(info))),
    )


@strawberry.input
class WidgetCreateInput:
    title: str
    kind: WidgetKindEnum
    definition: JSON = strawberry.field(description=DEFINITION)
    shared: bool = strawberry.field(
        default=False,
        description="On the tenant's shared dashboard (owners, admins, "
        "analysts) rather than the caller's own.",
    )


@strawberry.input
class WidgetUpdateInput:
    title: str | None = strawberry.UNSET
    kind: WidgetKindEnum | None = strawberry.UNSET
    definition: JSON | None = strawberry.field(default=strawberry.UNSET, description=DEFINITION)


@strawberry.type
class WidgetPayload:
    widget: WidgetType | None = None
    user_errors: list[AnalyticsError] = strawberry.field(default_factory=list)


@strawberry.type
class WidgetDeletePayload:
    deleted_id: strawberry.ID | None = None
    user_errors: list[AnalyticsError] = strawberry.field(default_factory=list)


@strawberry.type
class WidgetsReorderPayload:
    widgets: list[WidgetType] = strawberry.field(default_factory=list)
    user_errors: list[AnalyticsError] = strawberry.field(default_factory=list)


def _widget_payload(make: Callable[[], Widget]) -> WidgetPayload:
    return payload_or_errors(
        lambda: WidgetPayload(widget=as_type(WidgetType, make())),
        lambda errors: WidgetPayload(user_errors=errors),
        AnalyticsError,
    )


def _changes(data: WidgetUpdateInput) -> dict[str, Any]:
    values = {name: value for name, value in vars(data).items() if value is not strawberry.UNSET}
    if isinstance(values.get("kind"), WidgetKindEnum):
        values["kind"] = values["kind"].value
    return values


@strawberry.type
class Query:
    @strawberry.field(
        description=f"The shared dashboard's widgets, then the caller's own, each in order (at most "
        f"{dashboards.MAX_WIDGETS} a dashboard). mine: true for only the caller's, false for only "
        "the shared."
    )
    def widgets(self, info: Info, mine: bool | None = None) -> list[WidgetType]:
        return as_types(WidgetType, dashboards.widgets(actor=principal(info), mine=mine))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="A widget at the end of a dashboard.")
    def widget_create(self, info: Info, input: WidgetCreateInput) -> WidgetPayload:
        return _widget_payload(
            lambda: dashboards.create_widget(
                actor=principal(info),
                tenant=tenant(info),
                title=input.title,
                kind=input.kind.value,
                definition=input.definition,
                shared=input.shared,
            )
        )

    @strawberry.mutation
    def widget_update(
        self, info: Info, id: strawberry.ID, input: WidgetUpdateInput
    ) -> WidgetPayload:
        return _widget_payload(
            lambda: dashboards.update_widget(
                actor=principal(info),
                tenant=tenant(info),
                widget_id=pk_of(id, "Widget", info),
                changes=_changes(input),
            )
        )

    @strawberry.mutation
    def widget_delete(self, info: Info, id: strawberry.ID) -> WidgetDeletePayload:
        def make() -> WidgetDeletePayload:
            dashboards.delete_widget(actor=principal(info), widget_id=pk_of(id, "Widget", info))
            return WidgetDeletePayload(deleted_id=id)

        return payload_or_errors(
            make, lambda errors: WidgetDeletePayload(user_errors=errors), AnalyticsError
        )

    @strawberry.mutation(
        description="Puts a dashboard's widgets in the order given (every one of them, once)."
    )
    def widgets_reorder(
        self, info: Info, widgets: list[strawberry.ID], shared: bool = False
    ) -> WidgetsReorderPayload:
        return payload_or_errors(
            lambda: WidgetsReorderPayload(
                widgets=as_types(
                    WidgetType,
                    dashboards.reorder_widgets(
                        actor=principal(info),
                        shared=shared,
                        widget_ids=[pk_of(w, "Widget", info) for w in widgets],
                    ),
                )
            ),
            lambda errors: WidgetsReorderPayload(user_errors=errors),
            AnalyticsError,
        )


__all__ = ["Mutation", "Query", "WidgetType"]
