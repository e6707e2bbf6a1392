"""Orders: the order list and the lists merchants watch, order figures, placing orders, moving
them through their statuses (apps.orders.status), cancelling and refunding."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
import strawberry_django
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry_django.relay import DjangoListConnection

from apps.common.days import range_or_default
from apps.orders import selectors, services
from apps.orders.models import Order, OrderEvent, OrderLine, OrderStatus, Refund, RefundLine
from apps.payments import refunds as payment_refunds
from schema.catalog import ProductType, VariantType
from schema.context import principal, tenant
from schema.customers import CustomerType, FromDate, ToDate, contact_email, sees_contacts
from schema.errors import OrderError, bad_request, payload_or_errors, read_or_bad_request
from schema.ids import TenantNode, pk_of, pk_or_none
from schema.scalars import Money, money
from schema.types import as_type

if TYPE_CHECKING:
    from schema.payments import StripeRefundType


@strawberry.enum(name="OrderStatus")
class OrderStatusEnum(enum.Enum):
    PENDING = OrderStatus.PENDING.value
    PAID = OrderStatus.PAID.value
    FULFILLED = OrderStatus.FULFILLED.value
    DELIVERED = OrderStatus.DELIVERED.value
    CANCELLED = OrderStatus.CANCELLED.value
    PARTIALLY_REFUNDED = OrderStatus.PARTIALLY_REFUNDED.value
    REFUNDED = OrderStatus.REFUNDED.value


@strawberry.enum(name="OrderSortField")
class OrderSortFieldEnum(enum.Enum):
    PLACED = selectors.OrderSort.PLACED.value
    TOTAL = selectors.OrderSort.TOTAL.value


def _money_field(
    name: str, currency_of: Callable[[Any], str] | None = None, *, description: str | None = None
):
    """A Money field from a money column, in the currency of the order (the tenant's currency
    when it was placed). Rows under an order (`currency_of` given) reach it through their order,
    which the list they come from has loaded already: `Order.lines` and `Order.refunds` ask for
    the order's currency, and prefetched rows point back at the order they were fetched for."""
    if currency_of is None:

        def resolve_on_order(root: Order) -> Money:
            return money(getattr(root, name), root.currency)

        return strawberry_django.field(
            resolver=resolve_on_order, only=[name, "currency"], description=description
        )

    def resolve(root) -> Money:
        return money(getattr(root, name), currency_of(root))

    return strawberry_django.field(resolver=resolve, only=[name], description=description)


@strawberry_django.type(OrderLine, name="OrderLine")
class OrderLineType(TenantNode):
    """What was sold, as it was when the order was placed; `variant` and `product` are the
    catalog rows as they are now (null once deleted)."""

    variant: VariantType | None
    product: ProductType | None
    product_name: str
    variant_name: str
    sku: str
    quantity: int
    refunded_quantity: int
    unit_price: Money = _money_field("unit_price", lambda line: line.order.currency)
    total: Money = _money_field("total", lambda line: line.order.currency)


@strawberry_django.type(OrderEvent, name="OrderEvent")
class OrderEventType:
    type: str
    data: JSON
    actor_email: str
    created: datetime

    @strawberry_django.field(only=["from_status"])
    def from_status(self, root: OrderEvent) -> OrderStatusEnum | None:
        return OrderStatusEnum(root.from_status) if root.from_status else None

    @strawberry_django.field(only=["to_status"])
    def to_status(self, root: OrderEvent) -> OrderStatusEnum | None:
        return OrderStatusEnum(root.to_status) if root.to_status else None


@strawberry_django.type(RefundLine, name="RefundLine")
class RefundLineType:
    # The line's own order (for its currency) comes along in the same JOIN.
    order_line: OrderLineType = strawberry_django.field(
        select_related=["order_line__order"], only=["order_line__order__currency"]
    )
    quantity: int
    amount: Money = _money_field("amount", lambda line: line.refund.order.currency)


@strawberry_django.type(Refund, name="Refund")
class RefundType(TenantNode):
    reason: str
    restock: bool
    actor_email: str
    created: datetime
    amount: Money = _money_field("amount", lambda refund: refund.order.currency)
    lines: list[RefundLineType]
    order: OrderType

    @strawberry_django.field(
        select_related=["stripe_refund"],
        description="The Stripe refund carrying it out, when Stripe took the money.",
    )
    def stripe_refund(
        self, root: Refund
    ) -> Annotated[StripeRefundType, strawberry.lazy("schema.payments")] | None:
        return getattr(root, "stripe_refund", None)  # a reverse one-to-one: absent raises


