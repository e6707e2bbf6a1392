"""Development launcher: embedded PostgreSQL and Redis for `make run`, `make test` and `make bench`.

`python -m config.devserver exec -- CMD ...` or `python -m config.devserver run`; see __main__.py
for the modes, services.py for what they start, data_dir.py for the layout of `.data/`, and
postgres.py and redis.py for the servers themselves.

Nothing in the launcher needs Django.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


class ServiceError(RuntimeError):
    """A server could not be started or the data dir could not be claimed; the message says why."""


def say(message: str) -> None:
    """One line of launcher output, on stderr so it never mixes into a child's stdout data."""
    print(f"devserver: {message}", file=sys.stderr, flush=True)
