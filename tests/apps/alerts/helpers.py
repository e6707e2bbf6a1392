"""Alert tests' tools: rules made through the services, evaluation as beat runs it (the task, in
the tenant), and a real HTTP (or HTTPS) receiver on 127.0.0.1 that records what it is sent."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.alerts import services, tasks
from apps.alerts.evaluation import window
from apps.alerts.models import AlertRule
from apps.analytics import cache
from apps.analytics.engine import run
from apps.analytics.query import AnalyticsQuery
from tests.apps.orders import shop


def make_rule(fixture, role: str = "analyst", **values: Any) -> tuple[AlertRule, str]:
    """A rule on today's gross sales (unless `values` say otherwise), made in the tenant."""
    base = {
        "name": "Big day",
        "metric": "gross_sales",
        "comparison": "above",
        "window_days": 1,
        "threshold": Decimal("100"),
        "cooldown_minutes": 60,
        "channels": ["in_app"],
    }
    with tenant_context(fixture.tenant):
        return services.create_rule(actor=shop.actor(fixture, role), values={**base, **values})


def today(fixture, metric: str = "gross_sales") -> Decimal:
    """The metric today, as the engine tells it now."""
    with tenant_context(fixture.tenant):
        span = window(fixture.tenant, 1, timezone.now())
        return Decimal(
            run(fixture.tenant, AnalyticsQuery(metrics=(metric,), range=span)).totals[metric] or 0
        )


def sell(fixture, price: str, quantity: int = 1) -> None:
    """An order placed through the order services; the analytics version bumped as its commit would."""
    with tenant_context(fixture.tenant):
        shop.place(fixture, [(shop.variant(price, stock=quantity), quantity)])
    cache.bump(fixture.tenant.schema_name)


def evaluate(fixture) -> int:
    """What beat's per-tenant task does in `fixture`'s tenant; how many rules fired."""
    with tenant_context(fixture.tenant):
        return tasks.evaluate()


@dataclass
class Receiver:
    """Answers each POST with the next of `statuses` (the last one from then on)."""

    statuses: list[int]
    url: str = ""
    port: int = 0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def receiver(*statuses: int, tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """A receiver; over TLS with `tls` (a server context), its handshake made when it accepts."""
    found = Receiver(list(statuses) or [200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            found.requests.append((dict(self.headers), body))
            status = found.statuses.pop(0) if len(found.statuses) > 1 else found.statuses[0]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:  # a failed handshake fails accept(), which the server shrugs off
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.port = server.server_address[1]
    found.url = f"{'https' if tls else 'http'}://127.0.0.1:{found.port}/hooks/shop"
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
