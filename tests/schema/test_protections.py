import json, time
from django.test import override_settings
from tests.conftest import token_for

def test_probe(gql, alpha):
    t = token_for(alpha.email("admin"), alpha.tenant)
    for n in (3, 4):
        q = "{ __schema { types { " + "fields { type { " * n + "name" + " } }" * n + " } } }"
        r = gql.post(q, host=alpha.host, token=t)
        print("intro", n, r.status, len(json.dumps(r.body)), r.errors)
    q = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { fields { name } } } } } } } } } } } } } } } } }"
    r = gql.post(q, host=alpha.host, token=t)
    print("intro of", r.status, len(json.dumps(r.body)), r.errors)
    with override_settings(GRAPHQL_MAX_DEPTH=3):
        q = "{ __type(name: \"Query\") { fields { type { ofType { fields { type { ofType { fields { name } } } } } } } } }"
        r = gql.post(q, host=alpha.host, token=t)
        print("type", r.status, len(json.dumps(r.body)), r.errors)
    assert 0
