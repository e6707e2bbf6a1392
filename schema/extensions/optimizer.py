"""strawberry-django's optimizer without its per-field middleware.

`DjangoOptimizerExtension` does two things: its `on_execute` hook makes it the operation's
optimizer, which strawberry-django fields and connections use to optimise the querysets they
build; its `resolve` hook wraps every field of every object to optimise querysets that plain
resolvers return. All our lists are strawberry-django fields, so the wrapper only costs time (a
middleware call per field: thousands on a 100-order page).

This extension runs the optimizer's `on_execute` and nothing else, through public hooks only.
It defines no `resolve`, so strawberry adds no middleware for it; had it been a subclass with
`resolve` reset to the base class's, whether that removes the middleware would rest on how
strawberry detects an overridden `resolve`, which no release promises.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry_django.optimizer import DjangoOptimizerExtension


class QueryOptimizer(SchemaExtension):
    def __init__(self, *, execution_context: ExecutionContext | None = None) -> None:
        super().__init__(execution_context=execution_context)
        self.optimizer = DjangoOptimizerExtension()

    def on_execute(self) -> Iterator[None]:
        yield from self.optimizer.on_execute()
