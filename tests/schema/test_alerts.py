"""Alert rules and notifications through the API: who manages and reads rules, the checks on
what they are given (coded userErrors), notifications listed, marked read and streamed over a
real WebSocket, each tenant seeing its own only."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.test import TestCase, override_settings
from django_tenants.utils import tenant_context

from apps.alerts.models import AlertRule, Notification
from apps.audit.models import AuditEntry
from apps.live import bus
from tests.apps.alerts.helpers import evaluate, make_rule, today
from tests.conftest import gid, token_for
from tests.subscribers import joining
from tests.test_websocket import TIMEOUT, bearer, communicator, open_session

PAYLOAD = "userErrors { field message code }"
RULE = "id name metric comparison windowDays threshold cooldownMinutes channels emails webhookUrl active state"
CREATE = f"""mutation($input: AlertRuleInput!) {{ alertRuleCreate(input: $input) {{
  alertRule {{ {RULE} }} webhookSecret {PAYLOAD} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: AlertRuleUpdateInput!) {{ alertRuleUpdate(id: $id, input: $input) {{
  alertRule {{ {RULE} }} webhookSecret {PAYLOAD} }} }}"""
DELETE = f"mutation($id: ID!) {{ alertRuleDelete(id: $id) {{ deletedId {PAYLOAD} }} }}"
RULES = f"query {{ alertRules(first: 10) {{ totalCount edges {{ node {{ {RULE} }} }} }} }}"
NOTIFICATIONS = """query($unread: Boolean) { notifications(first: 20, unread: $unread) {
  totalCount edges { node { id title body data readAt created rule { id name } } } } }"""
MARK = f"mutation($ids: [ID!], $all: Boolean) {{ notificationMarkRead(ids: $ids, all: $all) {{ marked {PAYLOAD} }} }}"
INPUT = {
    "name": "Slow day",
    "metric": "orders",
    "comparison": "BELOW",
    "windowDays": 1,
    "threshold": "3",
    "cooldownMinutes": 30,
    "channels": ["IN_APP", "EMAIL"],
    "emails": ["ops@example.com"],
}


def token(fixture, role: str) -> str:
    return token_for(fixture.email(role), fixture.tenant)


def create(gql, fixture, role: str = "analyst", **changes) -> dict:
    return gql.post(
        CREATE, {"input": {**INPUT, **changes}}, host=fixture.host, token=token(fixture, role)
    )


def created(gql, fixture, role: str = "analyst", **changes) -> dict:
    response = create(gql, fixture, role, **changes)
    assert response.errors == [] and response.data["alertRuleCreate"]["userErrors"] == [], (
        response.body
    )
    return response.data["alertRuleCreate"]


def fired(fixture, count: int = 1) -> list[Notification]:
    """`count` notifications of a rule made to fire (today's orders below more than there are)."""
    for index in range(count):
        make_rule(
            fixture,
            name=f"Quiet {index}",
            metric="orders",
            comparison="below",
            threshold=today(fixture, "orders") + 1,
        )
    assert evaluate(fixture) == count
    with tenant_context(fixture.tenant):
        return list(Notification.objects.order_by("id"))


def test_analysts_create_rules_every_analytics_role_reads_them(gql, alpha, beta):
    made = created(gql, alpha)
    rule = made["alertRule"]
    assert made["webhookSecret"].startswith("whsec_")
    assert rule == {
        "id": rule["id"],
        "name": "Slow day",
        "metric": "orders",
        "comparison": "BELOW",
        "windowDays": 1,
        "threshold": "3",
        "cooldownMinutes": 30,
        "channels": ["IN_APP", "EMAIL"],
        "emails": ["ops@example.com"],
        "webhookUrl": "",
        "active": True,
        "state": "CLEAR",
    }
    for role in ("owner", "admin", "staff", "analyst"):
        response = gql.post(RULES, host=alpha.host, token=token(alpha, role))
        assert response.data["alertRules"]["totalCount"] == 1, (role, response.body)
    assert gql.post(RULES, host=alpha.host, token=token(alpha, "viewer")).codes == ["FORBIDDEN"]
    assert (
        gql.post(RULES, host=beta.host, token=token(beta, "owner")).data["alertRules"]["totalCount"]
        == 0
    )
    assert create(gql, alpha, "staff").codes == ["FORBIDDEN"]
    assert create(gql, alpha, "viewer").codes == ["FORBIDDEN"]
    with tenant_context(alpha.tenant):
        entry = AuditEntry.objects.get(action="alert_rule.create")
        assert made["webhookSecret"] not in json.dumps(entry.changes)


def test_rules_are_updated_and_deleted_their_notifications_stay(gql, alpha, beta):
    rule_id = created(gql, alpha)["alertRule"]["id"]
    response = gql.post(
        UPDATE,
        {"id": rule_id, "input": {"threshold": "2.5", "active": False, "channels": ["IN_APP"]}},
        host=alpha.host,
        token=token(alpha, "owner"),
    )
    payload = response.data["alertRuleUpdate"]
    assert payload["userErrors"] == [] and payload["webhookSecret"] is None, response.body
    assert (payload["alertRule"]["threshold"], payload["alertRule"]["active"]) == ("2.5", False)
    # another tenant's owner cannot reach it
    response = gql.post(DELETE, {"id": rule_id}, host=beta.host, token=token(beta, "owner"))
    assert response.data["alertRuleDelete"]["userErrors"][0]["code"] == "NOT_FOUND"

    (notification,) = fired(alpha)
    response = gql.post(
        DELETE,
        {"id": gid(alpha, "AlertRule", notification.rule_id)},
        host=alpha.host,
        token=token(alpha, "analyst"),
    )
    assert response.data["alertRuleDelete"]["userErrors"] == [], response.body
    with tenant_context(alpha.tenant):
        assert Notification.objects.get(pk=notification.pk).rule_id is None
        assert set(
            AuditEntry.objects.filter(action__startswith="alert_rule.").values_list(
                "action", flat=True
            )
        ) == {"alert_rule.create", "alert_rule.update", "alert_rule.delete"}


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"metric": "profit"}, "metric", "UNKNOWN_METRIC"),
        ({"name": "  "}, "name", "REQUIRED"),
        ({"windowDays": 0}, "windowDays", "OUT_OF_RANGE"),
        ({"windowDays": 366}, "windowDays", "OUT_OF_RANGE"),
        ({"cooldownMinutes": 0}, "cooldownMinutes", "OUT_OF_RANGE"),
        ({"threshold": "1e20"}, "threshold", "OUT_OF_RANGE"),
        ({"threshold": "0.00001"}, "threshold", "INVALID"),
        ({"comparison": "PERCENT_CHANGE", "threshold": "0"}, "threshold", "INVALID"),
        ({"channels": []}, "channels", "REQUIRED"),
        ({"emails": ["not-an-address"]}, "emails", "INVALID_EMAIL"),
        ({"emails": []}, "emails", "REQUIRED"),
        ({"emails": [f"a{i}@example.com" for i in range(11)]}, "emails", "INVALID"),
        ({"channels": ["WEBHOOK"]}, "webhookUrl", "REQUIRED"),
        (
            {"channels": ["WEBHOOK"], "webhookUrl": "ftp://example.com/x"},
            "webhookUrl",
            "INVALID_URL",
        ),
        (
            {"channels": ["WEBHOOK"], "webhookUrl": "https://user:pw@example.com/x"},
            "webhookUrl",
            "INVALID_URL",
        ),
        ({"channels": ["WEBHOOK"], "webhookUrl": "http://[::1"}, "webhookUrl", "INVALID_URL"),
    ],
)
def test_bad_rules_are_user_errors(gql, alpha, changes, field, code):
    response = create(gql, alpha, **changes)
    assert response.errors == [], response.body
    errors = response.data["alertRuleCreate"]["userErrors"]
    assert [(error["field"], error["code"]) for error in errors] == [(field, code)], errors
    with tenant_context(alpha.tenant):
        assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
