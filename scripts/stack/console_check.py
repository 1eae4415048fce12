"""The stack test's browser step: open the web console through the api's published port,
sign in, pick the collection the ingest step filled, type a query and see highlighted hits.

Runs Debian's Chromium through Debian's chromedriver (both installed by `make browser`),
with no name resolving but the loopback, and fails on any console error or CSP violation:
the page is served by the production image, with the headers the production app sends.
A screenshot is saved to test-artifacts/screenshots/stack-console.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "test-artifacts" / "screenshots" / "stack-console.png"
VIOLATION_RECORDER = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def until(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except WebDriverException as exc:
            last = exc
        time.sleep(0.1)
    sys.exit(f"FAIL: timed out waiting for {what} (last error: {last!r})")


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the stack test runs as root, where Chromium's sandbox will not start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--window-size=1280,800",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=ChromeService("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": VIOLATION_RECORDER})
    return driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--api", required=True, help="the api's published URL")
    ap.add_argument("--key", required=True)
    ap.add_argument("--collection", default="stackcheck")
    ap.add_argument("--query", default="stackcheck")
    args = ap.parse_args()
    driver = browser()
    try:
        driver.get(args.api.rstrip("/") + "/")
        csp = driver.execute_script(
            "return fetch('/').then(r => r.headers.get('content-security-policy'))"
        )
        if not csp or "default-src 'self'" not in csp:
            sys.exit(f"FAIL: the console is served without the production CSP: {csp!r}")
        until(lambda: driver.find_element(By.ID, "key").is_displayed(), "the sign-in form")
        driver.find_element(By.ID, "key").send_keys(args.key)
        driver.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
        until(lambda: driver.find_element(By.ID, "nav").is_displayed(), "signed in")
        picker = driver.find_element(By.ID, "collection")
        until(
            lambda: args.collection in [o.get_attribute("value") for o in Select(picker).options],
            f"collection {args.collection} in the picker",
        )
        Select(picker).select_by_value(args.collection)
        box = driver.find_element(By.ID, "q")
        box.click()
        for letter in args.query:
            box.send_keys(letter)
            time.sleep(0.05)
        marks = until(
            lambda: driver.find_elements(By.CSS_SELECTOR, "#hits mark"), "highlighted hits"
        )
        words = {m.text.lower() for m in marks}
        count = driver.find_element(By.ID, "result-count").text
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOT))
        problems = [
            f"console {e['level']}: {e['message']}"
            for e in driver.get_log("browser")  # type: ignore[no-untyped-call]
            if e["level"] in ("SEVERE", "WARNING")
        ]
        problems += [
            f"CSP violation: {v}" for v in driver.execute_script("return window.__violations")
        ]
        if problems:
            sys.exit("FAIL: " + "; ".join(problems))
        if words != {args.query.lower()}:
            sys.exit(f"FAIL: highlighted words {sorted(words)}, expected {args.query!r}")
        print(f"console: signed in, searched {args.query!r} in the browser: {count}")
        print(f"screenshot: {SCREENSHOT.relative_to(ROOT)}")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
