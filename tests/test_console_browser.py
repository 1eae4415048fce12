"""The console and /docs in a real browser: Debian's Chromium driven by Selenium through
Debian's chromedriver, against a real Docuseek (uvicorn on a free port, embedded
PostgreSQL, a `docuseek worker` process).

Every page is served with the Content-Security-Policy the production app sends, added
here by a test-only middleware, so an inline script, an eval or an off-site asset fails
the test as a CSP violation. Screenshots go to test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from markdown_it import MarkdownIt
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docuseek.api.app import create_app
from docuseek.search.base import SearchBackend
from docuseek.settings import Settings
from tests import files_corpus
from tests.helpers import ADMIN_KEY, WorkerProcess, free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'"
    " data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self';"
    " form-action 'self'; frame-ancestors 'none'"
)
DESKTOP = (1280, 800)
PHONE = (390, 844)
# Records CSP violations from the first moment of every page (CDP-injected scripts are not
# subject to the page's policy).
VIOLATION_RECORDER = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile);
});
"""
SECTIONS = ["animals", "tech", "home"]
DOCS = [
    {
        "id": f"d{i:02d}",
        "title": f"The lazy {SECTIONS[i % 3]} story number {i}",
        "body": f"Chapter {i}: a <b>bold</b> claim & a quiet lazy afternoon by the river.",
        "section": SECTIONS[i % 3],
        "year": 2000 + i,
    }
    for i in range(24)
]


class CSPHeader:
    """Test-only: the Content-Security-Policy header the production app sends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_csp(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"content-security-policy", CSP.encode()),
                ]
            await send(message)

        await self.app(scope, receive, with_csp if scope["type"] == "http" else send)


class LiveServer:
    def __init__(self, app: ASGIApp) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 30, "uvicorn to start")
        self.worker: WorkerProcess | None = None

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live(
    settings: Settings, engine: Engine, backend: SearchBackend, database_url: str
) -> Iterator[LiveServer]:
    worker = WorkerProcess(database_url, batch=100)
    server = LiveServer(CSPHeader(create_app(settings, engine, backend)))
    server.worker = worker
    yield server
    server.stop()
    worker.stop()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} is missing: `make browser` installs it"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # Chromium's sandbox refuses to start as root, which make test runs as
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # No name resolves but the loopback: a request that would leave the machine fails.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # Both paths given: Selenium Manager has nothing to look up or download.
    driver = webdriver.Chrome(service=ChromeService(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": VIOLATION_RECORDER})
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def until(driver: WebDriver, check: Callable[[], Any], what: str, timeout: float = 15) -> Any:
    """Poll `check` until it returns something truthy; page errors fail at once."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (WebDriverException, AssertionError, IndexError, KeyError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


def by_id(driver: WebDriver, element_id: str) -> WebElement:
    return driver.find_element(By.ID, element_id)


def refused(path: str, status: int) -> str:
    """How Chromium logs an API refusal the console expects and handles."""
    return f"{path} - Failed to load resource: the server responded with a status of {status}"


def page_problems(driver: WebDriver, expected: tuple[str, ...] = ()) -> list[str]:
    """Console errors and CSP violations since the last call, but the `expected` refusals."""
    problems = [
        f"console {entry['level']}: {entry['message']}"
        for entry in driver.get_log("browser")
        if entry["level"] in ("SEVERE", "WARNING")
        and not (entry["source"] == "network" and any(e in entry["message"] for e in expected))
    ]
    violations = driver.execute_script("return window.__violations || []")
    problems += [f"CSP violation: {v}" for v in violations]
    return problems


