"""Member management: add/invite, change role, remove, the last owner, who may do what."""

from django_tenants.utils import tenant_context

from apps.accounts.models import Membership
from apps.audit.models import AuditEntry
from tests.conftest import token_for

ADD = """mutation($email: String!, $role: Role!) {
  memberAdd(email: $email, role: $role) { member { id role user { email } } invitationToken userErrors { field code } }
}"""
UPDATE = (
    "mutation($id: ID!, $role: Role!) { memberUpdateRole(id: $id, role: $role) { member "
    "{ role } userErrors { field code } } }"
)
REMOVE = "mutation($id: ID!) { memberRemove(id: $id) { removedId userErrors { field code } } }"
ACCEPT = """mutation($token: String!, $password: String!) {
  invitationAccept(token: $token, password: $password) { user { email } userErrors { field code } }
}"""
MEMBERS = "{ members(first: 50) { totalCount edges { node { id role user { email } } } } }"


def _member_id(gql, fixture, token, email):
    edges = gql.post(MEMBERS, host=fixture.host, token=token).data["members"]["edges"]
    return next(edge["node"]["id"] for edge in edges if edge["node"]["user"]["email"] == email)


def test_invite_a_new_person_who_then_signs_in(gql, alpha):
    owner = token_for(alpha.email("owner"), alpha.tenant)
    added = gql.post(
        ADD, {"email": "New.Person@Example.com", "role": "ANALYST"}, host=alpha.host, token=owner
    )
    payload = added.data["memberAdd"]
    assert payload["userErrors"] == [] and payload["member"]["role"] == "ANALYST"
    assert payload["member"]["user"]["email"] == "new.person@example.com"
    accepted = gql.post(
        ACCEPT, {"token": payload["invitationToken"], "password": "a-Long-pass-42"}, host=alpha.host
    )
    assert accepted.data["invitationAccept"] == {
        "user": {"email": "new.person@example.com"},
        "userErrors": [],
    }
    reused = gql.post(
        ACCEPT,
        {"token": payload["invitationToken"], "password": "other-Long-pass-42"},
        host=alpha.host,
    )
    assert reused.data["invitationAccept"]["userErrors"] == [
        {"field": "token", "code": "INVALID_TOKEN"}
    ]
    signed_in = gql.post(
        'mutation { tokenCreate(email: "new.person@example.com", password: "a-Long-pass-42") { token } }',
        host=alpha.host,
    )
    assert signed_in.data["tokenCreate"]["token"]
    with tenant_context(alpha.tenant):
        assert AuditEntry.objects.filter(
            action="member.add", changes__email="new.person@example.com"
        ).exists()


def test_an_invitation_is_good_on_its_own_tenant_only(gql, alpha, beta):
    owner = token_for(alpha.email("owner"), alpha.tenant)
    token = gql.post(
        ADD, {"email": "only-alpha@example.com", "role": "VIEWER"}, host=alpha.host, token=owner
    )
    invitation = token.data["memberAdd"]["invitationToken"]
    elsewhere = gql.post(
        ACCEPT, {"token": invitation, "password": "a-Long-pass-42"}, host=beta.host
    )
    assert elsewhere.data["invitationAccept"]["userErrors"] == [
        {"field": "token", "code": "INVALID_TOKEN"}
    ]


def test_bad_input_is_a_user_error_and_writes_nothing(gql, alpha):
    admin = token_for(alpha.email("admin"), alpha.tenant)
    before = Membership.objects.count()
    bad_email = gql.post(
        ADD, {"email": "not-an-email", "role": "VIEWER"}, host=alpha.host, token=admin
    )
    assert bad_email.data["memberAdd"]["userErrors"] == [{"field": "email", "code": "INVALID"}]
    duplicate = gql.post(
        ADD, {"email": alpha.email("viewer"), "role": "VIEWER"}, host=alpha.host, token=admin
    )
    assert duplicate.data["memberAdd"]["userErrors"] == [{"field": "email", "code": "DUPLICATE"}]
    too_high = gql.post(
        ADD, {"email": "boss@example.com", "role": "OWNER"}, host=alpha.host, token=admin
    )
    assert too_high.data["memberAdd"]["userErrors"] == [
        {"field": "role", "code": "PERMISSION_DENIED"}
    ]
    assert Membership.objects.count() == before


def test_admins_cannot_touch_owners_but_owners_can_promote(gql, alpha):
    admin = token_for(alpha.email("admin"), alpha.tenant)
    owner = token_for(alpha.email("owner"), alpha.tenant)
    owner_id = _member_id(gql, alpha, owner, alpha.email("owner"))
    demote = gql.post(UPDATE, {"id": owner_id, "role": "VIEWER"}, host=alpha.host, token=admin)
    assert demote.data["memberUpdateRole"]["userErrors"] == [
        {"field": "role", "code": "PERMISSION_DENIED"}
    ]
    staff_id = _member_id(gql, alpha, owner, alpha.email("staff"))
    promoted = gql.post(UPDATE, {"id": staff_id, "role": "OWNER"}, host=alpha.host, token=owner)
    assert promoted.data["memberUpdateRole"] == {"member": {"role": "OWNER"}, "userErrors": []}


def test_the_last_owner_cannot_be_removed_or_demoted(gql, alpha):
    owner = token_for(alpha.email("owner"), alpha.tenant)
    owner_id = _member_id(gql, alpha, owner, alpha.email("owner"))
    removed = gql.post(REMOVE, {"id": owner_id}, host=alpha.host, token=owner)
    assert removed.data["memberRemove"]["userErrors"] == [{"field": "id", "code": "LAST_OWNER"}]
    demoted = gql.post(UPDATE, {"id": owner_id, "role": "ADMIN"}, host=alpha.host, token=owner)
    assert demoted.data["memberUpdateRole"]["userErrors"] == [{"field": "id", "code": "LAST_OWNER"}]
    assert Membership.objects.filter(tenant=alpha.tenant, role="owner").count() == 1


def test_remove_a_member_and_their_token_stops_working(gql, alpha):
    owner = token_for(alpha.email("owner"), alpha.tenant)
    viewer = token_for(alpha.email("viewer"), alpha.tenant)
    viewer_id = _member_id(gql, alpha, owner, alpha.email("viewer"))
    removed = gql.post(REMOVE, {"id": viewer_id}, host=alpha.host, token=owner)
    assert removed.data["memberRemove"] == {"removedId": viewer_id, "userErrors": []}
    assert gql.post("{ me { role } }", host=alpha.host, token=viewer).codes == ["FORBIDDEN"]


def test_another_tenants_member_id_is_not_found(gql, alpha, beta):
    beta_owner = token_for(beta.email("owner"), beta.tenant)
    beta_viewer_id = _member_id(gql, beta, beta_owner, beta.email("viewer"))
    alpha_owner = token_for(alpha.email("owner"), alpha.tenant)
    response = gql.post(REMOVE, {"id": beta_viewer_id}, host=alpha.host, token=alpha_owner)
    assert response.data["memberRemove"]["userErrors"] == [{"field": "id", "code": "NOT_FOUND"}]
    assert Membership.objects.filter(tenant=beta.tenant, user__email=beta.email("viewer")).exists()
