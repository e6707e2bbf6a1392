"""Lists run a fixed number of SQL queries however long the page is (N+1 is a bug)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Membership, User
from tests.conftest import token_for

MEMBERS = (
    "{ members(first: 100) { totalCount edges { node { id role user { id email fullName } } } } }"
)
KEYS = "{ apiKeys(first: 100) { totalCount edges { node { id name role scopes } } } }"


def _queries(gql, fixture, query, token) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as captured:
        response = gql.post(query, host=fixture.host, token=token)
    assert response.errors == [], response.body
    return len(captured.captured_queries), response.data


def test_members_page_costs_the_same_for_5_or_45_members(gql, alpha):
    token = token_for(alpha.email("owner"), alpha.tenant)
    few, data = _queries(gql, alpha, MEMBERS, token)
    assert data["members"]["totalCount"] == 5
    for index in range(40):
        user = User.objects.create_user(email=f"bulk{index}@alpha.test")
        Membership.objects.create(user=user, tenant=alpha.tenant, role="viewer")
    many, data = _queries(gql, alpha, MEMBERS, token)
    assert data["members"]["totalCount"] == 45 and len(data["members"]["edges"]) == 45
    assert many == few > 0


def test_api_keys_page_costs_the_same_for_1_or_20_keys(gql, alpha):
    from apps.accounts.authentication import Principal
    from apps.accounts.services import create_api_key

    owner = Principal(
        tenant=alpha.tenant,
        user=User.objects.get(email=alpha.email("owner")),
        role="owner",
        via="jwt",
    )
    token = token_for(alpha.email("owner"), alpha.tenant)
    create_api_key(actor=owner, tenant=alpha.tenant, name="k0", role="viewer", scopes=["read"])
    few, _ = _queries(gql, alpha, KEYS, token)
    for index in range(1, 20):
        create_api_key(
            actor=owner, tenant=alpha.tenant, name=f"k{index}", role="viewer", scopes=["read"]
        )
    many, data = _queries(gql, alpha, KEYS, token)
    assert data["apiKeys"]["totalCount"] == 20
    assert many == few > 0
