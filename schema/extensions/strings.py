"""Strings PostgreSQL can store: text there cannot hold a NUL character, and psycopg2 raises
(`A string literal cannot contain NUL`) wherever one reaches a query, a 500 from deep inside a
resolver. A NUL in a document's string literals or in the variables is refused before the
operation runs, as BAD_REQUEST, over HTTP and WebSocket alike (DESIGN §12)."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError, StringValueNode, ValidationRule
from strawberry.extensions import SchemaExtension

from schema.errors import bad_request

NUL = "\x00"


class NoNulInStringLiterals(ValidationRule):
    def enter_string_value(self, node: StringValueNode, *_args) -> None:
        if NUL in node.value:
            self.report_error(
                GraphQLError("A string cannot contain a NUL character (\\u0000).", node)
            )


def nul_path(value: object) -> str | None:
    """Where in a JSON value (objects, arrays, strings) a NUL is, as `a.b[2]`; None if nowhere.
    Iterative: variables can nest as deep as a client likes."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                if NUL in str(key):
                    return f"{path}.{key!r}" if path else repr(key)
                stack.append((f"{path}.{key}" if path else str(key), child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
    return None


class NulFreeVariables(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        where = nul_path(self.execution_context.variables or {})
        if where is not None:
            raise bad_request(
                f"Variable ${where} contains a NUL character (\\u0000), which cannot be stored."
            )
        yield
