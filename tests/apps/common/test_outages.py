"""apps.common.outages.after_commit: what runs after a commit never fails the committed write."""

from __future__ import annotations

import logging
from functools import partial

from apps.common.outages import after_commit


def _publish(*, schema: str) -> None:
    raise ConnectionError(f"Redis away ({schema})")


def test_a_failing_callback_is_logged_by_its_name_not_raised(
    db, django_capture_on_commit_callbacks, caplog
):
    # A partial, as hooks queue their receivers, was a 500 while Redis was down: Django's log line
    # for a failing callback read its missing __qualname__ (tests/faults/test_redis_restart.py).
    # The capture runs robust callbacks the way a commit does.
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        after_commit(partial(_publish, schema="alpha"))
    assert "Error calling _publish in on_commit()" in caplog.text
    assert "Redis away (alpha)" in caplog.text
