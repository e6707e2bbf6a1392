"""Pooled connections never carry a tenant over (DESIGN §12, §13): many concurrent requests for
many tenants, through two server processes sharing POOL_SIZE server connections, each answered
from its own tenant's schema, while PgBouncer never holds more than POOL_SIZE server connections.
A server connection serves request after request of different tenants here (the clients
outnumber it many times), so a search_path left from one request would show in the next."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.multiprocess.conftest import POOL_SIZE, SLUGS, TIMEOUT, Stack

pytestmark = pytest.mark.pooled

# Each request reads the public schema (the host's tenant, the token's user) and then its own.
QUERY = "{ tenant { slug } products(first: 5) { edges { node { name } } } }"

# (tenant, server, credential): "own" is the tenant's own token; "foreign" another tenant's,
# which must be refused without reading anything of either.
requests = st.lists(
    st.tuples(
        st.sampled_from(SLUGS), st.sampled_from((0, 1)), st.sampled_from(("own", "own", "foreign"))
    ),
    min_size=POOL_SIZE * 3,
    max_size=POOL_SIZE * 10,
)


class PoolWatch:
    """Samples PgBouncer's server connections while the block runs; the highest count seen."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.highest, self._stop = stack, 0, threading.Event()

    def __enter__(self) -> PoolWatch:
        self._thread = threading.Thread(target=self._sample)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.highest = max(self.highest, self.stack.servers_in_pool())

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.highest = max(self.highest, self.stack.servers_in_pool())


async def _ask(stack: Stack, slug: str, server: int, credential: str) -> tuple[int, Any]:
    shop = stack.shops[slug]
    other = stack.shops[SLUGS[(SLUGS.index(slug) + 1) % len(SLUGS)]]
    token = shop.tokens["owner"] if credential == "own" else other.tokens["owner"]
    port = stack.servers[server].port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as client:
        response = await client.post(
            "/graphql/",
            json={"query": QUERY},
            headers={"Host": f"{shop.host}:{port}", "Authorization": f"Bearer {token}"},
        )
    return response.status_code, response.json()


@settings(max_examples=8)
@given(batch=requests)
def test_every_concurrent_answer_is_from_its_own_tenant_and_the_pool_stays_bounded(stack, batch):
    async def all_at_once() -> list[tuple[int, Any]]:
        return await asyncio.gather(*(_ask(stack, *request) for request in batch))

    with PoolWatch(stack) as watch:
        answers = asyncio.run(all_at_once())

    for (slug, _server, credential), (status, body) in zip(batch, answers, strict=True):
        if credential == "own":
            assert status == 200 and "errors" not in body, body
            assert body["data"]["tenant"]["slug"] == slug
            names = {edge["node"]["name"] for edge in body["data"]["products"]["edges"]}
            assert names == {stack.shops[slug].product_name}, (slug, names)
        else:
            assert status == 403 and body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert 0 < watch.highest <= POOL_SIZE
