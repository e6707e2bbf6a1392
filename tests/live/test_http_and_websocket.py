"""Over real sockets: GraphQL over HTTP (httpx) and graphql-transport-ws (the websockets library)."""

import asyncio
import json

import websockets

from tests.conftest import PLATFORM_HOST


def test_graphql_over_http(asgi_server):
    with asgi_server.http("alpha.localhost") as client:
        response = client.post(
            "/graphql/",
            json={"query": "{ tenant { slug } me { role } }"},
            headers={"Authorization": f"Bearer {asgi_server.tokens['alpha-owner']}"},
        )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"tenant": {"slug": "alpha"}, "me": {"role": "OWNER"}}
    assert body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] > 0
    assert response.headers["x-request-id"]


def test_graphql_over_http_get_and_refusals(asgi_server):
    with asgi_server.http("alpha.localhost") as client:
        got = client.get(
            "/graphql/",
            params={"query": "{ tenant { slug } }"},
            headers={
                "Authorization": f"Bearer {asgi_server.tokens['alpha-viewer']}",
                "Accept": "application/json",
            },
        )
        other = client.post(
            "/graphql/",
            json={"query": "{ tenant { slug } }"},
            headers={"Authorization": f"Bearer {asgi_server.tokens['beta-owner']}"},
        )
        mutation_by_get = client.get(
            "/graphql/",
            params={"query": 'mutation { tokenVerify(token: "x") { valid } }'},
            headers={"Accept": "application/json"},
        )
    assert got.json()["data"] == {"tenant": {"slug": "alpha"}}
    assert (
        other.status_code == 403 and other.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    )
    assert mutation_by_get.status_code in (400, 405)
    with asgi_server.http(PLATFORM_HOST) as client:
        unknown = client.post(
            "/graphql/", json={"query": "{ me { via } }"}, headers={"X-Tenant-ID": "nope"}
        )
    assert unknown.status_code == 404


async def _subscribe(
    port: int, host: str, init_payload: dict, query: str
) -> tuple[list[dict], int | None]:
    messages: list[dict] = []
    async with websockets.connect(
        f"ws://{host}:{port}/graphql/",
        host="127.0.0.1",
        port=port,
        subprotocols=["graphql-transport-ws"],
        origin=f"http://{host}:{port}",
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": init_payload}))
        try:
            ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        except websockets.ConnectionClosed as closed:
            return messages, closed.rcvd.code if closed.rcvd else None
        assert ack["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            messages.append(message)
            if message["type"] in ("complete", "error"):
                return messages, None


def test_server_time_over_a_real_websocket(asgi_server):
    messages, closed = asyncio.run(
        _subscribe(
            asgi_server.port,
            "alpha.localhost",
            {"Authorization": f"Bearer {asgi_server.tokens['alpha-viewer']}"},
            "subscription { serverTime(interval: 0.1, count: 3) }",
        )
    )
    assert closed is None
    assert [m["type"] for m in messages] == ["next", "next", "next", "complete"]
    assert all("T" in m["payload"]["data"]["serverTime"] for m in messages[:3])


def test_websocket_refuses_no_token_and_another_tenants_token(asgi_server):
    query = "subscription { serverTime(count: 1) }"
    _, without = asyncio.run(_subscribe(asgi_server.port, "alpha.localhost", {}, query))
    _, foreign = asyncio.run(
        _subscribe(
            asgi_server.port,
            "alpha.localhost",
            {"Authorization": f"Bearer {asgi_server.tokens['beta-owner']}"},
            query,
        )
    )
    assert without == 4403 and foreign == 4403


def test_the_session_servers_tokens_outlive_a_slow_session(asgi_server):
    """The server and its tokens are made once per session; a loaded CI run lasts longer than an
    access token's 15 minutes, and the last tests to use them were answered 401 (CI on b1677ac)."""
    from datetime import timedelta

    import jwt

    from tests.servers import SESSION_TOKEN_LIFETIME

    assert timedelta(hours=2) <= SESSION_TOKEN_LIFETIME
    for token in asgi_server.tokens.values():
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] - claims["origIat"] >= SESSION_TOKEN_LIFETIME.total_seconds()
