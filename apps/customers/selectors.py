"""Reads for customers: the lists (search, VIP, new, inactive) from the customers' own rows and
the statistics kept on them, and the ranges of days the customer queries take. What is read from
the orders (top spenders in a range, customer analytics) is apps.analytics.customers: customers
sit below orders.

A date range is whole days in the tenant's time zone, both ends included.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from apps.common import rules
from apps.common.days import day_bounds, day_start, range_or_default
from apps.common.errors import UserError
from apps.common.money import quantize
from apps.customers.errors import CustomerErrorCode
from apps.customers.models import Customer

if TYPE_CHECKING:
    from tenants.models import Tenant

DEFAULT_VIP_THRESHOLD = Decimal("1000.00")
MAX_DAYS = 3660


# --- ranges and settings ---------------------------------------------------------------------


def check_days(days: int, name: str = "days") -> int:
    if not 1 <= days <= MAX_DAYS:
        raise UserError(
            f"{name} must be 1 to {MAX_DAYS}.", field=name, code=CustomerErrorCode.INVALID
        )
    return days


def day_range(
    tenant: Tenant, first: date | None, last: date | None
) -> tuple[date, date, datetime, datetime]:
    """(first, last, start, end) for the days first..last (inclusive) in the tenant's time zone:
    start is midnight of `first` there, end midnight after `last` (exclusive), both aware.
    The missing ends are filled in by range_or_default; the ends given are checked before, so that
    a `to` out of bounds is its BAD_RANGE and not a date overflow there."""
    if last is not None:
        check_day(last, "to")
    if first is not None:
        check_day(first, "from")
    first, last = range_or_default(tenant, first, last)
    rules.check_range(first, last, longest=MAX_DAYS)
    return first, last, *day_bounds(tenant, first, last)


def check_day(day: date, name: str) -> date:
    return rules.check_day(day, field=name)


def vip_threshold(tenant: Tenant) -> Decimal:
    """The tenant's `vip_threshold` setting (a number or numeric text), else the default."""
    raw = (tenant.settings or {}).get("vip_threshold")
    try:
        value = Decimal(str(raw)) if raw is not None else DEFAULT_VIP_THRESHOLD
    except InvalidOperation:
        return DEFAULT_VIP_THRESHOLD
    return quantize(value) if value.is_finite() and value >= 0 else DEFAULT_VIP_THRESHOLD


# --- lists -----------------------------------------------------------------------------------


class CustomerSort(enum.Enum):
    CREATED = "created"
    TOTAL_SPENT = "total_spent"
    LAST_ORDER_AT = "last_order_at"


def _ordered(queryset: QuerySet, sort: CustomerSort, descending: bool) -> QuerySet:
    # Customers who never ordered have no last order: they go last either way. The id breaks
    # ties so that pages are stable.
    column = F(sort.value)
    key = column.desc(nulls_last=True) if descending else column.asc(nulls_last=True)
    return queryset.order_by(key, "-id" if descending else "id")


def customers(
    *,
    tenant: Tenant,
    search: str | None = None,
    tag: str | None = None,
    accepts_marketing: bool | None = None,
    created_from: date | None = None,
    created_to: date | None = None,
    sort: CustomerSort = CustomerSort.CREATED,
    descending: bool = True,
    search_contacts: bool = True,
) -> QuerySet[Customer]:
    """Customers matching every given filter. `search`: each word must be found (ignoring case)
    in the first name, last name or, when `search_contacts`, the email address. `created_from`
    and `created_to`: days in the tenant's time zone, both included."""
    queryset = Customer.objects.all()
    for word in (search or "").split():
        matches = Q(first_name__icontains=word) | Q(last_name__icontains=word)
        if search_contacts:
            matches |= Q(email__icontains=word)
        queryset = queryset.filter(matches)
    if tag is not None and tag.strip():
        queryset = queryset.filter(tags__contains=[tag.strip().lower()])
    if accepts_marketing is not None:
        queryset = queryset.filter(accepts_marketing=accepts_marketing)
    if created_from is not None:
        queryset = queryset.filter(
            created__gte=day_start(tenant, check_day(created_from, "createdFrom"))
        )
    if created_to is not None:
        day_after = check_day(created_to, "createdTo") + timedelta(days=1)
        queryset = queryset.filter(created__lt=day_start(tenant, day_after))
    return _ordered(queryset, sort, descending)


def customers_with_ids(ids: list[int]) -> QuerySet[Customer]:
    """The customers of `ids` that exist, in no particular order: the lists ranked elsewhere (RFM
    segments, the overview's top customers) read a page of them at once and keep their own order."""
    return Customer.objects.filter(pk__in=ids)


def average_order_value(customer: Customer) -> Decimal | None:
    """Total spent / orders, from the statistics kept on the customer; None without orders."""
    return (
        quantize(customer.total_spent / customer.orders_count)
        if customer.orders_count > 0
        else None
    )


def vip_customers(*, tenant: Tenant) -> QuerySet[Customer]:
    """Customers whose total spent reaches the tenant's VIP threshold, biggest spenders first."""
    queryset = Customer.objects.filter(total_spent__gte=vip_threshold(tenant))
    return _ordered(queryset, CustomerSort.TOTAL_SPENT, True)


def new_customers(*, days: int) -> QuerySet[Customer]:
    """Customers created in the last `days` days (24-hour periods up to now), newest first."""
    since = timezone.now() - timedelta(days=check_days(days))
    return _ordered(Customer.objects.filter(created__gte=since), CustomerSort.CREATED, True)


def inactive_customers(*, days: int, include_never_ordered: bool = False) -> QuerySet[Customer]:
    """Customers who have ordered before but not in the last `days` days, most recently lapsed
    first; with `include_never_ordered`, also those who never ordered and have been customers
    for at least `days` days (after them)."""
    since = timezone.now() - timedelta(days=check_days(days))
    lapsed = Q(last_order_at__lt=since)
    if include_never_ordered:
        lapsed |= Q(last_order_at__isnull=True, created__lt=since)
    return _ordered(Customer.objects.filter(lapsed), CustomerSort.LAST_ORDER_AT, True)
