"""The processes bench/faults.py runs and breaks: Celery processes of its own (a worker it
SIGKILLs with its pool, and beat), and the schedules that kill the worker and restart Redis at
random while the workload runs.

The worker runs in a process group of its own, so one killpg takes its main process and every
pool child at once, as an OOM kill or a lost machine would: nothing gets to acknowledge, reject or
clean up. A new worker is started right after, as a supervisor would."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.faults.processes import RedisProcess

ROOT = Path(__file__).resolve().parents[1]


class CeleryProcess:
    """`celery -A config <args>` in a session of its own, its output appended to `log`."""

    def __init__(self, args: Sequence[str], *, env: Mapping[str, str], log: Path) -> None:
        self.args, self.env, self.log = list(args), dict(env), log
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()  # a kill-and-restart and a revival never interleave

    def start(self) -> int:
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", *self.args],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.process.pid

    def restart(self) -> tuple[int | None, int | None, int]:
        """SIGKILL (below) and a new process at once: (old pid, its exit code if it had already
        exited by itself, new pid)."""
        with self._lock:
            old = self.process.pid if self.process else None
            code = self.process.poll() if self.process else None
            self.kill()
            return old, code, self.start()

    def revive(self) -> int | None:
        """Start it again if it exited by itself: its exit code then, else None."""
        with self._lock:
            if self.process is None or self.process.poll() is None:
                return None
            code = self.process.returncode
            self.start()
            return code

    def kill(self) -> None:
        """SIGKILL to the whole process group: the main process and its pool die together."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, grace: float = 15) -> None:
        """A warm shutdown (SIGTERM), then SIGKILL for whatever is left of the group."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(grace)
        self.kill()


@dataclass
class Fault:
    """One fault: when it struck and when the broken process was back (bench clock, seconds)."""

    kind: str  # "worker_kill" or "redis_restart"
    at: float
    back: float
    detail: str


class FaultSchedule:
    """Two independent schedules, each on a thread of its own, until `stop()`: every 20-40 s
    (uniform) the worker is SIGKILLed with its pool and a new one started; every 20-40 s Redis is
    SIGKILLed and started again after `down_s` seconds (uniform; its append-only file brings the
    broker's messages back). Each fault is recorded and announced through `say`."""

    def __init__(
        self,
        *,
        worker: CeleryProcess,
        redis: RedisProcess,
        clock: Callable[[], float],
        say: Callable[[str], None],
        seed: int,
        gap_s: tuple[float, float] = (20, 40),
        down_s: tuple[float, float] = (1, 5),
    ) -> None:
        self.worker, self.redis, self.clock, self.say = worker, redis, clock, say
        self.gap_s, self.down_s = gap_s, down_s
        self.faults: list[Fault] = []
        self.errors: list[str] = []
        self.exits: list[int] = []  # exit codes of workers found dead (by themselves) when killed
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._every,
                args=(random.Random(f"{seed}:worker"), self._kill_worker),
                name="kill-worker",
                daemon=True,
            ),
            threading.Thread(
                target=self._every,
                args=(random.Random(f"{seed}:redis"), self._restart_redis),
                name="restart-redis",
                daemon=True,
            ),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """No new fault; one under way finishes (Redis comes back) before this returns."""
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def count(self, kind: str) -> int:
        return sum(fault.kind == kind for fault in self.faults)

    def _every(self, rng: random.Random, fault: Callable[[random.Random], None]) -> None:
        while not self._stop.wait(rng.uniform(*self.gap_s)):
            try:
                fault(rng)
            except Exception as error:  # reported, and the schedule goes on
                self.errors.append(f"{fault.__name__}: {error!r}")
                self.say(f"fault injection failed: {fault.__name__}: {error!r}")

    def _kill_worker(self, rng: random.Random) -> None:
        at = self.clock()
        old, code, new = self.worker.restart()
        if code is not None:  # it had died by itself since the last look
            self.exits.append(code)
        self.faults.append(
            Fault("worker_kill", at, self.clock(), f"worker {old} SIGKILLed, {new} started")
        )
        self.say(
            f"t={at:6.1f} s  worker (pid {old}) and its pool SIGKILLed; new worker pid {new}"
            + (f" (the old one had exited by itself, code {code})" if code is not None else "")
        )

    def _restart_redis(self, rng: random.Random) -> None:
        down = rng.uniform(*self.down_s)
        at = self.clock()
        self.redis.kill()
        time.sleep(down)
        for attempt in range(3):  # a port another process grabbed meanwhile: try again
            try:
                self.redis.start()
                break
            except AssertionError:
                if attempt == 2:
                    raise
                time.sleep(1)
        back = self.clock()
        self.faults.append(Fault("redis_restart", at, back, f"down {back - at:.1f} s"))
        self.say(f"t={at:6.1f} s  Redis SIGKILLed; answering again after {back - at:.1f} s")
