"""A shared GraphiQL link in Debian's Chromium: opened signed out, it goes through the tenant's
login page and back to the link, GraphiQL's editors hold the link's query and variables, and
the execute button runs the operation the link names."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

QUERY = "query A { tenant { slug } }\nquery B($n: Int!) { members(first: $n) { totalCount edges { node { role } } } }"
VARIABLES = '{"n": 2}'


def _editor_text(browser, selector: str) -> str:
    return browser.execute_script(
        "const el = document.querySelector(arguments[0]); return el && el.CodeMirror.getValue();",
        selector,
    )


def test_a_shared_link_opens_with_its_operation_and_runs_it(browser, asgi_server, db):
    link = asgi_server.url(
        "alpha.localhost",
        "/graphql/?" + urlencode({"query": QUERY, "variables": VARIABLES, "operationName": "B"}),
    )
    browser.get(link)
    WebDriverWait(browser, 15).until(EC.presence_of_element_located((By.ID, "login-submit")))
    browser.find_element(By.ID, "email").send_keys("owner@alpha.test")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return document.body.dataset.graphiqlReady") == "1"
    )
    assert browser.current_url == link  # back on the link after signing in

    assert _editor_text(browser, ".graphiql-query-editor .CodeMirror") == QUERY
    WebDriverWait(browser, 5).until(
        lambda d: _editor_text(d, ".graphiql-editor-tool .CodeMirror") == VARIABLES
    )
    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    WebDriverWait(browser, 15).until(
        lambda d: "totalCount" in d.find_element(By.CSS_SELECTOR, ".graphiql-response").text
    )
    result = browser.find_element(By.CSS_SELECTOR, ".graphiql-response").text
    assert '"totalCount": 5' in result and result.count('"role"') == 2  # B, with n = 2
    assert "slug" not in result  # not A
    problems = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert problems == []
