"""Helpers for the Redis restart tests (issue 15): a real Celery worker process, a task that holds
a worker busy until the test lets it go, the log of a child process read as it is written, and a
graphql-transport-ws client that keeps every message.

Kept apart from tests/faults/processes.py (which others extend at the same time); each helper is
general enough for any fault test that needs it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import websockets
from celery import Celery, shared_task
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


class ProcessLog:
    """Every line a child writes to `stream`, read by a thread of its own as it comes: a child
    whose pipe nobody reads blocks once the pipe is full (64 KiB of log lines during an outage)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def mark(self) -> int:
        """Where the log is now: `since(mark)` is what came after."""
        return len(self.lines)

    def since(self, mark: int = 0) -> list[str]:
        return self.lines[mark:]


@shared_task(name="tests.faults.hold_until")
def hold_until(started: str, release: str, deadline: float = 30) -> bool:
    """Touch `started`, then wait (polling) until `release` exists: a task the worker holds,
    unacknowledged (tasks ack late), for as long as the test needs. Whether it was released."""
    Path(started).touch()
    give_up = time.monotonic() + deadline
    while not Path(release).exists():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.02)
    return True


def send_task(broker_url: str, name: str, *args: Any) -> None:
    """Queue task `name` on the broker at `broker_url` (this deployment's key prefix), from a
    process whose own Celery app uses another broker."""
    client = Celery("fault-test-client", broker=broker_url, set_as_current=False)
    client.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    try:
        client.send_task(name, args=args)
    finally:
        client.close()


class CeleryWorkerProcess:
    """`celery -A config worker` as a process of its own (threads pool) with `env` over this
    process's environment (e.g. another REDIS_URL and DATABASE_URL), importing `include` too
    (modules of test tasks such as this one's `hold_until`); its log in `log`."""

    def __init__(
        self, env: dict[str, str], *, concurrency: int = 2, include: tuple[str, ...] = ()
    ) -> None:
        self.env, self.concurrency, self.include = env, concurrency, include
        self.process: subprocess.Popen | None = None
        self.log: ProcessLog | None = None

    def start(self, *, ready: Callable[[], bool] | None = None, deadline: float = 60) -> None:
        """Start it; with `ready`, wait (polling) until `ready()` says the worker serves."""
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *(["--include", ",".join(self.include)] if self.include else []),
            ],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.log = ProcessLog(self.process.stdout)
        if ready is not None:
            wait_until(ready, deadline, "the Celery worker did not serve", alive=self.process)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def wait_until(
    condition: Callable[[], Any],
    deadline: float,
    failure: str,
    *,
    every: float = 0.1,
    alive: subprocess.Popen | None = None,
) -> Any:
    """Poll `condition()` until it is truthy (its value) or `deadline` seconds have passed."""
    give_up = time.monotonic() + deadline
    while not (value := condition()):
        if alive is not None:
            assert alive.poll() is None, f"{failure}: the process exited ({alive.returncode})"
        assert time.monotonic() < give_up, f"{failure} within {deadline} s"
        time.sleep(every)
    return value


class LiveSocket:
    """A graphql-transport-ws connection that files every message it receives by operation id
    (and the connection's end, if it comes), for tests that watch several subscriptions at once."""

    def __init__(
        self, url: str, *, host: str, port: int, connection_params: dict[str, str]
    ) -> None:
        self.url, self.host, self.port, self.params = url, host, port, connection_params
        self.messages: dict[str, list[dict]] = {}
        self.closed: websockets.ConnectionClosed | None = None
        self._arrived = asyncio.Event()
        self._ws: Any = None
        self._reader: asyncio.Task | None = None

    async def __aenter__(self) -> LiveSocket:
        self._ws = await websockets.connect(
            self.url,
            host=self.host,
            port=self.port,
            subprotocols=["graphql-transport-ws"],
            open_timeout=30,
        )
        await self._ws.send(json.dumps({"type": "connection_init", "payload": self.params}))
        ack = json.loads(await asyncio.wait_for(self._ws.recv(), 30))
        assert ack["type"] == "connection_ack", ack
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self._ws.close()

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                if message.get("type") == "ping":
                    await self._ws.send(json.dumps({"type": "pong"}))
                    continue
                self.messages.setdefault(message.get("id", ""), []).append(message)
                self._arrived.set()
        except websockets.ConnectionClosed as closed:
            self.closed = closed
            self._arrived.set()

    async def subscribe(self, operation_id: str, query: str) -> None:
        self.messages.setdefault(operation_id, [])
        await self._ws.send(
            json.dumps({"id": operation_id, "type": "subscribe", "payload": {"query": query}})
        )

    async def complete(self, operation_id: str) -> None:
        await self._ws.send(json.dumps({"id": operation_id, "type": "complete"}))

    async def wait_for(self, condition: Callable[[], Any], deadline: float, failure: str) -> Any:
        """Wait, without polling, until `condition()` is truthy after some message arrived."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + deadline
        while not (value := condition()):
            assert self.closed is None, f"{failure}: the socket closed ({self.closed!r})"
            left = give_up - loop.time()
            assert left > 0, f"{failure} within {deadline} s; messages: {self.messages}"
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
        return value

    def payloads(self, operation_id: str) -> list[dict]:
        """The `next` payloads of an operation, in order."""
        return [m["payload"] for m in self.messages.get(operation_id, []) if m["type"] == "next"]
