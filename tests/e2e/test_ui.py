"""The web console at /ui/ (issue 34, docs/ui.md) in Debian's headless chromium through the
real gateway: accounts, browsing, editing with conflicts made by the `tkv` CLI, live
updates, sharing, stored markup kept inert, axe-core on each screen at desktop and 360 px,
and the 10,000-key folder (timed and printed, not asserted). Screenshots of each screen go to
build/screenshots/ui-*.png (tests/e2e/screenshots.py)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e import screenshots
from tests.e2e.http_client import call
from tests.e2e.test_http_api_v2 import PASSWORD, pairs_path, sign_in
from tests.stack import ROOT, NeverHappened, require_binary

TKV = str(Path(sys.executable).parent / "tkv")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
UI_FILES = ("/ui/", "/ui/app.js", "/ui/api.js", "/ui/dom.js", "/ui/style.css")
DESKTOP, PHONE = (1280, 1000), (360, 800)
AXE_RESULTS: list[list[dict]] = []  # every check's violations of any impact, printed at the end


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = require_binary("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(require_binary("chromedriver")))
    driver.set_page_load_timeout(30)
    driver.set_window_size(*DESKTOP)
    yield driver
    driver.quit()


@pytest.fixture(scope="module", autouse=True)
def axe_record():
    """After the module: the findings of every axe run of any impact, for the record (the
    tests fail on serious and critical ones)."""
    yield
    lesser = sorted({(v["id"], v["impact"]) for found in AXE_RESULTS for v in found})
    print(f"\naxe-core: {len(AXE_RESULTS)} checks; every finding: {lesser or 'none'}")


class Wait(WebDriverWait):
    """A wait whose timeout is an assertion about the console (NeverHappened), not an error
    of the test: what it waited for did not happen."""

    def until(self, method, message: str = ""):
        try:
            return super().until(method, message)
        except TimeoutException as error:
            # What the page said then: its status lines and errors.
            said = self._driver.execute_script(
                "return [...document.querySelectorAll('[role=status], [role=alert], .error')]"
                ".filter(e => e.textContent).map(e => `${e.id}: ${e.textContent}`)"
            )
            raise NeverHappened(
                f"not true within {self._timeout} s: {message or method.__qualname__}; the page said {said}"
            ) from error


class Console:
    """The console in one browser tab, driven as a user would: by labels and buttons."""

    def __init__(self, browser: WebDriver, gateway: str):
        self.browser, self.gateway = browser, gateway
        self.wait = Wait(browser, 20, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,))

    def open(self) -> None:
        self.browser.get(f"http://{self.gateway}/ui/")
        self.browser.execute_script("sessionStorage.clear()")
        self.browser.get(f"http://{self.gateway}/ui/")
        self.visible("#sign-in-form")

    def find(self, selector: str):
        return self.browser.find_element(By.CSS_SELECTOR, selector)

    def visible(self, selector: str):
        return self.wait.until(
            lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()), None)
        )

    def text_of(self, selector: str, contains: str) -> str:
        self.wait.until(lambda d: contains in d.find_element(By.CSS_SELECTOR, selector).text)
        return self.find(selector).text

    def type(self, selector: str, text: str) -> None:
        field = self.visible(selector)
        field.clear()
        field.send_keys(text)

    def sign_in(self, login: str, password: str = PASSWORD) -> None:
        self.type("#sign-in-login", login)
        self.type("#sign-in-password", password)
        self.find("#sign-in-form button[type=submit]").click()
        self.text_of("#who", login)
        self.wait.until(lambda d: "Live" in d.find_element(By.CSS_SELECTOR, "#live").text)
        self.listed()

    def key(self, key: str):
        return self.visible(f'#entries button[data-key="{css_string(key)}"]')

    def keys_shown(self) -> list[str]:
        return self.browser.execute_script(
            "return [...document.querySelectorAll('#entries button[data-key]')].map(b => b.dataset.key)"
        )

    def folder(self, folder: str) -> None:
        self.visible(f'#entries button[data-folder="{css_string(folder)}"]').click()
        self.listed()

    def listed(self) -> None:
        """Waits for the open folder's page to be shown."""
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#entries").get_attribute("aria-busy") == "false")

    def open_key(self, key: str) -> None:
        self.key(key).click()
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#editor-key").get_attribute("value") == key)

    def edit_value(self, text: str) -> None:
        field = self.visible("#editor-value")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(text)

    def save(self) -> None:
        """Save, and wait for this save's answer (not an earlier one's notice)."""
        self.browser.execute_script("document.querySelector('#editor-notice').textContent = ''")
        self.find("#save").click()
        self.text_of("#editor-notice", "Saved")

    def new_key(self, key: str, value: str, ttl: str = "") -> None:
        self.find("#new-key").click()
        self.type("#editor-key", key)
        self.edit_value(value)
        if ttl:
            self.type("#editor-ttl", ttl)
        self.save()

    def shot(self, name: str) -> None:
        screenshots.save(self.browser, f"ui-{name}")

    def axe(self) -> list[dict]:
        """axe-core's serious and critical violations of the page as it is now."""
        assert AXE.exists(), f"{AXE} is missing: run `make test` (scripts/bootstrap.sh runs npm ci)"
        if not self.browser.execute_script("return typeof window.axe === 'object'"):
            self.browser.execute_script(AXE.read_text())  # through WebDriver: not a page script
        found = self.browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document).then(r => done({passes: r.passes.length, violations: r.violations.map("
            "v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))}));"
        )
        assert found["passes"] > 10, found  # it did check the page
        AXE_RESULTS.append(found["violations"])
        return [v for v in found["violations"] if v["impact"] in ("serious", "critical")]

    def policy_violations(self) -> list[str]:
        return [e["message"] for e in self.browser.get_log("browser") if "Content Security Policy" in e["message"]]


def css_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ")


@pytest.fixture
def console(browser, processes) -> Console:
    console = Console(browser, processes.gateway)
    browser.set_window_size(*DESKTOP)
    console.open()
    return console


@pytest.fixture
def tkv(processes, tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "TKV_SERVER": processes.gateway}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([TKV, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    return run


def user(processes) -> tuple[str, str]:
    """A registered user (through the API) and their token."""
    return sign_in(processes.gateway)


def test_every_console_file_carries_a_strict_policy(processes):
    for path in UI_FILES:
        reply = call(processes.gateway, "GET", path)
        assert reply.status == 200, path
        policy = reply.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy, policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy
        assert reply.headers["x-content-type-options"] == "nosniff"
    assert call(processes.gateway, "GET", "/ui/app.js").headers["content-type"].startswith("text/javascript")
    page = call(processes.gateway, "GET", "/ui/").raw.decode()
    assert "<script>" not in page and "https://" not in page and "http://" not in page  # no inline script, no CDN
    for source in (ROOT / "ui").glob("*.js"):  # markup is never parsed; the token never persists
        code = source.read_text()
        for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "localStorage.", "eval("):
            assert sink not in code, (source, sink)
    assert call(processes.gateway, "GET", "/ui").status == 301
    # No CORS: another site's page cannot send the Authorization header (docs/ui.md, "Security").
    preflight = call(processes.gateway, "OPTIONS", "/v2/namespaces/me/pairs", headers={
        "origin": "https://elsewhere.example", "access-control-request-method": "GET",
        "access-control-request-headers": "authorization"})  # fmt: skip
    assert not [name for name in preflight.headers if name.startswith("access-control-allow")], preflight.headers
    assert call(processes.gateway, "POST", "/ui/").status == 405
    missing = call(processes.gateway, "GET", "/ui/missing.js")
    assert (missing.status, missing.headers.get("content-type")) == (404, "application/json"), missing


def test_register_names_each_broken_rule_at_its_field_then_signs_in_and_out(console):
    console.type("#register-login", "x")
    console.type("#register-password", "short")
    console.type("#register-name", "-Anna")
    console.type("#register-surname", "Smith")
    console.find("#register-form button[type=submit]").click()
    assert "Incorrect login" in console.text_of("#register-login-error", "length")
    assert "Incorrect password" in console.text_of("#register-password-error", "8")
    assert "(name" in console.text_of("#register-name-error", "Incorrect initial")
    assert console.find("#register-surname-error").text == ""
    assert console.find("#register-login").get_attribute("aria-invalid") == "true"
    console.shot("register-errors")
    assert console.axe() == []

    login = "ui" + uuid.uuid4().hex[:10]
    for field, text in (("login", login), ("password", PASSWORD), ("name", "Anna")):
        console.type(f"#register-{field}", text)
    console.find("#register-form button[type=submit]").click()
    console.text_of("#register-status", "successfully registered")
    console.type("#sign-in-password", PASSWORD)  # the login is filled in
    console.find("#sign-in-form button[type=submit]").click()
    console.text_of("#who", login)
    token_places = console.browser.execute_script("return [localStorage.length, location.href, document.cookie]")
    assert token_places == [0, f"http://{console.gateway}/ui/", ""]
    console.find("#sign-out").click()
    console.text_of("#auth-notice", "signed out")
    assert console.browser.execute_script("return sessionStorage.length") == 0
    assert console.policy_violations() == []


def test_a_password_change_needs_the_old_one_and_keeps_the_session(console, processes):
    login, old_token = user(processes)
    console.sign_in(login)
    console.find("#show-account").click()
    console.type("#old-password", "Wr0ng!password")
    console.type("#new-password", "N3w!password")
    console.find("#password-form button[type=submit]").click()
    console.text_of("#password-error", "password")
    console.type("#old-password", PASSWORD)
    console.find("#password-form button[type=submit]").click()
    console.text_of("#password-status", "has been changed")
    assert call(processes.gateway, "GET", pairs_path("me"), token=old_token).status == 401  # revoked
    console.text_of("#live", "Live")  # signed in again with the new password, watching again
    console.new_key("after", "1")
    console.find("#sign-out").click()
    console.sign_in(login, "N3w!password")


def test_create_edit_and_delete_a_key_then_one_with_a_ttl_expires(console, processes):
    login, token = user(processes)
    console.sign_in(login)
    console.new_key("app/color", '"blue"')
    console.folder("app/")
    console.key("app/color")
    assert "Version" in console.find("#editor-meta").text and login in console.find("#editor-meta").text

    console.edit_value('{"shade": "dark blue", "n": [1, 2]}')
    console.save()
    stored = call(processes.gateway, "GET", pairs_path("me", "app/color"), token=token).body
    assert stored["value"] == {"shade": "dark blue", "n": [1, 2]}

    console.edit_value("{not json")  # checked before anything is sent
    console.find("#save").click()
    console.text_of("#editor-error", "not valid JSON")
    assert console.find("#editor-value").get_attribute("aria-invalid") == "true"
    assert (
        call(processes.gateway, "GET", pairs_path("me", "app/color"), token=token).body["version"] == stored["version"]
    )
    console.shot("editor")

    console.find("#delete").click()
    console.text_of("#list-status", "Deleted app/color")
    assert call(processes.gateway, "GET", pairs_path("me", "app/color"), token=token).status == 404
    assert "app/color" not in console.keys_shown()

    console.new_key("app/brief", '"gone soon"', ttl="2")
    assert console.find("#editor-meta").text.count("Expires") == 1 and "never" not in console.find("#editor-meta").text
    console.key("app/brief")
    # The expiry sweep removes it within 2 s of its expiry; the live folder drops it.
    console.wait.until(lambda d: "app/brief" not in console.keys_shown())
    console.text_of("#editor-notice", "expired")


def test_a_cli_change_mid_edit_shows_both_values_and_overwrites_nothing_silently(console, processes, tkv):
    login, token = user(processes)
    console.sign_in(login)
    console.new_key("conf/limit", "10")
    tkv("login", login, "--password-stdin", stdin=PASSWORD + "\n")

    console.edit_value("20")  # being edited in the browser ...
    tkv("put", "conf/limit", "30")  # ... when the CLI changes it
    console.text_of("#editor-notice", "changed elsewhere")
    console.browser.execute_script("document.querySelector('#editor-notice').textContent = ''")
    console.find("#save").click()
    answered = (
        "return !document.querySelector('#conflict').hidden || document.querySelector('#editor-notice').textContent"
    )
    console.wait.until(lambda d: d.execute_script(answered))
    assert console.find("#conflict").is_displayed(), "the save went through over the CLI's change"
    assert "Someone saved version" in console.find("#conflict-text").text
    assert console.find("#conflict-mine").text == "20" and console.find("#conflict-theirs").text == "30"
    assert call(processes.gateway, "GET", pairs_path("me", "conf/limit"), token=token).body["value"] == 30
    console.shot("conflict")
    assert console.axe() == []

    console.find("#keep-mine").click()
    console.text_of("#editor-notice", "Saved")
    assert call(processes.gateway, "GET", pairs_path("me", "conf/limit"), token=token).body["value"] == 20

    console.edit_value("40")
    tkv("put", "conf/limit", "50")
    console.text_of("#editor-notice", "changed elsewhere")
    console.find("#save").click()
    console.visible("#take-theirs").click()
    console.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#editor-value").get_attribute("value") == "50")
    assert call(processes.gateway, "GET", pairs_path("me", "conf/limit"), token=token).body["value"] == 50

    console.edit_value("60")  # a delete of a version changed meanwhile deletes nothing
    tkv("put", "conf/limit", "70")
    console.text_of("#editor-notice", "changed elsewhere")
    console.find("#delete").click()
    console.text_of("#editor-error", "nothing was deleted")
    assert call(processes.gateway, "GET", pairs_path("me", "conf/limit"), token=token).body["value"] == 70


def test_a_cli_change_appears_live_in_the_open_folder(console, processes, tkv):
    """Printed, not asserted: from the CLI's start (its own start-up included) and, for puts
    over HTTP, from the answer of the write to the key's element in the page."""
    login, token = user(processes)
    console.sign_in(login)
    console.new_key("live/first", "1")
    console.folder("live/")
    tkv("login", login, "--password-stdin", stdin=PASSWORD + "\n")

    def shown_at(key: str, write) -> tuple[float, float]:
        """When the write started and ended, and when the key's element appeared (epoch s)."""
        console.browser.execute_script(
            "const key = arguments[0]; window.seen = null;"
            "new MutationObserver((_, observer) => {"
            "  if ([...document.querySelectorAll('#entries button')].some(b => b.dataset.key === key)) {"
            "    window.seen = performance.timeOrigin + performance.now(); observer.disconnect(); }"
            "}).observe(document.querySelector('#entries'), {childList: true, subtree: true});",
            key,
        )
        started = time.time()
        write()
        ended = time.time()
        console.key(key)
        seen = console.browser.execute_script("return window.seen") / 1000
        return seen - started, seen - ended

    by_cli = [shown_at(f"live/cli{n}", lambda n=n: tkv("put", f"live/cli{n}", str(n))) for n in range(5)]
    by_http = [
        shown_at(
            f"live/http{n}",
            lambda n=n: call(processes.gateway, "PUT", pairs_path("me", f"live/http{n}"), n, token=token),
        )
        for n in range(10)
    ]
    print(
        "\nlive update -> key shown in the open folder (s): CLI put, from the command's start "
        + ", ".join(f"{a:.3f}" for a, _ in by_cli)
        + "; HTTP PUT, from its answer "
        + ", ".join(f"{b:.3f}" for _, b in by_http)
    )


class CuttableProxy:
    """A TCP proxy to the gateway that can cut every connection and refuse new ones: a
    network drop under the browser, which keeps running (the page is served through it)."""

    def __init__(self, target: str):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.passing = True
        self.sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.passing:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.passing = False
        for end in list(self.sockets):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_a_dropped_watch_resumes_from_its_revision_with_no_gap(browser, processes):
    proxy = CuttableProxy(processes.gateway)
    console = Console(browser, proxy.address)
    try:
        console.open()
        login, token = user(processes)
        console.sign_in(login)
        console.new_key("gap/first", "1")
        console.folder("gap/")
        proxy.cut()
        console.text_of("#live", "Reconnecting")  # the stream broke; retries fail while cut
        for index in range(3):  # changes the console cannot see as they happen
            assert call(processes.gateway, "PUT", pairs_path("me", f"gap/k{index}"), index, token=token).status == 200
        assert call(processes.gateway, "DELETE", pairs_path("me", "gap/first"), token=token).status == 200
        assert console.keys_shown() == ["gap/first"]
        proxy.passing = True
        console.wait.until(lambda d: console.keys_shown() == ["gap/k0", "gap/k1", "gap/k2"])
        console.text_of("#live", "Live")
    finally:
        proxy.close()


def test_an_ended_session_brings_back_sign_in_and_keeps_the_edit(console, processes):
    login, _ = user(processes)
    console.sign_in(login)
    console.new_key("draft", '"first"')
    console.edit_value('"half-written"')
    token = console.browser.execute_script("return sessionStorage.getItem('tkv.token')")
    assert call(processes.gateway, "GET", "/api/logout", token=token).status == 200  # as if it expired
    console.find("#save").click()
    console.text_of("#auth-notice", "session has ended")
    console.sign_in(login)
    assert console.find("#editor-value").get_attribute("value") == '"half-written"'
    console.save()
    # Neither token of the session is in any URL the page requested, nor in a log so far.
    tokens = [token, console.browser.execute_script("return sessionStorage.getItem('tkv.token')")]
    urls = console.browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any("/v2/namespaces/me/pairs" in url for url in urls)
    assert [url for url in urls for t in tokens if t in url] == []
    logs = {path.name: path.read_text(errors="replace") for path in processes.stack.data_dir.glob("*.log")}
    assert [name for name, text in logs.items() for t in tokens if t in text] == []


def test_a_grantee_sees_the_shared_prefix_and_is_refused_a_write(console, processes):
    owner, owner_token = user(processes)
    grantee, _ = user(processes)
    call(processes.gateway, "PUT", pairs_path("me", "pub/note"), "hello", token=owner_token)
    call(processes.gateway, "PUT", pairs_path("me", "private/x"), "secret", token=owner_token)
    console.sign_in(owner)
    console.find("#show-sharing").click()
    console.type("#grant-grantee", grantee)
    console.type("#grant-prefix", "pub/")
    console.find("#grant-form button[type=submit]").click()
    row = console.text_of("#grants-given", grantee)
    assert "pub/" in row
    console.shot("sharing")
    assert console.axe() == []
    # `shared` is everyone's: the owner's key there is found with the filter among all others'.
    shared_key = f"ui-{uuid.uuid4().hex[:8]}/x"
    assert call(processes.gateway, "PUT", pairs_path("shared", shared_key), 1, token=owner_token).status == 200
    console.find("#namespace").send_keys("shared")
    console.listed()
    console.type("#filter", shared_key.split("/")[0])
    console.listed()
    assert console.browser.execute_script("return document.querySelectorAll('#entries button').length") == 1
    console.visible(f'#entries button[data-folder="{shared_key.split("/")[0]}/"]').click()
    console.open_key(shared_key)  # opening the folder cleared the filter, which narrowed the top
    assert owner in console.find("#editor-meta").text and console.find("#filter").get_attribute("value") == ""
    console.find("#sign-out").click()

    console.sign_in(grantee)
    options = console.browser.execute_script(
        "return [...document.querySelectorAll('#namespace option')].map(o => o.text)"
    )
    assert f"{owner.lower()}: pub/ (reader)" in options
    console.find("#namespace").send_keys(Keys.END)  # the keyboard picks the last namespace
    console.key("pub/note")
    assert console.keys_shown() == ["pub/note"]  # private/ is not shown
    console.open_key("pub/note")
    console.edit_value('"changed"')
    console.find("#save").click()
    assert "do not let you write" in console.text_of("#editor-error", "grants")
    console.shot("grantee-refused")
    console.find("#sign-out").click()

    console.sign_in(owner)  # the owner changes the role, then revokes it
    console.find("#show-sharing").click()
    role = console.visible("#grants-given select")
    role.send_keys("Writer")
    console.wait.until(
        lambda d: (
            call(processes.gateway, "GET", "/v2/namespaces/me/grants", token=owner_token).body["grants"][0]["role"]
            == "WRITER"
        )
    )
    console.visible("#grants-given button").click()
    console.text_of("#grants-given", "shared nothing")


def test_stored_markup_is_shown_as_text_and_stays_inert(console, processes):
    login, token = user(processes)
    hostile = {
        "<script>window.pwned=1</script>": "<script>window.pwned=2</script>",
        '<img src=x onerror="window.pwned=3">': '<img src=x onerror="window.pwned=4">',
        'with space "quoted" \\ é 日本': {"<b>": '<img src=x onerror="window.pwned=5">'},
    }
    for key, value in hostile.items():
        assert call(processes.gateway, "PUT", pairs_path("me", key), value, token=token).status == 200
    console.sign_in(login)
    console.key('<img src=x onerror="window.pwned=3">')
    shown = "return [...document.querySelectorAll('#entries button')].map(b => b.textContent)"
    # Exactly as stored, spaces, quotes and UTF-8 included; the "/" of "</script>" is a folder.
    assert sorted(console.browser.execute_script(shown)) == sorted(
        ['<img src=x onerror="window.pwned=3">', 'with space "quoted" \\ é 日本', "<script>window.pwned=1</"]
    )
    for key in ('<img src=x onerror="window.pwned=3">', 'with space "quoted" \\ é 日本'):
        console.open_key(key)
        assert json.loads(console.find("#editor-value").get_attribute("value")) == hostile[key]
    console.folder("<script>window.pwned=1</")
    assert console.browser.execute_script(shown) == ["..", "script>"]
    console.open_key("<script>window.pwned=1</script>")
    assert json.loads(console.find("#editor-value").get_attribute("value")) == "<script>window.pwned=2</script>"
    console.shot("markup-as-text")
    assert console.browser.execute_script(
        "return [window.pwned, document.querySelectorAll('img, main script, b').length]"
    ) == [None, 0]


def test_ten_thousand_keys_open_one_page_at_a_time(console, processes):
    login, token = user(processes)
    for batch in range(10):
        pairs = [{"key": f"big/{batch * 1000 + n:05d}", "value": n} for n in range(1000)]
        reply = call(processes.gateway, "POST", pairs_path("me") + ":batchPut", {"pairs": pairs}, token=token)
        assert reply.status == 200, reply.raw[:300]
    console.sign_in(login)
    timings = []
    for _ in range(3):
        started = time.monotonic()
        console.folder("big/")
        console.key("big/00000")
        timings.append(
            (
                time.monotonic() - started,
                int(console.browser.execute_script("return document.body.dataset.folderOpenMs")),
            )
        )
        assert len(console.keys_shown()) == 200 and console.find("#more").is_displayed()
        console.visible("#crumbs button").click()  # back to the top
        console.listed()
    console.folder("big/")
    console.find("#more").click()
    console.wait.until(lambda d: len(console.keys_shown()) == 400)
    console.shot("folder")
    console.type("#filter", "0999")  # a prefix inside the open folder, asked of the server
    console.wait.until(lambda d: console.keys_shown() == [f"big/0999{n}" for n in range(10)])
    assert not console.find("#more").is_displayed()
    print(
        "\n10,000 keys under big/: folder open (click -> first 200 keys shown), wall s: "
        + ", ".join(f"{wall:.3f}" for wall, _ in timings)
        + "; in the page (list call + render), ms: "
        + ", ".join(str(ms) for _, ms in timings)
    )


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "360px"])
def test_each_screen_has_no_serious_accessibility_violation_and_fits(console, processes, size):
    console.browser.set_window_size(*size)
    name = "desktop" if size == DESKTOP else "360"
    found = {"sign-in": console.axe()}
    console.shot(f"sign-in-{name}")
    login, token = user(processes)
    call(processes.gateway, "PUT", pairs_path("me", "app/a key"), {"x": 1}, token=token)
    console.sign_in(login)
    console.folder("app/")
    found["browse"] = console.axe()
    console.open_key("app/a key")
    found["editor"] = console.axe()
    console.shot(f"editor-{name}")
    console.find("#show-sharing").click()
    found["sharing"] = console.axe()
    console.find("#show-account").click()
    found["account"] = console.axe()
    assert found == {screen: [] for screen in found}
    wide = console.browser.execute_script("return document.documentElement.scrollWidth")
    assert wide <= size[0], f"the page is {wide} px wide in a {size[0]} px window"

    # Keyboard: Tab reaches the folder's key, Enter opens it, focus is visible.
    console.find("#close-account").click()
    console.find("#new-key").send_keys(Keys.ESCAPE)
    console.browser.execute_script("document.querySelector('#filter').focus()")
    for _ in range(12):
        active = console.browser.switch_to.active_element
        if active.get_attribute("data-key") == "app/a key":
            break
        active.send_keys(Keys.TAB)
    active = console.browser.switch_to.active_element
    assert active.get_attribute("data-key") == "app/a key"
    assert console.browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle") == "solid"
    # A live change re-renders the list; the focused key keeps the focus.
    call(processes.gateway, "PUT", pairs_path("me", "app/b key"), 2, token=token)
    console.key("app/b key")
    assert console.browser.switch_to.active_element.get_attribute("data-key") == "app/a key"
    console.browser.switch_to.active_element.send_keys(Keys.ENTER)
    console.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#editor-key").get_attribute("value") == "app/a key")
    assert console.policy_violations() == []
