"""No call leaves the process while a database transaction is open (DESIGN §12): a Stripe request,
an alert's webhook POST or its email. Such a call made under a transaction holds that
transaction's row locks for as long as the provider takes, and when the transaction then rolls
back (an error after the answer, a crash before the commit) the provider has acted and nothing
here records it.

Every outbound call passes `outside_transactions` just before it leaves (the Stripe client's
HTTP client, apps.alerts' POST and mail). With EXTERNAL_CALLS_IN_TRANSACTIONS = "raise" (the test
settings) a call made inside one raises `CallInTransaction`, so the whole suite checks the rule on
every path it runs; in production ("log") the call goes ahead and an error is logged, because
refusing a payment call there would not undo the mistake that made it."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)


class CallInTransaction(RuntimeError):
    """An external call was about to be made while a database transaction was open."""


def in_transaction() -> bool:
    """Whether the thread's connection is inside a transaction of ours. The transaction a Django
    TestCase wraps each test in (marked `_from_testcase`) stands for autocommit, as in
    production, and does not count."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def outside_transactions(what: str) -> None:
    """Call right before `what` (e.g. "Stripe POST /v1/refunds") leaves the process."""
    if not in_transaction():
        return
    if settings.EXTERNAL_CALLS_IN_TRANSACTIONS == "raise":
        raise CallInTransaction(f"{what} inside a database transaction")
    log.error("%s made inside a database transaction (DESIGN §12)", what)
