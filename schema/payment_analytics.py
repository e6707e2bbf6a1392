"""Payment analytics: success rate, failure reasons, refunds, by provider and by method, over a
range of days in the tenant's time zone (apps.payments.analytics)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import strawberry
from strawberry.types import Info

from apps.common.days import range_or_default
from apps.payments import analytics
from schema.context import tenant
from schema.customers import FromDate, ToDate
from schema.errors import read_or_bad_request
from schema.payments import ProviderEnum
from schema.scalars import Money, money


@strawberry.type(
    description="How payment attempts turned out. Rates are 0 to 1, four places; null with nothing to "
    "divide by."
)
class PaymentOutcomes:
    attempts: int
    succeeded: int
    failed: int
    canceled: int
    pending: int
    success_rate: Decimal | None = strawberry.field(
        description="Succeeded over succeeded and failed (pending and canceled attempts left out)."
    )
    collected: Money = strawberry.field(description="The amount of the succeeded attempts.")
    refunded: Money = strawberry.field(description="What was refunded of it.")
    refunded_count: int = strawberry.field(
        description="Succeeded attempts refunded, wholly or in part."
    )
    refund_rate: Decimal | None = strawberry.field(description="Refunded count over succeeded.")
    refunded_amount_rate: Decimal | None = strawberry.field(description="Refunded over collected.")

    @classmethod
    def of(cls, outcomes: analytics.Outcomes, currency: str) -> PaymentOutcomes:
        return cls(
            attempts=outcomes.attempts,
            succeeded=outcomes.succeeded,
            failed=outcomes.failed,
            canceled=outcomes.canceled,
            pending=outcomes.pending,
            success_rate=outcomes.success_rate,
            collected=money(outcomes.collected, currency),
            refunded=money(outcomes.refunded, currency),
            refunded_count=outcomes.refunded_count,
            refund_rate=outcomes.refund_rate,
            refunded_amount_rate=outcomes.refunded_amount_rate,
        )


@strawberry.type
class PaymentFailureReason:
    code: str = strawberry.field(
        description="The provider's decline or error code; `unknown` when none was given."
    )
    count: int


@strawberry.type
class PaymentProviderOutcomes:
    provider: ProviderEnum
    outcomes: PaymentOutcomes


@strawberry.type
class PaymentMethodOutcomes:
    method: str = strawberry.field(
        description="card, sepa_debit, …; `manual` for manual payments; `unknown` "
        "when Stripe has not said."
    )
    outcomes: PaymentOutcomes


@strawberry.type
class PaymentAnalytics:
    from_: date = strawberry.field(name="from")
    to: date
    totals: PaymentOutcomes
    failure_reasons: list[PaymentFailureReason] = strawberry.field(
        description="Most frequent first."
    )
    by_provider: list[PaymentProviderOutcomes] = strawberry.field(
        description="Every provider, zeros included."
    )
    by_method: list[PaymentMethodOutcomes] = strawberry.field(
        description="The methods used, most attempts first."
    )


@strawberry.type
class Query:
    @strawberry.field(
        description="Payment attempts made over the days `from` to `to` (default: the last 30)."
    )
    def payment_analytics(
        self, info: Info, from_: FromDate = None, to: ToDate = None
    ) -> PaymentAnalytics:
        current = tenant(info)
        first, last = range_or_default(current, from_, to)
        figures = read_or_bad_request(
            lambda: analytics.payment_figures(tenant=current, start=first, end=last)
        )
        currency = current.currency
        return PaymentAnalytics(
            from_=figures.start,
            to=figures.end,
            totals=PaymentOutcomes.of(figures.totals, currency),
            failure_reasons=[
                PaymentFailureReason(code=code, count=count)
                for code, count in figures.failure_reasons
            ],
            by_provider=[
                PaymentProviderOutcomes(
                    provider=ProviderEnum(p), outcomes=PaymentOutcomes.of(o, currency)
                )
                for p, o in figures.by_provider.items()
            ],
            by_method=[
                PaymentMethodOutcomes(method=m, outcomes=PaymentOutcomes.of(o, currency))
                for m, o in figures.by_method.items()
            ],
        )


__all__ = ["Query"]
