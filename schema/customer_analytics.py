"""Customer analytics types: one customer's figures (`Customer.analytics`) and the figures of
all customers over a range of days (`customerAnalyticsSummary`), computed by
apps.analytics.customers; the fields and their rules are in schema/customers.py."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

import strawberry
from strawberry.types import Info

from apps.analytics import customers as customer_figures
from schema.errors import bad_request
from schema.ids import global_id
from schema.scalars import Money, money


@strawberry.enum(name="CategoryRank")
class CategoryRankEnum(enum.Enum):
    REVENUE = customer_figures.CategoryRank.REVENUE.value
    UNITS = customer_figures.CategoryRank.UNITS.value


@strawberry.type
class CategoryShare:
    category_id: strawberry.ID
    name: str
    slug: str
    units: int = strawberry.field(description="Units bought, less units refunded.")
    revenue: Money = strawberry.field(description="What those units were paid.")


@strawberry.type(description="A customer's figures over all their orders that are not cancelled.")
class CustomerAnalytics:
    orders_count: int
    lifetime_value: Money = strawberry.field(description="Order totals less refunds.")
    average_order_value: Money | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    mean_days_between_orders: Decimal | None = strawberry.field(
        description="(last order - first order) / (orders - 1), in days; null below two orders."
    )
    orders_per_month: Decimal | None = strawberry.field(
        description="Orders per month (30.44 days) since the first order, counting at least one month."
    )
    analytics: strawberry.Private[customer_figures.CustomerAnalytics]
    currency: strawberry.Private[str]

    @strawberry.field(
        description="Categories of what the customer bought (units kept), best first."
    )
    def favourite_categories(
        self, info: Info, by: CategoryRankEnum = CategoryRankEnum.REVENUE, first: int = 5
    ) -> list[CategoryShare]:
        if not 1 <= first <= 100:
            raise bad_request("first must be 1 to 100.")
        shares = self.analytics.favourite_categories(
            by=customer_figures.CategoryRank(by.value), first=first
        )
        return [
            CategoryShare(
                category_id=global_id(info, "Category", share.category_id),
                name=share.name,
                slug=share.slug,
                units=share.units,
                revenue=money(share.revenue, self.currency),
            )
            for share in shares
        ]

    @classmethod
    def of(cls, figures: customer_figures.CustomerAnalytics, currency: str) -> CustomerAnalytics:
        return cls(
            orders_count=figures.orders_count,
            lifetime_value=money(figures.lifetime_value, currency),
            average_order_value=money(figures.average_order_value, currency),
            first_order_at=figures.first_order_at,
            last_order_at=figures.last_order_at,
            mean_days_between_orders=figures.mean_days_between_orders,
            orders_per_month=figures.orders_per_month,
            analytics=figures,
            currency=currency,
        )


@strawberry.type
class CustomerAnalyticsSummary:
    from_: date = strawberry.field(name="from")
    to: date
    customers_count: int = strawberry.field(
        description="Customers that existed at the end of the range."
    )
    new_customers_count: int = strawberry.field(description="Customers created in the range.")
    customers_with_orders: int = strawberry.field(
        description="Customers who placed an order in the range."
    )
    new_buyers: int = strawberry.field(description="... whose first order ever is in the range.")
    returning_buyers: int = strawberry.field(description="... who had ordered before the range.")
    revenue: Money = strawberry.field(
        description="What customers spent on orders placed in the range."
    )
    buyers_to_date: int = strawberry.field(
        description="Customers with an order before the end of the range."
    )
    average_lifetime_value: Money | None = strawberry.field(
        description="Their mean spend on all their orders up to the end of the range."
    )

    @classmethod
    def of(
        cls, figures: customer_figures.AnalyticsSummary, *, currency: str
    ) -> CustomerAnalyticsSummary:
        return cls(
            from_=figures.first,
            to=figures.last,
            customers_count=figures.customers,
            new_customers_count=figures.new_customers,
            customers_with_orders=figures.customers_with_orders,
            new_buyers=figures.new_buyers,
            returning_buyers=figures.returning_buyers,
            revenue=money(figures.revenue, currency),
            buyers_to_date=figures.buyers_to_date,
            average_lifetime_value=money(figures.average_lifetime_value, currency),
        )
