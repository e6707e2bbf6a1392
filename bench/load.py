"""Sustained load from outside: the production-like multi-process run against one process, the
same mix for the same time in the same run.

    make bench NAME=load            (TENANTS=100 USERS=50 SUBSCRIBERS=20 DURATION=600 by default)

Both runs serve the same TENANTS tenants (bench-load-<n>, made by provisioning and filled through
the services: 10 products whose names carry the tenant's slug, 30 orders, an events API key, a
Stripe webhook secret and 20 pending Stripe payments; dropped at the end unless KEEP=1):

- multi: `uvicorn --workers PROCESSES` (2) and two Celery workers, through PgBouncer (session
  pooling, config/devserver/pgbouncer.py), /metrics added up over the processes;
- single: one uvicorn process and one worker straight to PostgreSQL (CONN_MAX_AGE=0: a new
  connection per request), as `make run` serves.

USERS clients (asyncio + httpx, keep-alive) loop for DURATION seconds each, every step picking a
tenant at random and an action by weight: the products page (with variants), the orders page
(with lines), an order placed, an order placed, paid and refunded, `analyticsOverview`, an event
batch to /api/events, a signed Stripe webhook for one of the tenant's payments. SUBSCRIBERS
`liveMetrics` subscriptions stay open over WebSockets the whole time (one that closes is an
error). Every answer is checked: a status or GraphQL error is an error, and an answer naming
another tenant (its `tenant { slug }`, a product or an order email without the slug) is a
cross-tenant answer.

Figures per run: client requests/s and p50/p99 latency; from /metrics the requests the servers
counted and their 5xx; the most server connections PostgreSQL had for the database (PgBouncer's
SHOW POOLS for multi, pg_stat_activity for single), sampled every second; the growth of the
servers' resident memory from the end of the first tenth of the run to its end. Last line: one
JSON object, multi's figures and the ratios multi/single.

Locust was not used: its gevent workers cannot hold the WebSocket subscriptions beside the HTTP
users in one loop without another client library, and one asyncio process drives both here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "YmVuY2gtb25seS1maWVsZC1rZXktMDEyMzQ1Njc4OWE=")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg2  # noqa: E402
import websockets  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from apps.accounts import services as account_services  # noqa: E402
from apps.accounts.authentication import Principal  # noqa: E402
from apps.accounts.models import Membership, User  # noqa: E402
from apps.catalog.models import Product, Variant  # noqa: E402
from apps.common.global_ids import encode  # noqa: E402
from apps.orders import services as order_services  # noqa: E402
from apps.payments import services as payment_services  # noqa: E402
from apps.payments.models import Payment, Provider  # noqa: E402
from apps.provisioning.services import provision_tenant  # noqa: E402
from config.devserver.asgi_server import uvicorn_server  # noqa: E402
from config.devserver.pgbouncer import EmbeddedPgBouncer  # noqa: E402
from tenants.models import Tenant  # noqa: E402

TENANTS = int(os.environ.get("TENANTS", "100"))
USERS = int(os.environ.get("USERS", "50"))
SUBSCRIBERS = int(os.environ.get("SUBSCRIBERS", "20"))
DURATION = float(os.environ.get("DURATION", "600"))
PROCESSES = int(os.environ.get("PROCESSES", "2"))
KEEP = os.environ.get("KEEP") == "1"
PASSWORD = "bench-Pass-123"
WEBHOOK_SECRET = "whsec_bench_load"
PAYMENTS = 20  # pending Stripe payments per tenant, for the webhooks (a repeat is a duplicate)
SEED = 17
MIX = {  # action: weight
    "products": 30,
    "orders": 20,
    "place": 12,
    "refund": 3,
    "overview": 10,
    "events": 18,
    "webhook": 7,
}
PRODUCTS = (
    "{ tenant { slug } products(first: 20) { edges { node { name "
    "variants { sku price { amount } stock } } } } }"
)
ORDERS = (
    "{ tenant { slug } orders(first: 20) { edges { node { number email total { amount } "
    "lines { quantity } } } } }"
)
OVERVIEW = "{ tenant { slug } analyticsOverview { kpis { metric value } } }"
PLACE = (
    "mutation($v: ID!, $e: String!) { orderCreate(input: {lines: [{variant: $v, quantity: 1}], "
    "email: $e}) { order { id email } userErrors { code } } }"
)
PAY = "mutation($id: ID!) { orderUpdateStatus(id: $id, status: PAID) { userErrors { code } } }"
REFUND = (
    'mutation($id: ID!, $k: String!) { refundCreate(input: {order: $id, amount: "1.00", '
    "requestKey: $k}) { refund { id } userErrors { code } } }"
)
METRICS = "subscription { liveMetrics { orders version } }"


@dataclass
class Shop:
    slug: str
    host: str
    schema: str
    token: str = ""
    analyst: str = ""
    api_key: str = ""
    variants: list[str] = field(default_factory=list)
    payments: list[tuple[str, int, str]] = field(default_factory=list)  # stripe id, order, amount


# --- the tenants -------------------------------------------------------------------------------


def _drop() -> None:
    connection.set_schema_to_public()
    for tenant in Tenant.objects.filter(slug__startswith="bench-load-"):
        tenant.delete(force_drop=True)
    User.objects.filter(email__endswith=".bench-load.test").delete()


def _make(index: int) -> Shop:
    slug = f"bench-load-{index:03d}"
    owner = f"owner@{slug}.bench-load.test"
    tenant = provision_tenant(name=slug, slug=slug, owner_email=owner, owner_password=PASSWORD)
    shop = Shop(slug, tenant.domains.get(is_primary=True).domain, tenant.schema_name)
    user = User.objects.get(email=owner)
    with tenant_context(tenant):
        actor = Principal(tenant=tenant, user=user, role="owner", via="jwt")
        payment_services.update_settings(actor=actor, stripe_webhook_secret=WEBHOOK_SECRET)
        _, shop.api_key = account_services.create_api_key(
            actor=actor, tenant=tenant, name="bench", role="staff", scopes=["events"]
        )
        variants = []
        for n in range(10):
            product = Product.objects.create(
                name=f"{slug} product {n}", slug=f"p{n}", status=Product.Status.ACTIVE
            )
            variants += [
                Variant.objects.create(
                    product=product, sku=f"P{n}-{size}", name=size, price=Decimal("12.50"),
                    stock=10_000_000,
                )
                for size in ("S", "M")
            ]  # fmt: skip
        shop.variants = [encode("Variant", variant.pk, tenant.schema_name) for variant in variants]
        orders = [
            order_services.create_order(
                actor=actor,
                tenant=tenant,
                email=f"seed{n}@{slug}.test",
                lines=[order_services.LineRequest(variants[n % len(variants)].pk, 1)],
            )
            for n in range(10 + PAYMENTS)
        ]
        payments = Payment.objects.bulk_create(
            Payment(
                order=order,
                provider=Provider.STRIPE,
                stripe_id=f"pi_load_{tenant.schema_name}_{order.pk}",
                amount=order.total,
                currency=order.currency,
                attempt=1,
            )
            for order in orders[10:]
        )
        shop.payments = [(p.stripe_id, p.order_id, str(p.amount)) for p in payments]
    analyst = f"analyst@{slug}.bench-load.test"
    Membership.objects.create(
        user=User.objects.create_user(email=analyst, password=PASSWORD),
        tenant=tenant,
        role="analyst",
    )
    return shop


def _sign_in(shops: list[Shop]) -> None:
    """Fresh access tokens (they live 15 minutes: a run's must outlast it, not the bench)."""
    for shop in shops:
        tenant = Tenant.objects.get(slug=shop.slug)
        for role, attribute in (("owner", "token"), ("analyst", "analyst")):
            _, token, _ = account_services.create_tokens(
                email=f"{role}@{shop.slug}.bench-load.test", password=PASSWORD, tenant=tenant
            )
            setattr(shop, attribute, token)
    connection.close()


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)  # monotonic time each step ended
    errors: list[str] = field(default_factory=list)
    cross_tenant: int = 0
    throttled: int = 0
    by_action: dict[str, int] = field(default_factory=dict)
    updates: int = 0


