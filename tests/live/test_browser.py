"""GraphiQL in Debian's Chromium: sign in on the tenant's login page, run a query, and receive a
subscription over the session-authenticated WebSocket; all assets from our own static files."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(browser, asgi_server, host="alpha.localhost", email="owner@alpha.test"):
    browser.get(asgi_server.url(host, "/graphql/"))
    WebDriverWait(browser, 15).until(EC.presence_of_element_located((By.ID, "login-submit")))
    assert "/login/" in browser.current_url
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()


def test_graphiql_signs_in_runs_a_query_and_a_subscription(browser, asgi_server):
    _sign_in(browser, asgi_server)
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return document.body.dataset.graphiqlReady") == "1"
    )
    assert browser.current_url.endswith("/graphql/")
    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    WebDriverWait(browser, 15).until(
        lambda d: "owner@alpha.test" in d.find_element(By.CSS_SELECTOR, ".graphiql-response").text
    )
    result = browser.find_element(By.CSS_SELECTOR, ".graphiql-response").text
    assert '"via": "session"' in result and '"role": "OWNER"' in result
    # The page's own graphql-ws client, authenticated by the session cookie alone.
    times = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const client = graphqlWs.createClient({url: 'ws://' + location.host + '/graphql/',
        lazy: true, retryAttempts: 0});
        const got = [];
        client.subscribe({query: 'subscription { serverTime(interval: 0.1, count: 2) }'}, {
          next: (m) => got.push(m.data && m.data.serverTime),
          error: (e) => done('error: ' + JSON.stringify(e && (e.code || e.message || e))),
          complete: () => done(got),
        });
        """
    )
    assert isinstance(times, list) and len(times) == 2, times
    problems = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert problems == []  # no CSP violations, no failed asset loads


def test_a_member_of_another_tenant_cannot_sign_in(browser, asgi_server):
    _sign_in(browser, asgi_server, email="owner@beta.test")
    error = WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "login-error")))
    assert "Wrong email or password" in error.text
    browser.get(asgi_server.url("alpha.localhost", "/graphql/"))
    assert "/login/" in browser.current_url