def requested_urls(driver: WebDriver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def screenshot(driver: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    return path


def set_viewport(driver: WebDriver, size: tuple[int, int], mobile: bool) -> None:
    """The page's own width and height, whatever the window's frame takes."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": mobile},
    )


def sign_in(driver: WebDriver, live: LiveServer, key: str = ADMIN_KEY) -> None:
    driver.get(live.url + "/")
    until(driver, lambda: driver.switch_to.active_element == by_id(driver, "key"), "key focus")
    by_id(driver, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    until(driver, lambda: by_id(driver, "nav").is_displayed(), "signed in")


def type_slowly(element: WebElement, text: str) -> None:
    for letter in text:
        element.send_keys(letter)
        time.sleep(0.08)


def hits(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#hits > li")


def hit_ids(driver: WebDriver) -> list[str]:
    metas = driver.find_elements(By.CSS_SELECTOR, "#hits .meta")
    return [m.text.split(" · ")[0].removeprefix("id ") for m in metas]


def unlabelled_controls(driver: WebDriver) -> list[str]:
    script = """
      return [...document.querySelectorAll('input, select, textarea, button')]
        .filter((e) => e.type !== 'hidden')
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !(e.tagName === 'BUTTON' && e.textContent.trim()))
        .map((e) => e.outerHTML.slice(0, 80));
    """
    result: list[str] = driver.execute_script(script)
    return result


def api(live: LiveServer, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.request(method, live.url + path, headers=headers, timeout=10, **kwargs)


def test_console_desktop(live: LiveServer, browser: WebDriver, tmp_path: Path) -> None:
    driver = browser
    name = f"books-{uuid.uuid4().hex[:8]}"
    set_viewport(driver, DESKTOP, mobile=False)

    # A wrong key is refused with the API's message, as text.
    driver.get(live.url + "/")
    by_id(driver, "key").send_keys("not-a-key")
    by_id(driver, "key").submit()
    until(driver, lambda: "invalid API key" in by_id(driver, "error").text, "401 message")
    assert not by_id(driver, "nav").is_displayed()
    assert page_problems(driver, expected=(refused("/collections", 401),)) == []

    sign_in(driver, live)
    assert driver.execute_script("return sessionStorage.getItem('docuseek.key')") == ADMIN_KEY
    assert driver.execute_script("return localStorage.length") == 0
    assert unlabelled_controls(driver) == []

    # Create a collection: first a schema the API rejects, then one inferred from a sample.
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view=collections]").click()
    by_id(driver, "new-name").send_keys(name)
    by_id(driver, "schema").send_keys('{"fields": {"title": {"type": "txt"}}}')
    driver.find_element(By.CSS_SELECTOR, "#collection-form button[type=submit]").click()
    errors = until(driver, lambda: by_id(driver, "schema-errors").text, "the 422 shown")
    assert "422 invalid_input" in errors and "fields.title.type" in errors, errors
    assert page_problems(driver, expected=(refused(f"/collections/{name}", 422),)) == []
    by_id(driver, "sample").send_keys(json.dumps(DOCS[0]))
    by_id(driver, "infer").click()
    inferred = json.loads(by_id(driver, "schema").get_attribute("value") or "")
    assert inferred == {
        "fields": {
            "title": {"type": "text", "weight": "A"},
            "body": {"type": "text"},
            "section": {"type": "keyword", "facet": True},
            "year": {"type": "integer"},
        }
    }
    driver.find_element(By.CSS_SELECTOR, "#collection-form button[type=submit]").click()
    until(driver, lambda: "created" in by_id(driver, "collection-status").text, "created")
    stored = api(live, ADMIN_KEY, "GET", f"/collections/{name}").json()["fields"]
    assert {f: {k: v for k, v in spec.items() if v} for f, spec in stored.items()} == (
        inferred["fields"]
    )

    # Upload an NDJSON file through the console and wait for its task.
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view=search]").click()
    assert by_id(driver, "collection").get_attribute("value") == name
    data = tmp_path / "books.ndjson"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    driver.find_element(By.CSS_SELECTOR, "#upload summary").click()
    by_id(driver, "upload-file").send_keys(str(data))
    driver.find_element(By.CSS_SELECTOR, "#upload-form button[type=submit]").click()
    until(
        driver,
        lambda: "succeeded, 24 of 24 indexed" in by_id(driver, "upload-status").text,
        "upload task succeeded",
        timeout=30,
    )

    # Search as you type: every letter a request, the last one's results shown.
    search_box = by_id(driver, "q")
    search_box.click()
    type_slowly(search_box, "lazy")
    marks = until(
        driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#hits mark"), "highlighted hits"
    )
    assert {m.text.lower() for m in marks} == {"lazy"}
    assert "24 results" in by_id(driver, "result-count").text
    assert len(hits(driver)) == 10
    # The body's "<b>bold</b>" arrives escaped inside the highlight and stays text.
    assert driver.find_elements(By.CSS_SELECTOR, "#hits b") == []
    snippets = " ".join(s.text for s in driver.find_elements(By.CSS_SELECTOR, "#hits .snippet"))
    assert "body: Chapter 0: a <b>bold</b> claim & a quiet lazy" in snippets, snippets
    titles = [t.text for t in driver.find_elements(By.CSS_SELECTOR, ".hit-title")]
    assert titles[0] == "The lazy animals story number 0", titles
    # Screen readers hear the count of each new result set.
    assert by_id(driver, "result-count").get_attribute("aria-live") == "polite"

    # Page by cursor, and back.
    first_page = hit_ids(driver)
    by_id(driver, "next-page").click()
    until(driver, lambda: "page 2" in by_id(driver, "result-count").text, "page 2")
    second_page = hit_ids(driver)
    assert len(second_page) == 10 and not set(first_page) & set(second_page)
    by_id(driver, "next-page").click()
    until(driver, lambda: "page 3" in by_id(driver, "result-count").text, "page 3")
    assert len(hits(driver)) == 4 and not by_id(driver, "next-page").is_displayed()
    by_id(driver, "first-page").click()
    until(driver, lambda: hit_ids(driver) == first_page, "page 1 again")

    # Sort by year, descending.
    driver.find_element(By.CSS_SELECTOR, "#sort option[value='year:desc']").click()
    until(driver, lambda: hit_ids(driver)[:2] == ["d23", "d22"], "sorted by year desc")

    # A facet count filters when clicked, and again to clear.
    facet = until(
        driver,
        lambda: [
            b
            for b in driver.find_elements(By.CSS_SELECTOR, "#facets button")
            if b.text.startswith("tech")
        ],
        "the tech facet",
    )[0]
    assert (
        " ".join(facet.text.split()) == "tech (8)"
        and facet.get_attribute("aria-pressed") == "false"
    )
    facet.click()
    until(driver, lambda: "8 results" in by_id(driver, "result-count").text, "8 results")
    assert all("section: tech" in m.text for m in driver.find_elements(By.CSS_SELECTOR, ".meta"))
    pressed = driver.find_element(By.CSS_SELECTOR, "#facets button[aria-pressed=true]")
    assert " ".join(pressed.text.split()) == "tech (8)"
    screenshot(driver, "console-desktop-search")

    # Open a document: it shows the stored JSON and takes the focus.
    hits(driver)[0].find_element(By.CSS_SELECTOR, ".hit-title").click()
    until(driver, lambda: by_id(driver, "document").is_displayed(), "the document view")
    shown = json.loads(by_id(driver, "document-body").text)
    assert shown == next(d for d in DOCS if d["id"] == shown["id"])
    assert driver.switch_to.active_element == by_id(driver, "document")
    screenshot(driver, "console-desktop-document")
    by_id(driver, "document-close").click()
    assert not by_id(driver, "document").is_displayed()

    # The task list shows the upload's task with its final status.
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view=tasks]").click()
    until(
        driver,
        lambda: any(
            name in row.text and "succeeded" in row.text and "24 / 24" in row.text
            for row in driver.find_elements(By.CSS_SELECTOR, "#tasks tbody tr")
        ),
        "the upload's task in the list",
    )

    # Create a key (its secret shown once, and working), then revoke it.
    driver.find_element(By.CSS_SELECTOR, "#nav [data-view=keys]").click()
    key_name = f"frontend-{uuid.uuid4().hex[:6]}"
    by_id(driver, "key-name").send_keys(key_name)
    by_id(driver, "key-collections").clear()
    by_id(driver, "key-collections").send_keys(name)
    driver.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    secret = until(
        driver, lambda: by_id(driver, "new-key-secret").get_attribute("value"), "the secret"
    )
    row = until(
        driver,
        lambda: [
            r for r in driver.find_elements(By.CSS_SELECTOR, "#keys tbody tr") if key_name in r.text
        ],
        "the new key's row",
    )[0]
    assert "search" in row.text and name in row.text and secret not in row.text
    assert api(live, secret, "GET", f"/collections/{name}/search", params={"q": "lazy"}).json()[
        "total"
    ] == len(DOCS)
    screenshot(driver, "console-desktop-keys")
    row.find_element(By.CSS_SELECTOR, "button.danger").click()
    until(driver, lambda: driver.switch_to.alert, "the confirmation").accept()
    until(
        driver,
        lambda: all(
            key_name not in r.text for r in driver.find_elements(By.CSS_SELECTOR, "#keys tbody tr")
        ),
        "the key's row gone",
    )
    assert not by_id(driver, "new-key").is_displayed()
    assert api(live, secret, "GET", "/collections").status_code == 401

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.accept()
    assert page_problems(driver) == []


def seed(live: LiveServer) -> str:
    """A collection holding DOCS, indexed, through the API."""
    name = f"books-{uuid.uuid4().hex[:8]}"
    fields = {
        "title": {"type": "text", "weight": "A"},
        "body": {"type": "text"},
        "section": {"type": "keyword", "facet": True},
        "year": {"type": "integer"},
    }
    assert api(live, ADMIN_KEY, "PUT", f"/collections/{name}", json={"fields": fields}).is_success
    task = api(live, ADMIN_KEY, "POST", f"/collections/{name}/documents", json=DOCS).json()
    wait_for(
        lambda: (
            api(live, ADMIN_KEY, "GET", f"/tasks/{task['task_id']}").json()["status"] == "succeeded"
        ),
        30,
        "the documents indexed",
    )
    return name


def test_console_phone_width_with_a_search_key(live: LiveServer, browser: WebDriver) -> None:
    driver = browser
    name = seed(live)
    body = {"name": "phone", "scopes": ["search"], "collections": [name]}
    key = api(live, ADMIN_KEY, "POST", "/keys", json=body).json()["key"]
    set_viewport(driver, PHONE, mobile=True)
    sign_in(driver, live, key)
    # A search key sees no admin pages, and only its collection.
    admin = driver.find_elements(By.CSS_SELECTOR, "#nav [data-admin]")
    assert len(admin) == 2 and not any(b.is_displayed() for b in admin)
    options = driver.find_elements(By.CSS_SELECTOR, "#collection option")
    assert [o.get_attribute("value") for o in options] == [name]
    type_slowly(by_id(driver, "q"), "afternoon")
    until(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#hits mark"), "highlights")
    assert "24 results" in by_id(driver, "result-count").text
    # Nothing wider than the screen: no sideways scrolling on a phone.
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0], width
    # The facets sit above the results in one column.
    facets = by_id(driver, "facets").rect
    results = by_id(driver, "results").rect
    assert facets["y"] + facets["height"] <= results["y"] and results["width"] > 300
    screenshot(driver, "console-phone-search")
    # A reload keeps the tab signed in (session storage), a new sign-out forgets the key.
    driver.refresh()
    until(driver, lambda: by_id(driver, "nav").is_displayed(), "still signed in")
    by_id(driver, "signout").click()
    assert driver.execute_script("return sessionStorage.getItem('docuseek.key')") is None
    assert by_id(driver, "signin").is_displayed()
    # The console asks GET /keys to learn whether the key is an admin's.
    assert page_problems(driver, expected=(refused("/keys", 403),)) == []


def test_console_by_keyboard_alone(live: LiveServer, browser: WebDriver) -> None:
    driver = browser
    seed(live)
    set_viewport(driver, DESKTOP, mobile=False)

    def focused() -> WebElement:
        return driver.switch_to.active_element

    def press(*keys: str) -> None:
        ActionChains(driver).send_keys(*keys).perform()

    driver.get(live.url + "/")
    until(driver, lambda: focused() == by_id(driver, "key"), "the key field focused")
    press(ADMIN_KEY, Keys.ENTER)
    until(driver, lambda: focused() == by_id(driver, "q"), "the search box focused")
    press("lazy")
    until(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#hits mark"), "highlights")
    press(Keys.TAB)
    assert focused() == by_id(driver, "sort")
    press(Keys.TAB)  # the first facet value
    first_facet = driver.find_elements(By.CSS_SELECTOR, "#facets button")[0]
    assert focused() == first_facet
    value = first_facet.text.split()[0]
    press(Keys.ENTER)
    until(driver, lambda: "8 results" in by_id(driver, "result-count").text, "the facet applied")
    pressed = driver.find_element(By.CSS_SELECTOR, "#facets button[aria-pressed=true]")
    assert pressed.text.startswith(value) and focused() == pressed
    # On to the first hit's title, past the remaining facet buttons.
    first_title = driver.find_element(By.CSS_SELECTOR, "#hits .hit-title")
    for _ in range(10):
        if focused() == first_title:
            break
        press(Keys.TAB)
    assert focused() == first_title
    press(Keys.ENTER)
    until(driver, lambda: focused() == by_id(driver, "document"), "the document focused")
    press(Keys.ESCAPE)
    assert not by_id(driver, "document").is_displayed()
    assert focused() == driver.find_element(By.CSS_SELECTOR, "#hits .hit-title")
    assert page_problems(driver) == []


def test_docs_render_offline(live: LiveServer, browser: WebDriver) -> None:
    driver = browser
    set_viewport(driver, DESKTOP, mobile=False)
    driver.get(live.url + "/docs")
    operations = until(
        driver,
        lambda: driver.find_elements(By.CSS_SELECTOR, ".opblock-summary"),
        "Swagger UI's operations list",
    )
    summaries = " | ".join(o.text for o in operations)
    assert len(operations) >= 17 and "Search (JSON body)" in summaries, summaries
    screenshot(driver, "docs-desktop")
    urls = requested_urls(driver)
    assert any(u.endswith("/openapi.json") for u in urls), urls
    assert {urlsplit(u).hostname for u in urls if not u.startswith("data:")} == {"127.0.0.1"}
    assert page_problems(driver) == []
    # The check above sees a violation when there is one: an inline script is refused.
    driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.inline = 1';"
        " document.body.append(s);"
    )
    problems = until(driver, lambda: page_problems(driver), "the inline script reported")
    assert any("script-src" in p for p in problems), problems
    assert driver.execute_script("return window.inline") is None


FILE_FIELDS = {
    "title": {"type": "text", "weight": "A"},
    "content": {"type": "text"},
    "pages": {"type": "integer"},
    "content_type": {"type": "keyword", "facet": True},
    "filename": {"type": "keyword"},
}
# Test-only: keeps every Blob the console turns into a URL, so the test can read the bytes
# it showed (reading the blob: URL back with fetch is what the CSP's connect-src forbids).
KEEP_BLOBS = """
window.__blobs = {};
const createObjectURL = URL.createObjectURL;
URL.createObjectURL = (blob) => {
  const url = createObjectURL.call(URL, blob);
  window.__blobs[url] = blob;
  return url;
};
"""
# The kept blob's MIME type and its bytes in base64.
READ_BLOB = """
const done = arguments[arguments.length - 1];
const blob = window.__blobs[arguments[0]];
if (!blob) { done(["missing", Object.keys(window.__blobs).join(" ")]); return; }
const reader = new FileReader();
reader.onload = () => done([blob.type, reader.result.split(",")[1]]);
reader.readAsDataURL(blob);
"""


def test_console_opens_a_pdf_hit_at_its_matched_page(
    live: LiveServer, browser: WebDriver, tmp_path: Path
) -> None:
    driver = browser
    set_viewport(driver, DESKTOP, mobile=False)
    name = f"files-{uuid.uuid4().hex[:8]}"
    assert api(
        live, ADMIN_KEY, "PUT", f"/collections/{name}", json={"fields": FILE_FIELDS}
    ).is_success
    report = files_corpus.pdf(
        ["Annual report\nThe harbour was quiet.", "Appendix\nThe zeppelin hangar was rebuilt."],
        title="Annual report",
    )
    body = MarkdownIt().render("# Airship guide\n\nHow to moor a zeppelin *safely*.\n")
    guide = (
        f"<!DOCTYPE html><html><head><title>Airship guide</title></head><body>{body}</body></html>"
    )
    task = api(
        live,
        ADMIN_KEY,
        "POST",
        f"/collections/{name}/files",
        files=[
            ("file", ("report.pdf", report, "application/octet-stream")),
            ("file", ("guide.html", guide.encode(), "application/octet-stream")),
        ],
        # An id under a folder, as `docuseek import --files` makes them: the console
        # sends it as one path segment.
        data={"fields": json.dumps([{"id": "reports/annual.pdf"}, {"id": "guide"}])},
    ).json()
    # A JSON document beside it: a hit with no stored file gets no file links.
    json_task = api(
        live,
        ADMIN_KEY,
        "POST",
        f"/collections/{name}/documents",
        json=[{"id": "note", "title": "A note", "content": "Another zeppelin sighting."}],
    ).json()
    for task_id in (task["task_id"], json_task["task_id"]):
        wait_for(
            lambda task_id=task_id: (
                api(live, ADMIN_KEY, "GET", f"/tasks/{task_id}").json()["status"] == "succeeded"
            ),
            60,
            "the upload extracted and indexed",
        )

    sign_in(driver, live)
    driver.find_element(By.CSS_SELECTOR, f"#collection option[value='{name}']").click()
    type_slowly(by_id(driver, "q"), "zeppelin")
    # The prefix searches typed on the way match every document but no page: wait for the
    # whole word's.
    until(
        driver,
        lambda: (
            len(hits(driver)) == 3
            and driver.find_elements(By.CSS_SELECTOR, "#hits button[data-page]")
        ),
        "the three hits, one with its matched page",
    )
    by_hit = {
        h.find_element(By.CSS_SELECTOR, ".meta").text.split(" · ")[0]: h for h in hits(driver)
    }
    assert by_hit["id note"].find_elements(By.CSS_SELECTOR, ".files") == []
    files = by_hit["id reports/annual.pdf"].find_element(By.CSS_SELECTOR, ".files")
    assert files.text == "original file · page 2", files.text
    page_link = files.find_element(By.CSS_SELECTOR, "button[data-page='2']")
    assert page_link.get_attribute("aria-label") == "open page 2 of the original"
    screenshot(driver, "console-desktop-file-hit")

    console = driver.current_window_handle
    driver.execute_script(KEEP_BLOBS)
    page_link.click()
    until(driver, lambda: len(driver.window_handles) == 2, "a new tab for the PDF")
    tab = next(h for h in driver.window_handles if h != console)
    driver.switch_to.window(tab)
    url = until(
        driver, lambda: driver.current_url if driver.current_url.startswith("blob:") else "", "blob"
    )
    assert url.startswith(f"blob:{live.url}/") and url.endswith("#page=2"), url
    until(
        driver,
        lambda: driver.execute_script("return document.contentType") == "application/pdf",
        "the tab showing a PDF",
    )
    time.sleep(2)  # the viewer draws the page after the load: only for the screenshot
    screenshot(driver, "console-desktop-file-page")
    assert page_problems(driver) == []
    driver.close()
    driver.switch_to.window(console)

    # The tab showed the original bytes as a PDF, fetched with the console's key.
    mime, data = driver.execute_async_script(READ_BLOB, url.split("#")[0])
    assert mime == "application/pdf"
    assert base64.b64decode(data) == report

    # "original file" opens the same PDF from its first page.
    files.find_element(By.CSS_SELECTOR, "button[data-file=original]").click()
    until(driver, lambda: len(driver.window_handles) == 2, "a new tab for the original")
    driver.switch_to.window(next(h for h in driver.window_handles if h != console))
    whole = until(
        driver, lambda: driver.current_url if driver.current_url.startswith("blob:") else "", "blob"
    )
    assert "#" not in whole and whole != url.split("#")[0], whole
    driver.close()
    driver.switch_to.window(console)
    assert base64.b64decode(driver.execute_async_script(READ_BLOB, whole)[1]) == report

    # Another type is saved as a download, never opened as a page of the console's origin.
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    guide_links = by_hit["id guide"].find_element(By.CSS_SELECTOR, ".files")
    assert guide_links.text == "original file"
    guide_links.find_element(By.CSS_SELECTOR, "button[data-file=original]").click()
    saved = tmp_path / "guide.html"
    until(driver, lambda: saved.exists() and saved.read_text() == guide, "the download")
    assert driver.window_handles == [console]
    types = driver.execute_script("return Object.values(window.__blobs).map((b) => b.type)")
    assert types == ["application/pdf", "application/pdf", "application/octet-stream"]
    assert page_problems(driver) == []


def test_console_says_writes_are_being_indexed_and_shows_them_when_done(
    live: LiveServer, browser: WebDriver
) -> None:
    driver = browser
    set_viewport(driver, DESKTOP, mobile=False)
    name = f"fresh-{uuid.uuid4().hex[:8]}"
    fields = {"title": {"type": "text", "weight": "A"}}
    assert api(live, ADMIN_KEY, "PUT", f"/collections/{name}", json={"fields": fields}).is_success

    def add(doc_id: str, title: str) -> int:
        response = api(
            live,
            ADMIN_KEY,
            "POST",
            f"/collections/{name}/documents",
            json=[{"id": doc_id, "title": title}],
        )
        task_id: int = response.json()["task_id"]
        return task_id

    first = add("quiet", "Quiet harbour")
    wait_for(
        lambda: api(live, ADMIN_KEY, "GET", f"/tasks/{first}").json()["status"] == "succeeded",
        30,
        "the first document indexed",
    )
    sign_in(driver, live)
    driver.find_element(By.CSS_SELECTOR, f"#collection option[value='{name}']").click()
    type_slowly(by_id(driver, "q"), "harbour")
    until(driver, lambda: hit_ids(driver) == ["quiet"], "the indexed document")
    assert live.worker is not None
    # A worker that has not got to the write yet: frozen, then let go.
    live.worker.proc.send_signal(signal.SIGSTOP)
    try:
        add("busy", "Busy harbour")
        by_id(driver, "q").send_keys(" ")  # a new search, as a user typing would start
        count = until(
            driver,
            lambda: (
                "1 write is still being indexed" in (t := by_id(driver, "result-count").text) and t
            ),
            "the pending write in the result count",
        )
        assert count.startswith("1 result"), count
        screenshot(driver, "console-desktop-pending-write")
    finally:
        live.worker.proc.send_signal(signal.SIGCONT)
    # No keystroke: the console searches again until nothing is pending.
    until(driver, lambda: sorted(hit_ids(driver)) == ["busy", "quiet"], "the new document", 30)
    until(
        driver,
        lambda: "still being indexed" not in by_id(driver, "result-count").text,
        "the pending note gone",
    )
    assert page_problems(driver) == []