def _graphql_errors(body: Any) -> list:
    return body.get("errors") or [] if isinstance(body, dict) else ["not an object"]


def _check(shop: Shop, action: str, body: dict, tally: Tally) -> None:
    data = body.get("data") or {}
    if "tenant" in data and data["tenant"]["slug"] != shop.slug:
        tally.cross_tenant += 1
    if action == "products":
        names = [edge["node"]["name"] for edge in data["products"]["edges"]]
        tally.cross_tenant += sum(not name.startswith(shop.slug) for name in names)
    elif action == "orders":
        emails = [edge["node"]["email"] for edge in data["orders"]["edges"]]
        tally.cross_tenant += sum(shop.slug not in email for email in emails)
    for payload in data.values():
        if isinstance(payload, dict) and payload.get("userErrors"):
            tally.errors.append(f"{action}: {payload['userErrors']}")


def _signed(shop: Shop, rng: random.Random) -> tuple[bytes, str]:
    stripe_id, order_id, amount = rng.choice(shop.payments)
    intent = {
        "id": stripe_id,
        "object": "payment_intent",
        "amount": int(Decimal(amount) * 100),
        "currency": "usd",
        "status": "succeeded",
        "metadata": {"tenant": shop.schema, "order_id": str(order_id), "attempt": "1"},
        "payment_method": {"id": f"pm_{stripe_id}", "type": "card"},
    }
    body = json.dumps(
        {
            "id": f"evt_{stripe_id}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()) - 5,
            "data": {"object": intent},
        }
    ).encode()
    stamp = int(time.time())
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return body, f"t={stamp},v1={digest.hexdigest()}"


