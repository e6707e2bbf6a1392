"""Clients that are not browsers are first-class on the WebSocket (DESIGN §12): the websockets
library against uvicorn serving config.asgi, with no Origin header (websockets.connect sends
none unless given `origin=`), authenticating with a bearer token or an API key. The Origin
check guards the session cookie only: a page of another site never rides one.

The server sees committed data only: the API key and the session are made outside the tests'
transactions (module fixtures) and removed afterwards."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

from apps.accounts.middleware import SESSION_TENANT_KEY
from apps.accounts.models import ApiKey, User
from tests.test_websocket import api_key_of

HOST = "alpha.localhost"
SERVER_TIME = "subscription { serverTime(interval: 0.1, count: 2) }"
TIMEOUT = 5


@pytest.fixture(scope="module")
def alpha_api_key(tenants, django_db_blocker):
    with django_db_blocker.unblock():
        key, secret = api_key_of(tenants["alpha"], name="edge-ws", role="analyst", scopes=["read"])
    yield secret
    with django_db_blocker.unblock():
        ApiKey.objects.filter(pk=key.pk).delete()


@pytest.fixture(scope="module")
def alpha_session(tenants, django_db_blocker):
    """The cookie header of a signed-in session, as the login page makes it."""
    with django_db_blocker.unblock():
        client = Client()
        client.force_login(User.objects.get(email="owner@alpha.test"))
        session = client.session
        session[SESSION_TENANT_KEY] = "alpha"
        session.save()
    yield f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
    with django_db_blocker.unblock():
        Session.objects.filter(session_key=session.session_key).delete()


async def _subscribe(
    port: int, init_payload: dict, **connect
) -> tuple[dict | None, list[dict], int | None]:
    """connection_init, then SERVER_TIME: (the ack, the messages up to `complete`, the close code
    when the server closed instead of acknowledging)."""
    async with websockets.connect(
        f"ws://{HOST}:{port}/graphql/",
        host="127.0.0.1",
        port=port,
        subprotocols=["graphql-transport-ws"],
        open_timeout=TIMEOUT,
        **connect,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": init_payload}))
        try:
            ack = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        except websockets.ConnectionClosed as closed:
            return None, [], closed.rcvd.code if closed.rcvd else None
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SERVER_TIME}})
        )
        messages = []
        while not messages or messages[-1]["type"] not in ("complete", "error"):
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
        return ack, messages, None


def _assert_streamed(ack, messages, closed, role: str) -> None:
    assert closed is None, f"closed with {closed}"
    assert ack == {"type": "connection_ack", "payload": {"tenant": "alpha", "role": role}}
    assert [m["type"] for m in messages] == ["next", "next", "complete"], messages
    assert all(m["payload"]["data"]["serverTime"] for m in messages[:2])


def test_a_bearer_token_needs_no_origin(asgi_server, db):
    token = asgi_server.tokens["alpha-viewer"]
    _assert_streamed(
        *asyncio.run(_subscribe(asgi_server.port, {"Authorization": f"Bearer {token}"})), "viewer"
    )


def test_an_api_key_needs_no_origin(asgi_server, alpha_api_key, db):
    _assert_streamed(
        *asyncio.run(_subscribe(asgi_server.port, {"X-API-Key": alpha_api_key})), "analyst"
    )


def test_a_token_from_a_foreign_page_is_accepted(asgi_server, db):
    """Tokens are not ambient: a page that sends one was given it (documented in README)."""
    token = asgi_server.tokens["alpha-owner"]
    outcome = asyncio.run(
        _subscribe(
            asgi_server.port, {"Authorization": f"Bearer {token}"}, origin="http://evil.example"
        )
    )
    _assert_streamed(*outcome, "owner")


def test_a_session_cookie_counts_from_a_page_of_this_host(asgi_server, alpha_session, db):
    """The control for the two refusals below: the same cookie is a valid session."""
    outcome = asyncio.run(
        _subscribe(
            asgi_server.port,
            {},
            origin=f"http://{HOST}:{asgi_server.port}",
            additional_headers={"Cookie": alpha_session},
        )
    )
    _assert_streamed(*outcome, "owner")


@pytest.mark.parametrize(
    "origin", ["http://evil.example", f"http://{HOST}.evil.example", "null", None]
)
def test_a_session_cookie_from_a_foreign_page_or_no_page_is_refused(
    asgi_server, alpha_session, db, origin
):
    ack, _, closed = asyncio.run(
        _subscribe(
            asgi_server.port, {}, origin=origin, additional_headers={"Cookie": alpha_session}
        )
    )
    assert ack is None and closed == 4403


def test_a_refusal_with_a_long_non_ascii_reason_still_closes_with_its_code(asgi_server, db):
    """The tenant middleware's close reason is cut to 120 bytes, not characters (a close frame
    holds 123 bytes): an unknown tenant named in 60 two-byte characters still closes 4404."""

    async def scenario():
        async with websockets.connect(
            f"ws://{HOST}:{asgi_server.port}/graphql/?tenant_id={'%C3%A9' * 60}",
            host="127.0.0.1",
            port=asgi_server.port,
            subprotocols=["graphql-transport-ws"],
            open_timeout=TIMEOUT,
        ) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            return closed.value.rcvd

    received = asyncio.run(scenario())
    assert received is not None and received.code == 4404, received
