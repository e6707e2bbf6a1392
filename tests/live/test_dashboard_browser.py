"""The live dashboard in Debian's Chromium against a real server: sign in, open /dashboard/, place
an order through the API, and see today's revenue card and the latest orders change without a
reload; after the socket is cut, the page reconnects and keeps following. The shop is a committed
tenant of its own (the server sees committed data only), dropped afterwards."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from apps.catalog.models import Product, Variant
from apps.provisioning import services as tenant_services
from tenants.models import Tenant
from tests.conftest import PASSWORD, gid, token_for

pytestmark = pytest.mark.browser

SLUG = "dash-live"
OWNER = "owner@dash-live.test"
PLACE = """mutation($v: ID!) { orderCreate(input: {lines: [{variant: $v, quantity: 2}], email: "buyer@example.com"}) {
  order { number } userErrors { code message } } }"""


@pytest.fixture
def shop(tenants, django_db_blocker):
    """A committed tenant with its owner and one product at 12.50: the variant's id and the owner's API
    token."""
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        if (stale := Tenant.objects.filter(slug=SLUG).first()) is not None:
            stale.delete(force_drop=True)
        tenant = tenant_services.provision_tenant(
            name="Dash Live", slug=SLUG, owner_email=OWNER, owner_password=PASSWORD, currency="USD"
        )
        with tenant_context(tenant):
            product = Product.objects.create(
                name="Teapot", slug="teapot", status=Product.Status.ACTIVE
            )
            variant = Variant.objects.create(
                product=product, sku="POT", price=Decimal("12.50"), stock=100
            )
        token = token_for(OWNER, tenant)
        connection.set_schema_to_public()
    try:
        yield gid(tenant, "Variant", variant.pk), token
    finally:
        with django_db_blocker.unblock():
            connection.set_schema_to_public()
            Tenant.objects.get(pk=tenant.pk).delete(force_drop=True)


def _place_order(asgi_server, host: str, token: str, variant_id: str) -> int:
    with asgi_server.http(host) as client:
        response = client.post(
            "/graphql/",
            json={"query": PLACE, "variables": {"v": variant_id}},
            headers={"Authorization": f"Bearer {token}"},
        )
    payload = response.json()["data"]["orderCreate"]
    assert payload["userErrors"] == [], payload
    return payload["order"]["number"]


def _text(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def test_the_dashboard_follows_orders_live(browser, asgi_server, shop):
    variant_id, token = shop
    host = f"{SLUG}.localhost"
    browser.get(asgi_server.url(host, "/dashboard/"))
    WebDriverWait(browser, 15).until(EC.presence_of_element_located((By.ID, "login-submit")))
    browser.find_element(By.ID, "email").send_keys(OWNER)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return document.body.dataset.dashboardReady") == "1"
    )
    assert browser.current_url.endswith("/dashboard/")
    WebDriverWait(browser, 15).until(
        lambda d: d.find_element(By.ID, "live-status").get_attribute("data-state") == "live"
    )
    assert _text(browser, "live-revenue") == "$0.00"
    browser.execute_script("window.samePage = true")  # gone if the page reloads

    first = _place_order(asgi_server, host, token, variant_id)
    WebDriverWait(browser, 15).until(lambda d: _text(d, "live-revenue") == "$25.00")
    WebDriverWait(browser, 10).until(
        lambda d: f"#{first}" in d.find_element(By.ID, "latest-orders").text
    )
    assert _text(browser, "live-orders") == "1"

    # The socket drops: the page reconnects by itself and keeps following.
    browser.execute_script("window.dashboardSocket.terminate()")
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.ID, "live-status").get_attribute("data-state") == "live"
    )
    second = _place_order(asgi_server, host, token, variant_id)
    WebDriverWait(browser, 15).until(lambda d: _text(d, "live-revenue") == "$50.00")
    WebDriverWait(browser, 10).until(
        lambda d: f"#{second}" in d.find_element(By.ID, "latest-orders").text
    )
    assert browser.execute_script("return window.samePage") is True
    problems = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert problems == []  # no CSP violations, no failed asset loads