async def _step(
    client: httpx.AsyncClient, port: int, shop: Shop, action: str, rng: random.Random, tally: Tally
) -> None:
    host = {"Host": f"{shop.host}:{port}"}
    auth = {**host, "Authorization": f"Bearer {shop.token}"}

    async def graphql(query: str, variables: dict | None = None, headers: dict = auth) -> dict:
        response = await client.post(
            "/graphql/", json={"query": query, "variables": variables}, headers=headers
        )
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        errors = _graphql_errors(body)
        throttled = [e for e in errors if (e.get("extensions") or {}).get("code") == "THROTTLED"]
        if response.status_code == 200 and errors and len(throttled) == len(errors):
            # The tenant's rate bucket said wait: a right answer, which a client obeys.
            tally.throttled += 1
            await asyncio.sleep(throttled[0]["extensions"]["retryAfterSeconds"])
            return {}
        if response.status_code != 200 or errors:
            tally.errors.append(f"{action}: {response.status_code} {str(body)[:200]}")
            return {}
        _check(shop, action, body, tally)
        return body["data"]

    if action in ("products", "orders", "overview"):
        await graphql({"products": PRODUCTS, "orders": ORDERS, "overview": OVERVIEW}[action])
    elif action in ("place", "refund"):
        placed = await graphql(
            PLACE, {"v": rng.choice(shop.variants), "e": f"load@{shop.slug}.test"}
        )
        order = (placed.get("orderCreate") or {}).get("order")
        if action == "refund" and order:
            await graphql(PAY, {"id": order["id"]})
            await graphql(REFUND, {"id": order["id"], "k": uuid.uuid4().hex})
    elif action == "events":
        now = time.time()
        batch = [
            {"type": "page_viewed", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
             "sessionId": f"s-{rng.randrange(10_000)}", "properties": {"path": f"/p/{n}"}}
            for n in range(20)
        ]  # fmt: skip
        response = await client.post(
            "/api/events", json=batch, headers={**host, "X-API-Key": shop.api_key}
        )
        if response.status_code != 200:
            tally.errors.append(f"events: {response.status_code} {response.text[:200]}")
    elif action == "webhook":
        body, signature = _signed(shop, rng)
        response = await client.post(
            "/webhooks/stripe/", content=body,
            headers={**host, "Stripe-Signature": signature, "Content-Type": "application/json"},
        )  # fmt: skip
        if response.status_code != 200:
            tally.errors.append(f"webhook: {response.status_code} {response.text[:200]}")


