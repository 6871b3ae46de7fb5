"""A real headless Chromium for page tests, driven through chromedriver by selenium.

Debian's ``chromium`` and ``chromium-driver``: selenium is given
``/usr/bin/chromedriver`` itself (so selenium-manager never tries to
download one), a new empty profile per browser, and the flags that keep a
browser on a machine without network from dialling out.  Every method
blocks: tests call them through ``deferToThread``.

What a page did wrong is collected two ways: Chromium's console log (CSP
violations and script errors are ``SEVERE`` entries there), and a script
installed before any page script runs (through the DevTools protocol, which
no Content-Security-Policy applies to) that records ``securitypolicyviolation``
events, uncaught errors and any ``alert``/``confirm``/``prompt``.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import SkipTest

from tests.integration.harness import MissingTool, in_ci

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Chromium without network: no background connections, no first-run work
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1360,1000",
    "--hide-scrollbars",
)
#: runs in every page before its own scripts: what went wrong, where a test can read it
WATCH = """
window.__paxdProblems = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__paxdProblems.push("CSP: " + e.violatedDirective + " blocked " + e.blockedURI);
});
window.addEventListener("error", function (e) {
  window.__paxdProblems.push("error: " + (e.message || (e.target && e.target.outerHTML)));
}, true);
["alert", "confirm", "prompt"].forEach(function (name) {
  window[name] = function (message) { window.__paxdProblems.push(name + ": " + message); };
});
"""


def require_browser() -> None:
    """Skip where Chromium, chromedriver or selenium is missing; under CI fail instead."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install selenium)")
    if missing:
        message = (
            "not installed: " + ", ".join(missing) + " (apt-get install chromium chromium-driver)"
        )
        if in_ci():
            raise MissingTool(message)
        raise SkipTest(message)


class Browser:
    """One headless Chromium with its own empty profile."""

    def __init__(self, profile_parent: str | None = None) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="paxd-chromium-", dir=profile_parent)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(
            service=Service(executable_path=CHROMEDRIVER), options=options
        )
        self.driver.set_page_load_timeout(30)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})

    def close(self) -> None:
        """Quit the browser and remove its profile."""
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- pages -----------------------------------------------------------------
    def open(self, url: str) -> None:
        """Load *url* and wait until it and its images are done."""
        self.driver.get(url)
        self.wait_for("document.readyState === 'complete'")
        self.wait_for("Array.from(document.images).every(function (i) { return i.complete; })")

    def type_into(self, element_id: str, text: str) -> None:
        """Type *text* into the field *element_id*, key by key."""
        self.driver.find_element("id", element_id).send_keys(text)

    def choose(self, element_id: str, value: str) -> None:
        """Choose the option *value* of the ``<select>`` *element_id*, as a click would."""
        from selenium.webdriver.support.ui import Select

        Select(self.driver.find_element("id", element_id)).select_by_value(value)

    def click(self, selector: str) -> None:
        """Click the element the CSS *selector* finds."""
        self.driver.find_element("css selector", selector).click()

    def js(self, script: str, *args: Any) -> Any:
        """The value of *script* (a function body: ``return …``) in the page."""
        return self.driver.execute_script(script, *args)

    def wait_for(self, condition: str, timeout: float = 15.0) -> None:
        """Wait until the JavaScript expression *condition* is true in the page."""
        deadline = time.monotonic() + timeout
        while not self.js(f"return !!({condition});"):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for: {condition}")
            time.sleep(0.05)

    # -- what a test checks ----------------------------------------------------
    def problems(self) -> list[str]:
        """CSP violations, script errors and dialogs seen by the page, and the console's errors."""
        found = list(self.js("return window.__paxdProblems || [];"))
        for entry in self.driver.get_log("browser"):
            message = str(entry.get("message", ""))
            if entry.get("level") in ("SEVERE", "ERROR") or "Content Security Policy" in message:
                found.append(f"console: {message}")
        return found

    def images(self) -> list[dict[str, Any]]:
        """Every ``<img>``: its src, whether it loaded, and its natural width."""
        return list(
            self.js(
                "return Array.from(document.images).map(function (i) {"
                " return {src: i.getAttribute('src'), complete: i.complete,"
                " naturalWidth: i.naturalWidth}; });"
            )
        )

    def screenshot(self, path: Path) -> Path:
        """The whole page (not only the window) as a PNG at *path*."""
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": min(size["height"], 6000),
                    "scale": 1,
                },
            },
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


__all__ = ["Browser", "require_browser"]