@strawberry_django.type(Order, name="Order")
class OrderType(TenantNode):
    number: int
    currency: str
    note: str
    placed_at: datetime
    paid_at: datetime | None
    fulfilled_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    subtotal: Money = _money_field("subtotal")
    discount_total: Money = _money_field("discount_total")
    tax_total: Money = _money_field("tax_total")
    shipping_total: Money = _money_field("shipping_total")
    total: Money = _money_field("total")
    refunded_total: Money = _money_field("refunded_total")
    lines: list[OrderLineType] = strawberry_django.field(only=["currency"])  # for the lines' money
    events: list[OrderEventType]
    refunds: list[RefundType] = strawberry_django.field(only=["currency"])  # for the refunds' money

    customer: CustomerType | None

    @strawberry_django.field(only=["status"])
    def status(self, root: Order) -> OrderStatusEnum:
        return OrderStatusEnum(root.status)

    @strawberry_django.field(
        only=["email"], description="Redacted (a***@domain) for viewers and analysts."
    )
    def email(self, root: Order, info: Info) -> str:
        return contact_email(info, root.email)


@strawberry.type
class OrderStatusCount:
    status: OrderStatusEnum
    count: int


@strawberry.type
class OrderAnalytics:
    from_: date = strawberry.field(name="from")
    to: date
    orders_count: int = strawberry.field(
        description="Orders placed in the range, cancelled ones included."
    )
    by_status: list[OrderStatusCount] = strawberry.field(
        description="Every status, zero counts included."
    )
    average_order_value: Money | None = strawberry.field(
        description="Mean total of the orders not cancelled."
    )
    fulfilled_count: int
    average_fulfilment_hours: float | None = strawberry.field(
        description="Mean time from placing to fulfilment, in hours, over the orders fulfilled."
    )


@strawberry.input
class OrderFilter:
    status: list[OrderStatusEnum] | None = None
    customer: strawberry.ID | None = None
    placed_from: datetime | None = strawberry.field(default=None, description="Inclusive.")
    placed_to: datetime | None = strawberry.field(default=None, description="Exclusive.")
    total_min: Decimal | None = None
    total_max: Decimal | None = None
    search: str | None = strawberry.field(
        default=None,
        description="An order number (#1042), or part of the email for roles that see contacts.",
    )


@strawberry.input
class OrderSort:
    field: OrderSortFieldEnum = OrderSortFieldEnum.PLACED
    descending: bool = True


@strawberry.input
class OrderLineInput:
    variant: strawberry.ID
    quantity: int


@strawberry.input
class OrderCreateInput:
    lines: list[OrderLineInput]
    customer: strawberry.ID | None = strawberry.field(
        default=None, description="An existing customer (or give `email`)."
    )
    email: str | None = strawberry.field(
        default=None,
        description="The buyer's email; a customer is created for an email never seen before.",
    )
    discount: Decimal | None = strawberry.field(
        default=None, description="An amount off the subtotal."
    )
    shipping: Decimal | None = None
    tax_rate: Decimal | None = strawberry.field(
        default=None,
        description="Percent of the subtotal after the discount (20 for 20%); shipping is not taxed.",
    )
    note: str = ""


@strawberry.input
class RefundLineInput:
    line: strawberry.ID
    quantity: int


@strawberry.input
class RefundCreateInput:
    order: strawberry.ID
    lines: list[RefundLineInput] | None = strawberry.field(
        default=None,
        description="Units to refund, worth their share of the total (discount and tax included).",
    )
    amount: Decimal | None = strawberry.field(
        default=None,
        description="An amount to refund (shipping, goodwill), or what the given lines are refunded for.",
    )
    reason: str = ""
    restock: bool = False
    request_key: str = strawberry.field(
        default="",
        description="Your key for this request: a retry with the same key refunds nothing twice.",
    )


@strawberry.type
class OrderPayload:
    order: OrderType | None = None
    user_errors: list[OrderError] = strawberry.field(default_factory=list)


@strawberry.type
class RefundPayload:
    refund: RefundType | None = None
    order: OrderType | None = None
    user_errors: list[OrderError] = strawberry.field(default_factory=list)


def _order_payload(make) -> OrderPayload:
    return payload_or_errors(
        lambda: OrderPayload(order=make()),
        lambda errors: OrderPayload(user_errors=errors),
        OrderError,
    )