async def _user(port: int, shops: list[Shop], until: float, seed: int, tally: Tally) -> None:
    rng = random.Random(seed)
    actions, weights = list(MIX), list(MIX.values())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        while time.monotonic() < until:
            shop, action = rng.choice(shops), rng.choices(actions, weights)[0]
            started = time.perf_counter()
            try:
                await _step(client, port, shop, action, rng, tally)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
                tally.errors.append(f"{action}: {error!r}"[:200])
            tally.latencies.append(time.perf_counter() - started)
            tally.finished.append(time.monotonic())
            tally.by_action[action] = tally.by_action.get(action, 0) + 1


async def _subscriber(port: int, shop: Shop, until: float, tally: Tally) -> None:
    try:
        async with websockets.connect(
            f"ws://{shop.host}:{port}/graphql/", host="127.0.0.1", port=port,
            subprotocols=["graphql-transport-ws"],
        ) as ws:  # fmt: skip
            init = {"Authorization": f"Bearer {shop.analyst}"}
            await ws.send(json.dumps({"type": "connection_init", "payload": init}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(
                json.dumps({"id": "1", "type": "subscribe", "payload": {"query": METRICS}})
            )
            while (left := until - time.monotonic()) > 0:
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), left))
                except TimeoutError:
                    break
                if message.get("type") != "next" or "errors" in message.get("payload", {}):
                    tally.errors.append(f"subscription: {str(message)[:200]}")
                    return
                tally.updates += 1
    except (OSError, AssertionError, websockets.WebSocketException) as error:
        tally.errors.append(f"subscription: {error!r}"[:200])


# --- the servers' side -------------------------------------------------------------------------


