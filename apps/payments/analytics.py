"""Payment analytics (reads): how payment attempts made over a range of days (in the tenant's
time zone) turned out, in total, by provider and by method, with failure reasons and refunds.

An attempt counts on the day its Payment was created. The success rate is over the attempts that
reached an outcome at the provider (succeeded or failed): pending and canceled ones (abandoned
checkouts) are counted but left out of it. Amounts are summed in the tenant's currency, which is
every order's currency. Two queries, whatever the range."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Case, CharField, Count, F, Q, Sum, Value, When

from apps.common.days import day_bounds
from apps.common.money import ZERO
from apps.common.rules import check_range
from apps.payments.models import Payment, PaymentStatus, Provider

if TYPE_CHECKING:
    from tenants.models import Tenant

RATE = Decimal("0.0001")
UNKNOWN = "unknown"


def rate(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    """part / whole to four places (0.7500); None when there is no whole."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(RATE)


@dataclass
class Outcomes:
    attempts: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    pending: int = 0
    collected: Decimal = ZERO  # the amounts of the succeeded attempts
    refunded: Decimal = ZERO  # what was refunded of them
    refunded_count: int = 0  # succeeded attempts with any refund

    @property
    def success_rate(self) -> Decimal | None:
        return rate(self.succeeded, self.succeeded + self.failed)

    @property
    def refund_rate(self) -> Decimal | None:
        """The share of succeeded attempts refunded, wholly or in part."""
        return rate(self.refunded_count, self.succeeded)

    @property
    def refunded_amount_rate(self) -> Decimal | None:
        """The share of the amount collected that was refunded."""
        return rate(self.refunded, self.collected)

    def add(self, other: Outcomes) -> None:
        for name in (
            "attempts",
            "succeeded",
            "failed",
            "canceled",
            "pending",
            "collected",
            "refunded",
            "refunded_count",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class PaymentFigures:
    start: date
    end: date
    totals: Outcomes = field(default_factory=Outcomes)
    failure_reasons: list[tuple[str, int]] = field(
        default_factory=list
    )  # (failure code, count), most first
    by_provider: dict[str, Outcomes] = field(default_factory=dict)  # every provider, zeros included
    by_method: dict[str, Outcomes] = field(
        default_factory=dict
    )  # the methods seen, most attempts first


def _method() -> Case:
    """The method type; manual payments are their own method, Stripe ones not yet told `unknown`."""
    return Case(
        When(~Q(method_type=""), then=F("method_type")),
        When(provider=Provider.MANUAL, then=Value(Provider.MANUAL.value)),
        default=Value(UNKNOWN),
        output_field=CharField(),
    )


def _aggregates() -> dict[str, Any]:
    succeeded = Q(status=PaymentStatus.SUCCEEDED)
    return {
        "attempts": Count("pk"),
        **{status: Count("pk", filter=Q(status=status)) for status in PaymentStatus.values},
        "collected": Sum("amount", filter=succeeded, default=ZERO),
        "refunded": Sum("amount_refunded", filter=succeeded, default=ZERO),
        "refunded_count": Count("pk", filter=succeeded & Q(amount_refunded__gt=0)),
    }


def payment_figures(*, tenant: Tenant, start: date, end: date) -> PaymentFigures:
    """The figures of the attempts made from `start` to `end` (days in the tenant's time zone)."""
    check_range(start, end)
    since, until = day_bounds(tenant, start, end)
    attempts = Payment.objects.filter(created__gte=since, created__lt=until)
    figures = PaymentFigures(
        start=start, end=end, by_provider={p: Outcomes() for p in Provider.values}
    )
    by_method: dict[str, Outcomes] = defaultdict(Outcomes)
    groups = (
        attempts.annotate(method=_method())
        .values("provider", "method")
        .annotate(**_aggregates())
        .order_by()
    )
    for group in groups:
        outcomes = Outcomes(**{name: group[name] for name in Outcomes.__dataclass_fields__})
        for bucket in (
            figures.totals,
            figures.by_provider.setdefault(group["provider"], Outcomes()),
            by_method[group["method"]],
        ):
            bucket.add(outcomes)
    figures.by_method = dict(
        sorted(by_method.items(), key=lambda item: (-item[1].attempts, item[0]))
    )
    reasons = (
        attempts.filter(status=PaymentStatus.FAILED)
        .values("failure_code")
        .annotate(count=Count("pk"))
        .order_by("-count", "failure_code")
    )
    figures.failure_reasons = [(row["failure_code"] or UNKNOWN, row["count"]) for row in reasons]
    return figures
