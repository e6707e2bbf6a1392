"""Who /metrics answers (config/metrics.py): the allowed networks, and the token when one is set."""

from __future__ import annotations

import pytest
from django.test import override_settings

from config.metrics import allowed


@pytest.mark.parametrize(
    ("client", "expected"),
    [("127.0.0.1", True), ("::1", True), ("10.0.0.7", False), ("203.0.113.9", False), ("", False)],
)
def test_only_the_allowed_networks_are_answered(client, expected):
    assert allowed(client, None) is expected


@override_settings(METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"], METRICS_TOKEN="s3cret-scrape")
@pytest.mark.parametrize(
    ("client", "authorization", "expected"),
    [
        ("10.1.2.3", "Bearer s3cret-scrape", True),
        ("10.1.2.3", "Bearer wrong", False),
        ("10.1.2.3", None, False),
        ("127.0.0.1", "Bearer s3cret-scrape", False),  # the token does not open other networks
    ],
)
def test_with_a_token_both_the_network_and_the_token_must_match(client, authorization, expected):
    assert allowed(client, authorization) is expected
