"""The API reference in the browser (issue 32): the gateway serves Swagger UI at /docs from
the npm package the bootstrap installs, under a strict Content-Security-Policy; in Debian's
headless chromium the page lists every operation of the description, and a "try it out"
call with a token succeeds."""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e import screenshots
from tests.e2e.http_client import call
from tests.e2e.test_http_api_v2 import sign_in
from tests.stack import ROOT, require_binary

OPERATIONS = sum(len(methods) for methods in json.loads((ROOT / "docs" / "openapi.json").read_text())["paths"].values())


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = require_binary("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1280,2000"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(require_binary("chromedriver")))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_the_docs_page_and_its_assets_carry_a_strict_policy(processes):
    for path in ("/docs/", "/docs/init.js", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"):
        reply = call(processes.gateway, "GET", path)
        assert reply.status == 200, path
        policy = reply.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy, policy
        assert "unsafe-eval" not in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        assert reply.headers["x-content-type-options"] == "nosniff"
    page = call(processes.gateway, "GET", "/docs/").raw.decode()
    assert "<script>" not in page and "https://" not in page  # no inline script, no CDN
    assert call(processes.gateway, "GET", "/docs").status == 301  # to /docs/
    assert call(processes.gateway, "POST", "/docs/").status == 405


def test_the_page_lists_every_operation_and_a_try_it_out_call_with_a_token_succeeds(processes, browser):
    _, token = sign_in(processes.gateway)
    key = f"docs/{uuid.uuid4().hex[:8]}"
    path = f"/v2/namespaces/me/pairs/{urllib.parse.quote(key, safe='')}"
    assert call(processes.gateway, "PUT", path, {"shown": True}, token=token).status == 200
    wait = WebDriverWait(browser, 30)
    browser.get(f"http://{processes.gateway}/docs/")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) == OPERATIONS)
    screenshots.save(browser, "api-docs")  # docs/images/api-docs.png is one of these

    # Authorize with the token: kept in the page's memory only.
    browser.find_element(By.CSS_SELECTOR, "button.authorize").click()
    field = wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, ".auth-container input")))
    field.send_keys(token)
    browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper button.authorize").click()
    browser.find_element(By.CSS_SELECTOR, ".btn-done").click()
    assert browser.execute_script("return window.localStorage.length + window.sessionStorage.length") == 0

    # GetPair: expand, try it out, fill the path, execute.
    operation = browser.find_element(By.CSS_SELECTOR, ".opblock[id$='-kv_v2_GetPair']")
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(lambda d: operation.find_elements(By.CSS_SELECTOR, ".try-out__btn"))[0].click()
    inputs = {i.get_attribute("placeholder"): i for i in operation.find_elements(By.CSS_SELECTOR, "td input")}
    inputs["namespace"].send_keys("me")
    inputs["key"].send_keys(key)
    operation.find_element(By.CSS_SELECTOR, ".execute").click()

    def answered(_driver) -> list[str]:
        cells = operation.find_elements(By.CSS_SELECTOR, ".live-responses-table td.response-col_status")
        return [cell.text.split()[0] for cell in cells if cell.text.strip()[:3].isdigit()]

    assert wait.until(answered) == ["200"], operation.find_element(By.CSS_SELECTOR, ".responses-inner").text[:1500]
    assert '"shown": true' in operation.find_element(By.CSS_SELECTOR, ".live-responses-table").text
    violations = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert violations == [], violations
    # The answer, without the curl line above it (it shows the token).
    operation.find_element(By.CSS_SELECTOR, ".live-responses-table").screenshot(
        str(screenshots.SCREENSHOTS / "api-docs-try-it-out.png"))  # fmt: skip
