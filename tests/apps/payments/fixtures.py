"""Payment test fixtures: a localstripe server (a Stripe-speaking local server, started once per
session on a free port), the Stripe SDK pointed at it per call (settings.STRIPE_API_BASE), a
shop with Stripe and manual payments configured, and Stripe's webhook signing scheme.

Import the fixtures into a test module (`from tests.apps.payments.fixtures import ...`)."""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import stripe
from django_tenants.utils import tenant_context

from apps.payments import services
from tests.apps.orders import shop


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _localstripe_command() -> str:
    beside = Path(sys.executable).with_name("localstripe")
    found = str(beside) if beside.exists() else shutil.which("localstripe")
    if found is None:
        pytest.fail("localstripe is not installed: pip install -e '.[dev]'")
    return found


_server: dict[str, tuple[subprocess.Popen, str]] = {}


def localstripe_url() -> str:
    """The base address of a fresh localstripe (no state from earlier runs), started on first
    use; `stop_localstripe` (at the end of the session, or at exit) stops it.

    localstripe binds the port itself, so another process can take it between our pick and its
    bind: then it exits at once and another port is tried. It counts as up once our process holds
    the listening socket and answers (an answer from somebody else's server does not count)."""
    if "localstripe" in _server:
        return _server["localstripe"][1]
    for _ in range(5):
        port = _free_port()
        process = subprocess.Popen(
            [_localstripe_command(), "--port", str(port), "--from-scratch"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        _server["localstripe"] = (process, base)
        atexit.register(stop_localstripe)
        if _answers(base, port, process):
            return base
        stop_localstripe()
    pytest.fail("localstripe did not start")


def _answers(base: str, port: int, process: subprocess.Popen, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if _listens(process, port):
            try:
                httpx.get(f"{base}/v1/customers", auth=("sk_test_probe", ""), timeout=1)
                return True
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    return False


def _listens(process: subprocess.Popen, port: int) -> bool:
    """Whether this very process holds the listening socket on `port`."""
    try:
        return any(
            c.status == psutil.CONN_LISTEN and c.laddr.port == port
            for c in psutil.Process(process.pid).net_connections(kind="tcp")
        )
    except psutil.NoSuchProcess:
        return False


def stop_localstripe() -> None:
    if "localstripe" not in _server:
        return
    process, _ = _server.pop("localstripe")
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def localstripe() -> str:
    yield localstripe_url()
    stop_localstripe()


@dataclass(frozen=True)
class StripeShop:
    """A tenant with Stripe (and manual payments) on, and the keys it was given."""

    fixture: Any
    publishable_key: str
    secret_key: str
    webhook_secret: str

    def api(self) -> stripe.StripeClient:
        from django.conf import settings

        return stripe.StripeClient(
            self.secret_key, base_addresses={"api": settings.STRIPE_API_BASE}
        )


def configure(fixture, *, stripe_enabled: bool = True, manual_enabled: bool = True) -> StripeShop:
    """Payment settings for `fixture`'s tenant through the service (in the test's transaction)."""
    keys = StripeShop(
        fixture=fixture,
        publishable_key=f"pk_test_{secrets.token_hex(12)}",
        secret_key=f"sk_test_{secrets.token_hex(12)}",
        webhook_secret=f"whsec_{secrets.token_hex(16)}",
    )
    with tenant_context(fixture.tenant):
        services.update_settings(
            actor=shop.actor(fixture, "owner"),
            stripe_enabled=stripe_enabled,
            manual_enabled=manual_enabled,
            stripe_publishable_key=keys.publishable_key,
            stripe_secret_key=keys.secret_key,
            stripe_webhook_secret=keys.webhook_secret,
        )
    return keys


@pytest.fixture
def stripe_api(localstripe, settings) -> str:
    settings.STRIPE_API_BASE = localstripe
    return localstripe


@pytest.fixture
def alpha_stripe(alpha, stripe_api) -> StripeShop:
    return configure(alpha)


def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A Stripe-Signature header: t=<unix time>,v1=<hex HMAC-SHA256(secret, "t.payload")>."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def event(kind: str, intent: dict[str, Any], *, event_id: str | None = None) -> bytes:
    """A Stripe event as its webhook body."""
    return json.dumps(
        {
            "id": event_id or f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "data": {"object": intent},
        }
    ).encode()


def post_webhook(gql, fixture, body: bytes, signature: str | None):
    headers = {"Stripe-Signature": signature} if signature is not None else {}
    return gql.request(
        "post",
        "/webhooks/stripe/",
        host=fixture.host,
        headers=headers,
        data=body,
        content_type="application/json",
    )
