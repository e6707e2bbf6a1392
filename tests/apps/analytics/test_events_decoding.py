"""`POST /api/events` decodes a JSON array with the compiled schema (msgspec) straight from the
body: every edge of that schema through the real HTTP path (wrong types, missing and unknown
fields, times, ids, properties, batch limits, bodies only json reads, bodies nested too deeply),
events that take the column-at-a-time path stored exactly, and a property test that the compiled
rules accept and refuse exactly what the rules written out in apps.analytics.events do."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.analytics import events
from apps.analytics.models import Event, EventDay
from tests.apps.analytics.test_events import _key, _post, _recent, shop_rows  # noqa: F401


def _answer(gql, fixture, body: bytes | str, key: str) -> dict:
    response = _post(gql, fixture, body, key=key)
    assert response.status_code == 200, response.content
    return response.json()


def _codes(answer: dict) -> list[tuple[int, str]]:
    return [(error["index"], error["code"]) for error in answer["errors"]]


def test_rest_each_edge_of_the_schema_names_its_rule(gql, alpha, shop_rows):  # noqa: F811
    ok = {"type": "page_viewed", "time": _recent(), "sessionId": "s"}
    old = (timezone.now() - timedelta(days=401)).isoformat()
    ahead = (timezone.now() + timedelta(minutes=6)).isoformat()
    batch = [
        ok,  # 0: stored
        {**ok, "type": 5},  # 1
        {"time": _recent(), "sessionId": "s"},  # 2: no type
        {"type": "page_viewed", "sessionId": "s"},  # 3: no time
        {**ok, "time": 1773140400},  # 4: a number is no time
        {**ok, "time": "2026-03-10T11:00:00"},  # 5: no offset
        {**ok, "time": "10/03/2026 11:00"},  # 6
        {**ok, "time": ahead},  # 7
        {**ok, "time": old},  # 8
        {**ok, "sessionId": 7},  # 9
        {**ok, "sessionId": "x" * 129},  # 10
        {**ok, "sessionId": "tab\there"},  # 11
        {**ok, "customerId": 1.5},  # 12
        {**ok, "productId": "12"},  # 13
        {**ok, "orderId": 2**63},  # 14
        {**ok, "customerId": False},  # 15
        {**ok, "properties": "text"},  # 16
        {**ok, "properties": {f"k{i}": 1 for i in range(51)}},  # 17
        {**ok, "properties": {"a": [{"b": 1}]}},  # 18
        {**ok, "properties": {"a": "x" * 5000}},  # 19
        {**ok, "properties": {"a": "nul\u0000"}},  # 20
        {**ok, "extra": 1},  # 21
        {**ok, "session_id": "s"},  # 22
        {"type": "page_viewed", "time": _recent()},  # 23: nobody
        {**ok, "sessionId": None, "customerId": shop_rows["customer"]},  # 24: stored
        {**ok, "sessionId": "", "customerId": None},  # 25: nobody
        "page_viewed",  # 26
        None,  # 27
    ]
    answer = _answer(gql, alpha, json.dumps(batch), _key(alpha))
    assert _codes(answer) == [
        (1, "INVALID_TYPE"),
        (2, "INVALID_TYPE"),
        (3, "INVALID_TIME"),
        (4, "INVALID_TIME"),
        (5, "INVALID_TIME"),
        (6, "INVALID_TIME"),
        (7, "TIME_IN_FUTURE"),
        (8, "TIME_TOO_OLD"),
        (9, "INVALID_SESSION"),
        (10, "INVALID_SESSION"),
        (11, "INVALID_SESSION"),
        (12, "INVALID_ID"),
        (13, "INVALID_ID"),
        (14, "INVALID_ID"),
        (15, "INVALID_ID"),
        (16, "INVALID_PROPERTIES"),
        (17, "INVALID_PROPERTIES"),
        (18, "INVALID_PROPERTIES"),
        (19, "INVALID_PROPERTIES"),
        (20, "INVALID_PROPERTIES"),
        (21, "UNKNOWN_FIELD"),
        (22, "UNKNOWN_FIELD"),
        (23, "NO_VISITOR"),
        (25, "NO_VISITOR"),
        (26, "NOT_AN_OBJECT"),
        (27, "NOT_AN_OBJECT"),
    ]
    messages = {error["index"]: error["message"] for error in answer["errors"]}
    assert messages[3] == "time is required: an ISO-8601 date and time with an offset."
    assert messages[5] == "time needs an offset (Z or ±hh:mm)."
    assert messages[6] == "time must be an ISO-8601 date and time with an offset."
    assert messages[12] == "customerId must be an integer id."
    assert messages[17] == "properties has 51 keys; at most 50."
    assert messages[18] == "properties may nest at most two levels deep."
    assert messages[19] == "properties is 5008 bytes as JSON; at most 4096."
    assert messages[20] == "properties must not contain NUL characters."
    assert messages[21] == "Unknown field(s): extra."
    assert (answer["accepted"], answer["rejected"]) == (2, 26)
    with tenant_context(alpha.tenant):
        assert sorted(Event.objects.values_list("session_id", "customer_id")) == [
            ("", shop_rows["customer"]),
            ("s", None),
        ]


def test_rest_a_clean_batch_is_stored_exactly(gql, alpha, shop_rows):  # noqa: F811
    """A batch every event of which passes takes the column-at-a-time path: what COPY must
    escape, offsets, fractions of a second and a type named null are stored as sent."""
    base = (timezone.now() - timedelta(hours=2)).replace(microsecond=0)
    paris = base.astimezone(timezone.get_fixed_timezone(60))
    batch = [
        {
            "type": "null",
            "time": base.isoformat().replace("+00:00", "Z"),
            "sessionId": "back\\slash ü 😀",
            "productId": shop_rows["product"],
            "properties": {"path": "C:\\tmp\ttab\nline", "n": 2.5, "list": [1, None, True]},
        },
        {
            "type": "a.b_c",
            "time": paris.isoformat(),
            "customerId": shop_rows["customer"],
            "orderId": shop_rows["order"],
            "properties": {"q": {"x": '"quoted"', "y": -1}},
        },
        {
            "type": "page_viewed",
            "time": (base + timedelta(microseconds=123456)).isoformat(),
            "sessionId": "s",
            "properties": {},
        },
        {"type": "page_viewed", "time": base.isoformat(), "sessionId": "s", "properties": None},
    ]
    columns, rejections = events._validate(
        events.decode_array(json.dumps(batch).encode()), timezone.now()
    )
    assert isinstance(columns.index, range) and rejections == []  # the column-at-a-time path
    answer = _answer(gql, alpha, json.dumps(batch), _key(alpha))
    assert answer == {"accepted": 4, "rejected": 0, "errors": []}
    with tenant_context(alpha.tenant):
        stored = list(
            Event.objects.order_by("id").values_list(
                "type", "time", "session_id", "customer_id", "product_id", "order_id", "properties"
            )
        )
        assert sum(EventDay.objects.values_list("events", flat=True)) == 4
    assert stored == [
        (
            "null",
            base,
            "back\\slash ü 😀",
            None,
            shop_rows["product"],
            None,
            {"path": "C:\\tmp\ttab\nline", "n": 2.5, "list": [1, None, True]},
        ),
        (
            "a.b_c",
            base,
            "",
            shop_rows["customer"],
            None,
            shop_rows["order"],
            {"q": {"x": '"quoted"', "y": -1}},
        ),
        ("page_viewed", base + timedelta(microseconds=123456), "s", None, None, None, {}),
        ("page_viewed", base, "s", None, None, None, {}),
    ]


def test_rest_properties_past_half_the_limit_are_measured_as_before(gql, alpha):
    """Up to half of MAX_PROPERTIES_BYTES msgspec's encoding decides; past it json's, as before:
    4096 bytes pass, 4097 do not."""
    ok = {"type": "page_viewed", "time": _recent(), "sessionId": "s"}
    room = events.MAX_PROPERTIES_BYTES - len('{"a":""}')
    batch = [
        {**ok, "properties": {"a": "z" * 3000}},
        {**ok, "properties": {"a": "y" * room}},
        {**ok, "properties": {"a": "y" * (room + 1)}},
        {**ok, "properties": {"a": "é" * (room // 2)}},  # two bytes each in UTF-8
        {**ok, "properties": {"a": "é" * (room // 2 + 1)}},
    ]
    answer = _answer(gql, alpha, json.dumps(batch), _key(alpha))
    assert _codes(answer) == [(2, "INVALID_PROPERTIES"), (4, "INVALID_PROPERTIES")]
    assert answer["errors"][0]["message"] == "properties is 4097 bytes as JSON; at most 4096."
    with tenant_context(alpha.tenant):
        assert sorted(len(p["a"]) for p in Event.objects.values_list("properties", flat=True)) == [
            room // 2,
            3000,
            room,
        ]


def test_rest_unknown_ids_in_a_clean_batch(gql, alpha, shop_rows):  # noqa: F811
    ok = {"type": "purchased", "time": _recent(), "sessionId": "s"}
    missing = shop_rows["missing"]
    batch = [
        {**ok, "customerId": shop_rows["customer"], "productId": shop_rows["product"]},
        {**ok, "customerId": missing},
        {**ok, "productId": missing},
        {**ok, "orderId": missing},
        {**ok, "customerId": missing, "productId": missing},  # the customer is named first
        {**ok, "orderId": shop_rows["order"]},
    ]
    answer = _answer(gql, alpha, json.dumps(batch), _key(alpha))
    assert _codes(answer) == [
        (1, "UNKNOWN_CUSTOMER"),
        (2, "UNKNOWN_PRODUCT"),
        (3, "UNKNOWN_ORDER"),
        (4, "UNKNOWN_CUSTOMER"),
    ]
    assert answer["errors"][0]["message"] == f"There is no customer {missing} in this shop."
    with tenant_context(alpha.tenant):
        assert Event.objects.count() == sum(EventDay.objects.values_list("events", flat=True)) == 2


def test_rest_bodies_only_json_reads_are_judged_per_event(gql, alpha):
    """NaN and lone surrogates are not JSON to msgspec; json reads them, and the event holding one
    is rejected on its own, as before."""
    ok = f'{{"type": "page_viewed", "time": "{_recent()}", "sessionId": "s"}}'
    nan = f'{{"type": "page_viewed", "time": "{_recent()}", "sessionId": "s", "properties": {{"n": NaN}}}}'
    surrogate = f'{{"type": "page_viewed", "time": "{_recent()}", "sessionId": "\\ud800"}}'
    answer = _answer(gql, alpha, f"[{ok}, {nan}, {surrogate}]", _key(alpha))
    assert _codes(answer) == [(1, "INVALID_PROPERTIES"), (2, "INVALID_SESSION")]
    assert answer["accepted"] == 1


def test_rest_times_only_fromisoformat_reads_are_taken(gql, alpha):
    """RFC 3339 is stricter than datetime.fromisoformat: an hour-only offset or one with seconds
    was accepted before and still is (the written-out rules decide those)."""
    moment = (timezone.now() - timedelta(hours=3)).replace(microsecond=0)
    plus_five = moment.astimezone(timezone.get_fixed_timezone(300)).isoformat()[:-3]  # "+05"
    with_seconds = moment.astimezone(dt_timezone(timedelta(hours=1, minutes=30, seconds=15)))
    batch = [
        {"type": "page_viewed", "time": plus_five, "sessionId": "a"},
        {"type": "page_viewed", "time": with_seconds.isoformat(), "sessionId": "b"},
    ]
    assert plus_five.endswith("+05") and with_seconds.isoformat().endswith("+01:30:15")
    answer = _answer(gql, alpha, json.dumps(batch), _key(alpha))
    assert answer == {"accepted": 2, "rejected": 0, "errors": []}
    with tenant_context(alpha.tenant):
        assert list(Event.objects.order_by("session_id").values_list("time", flat=True)) == [
            moment,
            moment,
        ]


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_rest_bodies_nested_too_deeply_are_refused_not_failed(gql, alpha, content_type):
    deep = "[" * 100_000 + "]" * 100_000
    response = _post(gql, alpha, deep, key=_key(alpha), content_type=content_type)
    if content_type == "application/json":
        assert response.status_code == 400, response.content
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        assert "nests too deeply" in response.json()["errors"][0]["message"]
    else:
        assert response.status_code == 200, response.content
        assert _codes(response.json()) == [(0, "MALFORMED")]


@pytest.mark.parametrize("clean", [True, False])
def test_rest_too_many_events_is_413_whatever_they_hold(gql, alpha, clean):
    event = {"type": "page_viewed", "time": _recent(), "sessionId": "a"}
    items = [event] * events.REST_MAX_EVENTS + [event if clean else {"type": 1}]
    response = _post(gql, alpha, json.dumps(items), key=_key(alpha))
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert response.json()["errors"][0]["message"] == "10001 events; at most 10000 a request."


@pytest.mark.parametrize("body", ["null", '"events"', "5", '{"events": []}'])
def test_rest_bodies_that_are_no_array(gql, alpha, body):
    response = _post(gql, alpha, body, key=_key(alpha))
    assert response.status_code == 400, response.content
    assert "must be a JSON array" in response.json()["errors"][0]["message"]


# --- the compiled rules against the written-out ones ----------------------------------------

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text()
)
_times = st.one_of(
    st.datetimes(
        min_value=datetime(2024, 12, 1), max_value=datetime(2026, 3, 11), timezones=st.just(UTC)
    ).map(lambda moment: moment.isoformat()),
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 3, 11)).map(
        lambda moment: moment.isoformat()  # no offset
    ),
    st.sampled_from(
        ["2026-03-10T11:00:00Z", "2026-03-10 11:00:00+01:00", "2026-03-10T11:00+05:30", "nope", ""]
    ),
    _scalars,
)
_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text())
_properties = st.one_of(
    st.dictionaries(
        st.text(max_size=5),
        st.one_of(
            _leaf,
            st.lists(_leaf, max_size=3),
            st.dictionaries(st.text(max_size=3), st.one_of(_leaf, st.lists(_leaf, max_size=2))),
        ),
        max_size=55,
    ),
    st.lists(_leaf, max_size=2),
    _scalars,
)
_event = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(
            st.sampled_from(["page_viewed", "null", "a.b", "Bad", "a" * 65]), _scalars
        ),
        "time": _times,
        "sessionId": st.one_of(st.sampled_from(["s", "", "a\\b", "x" * 129, "\x7f"]), _scalars),
        "customerId": st.one_of(st.integers(-(2**64), 2**64), _scalars),
        "productId": st.one_of(st.integers(1, 5), _scalars),
        "orderId": st.one_of(st.integers(1, 5), _scalars),
        "properties": _properties,
        "other": st.just(1),
    },
)


def _written_out(items: list[object]):
    earliest, latest = NOW - events.MAX_AGE, NOW + events.FUTURE_SKEW
    return [events._check_object(index, item, earliest, latest) for index, item in enumerate(items)]


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(st.one_of(_event, _scalars), max_size=6))
def test_the_compiled_rules_agree_with_the_written_out_ones(batch):
    body = json.dumps(batch).encode()
    columns, rejections = events._validate(events.decode_array(body), NOW)
    expected = _written_out(json.loads(body))
    assert [(r.index, r.code, r.message) for r in rejections] == [
        (r.index, r.code, r.message) for r in expected if isinstance(r, events.Rejection)
    ]
    accepted = [row for row in expected if not isinstance(row, events.Rejection)]
    assert [
        (
            index,
            kind,
            moment,
            session,
            customer,
            product,
            order,
            json.loads(text.replace("\\\\", "\\")),
        )
        for index, kind, moment, session, customer, product, order, text in columns.rows()
    ] == [
        (
            index,
            kind,
            moment,
            session,
            customer,
            product,
            order,
            json.loads(text.replace("\\\\", "\\")),
        )
        for index, kind, moment, session, customer, product, order, text in accepted
    ]
