"""The dashboard (/ui/) in a real headless Chromium (Debian's, through its chromedriver),
against a real executor serving in a subprocess. Every page a test reaches is saved as a
screenshot under test-output/dashboard/ for a person to look at."""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import GROUPS, free_port
from tests.integration.serving import serve, stop

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must fetch nothing

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "dashboard"
TOKEN = "s3cret-token"
# Markup that would run if the page ever parsed a value as HTML.
MARKUP = '<script>window.__hacked = 1</script><img src=x onerror="window.__hacked = 2">'


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail(
            "chromium and chromium-driver are needed: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


class Server:
    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.token = token

    def json(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else orjson.dumps(body)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return orjson.loads(response.read())

    def route(self, app: str, path: str, **fields: Any) -> None:
        self.json("PUT", f"/v1/apps/{app}/routes{path}", {"route": fields})


def _serving(tmp: Path, **env: str) -> Iterator[Server]:
    port = free_port()
    process = serve(tmp / "executor.db", port, tmp / "server.log", **env)
    url = f"http://127.0.0.1:{port}"
    try:
        group = sqlite3.connect(tmp / "executor.db").execute("SELECT value FROM meta").fetchone()
        GROUPS.add(group[0])
        yield Server(url, env.get("EXECUTOR_API_TOKEN"))
    finally:
        stop(process)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serving(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serving(tmp_path_factory.mktemp("dashboard-token"), EXECUTOR_API_TOKEN=TOKEN)


def wait(driver: WebDriver, seconds: float = 15) -> WebDriverWait:
    return WebDriverWait(driver, seconds)


def open_page(driver: WebDriver, server: Server, hash_: str) -> None:
    driver.get(f"{server.url}/ui/#{hash_}")


def text_of(driver: WebDriver, css: str, contains: str = "", seconds: float = 15) -> str:
    """The element's text once it holds `contains`."""
    wait(driver, seconds).until(
        seen.text_to_be_present_in_element((By.CSS_SELECTOR, css), contains)
    )
    return driver.find_element(By.CSS_SELECTOR, css).text


def shot(driver: WebDriver, name: str) -> None:
    """The whole page, below the fold too."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    options = {"format": "png", "captureBeyondViewport": True, "clip": clip}
    data = driver.execute_cdp_cmd("Page.captureScreenshot", options)["data"]
    (SHOTS / f"{name}.png").write_bytes(base64.b64decode(data))


def nothing_ran(driver: WebDriver) -> None:
    assert driver.execute_script("return window.__hacked") is None
    scripts = driver.execute_script("return [...document.scripts].map((s) => s.src)")
    assert [s.rsplit("/", 1)[1] for s in scripts] == ["app.js"]
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not [e for e in errors if "Content Security Policy" in e["message"]], errors


def fill(driver: WebDriver, form: str, **values: str) -> None:
    for name, value in values.items():
        field = driver.find_element(By.CSS_SELECTOR, f"#{form} [name={name}]")
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        else:
            field.clear()
            field.send_keys(value)


# -- served by the executor ------------------------------------------------------------


def test_the_dashboard_is_served_from_the_package_with_its_policy(server):
    with urllib.request.urlopen(f"{server.url}/ui/") as response:
        page = response.read().decode()
        policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert '<script src="app.js"></script>' in page
    for name in ("app.js", "style.css"):
        with urllib.request.urlopen(f"{server.url}/ui/{name}") as response:
            body = response.read().decode()
            assert response.headers["Content-Security-Policy"] == policy
        # Nothing from elsewhere: no URL of another origin in the page's own files.
        assert "http://" not in body.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in body
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{server.url}/ui/..%2Fapi%2Fui.py")
    assert missing.value.code == 404
    with urllib.request.urlopen(f"{server.url}/v1/apps") as response:
        assert (
            response.headers["Content-Security-Policy"]
            == "default-src 'none'; frame-ancestors 'none'"
        )


def test_without_a_token_the_page_says_that_the_api_is_open(browser, server):
    open_page(browser, server, "/")
    assert "The API is open" in text_of(browser, "#access", "open")
    text_of(browser, "#pools", "No pools")
    shot(browser, "01-live-empty")


# -- apps and routes -------------------------------------------------------------------


def test_an_app_and_a_route_are_created_from_the_forms(browser, server):
    open_page(browser, server, "/apps")
    wait(browser).until(seen.presence_of_element_located((By.ID, "new-app")))
    fill(browser, "new-app", name="web", config=f"GREETING={MARKUP}")
    shot(browser, "02-apps-new")
    browser.find_element(By.CSS_SELECTOR, "#new-app button[type=submit]").click()
    text_of(browser, "h1", "App web")
    # The config value is shown back as it was typed: text, not markup.
    field = browser.find_element(By.CSS_SELECTOR, "#app-config textarea[name=config]")
    assert field.get_attribute("value") == f"GREETING={MARKUP}"
    browser.find_element(By.LINK_TEXT, "+ new route").click()
    wait(browser).until(seen.presence_of_element_located((By.ID, "route-form")))
    fill(browser, "route-form", path="/echo", image="executor-test/echo", memory="64")
    fill(browser, "route-form", config=f"NOTE={MARKUP}")
    shot(browser, "03-route-new")
    browser.find_element(By.CSS_SELECTOR, "#route-form button[type=submit]").click()
    text_of(browser, "h1", "/echo")
    route = server.json("GET", "/v1/apps/web/routes/echo")["route"]
    assert (route["image"], route["memory"], route["config"]) == (
        "executor-test/echo",
        64,
        {"NOTE": MARKUP},
    )
    assert server.json("GET", "/v1/apps/web")["app"]["config"] == {"GREETING": MARKUP}
    nothing_ran(browser)
    shot(browser, "04-route")


def test_an_app_and_a_route_are_edited_and_deleted_from_their_pages(browser, server):
    server.route("edits", "/one", image="executor-test/echo", memory=64, config={"A": "1"})
    open_page(browser, server, "/route/edits/one")
    wait(browser).until(seen.presence_of_element_located((By.ID, "route-form")))
    fill(browser, "route-form", memory="96", timeout="12", headers="X-Served-By: dashboard")
    browser.find_element(By.CSS_SELECTOR, "#route-form button[type=submit]").click()
    text_of(browser, "#route-form .message.ok", "Saved")
    route = server.json("GET", "/v1/apps/edits/routes/one")["route"]
    assert (route["memory"], route["timeout"], route["config"]) == (96, 12, {"A": "1"})
    assert route["headers"] == {"X-Served-By": ["dashboard"]}
    open_page(browser, server, "/apps/edits")
    wait(browser).until(seen.presence_of_element_located((By.ID, "app-config")))
    fill(browser, "app-config", config="REGION=north\nTIER=gold")
    browser.find_element(By.CSS_SELECTOR, "#app-config button[type=submit]").click()
    text_of(browser, "#app-config .message.ok", "Saved")
    assert server.json("GET", "/v1/apps/edits")["app"]["config"] == {
        "REGION": "north",
        "TIER": "gold",
    }
    shot(browser, "05-app")
    # Deleting the route, then the app: each asks first.
    open_page(browser, server, "/route/edits/one")
    wait(browser).until(
        seen.element_to_be_clickable((By.XPATH, "//button[.='Delete route']"))
    ).click()
    browser.switch_to.alert.accept()
    text_of(browser, "h1", "App edits")
    assert server.json("GET", "/v1/apps/edits/routes")["routes"] == []
    browser.find_element(By.XPATH, "//button[.='Delete app']").click()
    browser.switch_to.alert.accept()
    text_of(browser, "h1", "Apps")
    assert "edits" not in [a["name"] for a in server.json("GET", "/v1/apps")["apps"]]


def test_a_validation_error_is_shown_beside_its_field(browser, server):
    server.json("POST", "/v1/apps", {"app": {"name": "checks"}})
    open_page(browser, server, "/new-route/checks")
    wait(browser).until(seen.presence_of_element_located((By.ID, "route-form")))
    fill(browser, "route-form", path="/big", image="executor-test/echo", memory="99999")
    browser.find_element(By.CSS_SELECTOR, "#route-form button[type=submit]").click()
    message = text_of(browser, '.field-error[data-for="memory"] .error-text', "route.memory")
    assert "must be between 8 and" in message
    memory = browser.find_element(By.CSS_SELECTOR, "#route-form [name=memory]")
    assert "invalid" in memory.get_attribute("class")
    shot(browser, "06-validation-error")
    # A path the API refuses, holding markup: the message beside it, nothing run.
    fill(browser, "route-form", path="/<script>x</script>", memory="64")
    browser.find_element(By.CSS_SELECTOR, "#route-form button[type=submit]").click()
    text_of(browser, '.field-error[data-for="path"] .error-text', "route.path")
    nothing_ran(browser)


def test_an_answer_naming_no_field_is_shown_above_the_buttons(browser, server):
    server.route("checks", "/taken", image="executor-test/echo", memory=64)
    open_page(browser, server, "/new-route/checks")
    wait(browser).until(seen.presence_of_element_located((By.ID, "route-form")))
    fill(browser, "route-form", path="/taken", image="executor-test/echo")
    browser.find_element(By.CSS_SELECTOR, "#route-form button[type=submit]").click()
    assert "exists" in text_of(browser, "#route-form .form-error", "exists")


def test_a_route_path_holding_markup_in_the_address_is_shown_as_text(browser, server):
    server.json("POST", "/v1/apps", {"app": {"name": "paths"}})
    open_page(browser, server, "/route/paths/%3Cscript%3Ewindow.__hacked%3D1%3C%2Fscript%3E")
    assert "<script>" in text_of(browser, ".message.error", "not found")
    nothing_ran(browser)


# -- running a function ----------------------------------------------------------------


def test_running_a_function_shows_its_answer_and_the_curl_command(browser, server):
    server.route("web", "/echo", image="executor-test/echo", memory=64)
    open_page(browser, server, "/route/web/echo")
    body = wait(browser).until(seen.presence_of_element_located((By.NAME, "body")))
    body.send_keys(MARKUP)
    browser.find_element(By.NAME, "headers").send_keys("X-Test: one")
    curl = text_of(browser, "#curl", "--data-binary")
    assert curl.startswith("curl -i -X POST -H 'X-Test: one' --data-binary ")
    assert curl.endswith(f"'{server.url}/r/web/echo'")
    browser.find_element(By.ID, "run").click()
    assert text_of(browser, "#run-status", "200") == "200 OK"
    assert browser.find_element(By.ID, "run-body").text == MARKUP
    assert browser.find_element(By.ID, "run-start").text == "cold"
    facts = browser.find_element(By.ID, "run-facts").text
    assert "wait" in facts and "total" in facts
    nothing_ran(browser)
    shot(browser, "07-run")


def test_the_pool_goes_from_no_container_to_one_warm_one(browser, server):
    server.route("web", "/stream", image="executor/hello-stream", format="http-stream", min_warm=0)
    open_page(browser, server, "/route/web/stream")
    text_of(browser, "#containers", "No containers now")
    browser.find_element(By.ID, "run").click()
    assert text_of(browser, "#run-start", "fresh") == "fresh"
    assert "idle 1" in text_of(browser, "#pool-counts", "idle 1")
    text_of(browser, "#containers .state.idle", "1 call")
    browser.find_element(By.ID, "run").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "run-start").text == "warm")
    text_of(browser, "#containers .state.idle", "2 calls")
    # The live view: the route's pool, its calls and their latency by start kind.
    open_page(browser, server, "/")
    text_of(browser, "#pools", "web/stream")
    row = browser.find_element(By.CSS_SELECTOR, '#pools tr[data-route="web/stream"]').text
    assert "http-stream" in row and "idle" in row
    wait(browser, 10).until(lambda d: "warm p99 \u2013" not in d.find_element(By.ID, "main").text)
    assert "memory reserved 128 of" in browser.find_element(By.ID, "reserved").text
    shot(browser, "08-live")
    # The routes page keeps each route's pool cell live.
    open_page(browser, server, "/routes")
    row = '#routes tr[data-route="web/stream"] td.pool'
    assert text_of(browser, row, "1 / 0 / 0 / 0") == "1 / 0 / 0 / 0"
    shot(browser, "08-routes")


def test_an_async_call_shows_its_id_then_its_state_until_it_ends(browser, server):
    server.route("web", "/later", image="executor-test/echo", type="async", memory=64)
    open_page(browser, server, "/route/web/later")
    body = wait(browser).until(seen.presence_of_element_located((By.NAME, "body")))
    body.send_keys("queued body")
    browser.find_element(By.ID, "run").click()
    assert text_of(browser, "#run-status", "202") == "202 Accepted"
    text_of(browser, "#async-state", "success", seconds=30)
    assert text_of(browser, "#async-body", "queued body") == "queued body"
    shot(browser, "09-async")


# -- call records and logs -------------------------------------------------------------


def test_a_calls_log_opens_from_the_filtered_calls_list(browser, server):
    server.route("web", "/logs", image="executor-test/stderr", config={"NOTE": MARKUP})
    for _ in range(2):
        urllib.request.urlopen(urllib.request.Request(f"{server.url}/r/web/logs", data=b"x"))
    open_page(browser, server, "/calls/web")
    wait(browser).until(seen.presence_of_element_located((By.ID, "call-filters")))
    fill(browser, "call-filters", route="/logs", state="success", start="cold")
    browser.find_element(By.CSS_SELECTOR, "#call-filters button").click()
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#calls tbody tr a")) == 2)
    assert "route=%2Flogs" in browser.current_url and "state=success" in browser.current_url
    shot(browser, "10-calls")
    browser.find_elements(By.CSS_SELECTOR, "#calls tbody tr a")[0].click()
    log = text_of(browser, "#call-log", "log line 2")
    assert log == f"log line 1\nlog line 2\n{MARKUP}"
    record = browser.find_element(By.ID, "call-record").text
    assert "success" in record and "cold" in record
    nothing_ran(browser)
    shot(browser, "11-call-log")


def test_the_calls_list_pages_with_its_cursor(browser, server):
    server.route("web", "/many", image="executor-test/echo", memory=64)
    for _ in range(3):
        urllib.request.urlopen(urllib.request.Request(f"{server.url}/r/web/many", data=b"x"))
    open_page(browser, server, "/calls/web?route=%2Fmany&per_page=2")
    wait(browser).until(seen.presence_of_element_located((By.ID, "call-filters")))
    first = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#calls tbody tr a")]
    assert len(first) >= 2
    browser.find_element(By.ID, "next-page").click()
    wait(browser).until(lambda d: "cursor=" in d.current_url)
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#calls tbody tr a"))
    later = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#calls tbody tr a")]
    assert not set(first) & set(later)


# -- access ----------------------------------------------------------------------------


def test_with_a_token_the_page_asks_for_it_and_sends_it_as_a_bearer_header(browser, token_server):
    token_server.json("POST", "/v1/apps", {"app": {"name": "secured"}})
    open_page(browser, token_server, "/apps")
    field = wait(browser).until(seen.presence_of_element_located((By.ID, "token")))
    assert "needs its token" in browser.find_element(By.ID, "access").text
    shot(browser, "12-login")
    field.send_keys("wrong")
    field.submit()
    text_of(browser, ".login .message", "Wrong API token")
    field = browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(TOKEN)
    field.submit()
    text_of(browser, "main table", "secured")
    # Held in the page only: not in the address, a cookie or storage.
    assert TOKEN not in browser.current_url
    assert browser.get_cookies() == []
    stored = browser.execute_script(
        "return [localStorage.length, sessionStorage.length, document.cookie]"
    )
    assert stored == [0, 0, ""]
    shot(browser, "13-apps-signed-in")
