"""Ports of 127.0.0.1 for the embedded servers."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"
# This machine's own PostgreSQL and Redis listen on these; an embedded server never takes them.
RESERVED_PORTS = frozenset({5432, 6379})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    while True:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


def port_is_open(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0
