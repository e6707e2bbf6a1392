"""The project's Celery app as a worker started by tests.faults.processes.CeleryWorkerProcess runs
it (`celery -A tests.faults.worker_app worker`): the same app and tasks, plus two things a test
needs to act at a known moment instead of sleeping and hoping:

- FAULT_READY_FILE: touched when the worker is ready to take messages.
- FAULT_HOLD=<module>:<attribute path>@<n>[:after] with FAULT_HOLD_MARKER=<file>: in each pool
  process the callable is wrapped so that its n-th call (1-based) writes the marker and then waits
  forever, before the call runs (or, with `:after`, once it has returned: an answer received and
  not yet recorded). A test waits for the marker, knows exactly where the task is, and kills the
  worker there. Example: `apps.exports.services:_Progress.__call__@300` holds an export after 299
  rows were written.
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
from pathlib import Path
from typing import Any

from celery.signals import worker_process_init, worker_ready

from config.celery import app

__all__ = ["app"]


def _hold(spec: str, marker: Path) -> None:
    target, _, when = spec.partition("@")
    nth, _, moment = when.partition(":")
    assert moment in ("", "before", "after"), f"FAULT_HOLD: {moment!r} is not before or after"
    module_name, _, path = target.partition(":")
    *parents, attribute = path.split(".")
    owner: Any = importlib.import_module(module_name)
    for name in parents:
        owner = getattr(owner, name)
    original = getattr(owner, attribute)
    calls = {"count": 0}
    lock = threading.Lock()

    def stop_here() -> None:
        marker.write_text(str(os.getpid()))
        threading.Event().wait()  # until the test kills this process

    @functools.wraps(original)
    def held(*args: Any, **kwargs: Any) -> Any:
        with lock:
            calls["count"] += 1
            this = calls["count"] == int(nth or 1)
        if this and moment != "after":
            stop_here()
        result = original(*args, **kwargs)
        if this:
            stop_here()
        return result

    setattr(owner, attribute, held)


def _on_process_init(**_: Any) -> None:
    if spec := os.environ.get("FAULT_HOLD"):
        _hold(spec, Path(os.environ["FAULT_HOLD_MARKER"]))


def _on_ready(**_: Any) -> None:
    if ready := os.environ.get("FAULT_READY_FILE"):
        Path(ready).touch()


worker_process_init.connect(_on_process_init, weak=False, dispatch_uid="faults_hold")
worker_ready.connect(_on_ready, weak=False, dispatch_uid="faults_ready")
