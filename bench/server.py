"""A real uvicorn serving config.asgi for the benches that measure through HTTP or WebSockets."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from config.devserver.asgi_server import uvicorn_server


@contextmanager
def uvicorn(
    *options: str, env: dict[str, str] | None = None, start_timeout: float = 60
) -> Iterator[int]:
    """A server on a loopback port of its own (yielded) with uvicorn's `options`, answering
    /healthz before the block runs, stopped after it."""
    with uvicorn_process(*options, env=env, start_timeout=start_timeout) as (port, _):
        yield port


@contextmanager
def uvicorn_process(
    *options: str, env: dict[str, str] | None = None, start_timeout: float = 60
) -> Iterator[tuple[int, subprocess.Popen]]:
    """`uvicorn`, yielding the port and the server's process (whose memory a bench samples;
    without --workers it is the one that serves)."""
    with uvicorn_server(*options, env=env, start_timeout=start_timeout) as server:
        yield server.port, server.process
