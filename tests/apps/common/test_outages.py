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


def test_djangos_traceback_of_a_503_an_outage_caused_is_dropped_and_other_5xx_are_kept(rf, caplog):
    """config.logging.OutageAnswered on django.request: handler500 has logged the outage in one
    line; Django's own record would add a traceback for each request while PostgreSQL is away
    (tests/faults/test_postgres_restart.py saw hundreds)."""
    import sys

    from django.db.utils import OperationalError
    from django.http import HttpResponse
    from django.utils.log import log_response

    def logged(status: int, error: Exception) -> bool:
        caplog.clear()
        try:
            raise error
        except Exception:
            log_response(
                "answered %s",
                status,
                response=HttpResponse(status=status),
                request=rf.get("/graphql/"),
                exception=sys.exc_info()[1],
            )
        return "answered" in caplog.text

    with caplog.at_level(logging.ERROR, logger="django.request"):
        assert not logged(503, OperationalError("connection refused"))
        assert logged(500, OperationalError("connection refused"))
        assert logged(503, RuntimeError("ours"))
        assert logged(500, RuntimeError("ours"))
