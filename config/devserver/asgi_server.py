"""A uvicorn process serving config.asgi on a loopback port, for the benches and the tests that
talk to a real server.

The listening socket is bound here and handed to uvicorn (`--fd`), so the port is ours from the
start: picking a free port, closing it and letting the child bind it later races with any other
process on the machine (a second test run, a bench), and a health check could then be answered by
somebody else's server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from config.devserver import PROJECT_DIR


class ServerDidNotStart(RuntimeError):
    pass


@dataclass(frozen=True)
class RunningServer:
    port: int
    process: subprocess.Popen


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@contextmanager
def uvicorn_server(
    *options: str,
    env: dict[str, str] | None = None,
    start_timeout: float = 60,
    capture_output: bool = False,
) -> Iterator[RunningServer]:
    """uvicorn with `options` on a port bound here, answering /healthz before the block runs,
    stopped after it. With `capture_output`, its output is kept for the error when it fails to
    start (read it from `process.stdout` otherwise)."""
    with _bound_socket() as sock:
        port = sock.getsockname()[1]
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--fd",
                str(sock.fileno()),
                "--log-level",
                "warning",
                # A WebSocket whose consumer has not ended holds uvicorn's shutdown for ever
                # (seen once in tests/multiprocess: 30 s until SIGKILL): a bounded wait.
                "--timeout-graceful-shutdown",
                "5",
                *options,
            ],
            cwd=PROJECT_DIR,
            env={**os.environ, **(env or {})},
            pass_fds=(sock.fileno(),),
            stdout=subprocess.PIPE if capture_output else None,
            stderr=subprocess.STDOUT if capture_output else None,
        )
    try:
        _wait_healthy(port, process, start_timeout)
        yield RunningServer(port=port, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise ServerDidNotStart(f"uvicorn did not start:\n{output[-3000:]}")
        time.sleep(0.1)
