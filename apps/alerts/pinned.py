"""HTTP(S) connections pinned to addresses resolved (and checked) beforehand.

A plain connection resolves its host name again when it connects, so a DNS answer that changes
between our check and that lookup (DNS rebinding) would reach an address we never checked. These
connections take the host name for what the server sees (the `Host` header, TLS SNI and the
certificate's name) and a list of addresses for where the socket goes, and never look the name up."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Sequence


def _connect(addresses: Sequence[str], port: int, timeout: float | None) -> socket.socket:
    """A socket to the first of `addresses` that answers (as socket.create_connection tries each)."""
    error: OSError = OSError("No address to connect to.")
    for address in addresses:
        try:
            # An IP literal is parsed, not looked up: no DNS query happens here.
            return socket.create_connection((address, port), timeout)
        except OSError as failed:
            error = failed
    raise error


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to `host` whose socket goes to one of `addresses` only."""

    def __init__(self, host: str, port: int, addresses: Sequence[str], *, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses = tuple(addresses)

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does


class PinnedHTTPSConnection(PinnedHTTPConnection):
    """The same over TLS: the certificate is verified for `host` (sent as SNI), not the address."""

    default_port = 443  # so the Host header leaves out ":443", as for any https URL

    def __init__(
        self,
        host: str,
        port: int,
        addresses: Sequence[str],
        *,
        timeout: float,
        context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(host, port, addresses, timeout=timeout)
        self.context = context or ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


def connection(
    scheme: str,
    host: str,
    port: int,
    addresses: Sequence[str],
    *,
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> PinnedHTTPConnection:
    """A pinned connection for an http or https URL's host and port (not yet connected)."""
    if scheme == "https":
        return PinnedHTTPSConnection(host, port, addresses, timeout=timeout, context=context)
    return PinnedHTTPConnection(host, port, addresses, timeout=timeout)
