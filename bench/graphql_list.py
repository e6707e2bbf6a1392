"""GraphQL list speed: a page of 100 orders with their lines and customer through the ASGI app,
against a hand-written Django JSON view returning the same data (bench/views.py), measured in
the same run (target, issue 19: GraphQL p50 at most the view's, `p50_ratio` <= 1.0). The query is
served by the selection compiler (schema/compiler); the same query with the compiler off (the
resolver path: strawberry-django's optimizer) is timed in the same rounds, `resolver_p50_ratio`.

    make bench NAME=graphql_list            (REQUESTS=200 ORDERS=20000 by default)

Both go through `config.asgi.application`, the object uvicorn serves, called in-process with
httpx's ASGITransport: Django's ASGIHandler, every middleware (tenant, JWT, ...), the sync
view in asgiref's thread, as in production, minus the socket. (Django's AsyncClient would skip
the ASGIHandler and the request signals.) Database connections are persistent
(CONN_MAX_AGE), as a deployment would have them, so neither side pays a connection per request.
The rate bucket is made large enough for the run; the guard still computes the cost and calls
Redis on every request.

The bench seeds a tenant bench-list, checks that both answers are the same data, then
alternates the two requests. SQL statements are counted per request (middleware included) with
an execute wrapper on every connection. The tenant is dropped at the end. Last line: one JSON
object.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # no access line per request
os.environ.setdefault("CONN_MAX_AGE", "600")
os.environ.setdefault("GRAPHQL_BUCKET_SIZE", "1000000000")
os.environ.setdefault("GRAPHQL_RESTORE_RATE", "1000000000")

import django

django.setup()

import httpx  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402

from apps.accounts import services as account_services  # noqa: E402
from apps.accounts.models import User  # noqa: E402
from apps.provisioning.seeding import SeedSize, seed_demo  # noqa: E402
from apps.provisioning.services import provision_tenant  # noqa: E402
from tenants.models import Tenant  # noqa: E402

SLUG = "bench-list"
OWNER = f"o@{SLUG}.test"
PASSWORD = "bench-Pass-123"
REQUESTS = int(os.environ.get("REQUESTS", "200"))
WARMUP = 20
SIZE = SeedSize(products=200, customers=2000, orders=int(os.environ.get("ORDERS", "20000")))
QUERY = """{ orders(first: 100) { edges { node { number status placedAt total { amount currency }
  customer { email firstName lastName }
  lines { sku productName quantity unitPrice { amount } total { amount } } } } } }"""


class SqlCounter:
    """Counts the statements of every connection, whichever thread opens it."""

    def __init__(self) -> None:
        self.count = 0
        self.last: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        self.last.append(sql)
        return execute(sql, params, many, context)

    def attach(self, sender, connection, **kwargs) -> None:
        connection.execute_wrappers.append(self)


def _drop() -> None:
    connection.set_schema_to_public()
    for tenant in Tenant.objects.filter(slug=SLUG):
        tenant.delete(force_drop=True)
    User.objects.filter(email=OWNER).delete()


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def _measure(host: str, token: str, counter: SqlCounter) -> dict[str, object]:
    from config.asgi import application

    headers = {"Authorization": f"Bearer {token}"}
    body = {"query": QUERY}
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport, base_url=f"http://{host}", headers=headers
    ) as client:

        async def graphql() -> httpx.Response:
            return await client.post("/graphql/", json=body)

        async def view() -> httpx.Response:
            return await client.get("/bench/orders/")

        async def resolvers() -> httpx.Response:
            settings.GRAPHQL_COMPILER = False  # read by the view's thread, in this process
            try:
                return await client.post("/graphql/", json=body)
            finally:
                settings.GRAPHQL_COMPILER = True

        answers = {}
        calls = (("graphql", graphql), ("view", view), ("resolvers", resolvers))
        for name, call in calls:
            response = await call()
            assert response.status_code == 200, (name, response.status_code, response.text[:500])
            answers[name] = response.json()
        assert "errors" not in answers["graphql"], answers["graphql"]["errors"]
        edges = answers["graphql"]["data"]["orders"]["edges"]
        assert len(edges) == 100 and edges == answers["view"]["data"]["orders"]["edges"], (
            "not the same data"
        )
        assert answers["resolvers"]["data"] == answers["graphql"]["data"], "the compiler differs"

        samples: dict[str, list[float]] = {name: [] for name, _ in calls}
        queries: dict[str, set[int]] = {name: set() for name, _ in calls}
        statements: dict[str, list[str]] = {}
        for index in range(WARMUP + REQUESTS):
            for name, call in calls:
                counter.count, counter.last = 0, []
                started = time.perf_counter()
                response = await call()
                elapsed = time.perf_counter() - started
                assert response.status_code == 200
                if index >= WARMUP:
                    samples[name].append(elapsed * 1000)
                    queries[name].add(counter.count)
                    statements[name] = list(counter.last)
    return {
        "samples": samples,
        "queries": queries,
        "statements": statements,
        "bytes": {name: len(json.dumps(answer)) for name, answer in answers.items()},
    }


def main() -> None:
    call_command("setup_platform", verbosity=0)  # every schema current, the template included
    _drop()
    counter = SqlCounter()
    connection_created.connect(counter.attach, weak=False)
    settings.ROOT_URLCONF = "bench.views"  # the tenant URL map plus the comparison view, here only
    try:
        tenant = provision_tenant(
            name="Bench list", slug=SLUG, owner_email=OWNER, owner_password=PASSWORD
        )
        seeded = seed_demo(tenant=tenant, size=SIZE, seed=42)
        _, token, _ = account_services.create_tokens(email=OWNER, password=PASSWORD, tenant=tenant)
        connection.close()  # the requests open their own connections, in asgiref's thread
        figures = asyncio.run(_measure(tenant.domains.get().domain, token, counter))
    finally:
        connection_created.disconnect(counter.attach)
        _drop()
    samples, queries = figures["samples"], figures["queries"]
    graphql_p50, view_p50 = (
        statistics.median(samples["graphql"]),
        statistics.median(samples["view"]),
    )
    print(
        f"seeded {seeded.rows['orders_order']} orders; {REQUESTS} requests each, alternating, "
        f"after {WARMUP} warm-up rounds"
    )
    for name in ("graphql", "view", "resolvers"):
        print(
            f"{name}: p50 {statistics.median(samples[name]):.1f} ms, p95 {_percentile(samples[name], 0.95):.1f} ms, "
            f"{sorted(queries[name])} SQL statements a request, {figures['bytes'][name]} bytes"
        )
        for sql in figures["statements"][name]:
            print(f"    {sql[:150]}")
    print(
        json.dumps(
            {
                "bench": "graphql_list",
                "graphql_p50_ms": round(graphql_p50, 2),
                "graphql_p95_ms": round(_percentile(samples["graphql"], 0.95), 2),
                "view_p50_ms": round(view_p50, 2),
                "view_p95_ms": round(_percentile(samples["view"], 0.95), 2),
                "p50_ratio": round(graphql_p50 / view_p50, 2),
                "graphql_queries": max(queries["graphql"]),
                "view_queries": max(queries["view"]),
                "resolver_p50_ms": round(statistics.median(samples["resolvers"]), 2),
                "resolver_p50_ratio": round(statistics.median(samples["resolvers"]) / view_p50, 2),
                "resolver_queries": max(queries["resolvers"]),
                "requests_count": REQUESTS,
            }
        )
    )


if __name__ == "__main__":
    main()
