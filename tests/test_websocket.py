"""GraphQL over WebSocket (graphql-transport-ws) through the real ASGI app: the tenant is
resolved from the handshake as on HTTP (refusals close with 4400/4403/4404), the caller
authenticates in `connection_init`, and `serverTime` streams to any member."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from apps.accounts.authentication import Principal
from apps.accounts.middleware import SESSION_TENANT_KEY
from apps.accounts.models import ApiKey, User
from apps.accounts.services import create_api_key
from config.asgi import application
from tenants.models import Tenant
from tests.conftest import PLATFORM_HOST, token_for

TIMEOUT = 30  # a deadline for answers on a busy machine (waited for, never slept)
# A refusal at the handshake needs no more than a tenant lookup: a crashed application shows
# up only when this runs out.
HANDSHAKE_TIMEOUT = 15  # a deadline: only a broken handshake waits it out
SERVER_TIME = "subscription { serverTime(interval: 0.1, count: 3) }"


def communicator(
    host: str = "alpha.localhost", *, path: str = "/graphql/", headers=(), origin=None
):
    return WebsocketCommunicator(
        application,
        path,
        headers=[
            (b"host", host.encode()),
            (b"origin", (origin or f"http://{host}").encode()),
            *[(name.lower().encode(), value.encode("latin-1")) for name, value in headers],
        ],
        subprotocols=["graphql-transport-ws"],
    )


async def open_session(ws: WebsocketCommunicator, params: dict) -> dict:
    """Connect and init; the first message the server answers with."""
    connected, subprotocol = await ws.connect(timeout=TIMEOUT)
    assert connected, subprotocol
    assert subprotocol == "graphql-transport-ws"
    await ws.send_json_to({"type": "connection_init", "payload": params})
    return await ws.receive_output(timeout=TIMEOUT)


def bearer(fixture, role: str = "owner") -> dict:
    return {"Authorization": f"Bearer {token_for(fixture.email(role), fixture.tenant)}"}


def api_key_of(fixture, **overrides) -> tuple[ApiKey, str]:
    owner = User.objects.get(email=fixture.email("owner"))
    actor = Principal(tenant=fixture.tenant, user=owner, role="owner", via="jwt")
    options = {"name": "ws", "role": "viewer", "scopes": ["read"], **overrides}
    return create_api_key(actor=actor, tenant=fixture.tenant, **options)


def assert_closed(message: dict, code: int) -> None:
    assert message["type"] == "websocket.close", message
    assert message["code"] == code, message


def refused_at_handshake(code: int, host: str, **options) -> None:
    """The tenant middleware accepts, then closes with `code` before any GraphQL message."""

    async def scenario():
        ws = communicator(host, **options)
        connected, _ = await ws.connect(timeout=HANDSHAKE_TIMEOUT)
        assert connected  # accepted, so that the client can read the close code
        try:
            message = await ws.receive_output(timeout=HANDSHAKE_TIMEOUT)
        except Exception as error:  # still open: asgiref has cancelled the application
            message = {"type": f"no close within {HANDSHAKE_TIMEOUT} s ({error!r})"}
        else:
            await ws.disconnect()
        assert_closed(message, code)

    async_to_sync(scenario)()


def first_answer(fixture, params: dict, payload: dict) -> dict:
    """Open a session with `params`, send one `subscribe` with `payload`; the first message back."""

    async def scenario():
        ws = communicator(fixture.host)
        ack = await open_session(ws, params)
        assert json.loads(ack["text"])["type"] == "connection_ack"
        await ws.send_json_to({"id": "1", "type": "subscribe", "payload": payload})
        message = await ws.receive_json_from(timeout=TIMEOUT)
        await ws.disconnect()
        return message

    return async_to_sync(scenario)()


def refused_at_init(params: dict, host: str = "alpha.localhost", **options) -> None:
    async def scenario():
        ws = communicator(host, **options)
        assert_closed(await open_session(ws, params), 4403)
        await ws.disconnect()

    async_to_sync(scenario)()


def stream_server_time(params: dict, host: str = "alpha.localhost", **options) -> dict:
    """Subscribe to three ticks; returns the connection_ack."""

    async def scenario():
        ws = communicator(host, **options)
        ack = await open_session(ws, params)
        assert ack["type"] == "websocket.send", ack
        ack = json.loads(ack["text"])
        assert ack["type"] == "connection_ack", ack
        started = datetime.now(UTC)
        await ws.send_json_to({"id": "1", "type": "subscribe", "payload": {"query": SERVER_TIME}})
        ticks = []
        for _ in range(3):
            message = await ws.receive_json_from(timeout=TIMEOUT)
            assert message["type"] == "next" and message["id"] == "1", message
            assert "errors" not in message["payload"], message
            ticks.append(datetime.fromisoformat(message["payload"]["data"]["serverTime"]))
        assert await ws.receive_json_from(timeout=TIMEOUT) == {"id": "1", "type": "complete"}
        assert all(tick.tzinfo is not None for tick in ticks)
        assert ticks == sorted(ticks)
        assert ticks[0] >= started - timedelta(seconds=1)
        assert ticks[-1] - ticks[0] >= timedelta(seconds=0.15)  # two sleeps of 0.1 s
        await ws.disconnect()
        return ack

    return async_to_sync(scenario)()


# --- accepted -----------------------------------------------------------------------------------


def test_owner_token_streams_server_time(alpha):
    ack = stream_server_time(bearer(alpha))
    assert ack["payload"] == {"tenant": "alpha", "role": "owner"}


def test_viewer_token_streams_server_time(alpha):
    ack = stream_server_time(bearer(alpha, "viewer"))
    assert ack["payload"] == {"tenant": "alpha", "role": "viewer"}


def test_authorization_param_name_is_case_insensitive(beta):
    token = token_for(beta.email("analyst"), beta.tenant)
    ack = stream_server_time({"authorization": f"Bearer {token}"}, host=beta.host)
    assert ack["payload"] == {"tenant": "beta", "role": "analyst"}


def test_api_key_in_connection_params_streams_server_time(alpha):
    key, secret = api_key_of(alpha)
    ack = stream_server_time({"X-API-Key": secret})
    assert ack["payload"] == {"tenant": "alpha", "role": "viewer"}
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_tenant_header_on_the_platform_host(beta):
    ack = stream_server_time(bearer(beta), host=PLATFORM_HOST, headers=[("X-Tenant-ID", "beta")])
    assert ack["payload"] == {"tenant": "beta", "role": "owner"}


def test_tenant_query_parameter_on_the_platform_host(beta):
    ack = stream_server_time(
        bearer(beta, "viewer"), host=PLATFORM_HOST, path="/graphql/?tenant_id=beta"
    )
    assert ack["payload"] == {"tenant": "beta", "role": "viewer"}


def test_queries_over_the_socket_see_the_resolved_tenant(alpha, beta):
    query = "{ tenant { slug } members(first: 100) { edges { node { user { email } } } } }"

    async def scenario(params, **options):
        ws = communicator(**options)
        assert (await open_session(ws, params))["type"] == "websocket.send"
        await ws.send_json_to({"id": "q", "type": "subscribe", "payload": {"query": query}})
        message = await ws.receive_json_from(timeout=TIMEOUT)
        assert await ws.receive_json_from(timeout=TIMEOUT) == {"id": "q", "type": "complete"}
        await ws.disconnect()
        return message

    for fixture, options in [
        (alpha, {"host": alpha.host}),
        (beta, {"host": PLATFORM_HOST, "headers": [("X-Tenant-ID", str(beta.tenant.pk))]}),
    ]:
        message = async_to_sync(scenario)(bearer(fixture, "viewer"), **options)
        assert message["type"] == "next", message
        data = message["payload"]["data"]
        assert data["tenant"] == {"slug": fixture.slug}
        emails = {edge["node"]["user"]["email"] for edge in data["members"]["edges"]}
        assert {fixture.email("owner"), fixture.email("viewer")} <= emails
        assert all(email.endswith(f"@{fixture.slug}.test") for email in emails), emails


# --- refused in connection_init (strawberry closes 4403) ----------------------------------------


def test_no_credentials_is_refused(alpha):
    refused_at_init({})


def test_token_of_another_tenant_is_refused(alpha, beta):
    refused_at_init(bearer(beta))


def test_api_key_of_another_tenant_is_refused(alpha, beta):
    _, secret = api_key_of(beta)
    refused_at_init({"X-API-Key": secret})


def test_platform_token_is_refused_on_a_tenant_host(alpha):
    refused_at_init({"Authorization": f"Bearer {token_for('staff@platform.test', None)}"})


def test_garbage_token_is_refused(alpha):
    refused_at_init({"Authorization": "Bearer not.a.jwt"})


def test_revoked_api_key_is_refused(alpha):
    key, secret = api_key_of(alpha)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=datetime.now(UTC))
    refused_at_init({"X-API-Key": secret})


def session_cookie(fixture, role: str = "owner") -> tuple[str, str]:
    """A signed-in session as the login page makes it: the user and the tenant it was opened for."""
    client = Client()
    client.force_login(User.objects.get(email=fixture.email(role)))
    session = client.session
    session[SESSION_TENANT_KEY] = fixture.slug
    session.save()
    return ("Cookie", f"{settings.SESSION_COOKIE_NAME}={session.session_key}")


def test_session_of_this_tenant_on_a_same_origin_page_is_accepted(alpha):
    ack = stream_server_time({}, headers=[session_cookie(alpha, "viewer")])
    assert ack["payload"] == {"tenant": "alpha", "role": "viewer"}


def test_session_of_another_tenant_is_refused(alpha, beta):
    refused_at_init({}, host=beta.host, headers=[session_cookie(alpha)])


def test_session_from_another_origin_does_not_count(alpha, beta):
    refused_at_init(
        {}, host=alpha.host, origin=f"http://{beta.host}", headers=[session_cookie(alpha)]
    )


def test_subscribe_before_init_is_refused(alpha):
    async def scenario():
        ws = communicator()
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        await ws.send_json_to({"id": "1", "type": "subscribe", "payload": {"query": SERVER_TIME}})
        assert_closed(await ws.receive_output(timeout=TIMEOUT), 4401)
        await ws.disconnect()

    async_to_sync(scenario)()


# --- refused at the handshake (the tenant middleware closes 44xx) -------------------------------


def test_unknown_tenant_host_closes_4404(alpha):
    refused_at_handshake(4404, "nope.localhost")


def test_unknown_tenant_header_closes_4404(alpha):
    refused_at_handshake(4404, PLATFORM_HOST, headers=[("X-Tenant-ID", "nope")])


def test_unknown_tenant_query_closes_4404(alpha):
    refused_at_handshake(4404, PLATFORM_HOST, path="/graphql/?tenant_id=nope")


def test_non_ascii_digit_tenant_id_closes_4404(alpha):
    """'²' passes str.isdigit() but not int(): it is an unknown tenant, not a crash."""
    refused_at_handshake(4404, PLATFORM_HOST, path="/graphql/?tenant_id=%C2%B2")


def test_conflicting_host_and_header_close_4400(alpha, beta):
    refused_at_handshake(4400, alpha.host, headers=[("X-Tenant-ID", beta.slug)])


def test_conflicting_header_and_query_close_4400(alpha, beta):
    refused_at_handshake(
        4400, PLATFORM_HOST, headers=[("X-Tenant-ID", "alpha")], path="/graphql/?tenant_id=beta"
    )


def test_repeated_tenant_query_naming_two_tenants_closes_4400(alpha, beta):
    refused_at_handshake(4400, PLATFORM_HOST, path="/graphql/?tenant_id=alpha&tenant_id=beta")


def test_suspended_tenant_closes_4403(alpha):
    Tenant.objects.filter(pk=alpha.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    refused_at_handshake(4403, alpha.host)


def test_suspended_tenant_by_api_key_closes_4403(alpha):
    _, secret = api_key_of(alpha)
    Tenant.objects.filter(pk=alpha.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    refused_at_handshake(4403, PLATFORM_HOST, headers=[("X-API-Key", secret)])


def test_foreign_origin_with_a_token_is_accepted(alpha):
    """The Origin check guards the session cookie only (DESIGN §12): a token is no ambient
    credential, a page that sends one was given it. A foreign page's session: see
    test_session_from_another_origin_does_not_count."""
    ack = stream_server_time(bearer(alpha, "viewer"), host=alpha.host, origin="http://evil.example")
    assert ack["payload"] == {"tenant": "alpha", "role": "viewer"}


# --- the operation guard applies over the socket too --------------------------------------------


def test_permission_table_and_cost_apply_over_the_socket(alpha, settings):
    async def scenario(params, query):
        ws = communicator(alpha.host)
        assert (await open_session(ws, params))["type"] == "websocket.send"
        await ws.send_json_to({"id": "g", "type": "subscribe", "payload": {"query": query}})
        message = await ws.receive_json_from(timeout=TIMEOUT)
        await ws.disconnect()
        return message

    def codes(message):
        errors = (
            message["payload"]
            if message["type"] == "error"
            else message["payload"].get("errors", [])
        )
        return [error.get("extensions", {}).get("code") for error in errors]

    viewer = bearer(alpha, "viewer")
    forbidden = async_to_sync(scenario)(viewer, "{ apiKeys(first: 5) { totalCount } }")
    assert codes(forbidden) == ["FORBIDDEN"], forbidden
    _, read_only = api_key_of(alpha, role="admin", scopes=["read"])
    mutation = async_to_sync(scenario)(
        {"X-API-Key": read_only},
        'mutation { tenantUpdate(input: {name: "x"}) { tenant { name } } }',
    )
    assert codes(mutation) == ["FORBIDDEN"], mutation
    settings.GRAPHQL_MAX_COST = 5
    costly = async_to_sync(scenario)(bearer(alpha), "subscription { serverTime(count: 1) } ")
    assert "errors" not in costly.get("payload", {}), costly  # cost 0: scalars only
    too_costly = async_to_sync(scenario)(
        bearer(alpha), "{ members(first: 10) { edges { node { id } } } }"
    )
    assert codes(too_costly) == ["QUERY_TOO_COMPLEX"], too_costly
