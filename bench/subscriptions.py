"""Live subscriptions: publish-to-receive latency of `liveMetrics` for 1,000 subscribers across
100 tenants over real WebSockets, and how many messages reached a subscriber of another tenant.

    make bench NAME=subscriptions            (TENANTS=100 PER_TENANT=10 ROUNDS=10 by default)

Tenants bench-live-<n> are provisioned once and kept (reused by the next run; DROP=1 drops them
at the end). A uvicorn process serves config.asgi; this process opens TENANTS x PER_TENANT
WebSockets (graphql-transport-ws, one subscription each, signed in as each tenant's owner) and
waits for every first snapshot.

What is published: the bench goes through the bus itself, not through an order write, so it
measures the pipe (channel layer → the tenant's hub in the server → snapshot → every local
subscriber → socket) rather than the order services. Each round bumps every tenant's analytics
version (one tenant every ROUND_S / TENANTS seconds, so each tenant sees one change per round,
on the coalescer's leading edge) as an event ingestion does when it commits: one new visitor
in the live visitor counts, a version bump, and `metrics {version}` published with apps.live.bus,
noting the time; a subscriber's latency is from that publish to its first snapshot carrying that
version or a newer one. Every tenant's versions start at <its index> x 10^6, so a version tells
whose snapshot it is: `cross_tenant_count` counts messages whose version is another tenant's.
Then a burst (BURST publishes on tenant 0, as fast as the bench can send them, as a flash sale's
orders would): `burst_s` from its first publish until every subscriber of tenant 0 has the last
version, and `burst_messages_per_subscriber`, what coalescing let through (at most one a
hub.INTERVAL; the unit suite proves that bound on the server's clock, this measures the speed).
Last line: one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # no access line per request

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.accounts import services as accounts  # noqa: E402
from apps.accounts.models import User  # noqa: E402
from apps.analytics import cache  # noqa: E402
from apps.common import redis  # noqa: E402
from apps.live import bus, visitors  # noqa: E402
from apps.provisioning.services import provision_tenant  # noqa: E402
from bench.server import uvicorn  # noqa: E402
from tenants.models import Tenant  # noqa: E402

TENANTS = int(os.environ.get("TENANTS", "100"))
PER_TENANT = int(os.environ.get("PER_TENANT", "10"))
ROUNDS = int(os.environ.get("ROUNDS", "10"))
ROUND_S = float(os.environ.get("ROUND_S", "1.0"))
BURST = int(os.environ.get("BURST", "1000"))
PASSWORD = "bench-Pass-123"
SPAN = 10**6  # versions of tenant i: i * SPAN onwards
QUERY = "subscription { liveMetrics { orders version } }"


def _tenants() -> list[tuple[Tenant, str, str]]:
    """(tenant, its host, owner's access token) for bench-live-0 .. TENANTS-1, provisioned when missing."""
    call_command("setup_platform", verbosity=0)  # the template must be current to be cloned
    made = []
    for index in range(TENANTS):
        slug = f"bench-live-{index}"
        tenant = Tenant.objects.filter(slug=slug).first() or provision_tenant(
            name=slug, slug=slug, owner_email=f"o@{slug}.test", owner_password=PASSWORD
        )
        _, token, _ = accounts.create_tokens(
            email=f"o@{slug}.test", password=PASSWORD, tenant=tenant
        )
        redis.client().set(redis.key("analytics", tenant.schema_name, "version"), index * SPAN)
        made.append((tenant, tenant.domains.get(is_primary=True).domain, token))
    return made


class Subscriber:
    def __init__(self, index: int, host: str, token: str) -> None:
        self.index, self.host, self.token = index, host, token
        self.first = asyncio.get_running_loop().create_future()
        self.received: list[tuple[float, int]] = []  # (monotonic time, version)
        self.foreign = 0

    async def run(self, port: int) -> None:
        host = self.host
        async with websockets.connect(
            f"ws://{host}:{port}/graphql/",
            host="127.0.0.1",
            port=port,
            subprotocols=["graphql-transport-ws"],
            origin=f"http://{host}:{port}",
            open_timeout=60,
        ) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "connection_init",
                        "payload": {"Authorization": f"Bearer {self.token}"},
                    }
                )
            )
            ack = json.loads(await ws.recv())
            assert ack["type"] == "connection_ack", ack
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUERY}}))
            async for raw in ws:
                at = time.monotonic()
                message = json.loads(raw)
                assert message["type"] == "next" and "errors" not in message["payload"], message
                version = message["payload"]["data"]["liveMetrics"]["version"]
                if version // SPAN != self.index:
                    self.foreign += 1
                if not self.first.done():
                    self.first.set_result(version)
                else:
                    self.received.append((at, version))