def _scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    figures = {"requests": 0.0, "errors_5xx": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "shop_http_requests_total":
                figures["requests"] += sample.value
                if sample.labels["status"].startswith("5"):
                    figures["errors_5xx"] += sample.value
    return figures


def _tree(pid: int | None) -> list[psutil.Process]:
    if pid is None:
        return []
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu(processes: list[psutil.Process], *, reaped: bool = False) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
            if reaped and process is processes[0]:  # children it has waited for (backends)
                total += times.children_user + times.children_system
    return total


@dataclass
class Parts:
    """The processes of a run, by what they are."""

    servers: list[int]
    workers: list[int]
    pgbouncer: int | None = None

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far, by group: the app servers, the Celery workers, PostgreSQL (the
        postmaster, its live backends and those it has reaped: a backend per connection comes
        and goes), Redis, PgBouncer and this client."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            postmaster = psutil.Process(cursor.fetchone()[0]).ppid()
        redis_port = urlsplit(os.environ["REDIS_URL"]).port
        redis = [
            process.pid
            for process in psutil.process_iter(["name", "cmdline"])
            if (process.info["name"] or "").startswith("redis-server")
            and f":{redis_port}" in " ".join(process.info["cmdline"] or [])
        ]
        return {
            "servers": _cpu([p for pid in self.servers for p in _tree(pid)]),
            "workers": _cpu([p for pid in self.workers for p in _tree(pid)]),
            "postgresql": _cpu(_tree(postmaster), reaped=True),
            "redis": _cpu([p for pid in redis for p in _tree(pid)]),
            "pgbouncer": _cpu(_tree(self.pgbouncer)),
            "client": _cpu([psutil.Process()]),
        }


class Sampler:
    """Every second: the server connections PostgreSQL has for the database (through PgBouncer's
    SHOW POOLS when pooled), and the servers' resident memory."""

    def __init__(self, pids: list[int], pool: EmbeddedPgBouncer | None) -> None:
        self.pids, self.pool = pids, pool
        self.connections_max = 0
        self.rss: list[tuple[float, float]] = []
        self.cpu: list[tuple[float, float]] = []  # (when, the servers' CPU seconds so far)
        self._stop = threading.Event()

    def _connections(self) -> int:
        database = settings.DATABASES["default"]["NAME"]
        if self.pool is not None:
            admin = psycopg2.connect(self.pool.url.rsplit("/", 1)[0] + "/pgbouncer")
            admin.autocommit = True
            with contextlib.closing(admin), admin.cursor() as cursor:
                cursor.execute("SHOW POOLS")
                names = [column[0] for column in cursor.description]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            keys = ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
            return sum(row[key] for row in rows if row["database"] == database for key in keys)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [database],
            )
            return cursor.fetchone()[0]

    def _processes(self) -> list[psutil.Process]:
        found = []
        for pid in self.pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                parent = psutil.Process(pid)
                found += [parent, *parent.children(recursive=True)]
        return found

    def _cpu_s(self) -> float:
        total = 0.0
        for process in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def _rss_mb(self) -> float:
        total = 0
        for process in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        return total / 2**20

    def run(self) -> None:
        while not self._stop.wait(1.0):
            self.connections_max = max(self.connections_max, self._connections())
            self.rss.append((time.monotonic(), self._rss_mb()))
            self.cpu.append((time.monotonic(), self._cpu_s()))
        connection.close()

    @contextlib.contextmanager
    def sampling(self) -> Iterator[Sampler]:
        thread = threading.Thread(target=self.run)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def cpu_ms_per_step(self, finished: list[float], start: float, end: float) -> float | None:
        """The servers' CPU per client step ended between `start` and `end` (monotonic)."""
        inside = [(at, seconds) for at, seconds in self.cpu if start <= at <= end]
        steps = sum(start <= at <= end for at in finished)
        if len(inside) < 2 or not steps:
            return None
        return round((inside[-1][1] - inside[0][1]) * 1000 / steps, 1)

    def rss_growth_mb(self, started: float) -> float:
        after_warmup = [mb for at, mb in self.rss if at >= started + DURATION / 10]
        return round(after_warmup[-1] - after_warmup[0], 1) if len(after_warmup) > 1 else 0.0


async def _load(port: int, shops: list[Shop]) -> tuple[Tally, float]:
    tally = Tally()
    started = time.monotonic()
    until = started + DURATION
    rng = random.Random(SEED)
    watchers = [
        _subscriber(port, shops[rng.randrange(len(shops))], until, tally)
        for _ in range(SUBSCRIBERS)
    ]
    users = [_user(port, shops, until, SEED + n, tally) for n in range(USERS)]
    await asyncio.gather(*watchers, *users)
    return tally, time.monotonic() - started


