"""A real uvicorn serving config.asgi for the benches that measure through HTTP or WebSockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def uvicorn(*options: str, env: dict[str, str] | None = None, start_timeout: float = 60) -> Iterator[int]:
    """A server on a free loopback port (yielded) with uvicorn's `options`, answering /healthz
    before the block runs, stopped after it."""
    with uvicorn_process(*options, env=env, start_timeout=start_timeout) as (port, _):
        yield port


@contextmanager
def uvicorn_process(*options: str, env: dict[str, str] | None = None,
                    start_timeout: float = 60) -> Iterator[tuple[int, subprocess.Popen]]:
    """`uvicorn`, yielding the port and the server's process (whose memory a bench samples;
    without --workers it is the one that serves)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", *options],
        cwd=ROOT, env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + start_timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("uvicorn did not start")
        time.sleep(0.1)
    try:
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
