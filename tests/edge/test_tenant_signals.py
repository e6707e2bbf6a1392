"""Tenant signals (host, X-Tenant-ID, X-API-Key, ?tenant_id=) are bounded text before any lookup:
a NUL (which PostgreSQL cannot hold: a 500 from psycopg2 before), another control character or an
over-long value is a 400 BAD_REQUEST from tenant resolution, on every route and on the WebSocket
handshake (closed 4400); credentials with a NUL are refused as credentials, never a 500."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync

from tests.conftest import PLATFORM_HOST
from tests.edge.responses import assert_bad_request, json_of, post
from tests.test_websocket import assert_closed, communicator, open_session, refused_at_handshake

BAD_TENANT_IDS = ["%00", "alpha%00", "al%01pha", "alpha%7F", "a" * 300]


@pytest.mark.parametrize("tenant_id", BAD_TENANT_IDS)
@pytest.mark.parametrize("host", ["platform", "tenant"])
def test_bad_tenant_id_on_graphql_post_and_get_is_400(gql, alpha, tenant_id, host):
    host = PLATFORM_HOST if host == "platform" else alpha.host
    path = f"/graphql/?tenant_id={tenant_id}"
    assert_bad_request(post(gql, path, json.dumps({"query": "{ __typename }"}), host=host))
    assert_bad_request(
        gql.get(f"{path}&query=%7B__typename%7D", host=host, headers={"Accept": "application/json"})
    )


@pytest.mark.parametrize("tenant_id", BAD_TENANT_IDS)
def test_bad_tenant_id_on_rest_endpoints_is_400(gql, alpha, tenant_id):
    query = f"?tenant_id={tenant_id}"
    assert_bad_request(gql.get(f"/login/{query}", host=alpha.host))
    assert_bad_request(
        gql.request(
            "post",
            f"/login/{query}",
            host=alpha.host,
            data={"email": "owner@alpha.test", "password": "x"},
        )
    )
    assert_bad_request(post(gql, f"/api/events{query}", "[]", host=alpha.host))
    assert_bad_request(post(gql, f"/webhooks/stripe/{query}", "{}", host=alpha.host))


@pytest.mark.parametrize("header", ["X-Tenant-ID", "X-API-Key"])
@pytest.mark.parametrize("value", ["\x00", "alpha\x00", "sk_ab\x00_cd", "al\x1bpha", "x" * 1000])
def test_bad_tenant_header_is_400(gql, alpha, header, value):
    response = post(
        gql,
        "/graphql/",
        json.dumps({"query": "{ __typename }"}),
        host=PLATFORM_HOST,
        headers={header: value},
    )
    assert_bad_request(response)


@pytest.mark.parametrize("tenant_id", BAD_TENANT_IDS)
def test_bad_tenant_id_on_the_websocket_handshake_closes_4400(alpha, tenant_id):
    refused_at_handshake(4400, PLATFORM_HOST, path=f"/graphql/?tenant_id={tenant_id}")


@pytest.mark.parametrize("header", ["X-Tenant-ID", "X-API-Key"])
def test_nul_in_a_tenant_header_on_the_websocket_handshake_closes_4400(alpha, header):
    refused_at_handshake(4400, PLATFORM_HOST, headers=[(header, "alpha\x00")])


@pytest.mark.parametrize(
    "host", ["alpha.localhost\x00", "alpha\x01.localhost", "a" * 400 + ".localhost"]
)
def test_bad_host_on_the_websocket_handshake_closes_4400(alpha, host):
    """Django validates an HTTP Host (ALLOWED_HOSTS); nothing does on the WebSocket but this."""
    refused_at_handshake(4400, host)


@pytest.mark.parametrize(
    "params",
    [
        {"X-API-Key": "sk_ab\x00_cd"},
        {"Authorization": "Bearer sk_ab\x00_cd"},
        {"Authorization": "Bearer \x00"},
    ],
)
def test_nul_in_websocket_credentials_is_refused_at_init(alpha, params):
    async def scenario():
        ws = communicator(alpha.host)
        assert_closed(await open_session(ws, params), 4403)
        await ws.disconnect()

    async_to_sync(scenario)()


def test_nul_in_a_bearer_api_key_is_an_invalid_credential(gql, alpha):
    """Not the shape of our keys, so no key lookup: an invalid token, 401."""
    response = post(
        gql,
        "/graphql/",
        json.dumps({"query": "{ __typename }"}),
        host=alpha.host,
        headers={"Authorization": "Bearer sk_ab\x00_cd"},
    )
    assert response.status_code == 401, response.content
    assert json_of(response)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