@strawberry.type
class Query:
    @strawberry_django.connection(DjangoListConnection[OrderType])
    def orders(
        self, info: Info, filter: OrderFilter | None = None, sort: OrderSort | None = None
    ) -> Iterable[Order]:
        given, sort = filter or OrderFilter(), sort or OrderSort()
        if any(
            bound is not None and not bound.is_finite()
            for bound in (given.total_min, given.total_max)
        ):
            raise bad_request("totalMin and totalMax must be finite numbers.")
        return selectors.orders(
            statuses=[status.value for status in given.status or []],
            customer_id=pk_or_none(given.customer, "Customer", info),
            placed_from=given.placed_from,
            placed_to=given.placed_to,
            total_min=given.total_min,
            total_max=given.total_max,
            search=given.search,
            search_emails=sees_contacts(info),
            sort=selectors.OrderSort(sort.field.value),
            descending=sort.descending,
        )

    @strawberry_django.connection(DjangoListConnection[OrderType], description="Newest first.")
    def recent_orders(self) -> Iterable[Order]:
        return selectors.recent_orders()

    @strawberry_django.connection(
        DjangoListConnection[OrderType],
        description="Orders waiting for payment, the longest waiting first.",
    )
    def pending_orders(self) -> Iterable[Order]:
        return selectors.pending_orders()

    @strawberry_django.connection(
        DjangoListConnection[OrderType],
        description="Orders of at least the tenant's high_value_order_threshold (default 500), "
        "cancelled ones left out, newest first.",
    )
    def high_value_orders(self, info: Info) -> Iterable[Order]:
        return selectors.high_value_orders(tenant=tenant(info))

    @strawberry.field(
        description="Figures of the orders placed from `from` to `to` (days in the tenant's time "
        "zone, both included); by default the 30 days to today."
    )
    def order_analytics(
        self, info: Info, from_: FromDate = None, to: ToDate = None
    ) -> OrderAnalytics:
        current = tenant(info)
        first, last = range_or_default(current, from_, to)
        figures = read_or_bad_request(
            lambda: selectors.order_figures(tenant=current, start=first, end=last)
        )
        fulfil = figures.average_time_to_fulfil
        return OrderAnalytics(
            from_=figures.start,
            to=figures.end,
            orders_count=figures.orders_count,
            by_status=[
                OrderStatusCount(status=OrderStatusEnum(s), count=n)
                for s, n in figures.by_status.items()
            ],
            average_order_value=money(figures.average_order_value, current.currency),
            fulfilled_count=figures.fulfilled_count,
            average_fulfilment_hours=None
            if fulfil is None
            else round(fulfil.total_seconds() / 3600, 2),
        )


@strawberry.type
class Mutation:
    @strawberry.mutation
    def order_create(self, info: Info, input: OrderCreateInput) -> OrderPayload:
        return _order_payload(
            lambda: services.create_order(
                actor=principal(info),
                tenant=tenant(info),
                lines=[
                    services.LineRequest(pk_of(line.variant, "Variant", info), line.quantity)
                    for line in input.lines
                ],
                customer_id=pk_or_none(input.customer, "Customer", info),
                email=input.email,
                discount=input.discount,
                shipping=input.shipping,
                tax_rate=input.tax_rate,
                note=input.note,
            )
        )

    @strawberry.mutation
    def order_update_status(
        self, info: Info, id: strawberry.ID, status: OrderStatusEnum
    ) -> OrderPayload:
        return _order_payload(
            lambda: services.update_status(
                actor=principal(info), order_id=pk_of(id, "Order", info), status=status.value
            )
        )

    @strawberry.mutation(
        description="Cancel a pending or paid order (a paid one is refunded in full)."
    )
    def order_cancel(
        self, info: Info, id: strawberry.ID, restock: bool = True, reason: str = ""
    ) -> OrderPayload:
        return _order_payload(
            lambda: payment_refunds.cancel_order(
                actor=principal(info),
                order_id=pk_of(id, "Order", info),
                restock=restock,
                reason=reason,
            )
        )

    @strawberry.mutation(
        description="Refund a paid order by lines, an amount, or both, never more than is left. "
        "An order paid through Stripe is refunded through Stripe (`refund.stripeRefund`); any "
        "other refund is recorded as money returned outside a provider."
    )
    def refund_create(self, info: Info, input: RefundCreateInput) -> RefundPayload:
        def make() -> RefundPayload:
            refund = payment_refunds.refund_order(  # through Stripe when Stripe took the money
                actor=principal(info),
                order_id=pk_of(input.order, "Order", info),
                lines=[
                    services.RefundLineRequest(pk_of(line.line, "OrderLine", info), line.quantity)
                    for line in input.lines or []
                ],
                amount=input.amount,
                reason=input.reason,
                restock=input.restock,
                request_key=input.request_key,
            )
            return RefundPayload(
                refund=as_type(RefundType, refund), order=as_type(OrderType, refund.order)
            )

        return payload_or_errors(make, lambda errors: RefundPayload(user_errors=errors), OrderError)


__all__ = ["Mutation", "OrderLineType", "OrderType", "Query", "RefundType"]
