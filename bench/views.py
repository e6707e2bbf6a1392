"""The baseline of bench/graphql_list.py: a hand-written Django JSON view returning what its
GraphQL query returns (same 100 orders, same fields, same JSON shape) with the usual Django
tools: `select_related` for the customer, `prefetch_related` for the lines, `only` for the
columns, `json.dumps`.

It is mounted by the bench alone: the bench makes this module its ROOT_URLCONF (the tenant URL
map plus this view). config/urls.py never lists it, so users cannot reach it.
"""

from __future__ import annotations

import json

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from apps.orders.models import Order, OrderLine
from config.urls import urlpatterns as tenant_urlpatterns

PAGE = 100


def orders_page(request: HttpRequest) -> HttpResponse:
    if not request.principal.is_authenticated or request.tenant is None:
        return JsonResponse({"errors": [{"message": "Sign in first."}]}, status=401)
    lines = OrderLine.objects.only(
        "order_id", "sku", "product_name", "quantity", "unit_price", "total"
    )
    orders = (
        Order.objects.select_related("customer")
        .only(
            "number",
            "status",
            "placed_at",
            "total",
            "currency",
            "customer__email",
            "customer__first_name",
            "customer__last_name",
        )
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("-placed_at", "-id")[:PAGE]
    )
    edges = []
    for order in orders:
        customer = order.customer
        edges.append(
            {
                "node": {
                    "number": order.number,
                    "status": order.status.upper(),
                    "placedAt": order.placed_at.isoformat(),
                    "total": {"amount": str(order.total), "currency": order.currency},
                    "customer": None
                    if customer is None
                    else {
                        "email": customer.email,
                        "firstName": customer.first_name,
                        "lastName": customer.last_name,
                    },
                    "lines": [
                        {
                            "sku": line.sku,
                            "productName": line.product_name,
                            "quantity": line.quantity,
                            "unitPrice": {"amount": str(line.unit_price)},
                            "total": {"amount": str(line.total)},
                        }
                        for line in order.lines.all()
                    ],
                }
            }
        )
    return HttpResponse(
        json.dumps({"data": {"orders": {"edges": edges}}}), content_type="application/json"
    )


urlpatterns = [*tenant_urlpatterns, path("bench/orders/", orders_page)]
