"""Browser tests of the web client: Python's Playwright drives Debian's Chromium
(`executable_path`, no downloaded browser) against the platform the e2e fixtures start,
serving the client's build (tools/bootstrap/web.sh builds it when its sources changed).

Every screen is checked with axe (no serious or critical violation) and photographed at
360×740 and 1366×768 under var/screenshots/ (not committed)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

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


@pytest.fixture(scope="package")
def web(web_build, platform):  # noqa: F811
    return platform


@pytest.fixture(scope="package")
def api(web) -> Api:
    return Api(web)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


# An assertion waits for what a person would wait for: Playwright's 5 s default is shorter than a page that
# refreshes its session, reads the API and renders takes on a loaded 2-core CI machine (a real failure still fails).
expect.set_options(timeout=15_000)


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
        # The client keeps its access token in memory only: the last one it sent is the test's view of it.
        self.access: str | None = None
        self.page.on("request", self._saw_request)
        self.held: list[dict] = []  # API sessions put into this browser (their refresh token rotates in its cookie)

    def _saw_request(self, request) -> None:
        bearer = request.headers.get("authorization", "")
        if bearer.startswith("Bearer ") and "/api/" in request.url:
            self.access = bearer.removeprefix("Bearer ")

    def open(self, path: str) -> None:
        self.page.goto(path)
        self.page.wait_for_load_state("networkidle")

    def session(self) -> dict | None:
        """Who the browser has signed in (localStorage: ids only) and the access token its page last sent."""
        raw = self.page.evaluate("localStorage.getItem('sfera.signedIn')")
        return {**json.loads(raw), "access": self.access} if raw else None

    def refresh_cookie(self) -> dict | None:
        return next((c for c in self.context.cookies() if c["name"] == REFRESH_COOKIE), None)

    def sign_in_as(self, signed_in: dict, path: str = "/") -> None:
        """Put an API session into the browser as the gateway would (for tests not about signing in): its
        refresh token as the httpOnly cookie, who is signed in in localStorage; the page's first request
        refreshes through the cookie. The token rotates there, so ``signed_in`` gets the newest back when
        another browser takes the same session or this one closes (module-scoped sessions are reused)."""
        holder = HOLDERS.get(signed_in["session_id"])
        if holder is not None and holder is not self:
            holder.hand_back(signed_in)
        self.page.goto("/help")
        host = urlsplit(self.page.url).hostname
        self.context.add_cookies([{"name": REFRESH_COOKIE, "value": signed_in["refresh_token"], "domain": host,
                                   "path": "/api/v1/auth/refresh", "httpOnly": True, "sameSite": "Strict"}])
        self.page.evaluate("m => localStorage.setItem('sfera.signedIn', JSON.stringify(m))",
                           {"userId": signed_in["user_id"], "sessionId": signed_in["session_id"]})
        HOLDERS[signed_in["session_id"]] = self
        self.held.append(signed_in)
        with self.page.expect_response(lambda r: r.url.endswith("/api/v1/auth/refresh")):  # the silent refresh
            self.open(path)

    def hand_back(self, signed_in: dict) -> None:
        """``signed_in``'s refresh token as this browser last rotated it (it lets go of the session)."""
        cookie = self.refresh_cookie()
        if cookie and cookie["value"]:
            signed_in["refresh_token"] = cookie["value"]
        if HOLDERS.get(signed_in["session_id"]) is self:
            del HOLDERS[signed_in["session_id"]]

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
        for signed_in in self.held:
            if HOLDERS.get(signed_in["session_id"]) is self:
                self.hand_back(signed_in)
        self.context.close()


REFRESH_COOKIE = "sfera_refresh"
HOLDERS: dict[str, Person] = {}  # session id -> the browser that holds its refresh cookie now


@pytest.fixture
def people(browser, web) -> Iterator:
    made: list[Person] = []

    def make(name: str = "person") -> Person:
        made.append(Person(browser, web.gateway_url, name))
        return made[-1]

    yield make
    errors = {person.name: person.errors for person in made if person.errors}
    for person in made:  # all closed first: closing hands their rotated refresh tokens back to shared sessions
        person.close()
    assert not errors, f"errors in the page: {errors}"


def last_code(api: Api, phone: str) -> str:
    return api.inbox_code("sms", re.sub(r"[^\d+]", "", phone))


def operator_in_browser(people, api: Api, name: str, path: str = "/operator") -> tuple[dict, Person]:
    """The platform's operator (SFERA_OPERATOR_PHONES, a named profile) signed in in a browser of its own at
    ``path``: their API session and the browser."""
    console = api.operator()
    api.ok("PUT", "/me/profile", console["access_token"], json={
        "last_name": "Операторова", "first_name": "Ирина", "birth_date": "1990-01-01", "sex": "female"})
    operator = people(name)
    operator.sign_in_as(console, path)
    return console, operator
