"""Errors: top-level GraphQL errors carry `extensions.code`; anything the user can fix is a
`userErrors` entry in the mutation's payload instead."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TypeVar

import strawberry
from django.conf import settings
from graphql import GraphQLError

from apps.common.errors import UserError as ServiceUserError

log = logging.getLogger("graphql")

# What strawberry's limiters and graphql-core's parser say when a document is too big or deep.
TOO_COMPLEX = re.compile(
    r"exceeds maximum operation depth|aliases found\. Allowed|Document contains more than \d+ tokens"
    r"|Maximum introspection depth exceeded"
)

CODES = frozenset(
    {"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_REQUEST", "THROTTLED", "QUERY_TOO_COMPLEX", "INTERNAL"}
)


class ApiError(GraphQLError):
    code = "BAD_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, **extensions):
        code = code or self.code
        assert code in CODES, code
        super().__init__(message, extensions={"code": code, **extensions})


def unauthenticated(message: str = "Sign in first.") -> ApiError:
    return ApiError(message, code="UNAUTHENTICATED")


def forbidden(message: str = "You are not allowed to do this.") -> ApiError:
    return ApiError(message, code="FORBIDDEN")


def bad_request(message: str) -> ApiError:
    return ApiError(message, code="BAD_REQUEST")


def give_codes(errors: list[GraphQLError]) -> None:
    """Every error leaves with a code; unexpected ones are logged and, outside DEBUG, masked."""
    for error in errors:
        extensions = dict(error.extensions or {})
        if "code" not in extensions:
            original = error.original_error
            if original is None or isinstance(original, GraphQLError):
                # syntax, validation, variables; or a limit on size and depth
                extensions["code"] = "QUERY_TOO_COMPLEX" if TOO_COMPLEX.search(error.message) else "BAD_REQUEST"
            else:
                log.error("Unexpected error in %s", error.path, exc_info=original)
                extensions["code"] = "INTERNAL"
                if not settings.DEBUG:
                    error.message = "Internal server error."
        error.extensions = extensions


@strawberry.type
class UserError:
    field: str | None = strawberry.field(description=(
        "The value at fault, as a dotted path: names as the schema spells them, list indexes as numbers "
        "(`lines.0.quantity`), from the fields of the mutation's `input` argument when it has one, else from "
        "its arguments (`id`, `filters.placed.from`). Null when no one value is at fault."))
    message: str
    code: str


T = TypeVar("T")


def payload_or_errors(make: Callable[[], T], failed: Callable[[list[UserError]], T]) -> T:
    """Run a service call; a service UserError becomes the payload's `userErrors`."""
    try:
        return make()
    except ServiceUserError as exc:
        return failed([UserError(field=exc.field, message=exc.message, code=exc.code)])
