"""The registry of error codes: a UserError carries a registered enum member, nothing else."""

from enum import StrEnum

import pytest

from apps.common.errors import COMMON, CommonErrorCode, NotFound, UserError, error_codes, registered
from apps.orders.errors import OrderErrorCode
from apps.payments.errors import PaymentErrorCode


def test_a_bare_string_code_is_refused():
    with pytest.raises(TypeError):
        UserError("No.", field="x", code="INVALID")


def test_an_unregistered_enum_is_refused():
    Lookalike = StrEnum("OrderErrorCode", {"INSUFFICIENT_STOCK": "INSUFFICIENT_STOCK"})
    with pytest.raises(TypeError):
        UserError("No.", code=Lookalike.INSUFFICIENT_STOCK)


def test_a_code_is_required():
    with pytest.raises(TypeError):
        UserError("No.", field="x")


def test_registered_codes_are_kept():
    error = UserError(
        "Out of stock.", field="lines.0.quantity", code=OrderErrorCode.INSUFFICIENT_STOCK
    )
    assert (error.code, error.field, error.message) == (
        "INSUFFICIENT_STOCK",
        "lines.0.quantity",
        "Out of stock.",
    )
    assert NotFound().code is CommonErrorCode.NOT_FOUND


def test_every_domain_holds_the_common_codes_and_its_includes():
    assert registered()["OrderErrorCode"] is OrderErrorCode
    for enum in registered().values():
        assert [member.value for member in enum][: len(COMMON)] == list(COMMON), enum
    assert {member.value for member in OrderErrorCode} <= {
        member.value for member in PaymentErrorCode
    }


def test_a_domain_cannot_redeclare_a_code():
    with pytest.raises(AssertionError):
        error_codes("Twice", "INVALID")
    with pytest.raises(AssertionError):
        error_codes("Twice", "SAME", "SAME")
    assert "TwiceErrorCode" not in registered()
