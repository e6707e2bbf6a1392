"""Hooks: how an app announces a write to the apps above it without importing them (DESIGN §2:
imports point down). The app that writes declares its hooks in its own `hooks.py`, named after
what happened (`order_placed`), with a docstring saying what the keyword arguments are; it sends
them from its services. An app that reacts connects its receivers in its `AppConfig.ready()`.

A plain registry rather than Django signals: a hook is sent by a service, explicitly, at the
point of the write it announces; receivers are ordinary functions of the reacting app, and each
says in which phase it runs:

- `hook.connect(receiver)`: when the hook is sent, in the writer's transaction. What the receiver
  writes commits or rolls back with the write, and an exception it raises propagates to the
  writer and rolls the write back (analytics rollups, which must be exact at every commit).
- `hook.connect(receiver, after_commit=True)`: once the writer's transaction has committed (at
  once outside a transaction; never for one rolled back). The write has committed by then, so an
  exception is logged and dropped (apps.common.outages.after_commit), never raised to a client
  who would retry a done write. These receivers get one more keyword, `schema`: the tenant schema
  the write was made in, read when it was sent (the connection may be in another schema by the
  time they run). For what others hear of a write: the live bus.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, cast

from django.db import connection

from apps.common.outages import after_commit

Receiver = Callable[..., object]


class _InSchema(Protocol):
    """The connection as django-tenants makes it. django-stubs types `connection` as any
    backend's, and tenants.db, which types it as ours, sits above apps.common (DESIGN §2)."""

    schema_name: str


class Hook:
    """One kind of write that apps above the sender may react to."""

    def __init__(self, name: str) -> None:
        self.name = name  # "orders.order_placed": for reading logs and tracebacks
        self._in_transaction: list[Receiver] = []
        self._after_commit: list[Receiver] = []

    def __repr__(self) -> str:
        return f"<Hook {self.name}>"

    def connect(self, receiver: Receiver, *, after_commit: bool = False) -> None:
        """Have `receiver(**kwargs)` called for every send, in the phase asked for. Connecting a
        receiver twice still calls it once: a second `ready()` must not repeat a write."""
        receivers = self._after_commit if after_commit else self._in_transaction
        if receiver not in receivers:
            receivers.append(receiver)

    def send(self, **kwargs: Any) -> None:
        """Announce the write: queue the after-commit receivers, then call the in-transaction
        ones. Queued first, so that they run ahead of on-commit work those receivers queue in
        turn (the live bus hears of an order before it hears of the analytics version the order changed)."""
        if self._after_commit:
            schema = cast(_InSchema, connection).schema_name
            for receiver in self._after_commit:
                after_commit(partial(receiver, schema=schema, **kwargs))
        for receiver in self._in_transaction:
            receiver(**kwargs)
