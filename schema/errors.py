"""Errors: top-level GraphQL errors carry `extensions.code`; anything the user can fix is a
`userErrors` entry in the mutation's payload instead.

userErrors are typed per domain (Saleor's discipline): `OrderError { field message code:
OrderErrorCode }`, where the GraphQL enum is the service layer's StrEnum of that domain
(apps/common/errors.py holds the registry; each app declares its codes in its errors.py). The
rules that keep a code from reaching a payload whose enum lacks it:

- Every domain's enum holds the common codes, so the shared rules (apps/common/rules.py: ranges,
  money, text) and NotFound / PermissionDenied fit any payload.
- A mutation's payload uses the error type of the domain its schema module serves, and a domain
  whose services call another domain's services declares that domain's codes too (`include=`,
  or by name for the orders' refund and cancel, which go through payments).
- `payload_or_errors` is the one place a service UserError becomes a payload's error; a code its
  enum lacks is our bug and fails loudly there (INTERNAL, logged), and
  tests/schema/test_error_codes.py checks statically that every code the services a schema module
  calls can raise is in the enum of that module's payloads.

Queries have no userErrors: a service UserError raised by a query (a bad range, say) is a
top-level `BAD_REQUEST` whose `extensions.reason` is the same code and `extensions.field` the
same path (`read_or_bad_request`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import strawberry
from django.conf import settings
from graphql import GraphQLError

from apps.accounts.errors import AccountErrorCode
from apps.alerts.errors import AlertErrorCode
from apps.analytics.errors import AnalyticsErrorCode
from apps.catalog.errors import ProductErrorCode
from apps.common.errors import UserError as ServiceUserError
from apps.common.outages import is_outage
from apps.customers.errors import CustomerErrorCode
from apps.exports.errors import ExportErrorCode
from apps.orders.errors import OrderErrorCode
from apps.payments.errors import PaymentErrorCode
from tenants.errors import TenantErrorCode

log = logging.getLogger("graphql")

# What strawberry's limiters and graphql-core's parser say when a document is too big or deep.
TOO_COMPLEX = re.compile(
    r"exceeds maximum operation depth|aliases found\. Allowed|Document contains more than \d+ tokens"
    r"|Maximum introspection depth exceeded"
)

CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "NOT_FOUND",
        "BAD_REQUEST",
        "THROTTLED",
        "QUERY_TOO_COMPLEX",
        "UNAVAILABLE",
        "INTERNAL",
    }
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
                extensions["code"] = (
                    "QUERY_TOO_COMPLEX" if TOO_COMPLEX.search(error.message) else "BAD_REQUEST"
                )
            elif is_outage(original):  # PostgreSQL or Redis unreachable: not our bug, try again
                log.warning("Unavailable in %s: %r", error.path, original)
                extensions["code"] = "UNAVAILABLE"
                error.message = "A service this needs is unavailable; try again shortly."
            else:
                log.error("Unexpected error in %s", error.path, exc_info=original)
                extensions["code"] = "INTERNAL"
                if not settings.DEBUG:
                    error.message = "Internal server error."
        error.extensions = extensions


FIELD_DESCRIPTION = (
    "The value at fault, as a dotted path: names as the schema spells them, list indexes as numbers "
    "(`lines.0.quantity`), from the fields of the mutation's `input` argument when it has one, else from "
    "its arguments (`id`, `filters.placed.from`). Null when no one value is at fault."
)


class DomainError:
    """`<Domain>Error { field message code: <Domain>ErrorCode }` over a registered domain's codes,
    declared as `class OrderError(DomainError, codes=OrderErrorCode): pass`. A class statement
    rather than a call, so that mypy knows each domain's error as a type."""

    codes: ClassVar[type[StrEnum]]
    if TYPE_CHECKING:  # the fields strawberry makes below (at run time they belong to each domain)
        field: str | None
        message: str
        code: StrEnum

        def __init__(self, *, field: str | None, message: str, code: StrEnum) -> None: ...

    def __init_subclass__(cls, *, codes: type[StrEnum], **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        domain = codes.__name__.removesuffix("ErrorCode")
        assert cls.__name__ == f"{domain}Error", cls.__name__
        enum = strawberry.enum(
            codes,
            name=codes.__name__,
            description=(
                f"The codes of `{domain}Error`: the common codes (INVALID, REQUIRED, NOT_FOUND, BAD_RANGE, …) and "
                "the domain's own, declared in the service layer (apps/*/errors.py)."
            ),
        )
        cls.codes = codes
        cls.__annotations__ = {"field": str | None, "message": str, "code": enum}
        cls.field = strawberry.field(description=FIELD_DESCRIPTION)
        strawberry.type(
            cls, description=f"Something the user can fix, in a mutation of the {domain} domain."
        )


class AccountError(DomainError, codes=AccountErrorCode):
    pass


class AlertError(DomainError, codes=AlertErrorCode):
    pass


class AnalyticsError(DomainError, codes=AnalyticsErrorCode):
    pass


class CustomerError(DomainError, codes=CustomerErrorCode):
    pass


class ExportError(DomainError, codes=ExportErrorCode):
    pass


class OrderError(DomainError, codes=OrderErrorCode):
    pass


class PaymentError(DomainError, codes=PaymentErrorCode):
    pass


class ProductError(DomainError, codes=ProductErrorCode):
    pass


class TenantError(DomainError, codes=TenantErrorCode):
    pass


T = TypeVar("T")
E = TypeVar("E", bound=DomainError)


def payload_or_errors(make: Callable[[], T], failed: Callable[[list[E]], T], error: type[E]) -> T:
    """Run a service call; a service UserError becomes the payload's `userErrors`, of type
    `error`. Its code is looked up by value in the domain's enum: one it lacks raises (our bug)."""
    try:
        return make()
    except ServiceUserError as exc:
        code = error.codes(exc.code.value)
        return failed([error(field=exc.field, message=exc.message, code=code)])


def read_or_bad_request(read: Callable[[], T]) -> T:
    """Run a selector for a query; a service UserError is a top-level BAD_REQUEST whose
    `extensions.reason` is its code and `extensions.field` its field."""
    try:
        return read()
    except ServiceUserError as exc:
        raise ApiError(
            exc.message, code="BAD_REQUEST", reason=exc.code.value, field=exc.field
        ) from exc
