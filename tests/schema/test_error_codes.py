"""Error codes are typed: every mutation's `userErrors` is a domain's error type whose `code` is
a GraphQL enum generated from the service layer's registry (apps/common/errors.py), and a code a
service can raise reaches only payloads whose enum declares it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from graphql import GraphQLEnumType, GraphQLList, GraphQLNonNull, get_named_type, get_nullable_type

import schema.errors as schema_errors
from apps.catalog.errors import ProductErrorCode
from apps.common.errors import COMMON, CommonErrorCode, registered
from apps.common.errors import UserError as ServiceUserError
from apps.orders.errors import OrderErrorCode
from apps.payments.errors import PaymentErrorCode
from schema import schema

GRAPHQL = schema._schema
ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schema.graphql"


def _user_error_types() -> dict[str, object]:
    """{mutation: the element type of its payload's userErrors}."""
    found = {}
    for name, field in GRAPHQL.mutation_type.fields.items():
        payload = get_named_type(field.type)
        user_errors = payload.fields.get("userErrors")
        assert user_errors is not None, f"{name} has no userErrors"
        assert isinstance(get_nullable_type(user_errors.type), GraphQLList), name
        found[name] = get_named_type(user_errors.type)
    return found


def test_every_mutation_has_user_errors_with_an_enum_code_of_its_domain():
    types = _user_error_types()
    assert len(types) > 50  # every mutation, not a few
    for mutation, error in types.items():
        code = error.fields["code"].type
        assert isinstance(code, GraphQLNonNull) and isinstance(code.of_type, GraphQLEnumType), (
            mutation,
            code,
        )
        enum = code.of_type
        assert enum.name == f"{error.name}Code", (mutation, error.name, enum.name)
        declared = registered()[enum.name]
        assert list(enum.values) == [member.value for member in declared], enum.name
        assert set(COMMON) <= set(enum.values), enum.name


def test_the_committed_schema_has_no_string_code_on_a_user_error_type():
    sdl = SCHEMA_FILE.read_text()
    for name in {error.name for error in _user_error_types().values()}:
        block = re.search(rf"^type {name} {{\n(.*?)^}}", sdl, re.M | re.S)
        assert block, name
        assert re.search(rf"^  code: {name}Code!$", block.group(1), re.M), block.group(0)
        assert "code: String" not in block.group(1)


# --- a code reaches only payloads whose enum holds it ----------------------------------------------
# Statically, by modules: what a schema module imports from apps/ and tenants/ (and what those
# import, transitively) can raise the codes those modules name (`OrderErrorCode.X`); each must be
# in the enum of the module's payloads. Imports over-approximate calls; the pairs below are
# imported but not on any path a mutation of that module takes, each with the reason.
NOT_ON_A_MUTATION_PATH = {
    ("schema/customers.py", "ILLEGAL_TRANSITION"): "imports apps.orders.status for COUNTED only",
    (
        "schema/tenants.py",
        "ILLEGAL_TRANSITION",
    ): "seeding moves orders along allowed transitions only",
    (
        "schema/orders.py",
        "HAS_ORDERS",
    ): "orders find customers; only customerDelete refuses with HAS_ORDERS",
    ("schema/payments.py", "HAS_ORDERS"): "as above",
    (
        "schema/tenants.py",
        "TOO_MANY_EVENTS",
    ): "the rollups' rebuild reaches apps.analytics.events; only eventsTrack caps a batch",
}
CODE = re.compile(r"\b(\w+ErrorCode)\.([A-Z_]+)\b")


def _module_file(name: str) -> Path | None:
    for path in (
        ROOT / (name.replace(".", "/") + ".py"),
        ROOT / name.replace(".", "/") / "__init__.py",
    ):
        if path.exists():
            return path
    return None


def _imports(path: Path) -> set[Path]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] in ("apps", "tenants")
        ):
            found |= {
                _module_file(f"{node.module}.{alias.name}") or _module_file(node.module)
                for alias in node.names
            }
        elif isinstance(node, ast.Import):
            found |= {
                _module_file(alias.name)
                for alias in node.names
                if alias.name.split(".")[0] in ("apps", "tenants")
            }
    return {path for path in found if path is not None}


def _reachable(path: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [path]
    while todo:
        for found in _imports(todo.pop()) - seen:
            seen.add(found)
            todo.append(found)
    return seen


def _codes_named(paths: set[Path]) -> set[str]:
    return {
        code
        for path in paths
        if path.name != "errors.py"
        for _, code in CODE.findall(path.read_text())
    }


def _payload_error_modules() -> dict[str, type]:
    """{schema module: the error type of its payloads}, one type per module."""
    modules = {}
    for path in sorted((ROOT / "schema").rglob("*.py")):
        names = set(re.findall(r"user_errors: list\[(\w+)\]", path.read_text()))
        if names:
            assert len(names) == 1, (path, names)
            modules[str(path.relative_to(ROOT))] = getattr(schema_errors, names.pop())
    return modules


def test_every_code_a_mutation_can_meet_is_in_its_payloads_enum():
    modules = _payload_error_modules()
    assert len(modules) >= 12
    missing = [
        (module, code)
        for module, error in modules.items()
        for code in sorted(_codes_named(_reachable(ROOT / module) | {ROOT / module}))
        if code not in error.codes.__members__ and (module, code) not in NOT_ON_A_MUTATION_PATH
    ]
    assert missing == []


def test_the_reachability_check_sees_cross_domain_codes():
    """Not vacuous: the orders' module reaches the codes payments raise on its refund path, and
    the exports' module the analytics definitions' codes."""
    orders = _codes_named(_reachable(ROOT / "schema/orders.py"))
    assert {"REFUND_THROUGH_STRIPE", "NO_STRIPE_PAYMENT", "INSUFFICIENT_STOCK"} <= orders
    assert {"UNKNOWN_METRIC", "UNKNOWN_KEY"} <= _codes_named(_reachable(ROOT / "schema/exports.py"))
    assert "REFUND_THROUGH_STRIPE" not in _codes_named(
        _reachable(ROOT / "schema/catalog/mutations.py")
    )


@pytest.mark.parametrize("stale", sorted(NOT_ON_A_MUTATION_PATH))
def test_each_exception_is_still_needed(stale):
    module, code = stale
    error = _payload_error_modules()[module]
    assert code in _codes_named(_reachable(ROOT / module)) and code not in error.codes.__members__


def _refuse(code):
    raise ServiceUserError("No.", field="x", code=code)


def test_the_payload_error_keeps_field_message_and_code_of_its_domain():
    def failed(errors):
        return errors

    [error] = schema_errors.payload_or_errors(
        lambda: _refuse(PaymentErrorCode.INSUFFICIENT_STOCK), failed, schema_errors.OrderError
    )
    assert (error.field, error.message, error.code) == (
        "x",
        "No.",
        OrderErrorCode.INSUFFICIENT_STOCK,
    )
    [common] = schema_errors.payload_or_errors(
        lambda: _refuse(CommonErrorCode.BAD_RANGE), failed, schema_errors.ProductError
    )
    assert common.code is ProductErrorCode.BAD_RANGE


def test_a_code_foreign_to_the_payloads_domain_fails_loudly():
    """Never a userError with a code its enum cannot show: our bug, an INTERNAL error."""
    with pytest.raises(ValueError):
        schema_errors.payload_or_errors(
            lambda: _refuse(PaymentErrorCode.NOT_PAYABLE), list, schema_errors.ProductError
        )
