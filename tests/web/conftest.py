"""Browser tests of the web client: Python's Playwright drives Debian's Chromium
(`executable_path`, no downloaded browser) against the platform the e2e fixtures start,
serving the client's build (tools/bootstrap/web.sh builds it when its sources changed).

Every screen is checked with axe (no serious or critical violation) and photographed at
360×740 and 1366×768 under var/screenshots/ (not committed)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.api import Api
from tests.e2e.conftest import platform  # noqa: F401  (one platform for the web tests, as the e2e tests have)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--no-sandbox",
                 "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-features=WebRtcHideLocalIpsWithMdns"]
PHONE = (360, 740)
DESKTOP = (1366, 768)


def web_tool(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "tools" / "bootstrap" / "web.sh"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def web_build() -> Path:
    """web/dist, built before the platform's gateway starts (it serves what exists then)."""
    done = web_tool("build")
    assert done.returncode == 0, done.stdout + done.stderr
    return ROOT / "web" / "dist"


@pytest.fixture(scope="session")
def web(web_build, platform):  # noqa: F811
    return platform


@pytest.fixture(scope="session")
def api(web) -> Api:
    return Api(web)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class Person:
    """One person's browser (own context: own storage) on the platform's gateway."""

    def __init__(self, browser, base_url: str, name: str):
        self.context = browser.new_context(base_url=base_url, viewport={"width": PHONE[0], "height": PHONE[1]},
                                           locale="ru-RU", timezone_id="Europe/Moscow")
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.name = name
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" and "401" not in m.text
                     and "Failed to load resource" not in m.text else None)

    def open(self, path: str) -> None:
        self.page.goto(path)
        self.page.wait_for_load_state("networkidle")

    def session(self) -> dict | None:
        raw = self.page.evaluate("localStorage.getItem('sfera.session')")
        return json.loads(raw) if raw else None

    def sign_in_as(self, signed_in: dict, path: str = "/") -> None:
        """Put an API session into the browser (for tests not about signing in)."""
        self.page.goto("/help")
        self.page.evaluate("s => localStorage.setItem('sfera.session', JSON.stringify(s))", {
            "access": signed_in["access_token"], "refresh": signed_in["refresh_token"],
            "sessionId": signed_in["session_id"], "userId": signed_in["user_id"],
            "expiresAt": int(time.time() * 1000) + signed_in["expires_in"] * 1000})
        self.open(path)

    def screen(self, name: str) -> None:
        """Check a screen: axe finds no serious or critical violation; photographed at both sizes."""
        from axe_playwright_python.sync_playwright import Axe

        self.page.wait_for_load_state("networkidle")
        results = Axe().run(self.page)
        bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
        assert not bad, f"{name}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in bad)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for label, (w, h) in (("360", PHONE), ("1366", DESKTOP)):
            self.page.set_viewport_size({"width": w, "height": h})
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        self.page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def people(browser, web) -> Iterator:
    made: list[Person] = []

    def make(name: str = "person") -> Person:
        made.append(Person(browser, web.gateway_url, name))
        return made[-1]

    yield make
    for person in made:
        assert not person.errors, f"{person.name}: errors in the page: {person.errors}"
        person.close()


def last_code(api: Api, phone: str) -> str:
    return api.inbox_code("sms", re.sub(r"[^\d+]", "", phone))
