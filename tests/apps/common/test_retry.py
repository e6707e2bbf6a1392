"""The one retry policy (apps.common.retry): the backoff's numbers, and which errors it retries."""

from __future__ import annotations

import random
import smtplib

import pytest
import stripe
from django.db import OperationalError
from hypothesis import given
from hypothesis import strategies as st

from apps.common import retry
from apps.common.errors import CommonErrorCode, UserError

attempts = st.integers(min_value=0, max_value=200)


def test_the_ceiling_starts_at_the_base_and_doubles_up_to_the_cap():
    ceilings = [retry.ceiling(n) for n in range(8)]
    assert ceilings == [10, 20, 40, 80, 160, 320, 600, 600]
    assert retry.ceiling(10_000) == retry.CAP_SECONDS


@given(attempts)
def test_each_ceiling_is_twice_the_last_until_the_cap(attempt):
    assert retry.ceiling(0) == retry.BASE_SECONDS
    assert retry.ceiling(attempt + 1) == min(retry.CAP_SECONDS, 2 * retry.ceiling(attempt))
    assert retry.ceiling(attempt) <= retry.CAP_SECONDS


@given(attempts, st.randoms(use_true_random=False))
def test_a_backoff_stays_within_zero_and_its_ceiling(attempt, rng):
    assert 0 <= retry.backoff(attempt, rng) <= retry.ceiling(attempt) <= retry.CAP_SECONDS


def test_the_jitter_spreads_waits_over_the_whole_range():
    """Full jitter, not a fixed wait or a small wobble around the ceiling."""
    rng = random.Random(15)
    waits = [retry.backoff(3, rng) for _ in range(2000)]
    assert min(waits) < 0.05 * retry.ceiling(3) and max(waits) > 0.95 * retry.ceiling(3)
    assert 0.4 * retry.ceiling(3) < sum(waits) / len(waits) < 0.6 * retry.ceiling(3)


def test_a_negative_attempt_is_refused():
    with pytest.raises(ValueError):
        retry.ceiling(-1)


def _stripe_error(kind: type[stripe.StripeError], status: int) -> stripe.StripeError:
    """As the SDK raises it for an answer with this HTTP status."""
    if kind in (stripe.CardError, stripe.InvalidRequestError):
        return kind("refused", "param", "code", http_status=status)
    return kind("refused", http_status=status)


@pytest.mark.parametrize(
    "error",
    [
        stripe.APIConnectionError("Stripe cannot be reached"),
        _stripe_error(stripe.APIError, 503),
        _stripe_error(stripe.RateLimitError, 429),
        OperationalError("canceling statement due to lock timeout"),
        TimeoutError("timed out"),  # socket.timeout is this one
        ConnectionRefusedError(111, "Connection refused"),
        smtplib.SMTPServerDisconnected("gone"),
        smtplib.SMTPResponseException(451, b"try again later"),
        retry.TryAgain("HTTP 500"),
    ],
    ids=type,
)
def test_errors_that_may_pass_are_retryable(error):
    assert retry.is_retryable(error)


@pytest.mark.parametrize(
    "error",
    [
        _stripe_error(stripe.CardError, 402),
        _stripe_error(stripe.InvalidRequestError, 400),
        _stripe_error(stripe.AuthenticationError, 401),
        _stripe_error(stripe.PermissionError, 403),
        _stripe_error(stripe.IdempotencyError, 400),
        smtplib.SMTPResponseException(550, b"no such mailbox"),
        smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no such user")}),
        ValueError("a bug of ours"),
        UserError("Stripe payments are not enabled for this shop.", code=CommonErrorCode.INVALID),
    ],
    ids=type,
)
def test_errors_a_retry_cannot_fix_are_permanent(error):
    assert not retry.is_retryable(error)


def test_a_wrapping_error_is_judged_by_what_it_wraps():
    """The payment services turn Stripe's errors into UserErrors `from` them."""
    for cause, expected in (
        (stripe.APIConnectionError("down"), True),
        (_stripe_error(stripe.CardError, 402), False),
    ):
        try:
            try:
                raise cause
            except stripe.StripeError as error:
                raise UserError(
                    "Stripe could not be reached.", code=CommonErrorCode.INVALID
                ) from error
        except UserError as wrapped:
            assert retry.is_retryable(wrapped) is expected