async def _measure(tenants: list[tuple[Tenant, str, str]], port: int) -> dict:
    subscribers = [
        Subscriber(index, host, token)
        for index, (_, host, token) in enumerate(tenants)
        for _ in range(PER_TENANT)
    ]
    tasks = []
    for start in range(0, len(subscribers), 100):  # connect in waves: no thundering herd on accept
        tasks += [asyncio.ensure_future(s.run(port)) for s in subscribers[start : start + 100]]
        await asyncio.sleep(0.2)
    await asyncio.wait_for(asyncio.gather(*(s.first for s in subscribers)), 120)
    print(f"{len(subscribers)} subscribers across {len(tenants)} tenants have their first snapshot")

    published: dict[int, list[tuple[int, float]]] = {index: [] for index in range(len(tenants))}
    gap, serial = ROUND_S / len(tenants), 0
    for _ in range(ROUNDS):
        for index, (tenant, _, _) in enumerate(tenants):
            visitors.add(tenant, [(int(time.time()), f"bench-{serial}", None)], timezone.now())
            serial += 1
            version = cache.bump(tenant.schema_name)
            published[index].append((version, time.monotonic()))
            await bus.publish_async(tenant.schema_name, "metrics", {"version": version})
            await asyncio.sleep(gap)
    await asyncio.sleep(2)  # the last deliveries
    burst = await _burst(tenants[0][0], [s for s in subscribers if s.index == 0])
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    latencies, missed = [], 0
    for subscriber in subscribers:
        for version, sent in published[subscriber.index]:
            got = next((at for at, seen in subscriber.received if seen >= version), None)
            if got is None:
                missed += 1
            else:
                latencies.append((got - sent) * 1000)
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "max_ms": round(latencies[-1], 2),
        "missed_count": missed,
        "cross_tenant_count": sum(s.foreign for s in subscribers),
        "messages_count": sum(len(s.received) for s in subscribers),
        "publishes_count": ROUNDS * len(tenants),
        "subscribers_count": len(subscribers),
        "tenants_count": len(tenants),
        **burst,
    }


async def _burst(tenant: Tenant, listening: list[Subscriber]) -> dict:
    before = [len(s.received) for s in listening]
    started = time.monotonic()
    for serial in range(BURST):
        # a new visitor each time, as in the rounds: a bump that changes no figure sends nothing
        visitors.add(
            tenant, [(int(time.time()), f"burst-{started}-{serial}", None)], timezone.now()
        )
        version = cache.bump(tenant.schema_name)
        await bus.publish_async(tenant.schema_name, "metrics", {"version": version})
    while not all(s.received and s.received[-1][1] >= version for s in listening):
        assert time.monotonic() - started < 120, "the burst's last version never arrived"
        await asyncio.sleep(0.01)
    return {
        "burst_publishes_count": BURST,
        "burst_s": round(time.monotonic() - started, 3),
        "burst_messages_per_subscriber": round(
            statistics.mean(
                len(s.received) - seen for s, seen in zip(listening, before, strict=True)
            ),
            1,
        ),
    }


def main() -> None:
    tenants = _tenants()
    try:
        with uvicorn("--ws-max-queue", "64", env={"SESSION_COOKIE_SECURE": "false"}) as port:
            figures = asyncio.run(_measure(tenants, port))
    finally:
        if os.environ.get("DROP") == "1":
            for tenant, _, _ in tenants:
                tenant.delete(force_drop=True)
            User.objects.filter(email__startswith="o@bench-live-").delete()
    print(json.dumps({"bench": "subscriptions", **figures}))


if __name__ == "__main__":
    main()
