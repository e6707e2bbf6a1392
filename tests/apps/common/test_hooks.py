"""apps.common.hooks: in-transaction receivers commit or roll back with the write, after-commit
receivers hear only of committed writes, in the writer's schema."""

from __future__ import annotations

import pytest
from django.db import transaction
from django_tenants.utils import tenant_context

from apps.catalog.models import Category
from apps.common.hooks import Hook


class Refused(Exception):
    pass


def test_an_in_transaction_receiver_that_raises_rolls_the_write_back(alpha):
    hook = Hook("test.refused")

    def refuse(*, slug: str) -> None:
        Category.objects.create(name="Receiver's", slug=f"{slug}-too")
        raise Refused

    hook.connect(refuse)
    with tenant_context(alpha.tenant):
        with pytest.raises(Refused), transaction.atomic():
            Category.objects.create(name="Writer's", slug="written")
            hook.send(slug="written")
        assert not Category.objects.filter(slug__startswith="written").exists()


def test_after_commit_receivers_hear_committed_writes_only_with_the_writers_schema(
    alpha, django_capture_on_commit_callbacks
):
    hook, heard = Hook("test.heard"), []
    hook.connect(lambda **kwargs: heard.append(("after commit", kwargs)), after_commit=True)
    hook.connect(lambda **kwargs: heard.append(("in transaction", kwargs)))
    # The callbacks run as the capture ends, after the tenant's context has ended.
    with django_capture_on_commit_callbacks(execute=True), tenant_context(alpha.tenant):
        with pytest.raises(Refused), transaction.atomic():
            hook.send(n=1)
            raise Refused
        hook.send(n=2)
        assert heard == [("in transaction", {"n": 1}), ("in transaction", {"n": 2})]
    assert heard[2:] == [("after commit", {"n": 2, "schema": alpha.tenant.schema_name})]


def test_after_commit_receivers_run_before_the_on_commit_work_of_in_transaction_ones(
    alpha, django_capture_on_commit_callbacks
):
    hook, order = Hook("test.order"), []
    hook.connect(lambda **_: transaction.on_commit(lambda: order.append("queued by a receiver")))
    hook.connect(lambda **_: order.append("after commit"), after_commit=True)
    with tenant_context(alpha.tenant), django_capture_on_commit_callbacks(execute=True):
        hook.send()
    assert order == ["after commit", "queued by a receiver"]


def test_a_receiver_connected_twice_runs_once():
    hook, calls = Hook("test.twice"), []

    def receiver() -> None:
        calls.append(1)

    hook.connect(receiver)
    hook.connect(receiver)
    hook.send()
    assert calls == [1]
