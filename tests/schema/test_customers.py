"""Customer create/update/delete and notes through the API: validation (clear userErrors,
nothing written), marketing consent, the audit trail, roles and who sees contact details."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.customers.models import Customer, CustomerNote
from tests.apps.customers import factories as make
from tests.conftest import gid, token_for

FIELDS = """id email firstName lastName phone tags acceptsMarketing marketingConsentAt
  addresses { line1 line2 city region postalCode country }"""
CREATE = f"""mutation($input: CustomerCreateInput!) {{
  customerCreate(input: $input) {{ customer {{ {FIELDS} }} userErrors {{ field message code }} }}
}}"""
UPDATE = f"""mutation($id: ID!, $input: CustomerUpdateInput!) {{
  customerUpdate(id: $id, input: $input) {{ customer {{ {FIELDS} }} userErrors {{ field message code }} }}
}}"""
DELETE = "mutation($id: ID!) { customerDelete(id: $id) { deletedId userErrors { field code } } }"
NOTE = """mutation($id: ID!, $body: String!) {
  customerNoteAdd(customerId: $id, body: $body) { note { id body authorEmail created } userErrors { field code } }
}"""
READ = f"""query($id: ID!) {{ node(id: $id) {{ ... on Customer {{ {FIELDS} notes {{ body authorEmail }} }} }} }}"""


def _token(fixture, role: str) -> str:
    return token_for(fixture.email(role), fixture.tenant)


def _create(gql, fixture, role="staff", **data):
    return gql.post(CREATE, {"input": data}, host=fixture.host, token=_token(fixture, role))


def _written(fixture) -> tuple[int, int]:
    with tenant_context(fixture.tenant):
        return Customer.objects.count(), AuditEntry.objects.filter(
            action__startswith="customer."
        ).count()


def test_create_a_customer_with_everything(gql, alpha):
    response = _create(
        gql,
        alpha,
        email="  Ada.Lovelace@Example.COM ",
        firstName=" Ada ",
        lastName="Lovelace",
        phone="+44 (20) 7946-0958",
        tags=["VIP", "vip", " wholesale ", ""],
        acceptsMarketing=True,
        addresses=[
            {
                "line1": "12 St James's Sq",
                "city": "London",
                "postalCode": "SW1Y 4JH",
                "country": "gb",
            }
        ],
    )
    payload = response.data["customerCreate"]
    assert payload["userErrors"] == []
    customer = payload["customer"]
    assert customer["email"] == "ada.lovelace@example.com"
    assert (customer["firstName"], customer["lastName"]) == ("Ada", "Lovelace")
    assert customer["phone"] == "+442079460958"
    assert customer["tags"] == ["vip", "wholesale"]
    assert customer["addresses"] == [
        {
            "line1": "12 St James's Sq",
            "line2": "",
            "city": "London",
            "region": "",
            "postalCode": "SW1Y 4JH",
            "country": "GB",
        }
    ]
    assert customer["acceptsMarketing"] is True
    consent = datetime.fromisoformat(customer["marketingConsentAt"])
    assert consent.tzinfo is not None and abs((datetime.now(UTC) - consent).total_seconds()) < 60
    with tenant_context(alpha.tenant):
        entry = AuditEntry.objects.get(action="customer.create")
        assert (
            entry.actor_email == alpha.email("staff")
            and entry.changes["email"] == "ada.lovelace@example.com"
        )


def test_a_customer_without_consent_has_no_consent_time(gql, alpha):
    customer = _create(gql, alpha, email="quiet@example.com").data["customerCreate"]["customer"]
    assert customer["acceptsMarketing"] is False and customer["marketingConsentAt"] is None


BAD_INPUT = [
    ({"email": "not-an-email"}, "email", "INVALID"),
    ({"email": ""}, "email", "INVALID"),
    ({"email": "ok@example.com", "phone": "0151 1234"}, "phone", "INVALID"),
    ({"email": "ok@example.com", "phone": "+0 151 1234 5678"}, "phone", "INVALID"),
    ({"email": "ok@example.com", "phone": "+1 234 567 890 123 456"}, "phone", "INVALID"),
    ({"email": "ok@example.com", "firstName": "x" * 101}, "firstName", "TOO_LONG"),
    ({"email": "ok@example.com", "tags": ["t" * 51]}, "tags", "INVALID"),
    ({"email": "ok@example.com", "tags": [f"t{i}" for i in range(51)]}, "tags", "INVALID"),
    (
        {
            "email": "ok@example.com",
            "addresses": [{"line1": "1 A St", "city": "X", "country": "XX"}],
        },
        "addresses.0.country",
        "INVALID",
    ),
    (
        {
            "email": "ok@example.com",
            "addresses": [{"line1": "1 A St", "city": "X", "country": "DEU"}],
        },
        "addresses.0.country",
        "INVALID",
    ),
    (
        {
            "email": "ok@example.com",
            "addresses": [
                {"line1": "1 A St", "city": "X", "country": "DE"},
                {"line1": "  ", "city": "Y", "country": "FR"},
            ],
        },
        "addresses.1.line1",
        "INVALID",
    ),
]


@pytest.mark.parametrize(("data", "field", "code"), BAD_INPUT)
def test_bad_input_is_a_user_error_and_writes_nothing(gql, alpha, data, field, code):
    before = _written(alpha)
    payload = _create(gql, alpha, **data).data["customerCreate"]
    assert payload["customer"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)]
    assert payload["userErrors"][0]["message"]
    assert _written(alpha) == before


def test_email_is_unique_per_tenant_ignoring_case(gql, alpha, beta):
    assert _create(gql, alpha, email="same@example.com").data["customerCreate"]["userErrors"] == []
    before = _written(alpha)
    again = _create(gql, alpha, email="SAME@example.com").data["customerCreate"]
    assert [(e["field"], e["code"]) for e in again["userErrors"]] == [("email", "DUPLICATE")]
    assert _written(alpha) == before
    # another tenant is another shop: the same person may be a customer there too
    assert _create(gql, beta, email="same@example.com").data["customerCreate"]["userErrors"] == []


def test_update_changes_only_what_is_given_and_records_it(gql, alpha):
    created = _create(gql, alpha, email="grace@example.com", firstName="Grace", tags=["a"]).data
    customer_id = created["customerCreate"]["customer"]["id"]
    token = _token(alpha, "admin")
    response = gql.post(
        UPDATE,
        {"id": customer_id, "input": {"lastName": "Hopper", "phone": "001 555 010 9999"}},
        host=alpha.host,
        token=token,
    )
    payload = response.data["customerUpdate"]
    assert payload["userErrors"] == []
    assert (
        payload["customer"]["firstName"] == "Grace" and payload["customer"]["lastName"] == "Hopper"
    )
    assert payload["customer"]["phone"] == "+15550109999"
    assert payload["customer"]["tags"] == ["a"]
    with tenant_context(alpha.tenant):
        entry = AuditEntry.objects.get(action="customer.update")
        assert entry.changes == {"last_name": ["", "Hopper"], "phone": ["", "+15550109999"]}
    # clearing with null, replacing lists
    cleared = gql.post(
        UPDATE,
        {"id": customer_id, "input": {"phone": None, "tags": ["B", "c"], "addresses": []}},
        host=alpha.host,
        token=token,
    ).data["customerUpdate"]["customer"]
    assert cleared["phone"] == "" and cleared["tags"] == ["b", "c"] and cleared["addresses"] == []


def test_marketing_consent_is_stamped_when_given_and_cleared_when_withdrawn(gql, alpha):
    customer_id = _create(gql, alpha, email="mk@example.com").data["customerCreate"]["customer"][
        "id"
    ]
    token = _token(alpha, "staff")

    def update(**data):
        return gql.post(
            UPDATE, {"id": customer_id, "input": data}, host=alpha.host, token=token
        ).data["customerUpdate"]["customer"]

    given = update(acceptsMarketing=True)
    assert given["acceptsMarketing"] is True and given["marketingConsentAt"] is not None
    # saying yes again keeps the time of the original consent
    assert (
        update(acceptsMarketing=True, firstName="M")["marketingConsentAt"]
        == given["marketingConsentAt"]
    )
    withdrawn = update(acceptsMarketing=False)
    assert withdrawn["acceptsMarketing"] is False and withdrawn["marketingConsentAt"] is None


def test_bad_updates_write_nothing(gql, alpha):
    token = _token(alpha, "staff")
    first = _create(gql, alpha, email="first@example.com", firstName="First").data[
        "customerCreate"
    ]["customer"]
    _create(gql, alpha, email="second@example.com")
    before = _written(alpha)
    cases = [
        ({"email": "Second@Example.com"}, ("email", "DUPLICATE")),
        ({"firstName": "Changed", "email": "broken"}, ("email", "INVALID")),
        ({"firstName": "Changed", "acceptsMarketing": None}, ("acceptsMarketing", "INVALID")),
        (
            {"addresses": [{"line1": "1", "city": "", "country": "DE"}]},
            ("addresses.0.city", "INVALID"),
        ),
    ]
    for data, error in cases:
        payload = gql.post(
            UPDATE, {"id": first["id"], "input": data}, host=alpha.host, token=token
        ).data["customerUpdate"]
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [error], data
    assert _written(alpha) == before
    with tenant_context(alpha.tenant):
        assert Customer.objects.get(email="first@example.com").first_name == "First"


def test_unknown_or_foreign_ids_are_not_found(gql, alpha, beta):
    beta_customer = _create(gql, beta, email="beta-only@example.com").data["customerCreate"][
        "customer"
    ]["id"]
    token = _token(alpha, "owner")
    member = gid(alpha, "Member", 1)
    for customer_id in (beta_customer, gid(alpha, "Customer", 999999), member):
        update = gql.post(
            UPDATE, {"id": customer_id, "input": {"firstName": "X"}}, host=alpha.host, token=token
        )
        assert update.data["customerUpdate"]["userErrors"] == [
            {"field": "id", "message": "No such customer.", "code": "NOT_FOUND"}
        ]
        note = gql.post(NOTE, {"id": customer_id, "body": "hi"}, host=alpha.host, token=token)
        assert note.data["customerNoteAdd"]["userErrors"] == [{"field": "id", "code": "NOT_FOUND"}]
        if customer_id != member:
            assert gql.post(READ, {"id": customer_id}, host=alpha.host, token=token).data == {
                "node": None
            }
    with tenant_context(beta.tenant):
        assert Customer.objects.get(email="beta-only@example.com").first_name == ""


def test_delete_a_customer_without_orders_and_their_notes(gql, alpha):
    customer_id = _create(gql, alpha, email="gone@example.com").data["customerCreate"]["customer"][
        "id"
    ]
    token = _token(alpha, "staff")
    gql.post(NOTE, {"id": customer_id, "body": "call back"}, host=alpha.host, token=token)
    response = gql.post(DELETE, {"id": customer_id}, host=alpha.host, token=token)
    assert response.data["customerDelete"] == {"deletedId": customer_id, "userErrors": []}
    with tenant_context(alpha.tenant):
        assert not Customer.objects.filter(email="gone@example.com").exists()
        assert CustomerNote.objects.count() == 0
        assert AuditEntry.objects.filter(
            action="customer.delete", changes__email="gone@example.com"
        ).exists()
    again = gql.post(DELETE, {"id": customer_id}, host=alpha.host, token=token)
    assert again.data["customerDelete"]["userErrors"] == [{"field": "id", "code": "NOT_FOUND"}]


def test_a_customer_with_orders_cannot_be_deleted(gql, alpha):
    with tenant_context(alpha.tenant):
        buyer = make.customer("buyer@example.com")
        make.order(buyer, "10.00", datetime(2026, 1, 5, tzinfo=UTC), status="cancelled")
    customer_id = gql.post(
        "{ customers(first: 1) { edges { node { id } } } }",
        host=alpha.host,
        token=_token(alpha, "staff"),
    ).data["customers"]["edges"][0]["node"]["id"]
    before = _written(alpha)
    response = gql.post(DELETE, {"id": customer_id}, host=alpha.host, token=_token(alpha, "owner"))
    assert response.errors == []
    assert response.data["customerDelete"]["deletedId"] is None
    assert [(e["field"], e["code"]) for e in response.data["customerDelete"]["userErrors"]] == [
        ("id", "HAS_ORDERS")
    ]
    assert _written(alpha) == before


def test_notes_record_their_author_and_time_newest_first(gql, alpha):
    customer_id = _create(gql, alpha, email="noted@example.com").data["customerCreate"]["customer"][
        "id"
    ]
    staff, admin = _token(alpha, "staff"), _token(alpha, "admin")
    first = gql.post(
        NOTE, {"id": customer_id, "body": "  Prefers email.  "}, host=alpha.host, token=staff
    )
    note = first.data["customerNoteAdd"]
    assert note["userErrors"] == []
    assert note["note"]["body"] == "Prefers email." and note["note"]["authorEmail"] == alpha.email(
        "staff"
    )
    assert datetime.fromisoformat(note["note"]["created"]).tzinfo is not None
    gql.post(NOTE, {"id": customer_id, "body": "Asked for a refund."}, host=alpha.host, token=admin)
    read = gql.post(READ, {"id": customer_id}, host=alpha.host, token=staff).data["node"]
    assert read["notes"] == [
        {"body": "Asked for a refund.", "authorEmail": alpha.email("admin")},
        {"body": "Prefers email.", "authorEmail": alpha.email("staff")},
    ]
    with tenant_context(alpha.tenant):
        assert AuditEntry.objects.filter(action="customer.note_add").count() == 2


def test_an_empty_or_huge_note_is_refused(gql, alpha):
    customer_id = _create(gql, alpha, email="n@example.com").data["customerCreate"]["customer"][
        "id"
    ]
    token = _token(alpha, "staff")
    for body, code in (("   ", "REQUIRED"), ("x" * 10_001, "TOO_LONG")):
        response = gql.post(NOTE, {"id": customer_id, "body": body}, host=alpha.host, token=token)
        assert response.data["customerNoteAdd"] == {
            "note": None,
            "userErrors": [{"field": "body", "code": code}],
        }
    with tenant_context(alpha.tenant):
        assert CustomerNote.objects.count() == 0


def test_an_api_key_signs_its_notes(gql, alpha):
    from apps.accounts.authentication import Principal
    from apps.accounts.models import User
    from apps.accounts.services import create_api_key

    owner = Principal(
        tenant=alpha.tenant,
        user=User.objects.get(email=alpha.email("owner")),
        role="owner",
        via="jwt",
    )
    key, secret = create_api_key(
        actor=owner, tenant=alpha.tenant, name="crm", role="staff", scopes=["read", "write"]
    )
    customer_id = _create(gql, alpha, email="k@example.com").data["customerCreate"]["customer"][
        "id"
    ]
    response = gql.post(
        NOTE, {"id": customer_id, "body": "synced"}, host=alpha.host, api_key=secret
    )
    assert response.data["customerNoteAdd"]["note"]["authorEmail"] == f"API key {key.prefix}"


WRITES = [
    (CREATE, lambda cid: {"input": {"email": "w@example.com"}}),
    (UPDATE, lambda cid: {"id": cid, "input": {"firstName": "W"}}),
    (NOTE, lambda cid: {"id": cid, "body": "hi"}),
    (DELETE, lambda cid: {"id": cid}),
]


@pytest.mark.parametrize("role", ["owner", "admin", "staff", "analyst", "viewer"])
def test_staff_and_above_write_customers_readers_do_not(gql, alpha, role):
    customer_id = _create(gql, alpha, email="target@example.com").data["customerCreate"][
        "customer"
    ]["id"]
    token = _token(alpha, role)
    for query, variables in WRITES:
        response = gql.post(query, variables(customer_id), host=alpha.host, token=token)
        if role in ("analyst", "viewer"):
            assert response.codes == ["FORBIDDEN"] and response.data is None, (role, query)
        else:
            assert response.errors == [] and not next(iter(response.data.values()))["userErrors"], (
                role,
                query,
            )


def test_viewers_and_analysts_see_contacts_redacted(gql, alpha):
    customer_id = _create(
        gql,
        alpha,
        email="private.person@example.com",
        firstName="Pat",
        phone="+4915112345678",
        addresses=[
            {
                "line1": "Hauptstr. 1",
                "line2": "Hinterhaus",
                "city": "Berlin",
                "region": "BE",
                "postalCode": "10115",
                "country": "DE",
            }
        ],
    ).data["customerCreate"]["customer"]["id"]
    gql.post(
        NOTE, {"id": customer_id, "body": "secret"}, host=alpha.host, token=_token(alpha, "staff")
    )
    for role in ("owner", "admin", "staff"):
        full = gql.post(READ, {"id": customer_id}, host=alpha.host, token=_token(alpha, role)).data[
            "node"
        ]
        assert (
            full["email"] == "private.person@example.com" and full["phone"] == "+4915112345678"
        ), role
        assert full["addresses"][0]["line1"] == "Hauptstr. 1" and full["notes"] == [
            {"body": "secret", "authorEmail": alpha.email("staff")}
        ]
    listed = f"{{ customers(first: 5) {{ edges {{ node {{ {FIELDS} notes {{ body }} }} }} }} }}"
    for role in ("viewer", "analyst"):
        redacted = gql.post(listed, host=alpha.host, token=_token(alpha, role))
        assert redacted.errors == [], redacted.body
        node = redacted.data["customers"]["edges"][0]["node"]
        assert node["firstName"] == "Pat"
        assert node["email"] == "p***@example.com"
        assert node["phone"] == "+***********78"
        assert node["addresses"] == [
            {
                "line1": None,
                "line2": None,
                "city": "Berlin",
                "region": "BE",
                "postalCode": None,
                "country": "DE",
            }
        ]
        assert node["notes"] == []
        # by global id, the guard refuses notes (a type they may not read) before anything runs
        assert gql.post(
            READ, {"id": customer_id}, host=alpha.host, token=_token(alpha, role)
        ).codes == ["FORBIDDEN"]
        # and they cannot find a customer by an email address they are not shown
        found = gql.post(
            '{ customers(first: 5, filter: {search: "private.person@"}) { totalCount } }',
            host=alpha.host,
            token=_token(alpha, role),
        )
        assert found.data["customers"]["totalCount"] == 0


def test_a_note_by_global_id_is_for_those_who_see_contacts(gql, alpha):
    customer_id = _create(gql, alpha, email="x@example.com").data["customerCreate"]["customer"][
        "id"
    ]
    note_id = gql.post(
        NOTE, {"id": customer_id, "body": "b"}, host=alpha.host, token=_token(alpha, "staff")
    ).data["customerNoteAdd"]["note"]["id"]
    query = "query($id: ID!) { node(id: $id) { ... on CustomerNote { body } } }"
    assert gql.post(query, {"id": note_id}, host=alpha.host, token=_token(alpha, "staff")).data == {
        "node": {"body": "b"}
    }
    assert gql.post(
        query, {"id": note_id}, host=alpha.host, token=_token(alpha, "viewer")
    ).codes == ["FORBIDDEN"]


def test_anonymous_callers_read_nothing(gql, alpha):
    response = gql.post("{ customers(first: 5) { totalCount } }", host=alpha.host)
    assert response.codes == ["UNAUTHENTICATED"]