def _run(
    name: str, port: int, parts: Parts, shops: list[Shop], pool: EmbeddedPgBouncer | None
) -> dict:
    _sign_in(shops)
    before = _scrape(port)
    sampler = Sampler(parts.servers, pool)
    cpu_before = parts.cpu()
    started = time.monotonic()
    with sampler.sampling():
        tally, seconds = asyncio.run(_load(port, shops))
    cpu_after = parts.cpu()
    after = _scrape(port)
    latencies = sorted(tally.latencies)
    figures = {
        "run": name,
        "seconds": round(seconds, 1),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "errors_count": len(tally.errors),
        "throttled_count": tally.throttled,
        "cross_tenant_count": tally.cross_tenant,
        "server_requests_per_s": round((after["requests"] - before["requests"]) / seconds, 1),
        "server_5xx_count": int(after["errors_5xx"] - before["errors_5xx"]),
        "server_connections_max": sampler.connections_max,
        "rss_growth_mb": sampler.rss_growth_mb(started),
        "live_updates_count": tally.updates,
        # Does a request cost more as the run goes on? The servers' CPU per step, first and last
        # minute (issue 17 saw 16 ms rise to 44 ms in ten minutes).
        "cpu_ms_per_step_first_minute": sampler.cpu_ms_per_step(
            tally.finished, started, started + min(60, DURATION / 3)
        ),
        "cpu_ms_per_step_last_minute": sampler.cpu_ms_per_step(
            tally.finished, started + DURATION - min(60, DURATION / 3), started + DURATION
        ),
        "actions": tally.by_action,
        # Where the time went: CPU seconds of each group per second of the run (2.0 = both cores).
        "cores_used": {
            group: round((cpu_after[group] - cpu_before[group]) / seconds, 2) for group in cpu_after
        },
    }
    print(json.dumps(figures), flush=True)
    for error in tally.errors[:10]:
        print(f"  {name} error: {error}", file=sys.stderr)
    return figures


def main() -> None:
    from django.core.management import call_command

    call_command("setup_platform", verbosity=0)  # a fresh clone's database is empty
    _drop()
    began = time.monotonic()
    shops = [_make(n) for n in range(TENANTS)]
    print(f"{TENANTS} tenants made in {time.monotonic() - began:.0f} s", file=sys.stderr)
    connection.close()
    base_env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "0",
    }
    data = ROOT / ".data" / "bench-load"
    try:
        pool = EmbeddedPgBouncer(data / "pgbouncer", os.environ["DATABASE_URL"])
        pool.start()
        counts = data / "prometheus"
        counts.mkdir(parents=True, exist_ok=True)
        for stale in counts.glob("*.db"):
            stale.unlink()
        multi_env = {**base_env, "DATABASE_URL": pool.url, "PROMETHEUS_MULTIPROC_DIR": str(counts)}
        try:
            with (
                _workers(multi_env, 2) as workers,
                uvicorn_server("--workers", str(PROCESSES), env=multi_env) as server,
            ):
                parts = Parts([server.process.pid], workers, pool.pid)
                multi = _run("multi", server.port, parts, shops, pool)
        finally:
            pool.stop()
        with _workers(base_env, 1) as workers, uvicorn_server(env=base_env) as server:
            parts = Parts([server.process.pid], workers)
            single = _run("single", server.port, parts, shops, None)
    finally:
        if not KEEP:
            _drop()
    result = {
        "bench": "load",
        "tenants_count": TENANTS,
        "users_count": USERS,
        "subscribers_count": SUBSCRIBERS,
        "duration_s": DURATION,
        "processes_count": PROCESSES,
        **{
            key: value
            for key, value in multi.items()
            if key not in ("run", "actions", "cores_used")
        },
        "single_requests_per_s": single["requests_per_s"],
        "single_p50_ms": single["p50_ms"],
        "single_p99_ms": single["p99_ms"],
        "single_errors_count": single["errors_count"],
        "single_cross_tenant_count": single["cross_tenant_count"],
        "single_server_connections_max": single["server_connections_max"],
        "single_rss_growth_mb": single["rss_growth_mb"],
        "requests_per_s_ratio": round(multi["requests_per_s"] / single["requests_per_s"], 2),
        "p50_ratio": round(multi["p50_ms"] / single["p50_ms"], 2),
        "p99_ratio": round(multi["p99_ms"] / single["p99_ms"], 2),
    }
    print(json.dumps(result))


@contextlib.contextmanager
def _workers(env: dict[str, str], count: int) -> Iterator[list[int]]:
    import subprocess

    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-l",
                "WARNING",
                "--concurrency",
                "1",
                "-n",
                f"load{n}-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(count)
    ]
    try:
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