def test_private_webhook_addresses_are_refused_unless_allowed(gql, alpha, url):
    with override_settings(ALERT_WEBHOOK_ALLOW_PRIVATE=False):
        response = create(gql, alpha, channels=["WEBHOOK"], webhookUrl=url)
    errors = response.data["alertRuleCreate"]["userErrors"]
    assert [(error["field"], error["code"]) for error in errors] == [
        ("webhookUrl", "PRIVATE_ADDRESS")
    ], errors
    assert (
        created(gql, alpha, channels=["WEBHOOK"], webhookUrl=url)["alertRule"]["webhookUrl"] == url
    )  # tests allow


def test_notifications_are_listed_newest_first_and_marked_read(
    gql, alpha, beta, django_assert_max_num_queries
):
    first, second, third = fired(alpha, 3)
    analyst = token(alpha, "analyst")
    with django_assert_max_num_queries(12):  # the list and its rules in a fixed number of queries
        response = gql.post(NOTIFICATIONS, host=alpha.host, token=analyst)
    nodes = [edge["node"] for edge in response.data["notifications"]["edges"]]
    assert [node["id"] for node in nodes] == [
        gid(alpha, "Notification", n.pk) for n in (third, second, first)
    ], response.body
    assert nodes[0]["rule"]["name"] == "Quiet 2" and nodes[0]["data"]["metric"] == "orders"
    assert all(node["readAt"] is None for node in nodes)

    response = gql.post(
        MARK,
        {"ids": [gid(alpha, "Notification", first.pk), gid(alpha, "Notification", first.pk)]},
        host=alpha.host,
        token=token(alpha, "staff"),
    )
    assert response.data["notificationMarkRead"] == {"marked": 1, "userErrors": []}, response.body
    unread = gql.post(NOTIFICATIONS, {"unread": True}, host=alpha.host, token=analyst).data[
        "notifications"
    ]
    read = gql.post(NOTIFICATIONS, {"unread": False}, host=alpha.host, token=analyst).data[
        "notifications"
    ]
    assert (unread["totalCount"], read["totalCount"]) == (2, 1)
    assert read["edges"][0]["node"]["readAt"] is not None

    # beta sees none of alpha's, and cannot mark them read
    assert (
        gql.post(NOTIFICATIONS, host=beta.host, token=token(beta, "owner")).data["notifications"][
            "totalCount"
        ]
        == 0
    )
    response = gql.post(
        MARK,
        {"ids": [gid(alpha, "Notification", second.pk)]},
        host=beta.host,
        token=token(beta, "owner"),
    )
    assert response.data["notificationMarkRead"]["marked"] == 0
    response = gql.post(MARK, {"all": True}, host=beta.host, token=token(beta, "owner"))
    assert response.data["notificationMarkRead"]["marked"] == 0

    response = gql.post(MARK, {"all": True}, host=alpha.host, token=analyst)
    assert response.data["notificationMarkRead"]["marked"] == 2
    assert (
        gql.post(NOTIFICATIONS, {"unread": True}, host=alpha.host, token=analyst).data[
            "notifications"
        ]["totalCount"]
        == 0
    )
    with tenant_context(alpha.tenant):
        assert AuditEntry.objects.filter(action="notification.mark_read").count() == 2

    assert gql.post(NOTIFICATIONS, host=alpha.host, token=token(alpha, "viewer")).codes == [
        "FORBIDDEN"
    ]
    assert gql.post(MARK, {"all": True}, host=alpha.host, token=token(alpha, "viewer")).codes == [
        "FORBIDDEN"
    ]


