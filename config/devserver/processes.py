"""Child processes that cannot outlive the launcher, and stopping them (or those an earlier
launcher left behind)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypedDict

from config.devserver import say

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _child_setup(death_signal: int) -> Callable[[], None]:
    """A preexec_fn: unblock the signals spawn() blocked, and ask the kernel to send
    `death_signal` to the child when we die.

    It runs after Popen switched uid (a uid change clears the death signal), so it holds for
    servers run as another user too.
    """
    parent = os.getpid()
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, death_signal)
            if os.getppid() != parent:  # we died before prctl: nobody would ever stop the child
                os._exit(1)

    return setup


def spawn(
    command: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    log: Path | None = None,
    user: str | None = None,
    new_session: bool = True,
    death_signal: int = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start `command` as a child that cannot outlive the launcher.

    new_session: the child gets its own session and process group, so a Ctrl-C in the terminal
    reaches only the launcher, which then stops children and servers in order; False keeps it in
    the terminal's foreground group (for an interactive command such as pytest with --pdb).
    log: stdout and stderr go to this file (truncated) instead of the terminal.
    user: run as this system user, with its own group and no supplementary groups.
    """
    output = open(log, "wb") if log else None  # noqa: SIM115 - handed to the child, closed below
    # Signals wait while Popen forks. CPython runs at-fork callbacks (logging's) in the parent,
    # and an exception a signal handler raises during one is printed and swallowed: the launcher
    # would lose a SIGTERM. Blocked, the signal arrives once Popen has returned.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        return subprocess.Popen(
            [os.fspath(part) for part in command],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL if new_session else None,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=new_session,
            preexec_fn=_child_setup(death_signal),
            **run_as(user),
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if output:
            output.close()


class RunAs(TypedDict, total=False):
    """Popen's keyword arguments for another user, typed so that `**run_as(user)` still matches
    one of Popen's (and run's) overloads."""

    user: int
    group: int
    extra_groups: list[int]


def run_as(user: str | None) -> RunAs:
    """Popen's keyword arguments that run a child as `user` (None: as we run), with that user's
    group and no supplementary groups: Popen's `user=` alone would keep root's."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def stop_processes(
    processes: Iterable[subprocess.Popen[bytes]], steps: Sequence[tuple[int, float]]
) -> None:
    """Stop processes together: each step sends its signal to those still running and waits up
    to its timeout; whatever survives every step is SIGKILLed with its whole process group."""
    running = [process for process in processes if process.poll() is None]
    for signum, timeout in steps:
        for process in running:
            process.send_signal(signum)  # a no-op once the process has exited
        deadline = time.monotonic() + timeout
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
        running = [process for process in running if process.poll() is None]
    for process in running:
        # Not yet reaped, so its pid (and group id, for a session leader) cannot have been reused.
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        process.wait()


def _pid_alive(pid: int) -> bool:
    # A zombie counts as gone: it has exited, only its parent has not collected it yet.
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


def leftover_server_pid(pidfile: Path, executable: Path, cwd: Path) -> int | None:
    """The pid in `pidfile` if that process is still our server: a launcher killed before it could
    stop it. Binary and working dir must both match, so a reused pid is never taken for it."""
    try:
        pid = int(pidfile.read_text().split()[0])
        running = Path(os.readlink(f"/proc/{pid}/exe"))
        running_cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except (OSError, ValueError, IndexError):
        return None
    if running == executable.resolve() and running_cwd == cwd.resolve():
        return pid
    return None


def stop_leftover_server(pid: int, signum: int, what: str) -> None:
    say(f"stopping {what} (pid {pid}) left running by an earlier launcher")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
    deadline = time.monotonic() + 15
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
