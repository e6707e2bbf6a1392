"""The customer lists: search, filters and sorting; VIP, new, inactive and top customers, with
days counted in the tenant's time zone; bad arguments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import Tenant
from tests.apps.customers import factories as make
from tests.conftest import token_for


def _post(gql, fixture, query, variables=None, role="staff"):
    response = gql.post(
        query, variables, host=fixture.host, token=token_for(fixture.email(role), fixture.tenant)
    )
    assert response.errors == [], response.body
    return response.data


def _emails(connection) -> list[str]:
    return [edge["node"]["email"] for edge in connection["edges"]]


def _set_tenant(fixture, **fields) -> None:
    Tenant.objects.filter(pk=fixture.tenant.pk).update(**fields)  # rolled back with the test


@pytest.fixture
def shop(alpha):
    """Three customers: Ann (VIP, spent 1500), Bob (spent 200, lapsed), Cy (never ordered)."""
    with tenant_context(alpha.tenant):
        ann = make.customer(
            "ann@shop.test",
            first_name="Ann",
            last_name="Archer",
            tags=["vip", "b2b"],
            accepts_marketing=True,
            created=datetime(2026, 1, 10, 10, tzinfo=UTC),
        )
        bob = make.customer(
            "bob@mail.test",
            first_name="Bob",
            last_name="Baker",
            tags=["b2b"],
            created=datetime(2026, 3, 4, 16, tzinfo=UTC),
        )
        make.customer(
            "cy@shop.test",
            first_name="Cy",
            last_name="Cole",
            created=datetime(2026, 3, 6, tzinfo=UTC),
        )
        make.order(ann, "1500.00", datetime(2026, 2, 1, 12, tzinfo=UTC))
        make.order(bob, "250.00", datetime(2026, 3, 10, 12, tzinfo=UTC), refunded="50.00")
    return alpha


LIST = """query($filter: CustomerFilter, $sort: CustomerSort, $first: Int, $after: String) {
  customers(filter: $filter, sort: $sort, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { email ordersCount totalSpent { amount currency } } }
  }
}"""


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("ann", ["ann@shop.test"]),
        ("  BAKER   bob ", ["bob@mail.test"]),  # every word, in any field, any case
        ("bob archer", []),
        ("mail.test", ["bob@mail.test"]),  # email, for roles that see contacts
        ("shop.test", ["cy@shop.test", "ann@shop.test"]),
    ],
)
def test_search_by_name_or_email(gql, shop, search, expected):
    data = _post(gql, shop, LIST, {"filter": {"search": search}})
    assert _emails(data["customers"]) == expected


def test_filter_by_tag_and_marketing_consent(gql, shop):
    assert _emails(_post(gql, shop, LIST, {"filter": {"tag": " VIP "}})["customers"]) == [
        "ann@shop.test"
    ]
    assert _emails(_post(gql, shop, LIST, {"filter": {"tag": "b2b"}})["customers"]) == [
        "bob@mail.test",
        "ann@shop.test",
    ]
    assert _emails(_post(gql, shop, LIST, {"filter": {"acceptsMarketing": True}})["customers"]) == [
        "ann@shop.test"
    ]
    not_consenting = _post(gql, shop, LIST, {"filter": {"acceptsMarketing": False, "tag": "b2b"}})
    assert _emails(not_consenting["customers"]) == ["bob@mail.test"]


def test_created_range_is_days_in_the_tenants_time_zone(gql, shop):
    # Bob was created at 16:00 UTC on 4 March: already 5 March in Tokyo (UTC+9)
    _set_tenant(shop, time_zone="Asia/Tokyo")
    on_5th = _post(
        gql, shop, LIST, {"filter": {"createdFrom": "2026-03-05", "createdTo": "2026-03-05"}}
    )
    assert _emails(on_5th["customers"]) == ["bob@mail.test"]
    until_4th = _post(gql, shop, LIST, {"filter": {"createdTo": "2026-03-04"}})
    assert _emails(until_4th["customers"]) == ["ann@shop.test"]
    _set_tenant(shop, time_zone="UTC")
    assert _emails(
        _post(gql, shop, LIST, {"filter": {"createdTo": "2026-03-04"}})["customers"]
    ) == ["bob@mail.test", "ann@shop.test"]


@pytest.mark.parametrize(
    ("field", "descending", "expected"),
    [
        ("CREATED", True, ["cy", "bob", "ann"]),
        ("CREATED", False, ["ann", "bob", "cy"]),
        ("TOTAL_SPENT", True, ["ann", "bob", "cy"]),
        ("TOTAL_SPENT", False, ["cy", "bob", "ann"]),
        ("LAST_ORDER_AT", True, ["bob", "ann", "cy"]),  # never ordered: last either way
        ("LAST_ORDER_AT", False, ["ann", "bob", "cy"]),
    ],
)
def test_sorting(gql, shop, field, descending, expected):
    data = _post(gql, shop, LIST, {"sort": {"field": field, "descending": descending}})
    assert [email.split("@")[0] for email in _emails(data["customers"])] == expected


def test_stats_and_pages(gql, shop):
    first = _post(gql, shop, LIST, {"first": 2, "sort": {"field": "TOTAL_SPENT"}})["customers"]
    assert first["totalCount"] == 3 and first["pageInfo"]["hasNextPage"] is True
    assert [edge["node"] for edge in first["edges"]] == [
        {
            "email": "ann@shop.test",
            "ordersCount": 1,
            "totalSpent": {"amount": "1500.00", "currency": "USD"},
        },
        {
            "email": "bob@mail.test",
            "ordersCount": 1,
            "totalSpent": {"amount": "200.00", "currency": "USD"},
        },
    ]
    rest = _post(
        gql,
        shop,
        LIST,
        {"first": 2, "after": first["pageInfo"]["endCursor"], "sort": {"field": "TOTAL_SPENT"}},
    )["customers"]
    assert _emails(rest) == ["cy@shop.test"] and rest["pageInfo"]["hasNextPage"] is False


VIP = "{ vipCustomers(first: 10) { totalCount edges { node { email totalSpent { amount } } } } }"


def test_vip_customers_reach_the_tenants_threshold(gql, shop):
    assert _emails(_post(gql, shop, VIP)["vipCustomers"]) == ["ann@shop.test"]  # default 1000
    _set_tenant(shop, settings={"vip_threshold": "200.00"})  # reached exactly: included
    assert _emails(_post(gql, shop, VIP)["vipCustomers"]) == ["ann@shop.test", "bob@mail.test"]
    _set_tenant(shop, settings={"vip_threshold": 1501})
    assert _post(gql, shop, VIP)["vipCustomers"]["totalCount"] == 0


@pytest.fixture
def recent(alpha):
    """Customers relative to now: ordered 10 and 40 days ago, never ordered (60 and 5 days old)."""
    now = timezone.now()
    with tenant_context(alpha.tenant):
        active = make.customer("active@x.test", created=now - timedelta(days=100))
        lapsed = make.customer("lapsed@x.test", created=now - timedelta(days=100))
        make.customer("old-never@x.test", created=now - timedelta(days=60))
        make.customer("new-never@x.test", created=now - timedelta(days=5))
        make.order(active, "10.00", now - timedelta(days=10))
        make.order(lapsed, "10.00", now - timedelta(days=40))
        make.order(lapsed, "10.00", now - timedelta(days=300))
    return alpha


def test_new_customers_within_n_days(gql, recent):
    query = (
        "query($days: Int!) { newCustomers(first: 10, days: $days) { edges { node { email } } } }"
    )
    assert _emails(_post(gql, recent, query, {"days": 7})["newCustomers"]) == ["new-never@x.test"]
    assert _emails(_post(gql, recent, query, {"days": 61})["newCustomers"]) == [
        "new-never@x.test",
        "old-never@x.test",
    ]


def test_inactive_customers_have_not_ordered_in_n_days(gql, recent):
    query = """query($days: Int!, $never: Boolean!) {
      inactiveCustomers(first: 10, days: $days, includeNeverOrdered: $never) { edges { node { email } } }
    }"""
    assert _emails(
        _post(gql, recent, query, {"days": 30, "never": False})["inactiveCustomers"]
    ) == ["lapsed@x.test"]
    with_never = _post(gql, recent, query, {"days": 30, "never": True})["inactiveCustomers"]
    assert _emails(with_never) == [
        "lapsed@x.test",
        "old-never@x.test",
    ]  # the 5-day-old customer is not inactive
    assert _emails(_post(gql, recent, query, {"days": 5, "never": False})["inactiveCustomers"]) == [
        "active@x.test",
        "lapsed@x.test",
    ]


TOP = """query($from: Date, $to: Date, $first: Int) {
  topCustomers(from: $from, to: $to, first: $first) {
    totalCount pageInfo { hasNextPage }
    edges { spent { amount currency } ordersCount node { email totalSpent { amount } } }
  }
}"""


def test_top_customers_by_spend_in_a_range_of_local_days(gql, alpha):
    _set_tenant(alpha, time_zone="America/New_York")  # UTC-5 in March until the 8th, then UTC-4
    with tenant_context(alpha.tenant):
        ann, bob, cy = (make.customer(f"{name}@x.test") for name in ("ann", "bob", "cy"))
        make.order(
            ann, "100.10", datetime(2026, 3, 1, 5, 30, tzinfo=UTC)
        )  # 00:30 on 1 March in New York
        make.order(
            ann, "999.00", datetime(2026, 3, 1, 4, 30, tzinfo=UTC)
        )  # 23:30 on 28 February: out
        make.order(
            ann, "50.05", datetime(2026, 4, 1, 3, 59, tzinfo=UTC), refunded="10.00"
        )  # 23:59 on 31 March
        make.order(ann, "500.00", datetime(2026, 3, 20, tzinfo=UTC), status="cancelled")
        make.order(bob, "300.00", datetime(2026, 3, 15, tzinfo=UTC))
        make.order(cy, "999.99", datetime(2026, 4, 1, 4, tzinfo=UTC))  # midnight on 1 April: out
        make.order(None, "5000.00", datetime(2026, 3, 15, tzinfo=UTC))  # a guest's order
    data = _post(gql, alpha, TOP, {"from": "2026-03-01", "to": "2026-03-31"})["topCustomers"]
    assert data["totalCount"] == 2
    assert [(e["node"]["email"], e["spent"], e["ordersCount"]) for e in data["edges"]] == [
        ("bob@x.test", {"amount": "300.00", "currency": "USD"}, 1),
        ("ann@x.test", {"amount": "140.15", "currency": "USD"}, 2),
    ]
    assert data["edges"][1]["node"]["totalSpent"] == {
        "amount": "1139.15"
    }  # lifetime, for comparison
    page = _post(gql, alpha, TOP, {"from": "2026-03-01", "to": "2026-03-31", "first": 1})[
        "topCustomers"
    ]
    assert [e["node"]["email"] for e in page["edges"]] == ["bob@x.test"] and page["pageInfo"][
        "hasNextPage"
    ]
    one_day = _post(gql, alpha, TOP, {"from": "2026-02-28", "to": "2026-02-28"})["topCustomers"]
    assert [(e["node"]["email"], e["spent"]["amount"]) for e in one_day["edges"]] == [
        ("ann@x.test", "999.00")
    ]


@pytest.mark.parametrize(
    "query",
    [
        "{ newCustomers(days: 0) { totalCount } }",
        "{ inactiveCustomers(days: -3) { totalCount } }",
        "{ newCustomers(days: 100000) { totalCount } }",
        '{ topCustomers(from: "2026-03-02", to: "2026-03-01") { totalCount } }',
        '{ topCustomers(from: "2000-01-01", to: "2026-03-01") { totalCount } }',
        '{ customers(filter: {createdFrom: "1800-01-01"}) { totalCount } }',
        '{ customerAnalyticsSummary(from: "2026-03-02", to: "2026-03-01") { customersCount } }',
    ],
)
def test_bad_arguments_are_a_bad_request(gql, alpha, query):
    response = gql.post(query, host=alpha.host, token=token_for(alpha.email("owner"), alpha.tenant))
    assert response.codes == ["BAD_REQUEST"], response.body
    assert response.errors[0]["message"]


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("owner", True),
        ("admin", True),
        ("staff", True),
        ("analyst", True),
        ("viewer", False),
    ],
)
def test_spend_rankings_and_analytics_are_not_for_viewers(gql, alpha, role, allowed):
    token = token_for(alpha.email(role), alpha.tenant)
    for query in (
        "{ topCustomers(first: 5) { totalCount } }",
        "{ customerAnalyticsSummary { customersCount } }",
    ):
        response = gql.post(query, host=alpha.host, token=token)
        assert (response.codes == []) is allowed and (
            response.codes == ["FORBIDDEN"]
        ) is not allowed, response.body
    # the lists themselves are for every member
    assert (
        gql.post("{ vipCustomers(first: 5) { totalCount } }", host=alpha.host, token=token).codes
        == []
    )


def test_lists_are_per_tenant(gql, shop, beta):
    assert _post(gql, beta, LIST)["customers"]["totalCount"] == 0
    assert _post(gql, shop, LIST)["customers"]["totalCount"] == 3
