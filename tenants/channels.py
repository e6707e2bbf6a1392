"""WebSocket tenant middleware: the same resolution as HTTP, from the handshake's host, headers
and query string. A refused handshake is accepted and closed at once with a 44xx code, so that
clients can tell why (4400 conflicting signals, 4403 suspended, 4404 unknown tenant)."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from tenants.context import enter, leave
from tenants.errors import RequestRefused
from tenants.resolution import PUBLIC, TenantSignals, resolve_tenant


def signals_from_scope(scope: dict) -> TenantSignals:
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
    }
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return TenantSignals.from_headers(headers.get("host", ""), headers, query)


class TenantWebSocketMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        try:
            tenant = await database_sync_to_async(resolve_tenant)(signals_from_scope(scope))
        except RequestRefused as refused:
            await receive()  # websocket.connect
            protocols = scope.get("subprotocols") or []
            await send(
                {"type": "websocket.accept", "subprotocol": protocols[0] if protocols else None}
            )
            # A close frame's reason holds at most 123 bytes: cut the UTF-8, not the characters.
            reason = refused.message.encode()[:120].decode(errors="ignore")
            await send({"type": "websocket.close", "code": refused.close_code, "reason": reason})
            return
        entered = enter(tenant or PUBLIC)
        try:
            return await self.inner({**scope, "tenant": tenant}, receive, send)
        finally:
            leave(entered)
