"""Real processes and connections for the fault tests, each of which can be killed and brought
back: a Redis server of the test's own (the suite's Redis must stay up for the test process
itself), a TCP relay in front of the test database, through which a server's every
PostgreSQL connection goes, so the database can be cut off and restored for that server alone,
and a Celery worker (prefork, as in production) killed with SIGKILL, pool and all."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import redis

from config.devserver.redis import redis_server_path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisProcess:
    """redis-server on a port of its own that stays the same across a kill and a restart."""

    def __init__(self, data_dir: Path, *, appendonly: bool = False) -> None:
        """`appendonly`: keep an append-only file in `data_dir` (fsync every second), as the
        production broker does (docker-compose.yml), so a restart keeps what was written."""
        self.data_dir, self.port, self.appendonly = data_dir, _free_port(), appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, deadline: float = 30) -> None:
        self.process = subprocess.Popen(
            [
                str(redis_server_path()),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--dir",
                str(self.data_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        give_up = time.monotonic() + deadline
        while not self._answers():
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < give_up, "redis-server did not start"
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: the server is gone at once, as in a crash."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None


class Relay:
    """A TCP relay on a fixed local port to `target`. `cut()` closes the listener and every
    connection through it (what a server sees when PostgreSQL stops or fails over); `restore()`
    listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, _free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class CeleryWorkerProcess:
    """`celery worker -P prefork` in a process group of its own, on the broker at `broker_url`
    (the env's REDIS_URL, unless `env` names another), with `env` on top of this process's
    environment. `start()` returns once the worker takes messages; `kill()` sends SIGKILL to the
    whole group (main process and pool children) as a crash or an OOM kill of the host does;
    `wait_idle()` waits until the broker holds no message of its queues, waiting or unacknowledged.

    The app is tests.faults.worker_app (the project's app, plus FAULT_HOLD to stop a task at a
    known call); a worker's output goes to `log` (for a person reading a failure, never asserted)."""

    def __init__(
        self,
        broker_url: str,
        env: Mapping[str, str],
        *,
        log: Path,
        queues: Iterable[str] = ("celery",),
        concurrency: int = 1,
        key_prefix: str | None = None,
    ) -> None:
        self.broker_url, self.log = broker_url, log
        self.env = {**os.environ, "REDIS_URL": broker_url, **env}
        self.queues, self.concurrency = list(queues), concurrency
        # Kombu's keys in Redis carry settings' prefix (settings.CELERY_BROKER_TRANSPORT_OPTIONS).
        self.key_prefix = (
            key_prefix if key_prefix is not None else f"{self.env['REDIS_KEY_PREFIX']}:celery:"
        )
        self.process: subprocess.Popen | None = None

    def start(
        self, *, hold: str | None = None, hold_marker: Path | None = None, deadline: float = 60
    ) -> None:
        """Start a new worker (`hold`, `hold_marker`: see tests.faults.worker_app) and wait until
        it is ready."""
        assert self.process is None, "this worker is running"
        ready = self.log.with_name(f"{self.log.name}.ready-{uuid.uuid4().hex[:8]}")
        env = {**self.env, "FAULT_READY_FILE": str(ready)}
        if hold is not None:
            assert hold_marker is not None
            env.update(FAULT_HOLD=hold, FAULT_HOLD_MARKER=str(hold_marker))
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tests.faults.worker_app",
                    "worker",
                    "-P",
                    "prefork",
                    "-c",
                    str(self.concurrency),
                    "-Q",
                    ",".join(self.queues),
                    "-n",
                    f"faults-{uuid.uuid4().hex[:8]}@%h",
                    "-l",
                    "WARNING",
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(
            lambda: ready.exists() or self.process.poll() is not None,
            deadline,
            "the worker to be ready",
        )
        assert self.process.poll() is None, (
            f"the worker exited with {self.process.returncode}; see {self.log}"
        )

    def kill(self, deadline: float = 30) -> None:
        """SIGKILL to the worker's process group: nothing of it runs a line more (no ack, no
        clean-up, no `finally`). Returns once every process of the group is gone."""
        if self.process is None:
            return
        group = self.process.pid  # start_new_session: the main process leads its group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.process.wait(deadline)
        self.process = None

        def gone() -> bool:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, deadline, "the worker's pool processes to exit")

    def stop(self, deadline: float = 30) -> None:
        """A warm shutdown (SIGTERM: the running task ends, its message is acknowledged)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(deadline)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def _keys(self) -> tuple[list[str], str]:
        sep, steps = (
            "\x06\x16",
            (0, 3, 6, 9),
        )  # kombu's Redis transport: a list per queue and priority
        lists = [
            self.key_prefix + (queue if step == 0 else f"{queue}{sep}{step}")
            for queue in self.queues
            for step in steps
        ]
        return lists, self.key_prefix + "unacked_index"

    def pending(self) -> int:
        """Messages of the worker's queues in the broker: waiting, or delivered and not yet
        acknowledged (a task running, held for its ETA, or lost with a killed worker)."""
        lists, unacked = self._keys()
        with redis.Redis.from_url(self.broker_url) as client:
            return sum(client.llen(key) for key in lists) + client.zcard(unacked)

    def wait_idle(self, deadline: float = 60) -> None:
        """Until no message is waiting or unacknowledged (acks late: a task's message goes when it
        has ended)."""
        wait_for(lambda: self.pending() == 0, deadline, "the worker to be idle")


def wait_for(
    condition: Callable[[], object], deadline: float, what: str, *, every: float = 0.05
) -> float:
    """Poll `condition()` until it is true; the seconds it took. An AssertionError naming `what`
    after `deadline` seconds."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < deadline, f"gave up waiting for {what} after {deadline} s"
        time.sleep(every)
    return time.monotonic() - began
