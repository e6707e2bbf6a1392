"""/metrics for Prometheus, answered in front of Django (no host check, no tenant resolution: a
scraper asks by the process's address), and only to the networks METRICS_ALLOWED_NETWORKS names
(loopback by default) and, when METRICS_TOKEN is set, with `Authorization: Bearer <token>`.
Anyone else gets a plain 404, as for a page that does not exist.

What it reports: the counts of apps.common.metrics (added up over every process of the deployment
under PROMETHEUS_MULTIPROC_DIR), and, read from Redis at each scrape, so the same whichever
process answers, the Celery queue depth and the live subscriptions held per tenant.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable, Iterator

from django.conf import settings
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import REGISTRY, Collector

from apps.common import redis as redis_config

ASGIApp = Callable[..., Awaitable[None]]
PATH = "/metrics"
# kombu's Redis transport keeps a list per queue and priority step.
_PRIORITY_SEPARATOR, _PRIORITY_STEPS = "\x06\x16", (0, 3, 6, 9)


class ServiceCollector(Collector):
    """Figures that live in Redis, read when scraped."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        client = redis_config.client()
        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
        depth = GaugeMetricFamily(
            "shop_celery_queue_depth",
            "Celery messages waiting in the broker, by queue.",
            labels=["queue"],
        )
        for queue in settings.METRICS_CELERY_QUEUES:
            keys = [
                prefix + (queue if step == 0 else f"{queue}{_PRIORITY_SEPARATOR}{step}")
                for step in _PRIORITY_STEPS
            ]
            depth.add_metric([queue], sum(client.llen(key) for key in keys))
        yield depth
        held = GaugeMetricFamily(
            "shop_live_subscriptions",
            "Live subscriptions held open, by tenant schema (the slots apps.live.limits counts).",
            labels=["tenant"],
        )
        pattern = redis_config.key("live", "*", "subscriptions")
        for key in client.scan_iter(match=pattern, count=500):
            schema = key.decode().split(":")[-2]
            held.add_metric([schema], client.zcard(key))
        yield held


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


_service_collector = ServiceCollector()


def exposition() -> bytes:
    registry = _registry()
    scrape = CollectorRegistry()
    scrape.register(_service_collector)
    return generate_latest(registry) + generate_latest(scrape)


def allowed(client_host: str | None, authorization: str | None) -> bool:
    """Whether a scrape from `client_host` with that Authorization header is answered."""
    try:
        address = ipaddress.ip_address(client_host or "")
    except ValueError:
        return False
    if not any(address in network for network in _networks()):
        return False
    token = settings.METRICS_TOKEN
    if not token:
        return True
    return hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode())


def _networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(entry, strict=False) for entry in settings.METRICS_ALLOWED_NETWORKS
    ]


def with_metrics(app: ASGIApp) -> ASGIApp:
    """`app` with /metrics answered in front of it."""

    async def serve(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value for name, value in scope["headers"]}
        authorization = headers.get("authorization", b"").decode("latin-1")
        client = (scope.get("client") or (None,))[0]
        if scope["method"] not in ("GET", "HEAD") or not allowed(client, authorization):
            status, body, content_type = 404, b"Not Found", "text/plain; charset=utf-8"
        else:
            status, content_type = 200, CONTENT_TYPE_LATEST
            body = await asyncio.to_thread(exposition)  # Redis and the files: off the loop
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    return serve