def test_mark_read_takes_ids_or_all(gql, alpha):
    for variables in ({}, {"ids": [], "all": True}):
        response = gql.post(MARK, variables, host=alpha.host, token=token(alpha, "analyst"))
        assert response.data["notificationMarkRead"]["userErrors"][0]["code"] == "REQUIRED", (
            response.body
        )
    ids = [gid(alpha, "Notification", pk) for pk in range(1, 102)]
    response = gql.post(MARK, {"ids": ids}, host=alpha.host, token=token(alpha, "analyst"))
    assert response.data["notificationMarkRead"]["userErrors"][0]["code"] == "INVALID"


def test_notifications_of_rules_without_the_in_app_channel_are_not_listed(gql, alpha):
    make_rule(
        alpha,
        metric="orders",
        comparison="below",
        threshold=today(alpha, "orders") + 1,
        channels=["email"],
        emails=["ops@example.com"],
    )
    assert evaluate(alpha) == 1
    response = gql.post(NOTIFICATIONS, host=alpha.host, token=token(alpha, "analyst"))
    assert response.data["notifications"]["totalCount"] == 0


# --- the subscription, over a real socket --------------------------------------------------------------

SUBSCRIBE = "subscription { notifications { id title data rule { name } } }"


def test_a_subscriber_receives_its_tenant_notifications_only(alpha, beta):
    (theirs,) = fired(beta)
    make_rule(
        alpha,
        name="Quiet",
        metric="orders",
        comparison="below",
        threshold=today(alpha, "orders") + 1,
    )

    def fire_and_commit() -> int:
        """An evaluation whose commit publishes (the test's transaction never commits)."""
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert evaluate(alpha) == 1
        with tenant_context(alpha.tenant):
            return Notification.objects.get(rule__name="Quiet").pk

    params = bearer(alpha, "analyst")

    async def scenario() -> dict:
        ws = communicator(alpha.host)
        ack = await open_session(ws, params)
        assert json.loads(ack["text"])["type"] == "connection_ack", ack
        async with joining(alpha.tenant.schema_name, "notifications"):
            await ws.send_json_to({"id": "n", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        await bus.publish_async(
            beta.tenant.schema_name, "notifications", {"notification": theirs.pk}
        )
        mine = await database_sync_to_async(fire_and_commit)()
        try:
            message = await ws.receive_json_from(timeout=TIMEOUT)
        finally:
            await ws.disconnect()
        return {"message": message, "mine": mine}

    outcome = async_to_sync(scenario)()
    message = outcome["message"]
    assert message["type"] == "next" and "errors" not in message["payload"], message
    node = message["payload"]["data"]["notifications"]
    assert node["id"] == gid(alpha, "Notification", outcome["mine"])
    assert node["rule"] == {"name": "Quiet"} and node["data"]["metric"] == "orders"


def test_viewers_cannot_subscribe(alpha):
    params = bearer(alpha, "viewer")

    async def scenario() -> dict:
        ws = communicator(alpha.host)
        await open_session(ws, params)
        await ws.send_json_to({"id": "n", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        try:
            return await ws.receive_json_from(timeout=TIMEOUT)
        finally:
            await ws.disconnect()

    message = async_to_sync(scenario)()
    assert message["type"] in ("error", "next"), message
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert [error["extensions"]["code"] for error in errors] == ["FORBIDDEN"], message


def test_threshold_is_exact(alpha):
    rule, _ = make_rule(alpha, threshold=Decimal("12.3456"))
    with tenant_context(alpha.tenant):
        assert AlertRule.objects.get(pk=rule.pk).threshold == Decimal("12.3456")
