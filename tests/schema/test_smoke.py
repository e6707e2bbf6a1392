from tests.conftest import token_for


def test_me_as_owner(gql, alpha):
    token = token_for(alpha.email("owner"), alpha.tenant)
    response = gql.post("{ me { via role user { email } } }", host=alpha.host, token=token)
    assert response.status == 200, response.body
    assert response.data == {
        "me": {"via": "jwt", "role": "OWNER", "user": {"email": "owner@alpha.test"}}
    }
