"""The Stripe edge and secrets at rest: minor units per currency, Fernet with key rotation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import strategies as st

from apps.common import crypto
from apps.common.errors import UserError
from apps.payments.gateway import from_minor_units, minor_units


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [
        ("56.50", "USD", 5650),
        ("0.01", "eur", 1),
        ("500", "JPY", 500),
        ("1.25", "KWD", 1250),
        ("9999999999.99", "USD", 999999999999),
    ],
)
def test_minor_units(amount, currency, units):
    assert minor_units(Decimal(amount), currency) == units
    assert from_minor_units(units, currency) == Decimal(amount)


def test_an_amount_finer_than_the_currency_is_refused():
    with pytest.raises(UserError):
        minor_units(Decimal("500.50"), "JPY")


@given(
    st.decimals(min_value=0, max_value=Decimal("9999999999.99"), places=2),
    st.sampled_from(["USD", "GBP", "BHD"]),
)
def test_minor_units_round_trip(amount, currency):
    assert from_minor_units(minor_units(amount, currency), currency) == amount
    assert isinstance(minor_units(amount, currency), int)


def test_secrets_round_trip_and_survive_a_key_rotation(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = old
    token = crypto.encrypt("sk_test_rotate_me")
    assert "sk_test_rotate_me" not in token and crypto.decrypt(token) == "sk_test_rotate_me"
    assert crypto.encrypt("") == "" and crypto.decrypt("") == ""
    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"  # new first: it encrypts, both decrypt
    assert crypto.decrypt(token) == "sk_test_rotate_me"
    settings.FIELD_ENCRYPTION_KEY = new
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        crypto.decrypt(token)
    settings.FIELD_ENCRYPTION_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="must be set"):
        crypto.encrypt("sk_test_x")
