"""Named points where the fault tests kill this very process (DESIGN §12: a crash at any point
leaves nothing half-done and nothing done twice, and a test proves it by killing a real process).

A process started with `CRASH_AT=<name>` sends itself SIGKILL when it reaches the point of that
name: no `finally`, no rollback by Python, no answer to its client; PostgreSQL sees the connection
drop and rolls back what was not committed, exactly as after a power cut or an OOM kill. Without
`CRASH_AT` (production) a point costs one string comparison."""

from __future__ import annotations

import os
import signal

_TARGET = os.environ.get("CRASH_AT", "")


def crash_point(name: str) -> None:
    """Die here, at once, when this process was started to crash at `name`."""
    if _TARGET and name == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)
