"""Events and funnels: `eventsTrack` (a batch of up to 500 events, validated one by one by
apps.analytics.events) and `funnel` (apps.analytics.funnels)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from apps.analytics import events as ingestion
from apps.analytics import funnels
from apps.analytics.query import DateRange
from apps.common.days import range_or_default
from schema.context import principal, tenant
from schema.customers import FromDate, ToDate
from schema.errors import AnalyticsError, payload_or_errors, read_or_bad_request
from schema.ids import pk_or_none

DEFAULT_STEPS = list(funnels.DEFAULT_STEPS)  # the argument's default (never changed)


@strawberry.input(
    description="One event. See apps/analytics/events.py for the rules; an event that breaks one is "
    "rejected alone, with its index and the reason."
)
class EventInput:
    type: str = strawberry.field(
        description="A lowercase identifier: page_viewed, product_viewed, added_to_cart, "
        "checkout_started, purchased, or any other."
    )
    time: datetime = strawberry.field(
        description="With an offset; at most 5 minutes ahead, at most 400 days old."
    )
    session_id: str | None = strawberry.field(
        default=None,
        description="The visitor's session (1 to 128 printable "
        "characters); required without `customer`.",
    )
    customer: strawberry.ID | None = None
    product: strawberry.ID | None = None
    order: strawberry.ID | None = None
    properties: JSON | None = strawberry.field(
        default=None, description="A JSON object: at most 50 keys, 4 KB, two levels deep."
    )

    def as_event(self, info: Info) -> dict[str, object]:
        return {
            "type": self.type,
            "time": self.time,
            "sessionId": self.session_id,
            "customerId": pk_or_none(self.customer, "Customer", info),
            "productId": pk_or_none(self.product, "Product", info),
            "orderId": pk_or_none(self.order, "Order", info),
            "properties": self.properties,
        }


@strawberry.type(description="Why the event at `index` (its position in the list) was rejected.")
class EventError:
    index: int
    code: str = strawberry.field(
        description="INVALID_TYPE, INVALID_TIME, TIME_IN_FUTURE, TIME_TOO_OLD, "
        "INVALID_SESSION, NO_VISITOR, INVALID_PROPERTIES, UNKNOWN_CUSTOMER, "
        "UNKNOWN_PRODUCT, UNKNOWN_ORDER, …"
    )
    message: str


@strawberry.type
class EventsTrackPayload:
    accepted: int = strawberry.field(default=0, description="Events stored.")
    rejected: int = strawberry.field(default=0, description="Events refused (see `errors`).")
    errors: list[EventError] = strawberry.field(default_factory=list)
    user_errors: list[AnalyticsError] = strawberry.field(
        default_factory=list, description="TOO_MANY_EVENTS: nothing was stored."
    )


@strawberry.type
class FunnelStep:
    type: str
    visitors: int
    conversion: Decimal | None = strawberry.field(
        description="Visitors over the first step's, 0 to 1, four places; null when nobody entered."
    )
    step_conversion: Decimal | None = strawberry.field(
        description="Visitors over the previous step's."
    )
    drop_off: int = strawberry.field(
        description="Visitors of the previous step who did not reach this one."
    )


@strawberry.type
class Funnel:
    from_: date = strawberry.field(name="from")
    to: date
    window_hours: int
    time_zone: str
    steps: list[FunnelStep]


@strawberry.type
class Query:
    @strawberry.field(
        description="Visitors through `steps` (event types, in order; 2 to 8), each reached within "
        "`windowHours` (1 to 720) of entering, entrants counted over the days `from` to `to` (tenant's "
        "time zone; default the last 30; at most 366). A visitor is the customer when the event names "
        "one, else the session."
    )
    def funnel(
        self,
        info: Info,
        steps: list[str] | None = DEFAULT_STEPS,
        window_hours: int = funnels.DEFAULT_WINDOW_HOURS,
        from_: FromDate = None,
        to: ToDate = None,
    ) -> Funnel:
        current = tenant(info)
        days = DateRange(*range_or_default(current, from_, to))
        result = read_or_bad_request(
            lambda: funnels.funnel(
                tenant=current,
                steps=DEFAULT_STEPS if steps is None else steps,
                window_hours=window_hours,
                days=days,
            )
        )
        return Funnel(
            from_=result.range.first,
            to=result.range.last,
            window_hours=result.window_hours,
            time_zone=result.time_zone,
            steps=[
                FunnelStep(
                    type=s.type,
                    visitors=s.visitors,
                    conversion=s.conversion,
                    step_conversion=s.step_conversion,
                    drop_off=s.drop_off,
                )
                for s in result.steps
            ],
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Record up to 500 events (API keys need the `events` scope). Each is checked on "
        "its own: the valid ones are stored even when others are rejected."
    )
    def events_track(self, info: Info, events: list[EventInput]) -> EventsTrackPayload:
        def make() -> EventsTrackPayload:
            outcome = ingestion.track(
                actor=principal(info),
                tenant=tenant(info),
                events=[event.as_event(info) for event in events],
            )
            return EventsTrackPayload(
                accepted=outcome.accepted,
                rejected=outcome.rejected,
                errors=[
                    EventError(index=r.index, code=r.code, message=r.message)
                    for r in outcome.rejections
                ],
            )

        return payload_or_errors(
            make, lambda errors: EventsTrackPayload(user_errors=errors), AnalyticsError
        )


__all__ = ["Mutation", "Query"]
