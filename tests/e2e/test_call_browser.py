"""A real browser in a call (CA-1, CA-10): Debian's headless Chromium with a fake
camera and microphone opens the call's link (the web client's call view at /call/<id>),
joins through the page's own code, and exchanges media with an aiortc participant both
ways. Driven over the DevTools protocol (no extra driver)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.test_calls import LUMAS, start, until
from tests.web.conftest import web_build  # noqa: F401  (the call view is the web client's)
from tests.webrtc import Peer

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Expected brightness of the aiortc camera (flat Y = LUMAS[0], neutral chroma) once the browser converts it to RGB.
EXPECTED_RGB = 1.164 * (LUMAS[0] - 16)


class Browser:
    """Headless Chromium and one page, over the DevTools protocol."""

    def __init__(self, url: str):
        self.profile = Path(tempfile.mkdtemp(prefix="sfera-chromium-"))
        self.process = subprocess.Popen([
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            "--autoplay-policy=no-user-gesture-required", "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ws = None
        self.session = None
        self.n = 0

    async def open(self) -> None:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError("Chromium did not start")
            await asyncio.sleep(0.1)
        port = port_file.read_text().split()[0]
        self.session = aiohttp.ClientSession()
        for _ in range(100):
            async with self.session.get(f"http://127.0.0.1:{port}/json/list") as response:
                pages = [p for p in await response.json() if p["type"] == "page"]
            if pages:
                break
            await asyncio.sleep(0.1)
        self.ws = await self.session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)

    async def evaluate(self, expression: str):
        self.n += 1
        await self.ws.send_str(json.dumps({"id": self.n, "method": "Runtime.evaluate", "params": {
            "expression": expression, "awaitPromise": True, "returnByValue": True}}))
        async for msg in self.ws:
            reply = json.loads(msg.data)
            if reply.get("id") == self.n:
                return reply["result"]["result"].get("value")
        raise AssertionError("the page's DevTools connection closed")

    async def close(self) -> None:
        if self.session:
            await self.session.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


async def until_page(browser: Browser, condition: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await browser.evaluate(f"Boolean({condition})"):
                return
        except (KeyError, TypeError):  # the page is navigating
            pass
        await asyncio.sleep(0.2)
    shown = await browser.evaluate("location.href + ' ' + document.body.innerText.slice(0, 300)")
    raise AssertionError(f"the page never showed: {condition}; it shows {shown}")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by tools/bootstrap/system-deps.sh")
def test_ca1_ca10_a_browser_joins_from_the_calls_link_and_media_flows_both_ways(web_build, api, room,  # noqa: F811
                                                                                platform):
    call = start(api, room, title="Урок в браузере")
    admin, pupil = room["people"][:2]
    admin_id, pupil_id = room["ids"][:2]

    async def scenario():
        ticket = api.ok("POST", f"/calls/{call['call_id']}/join", admin["access_token"])
        peer = await Peer(ticket["sfu_url"], ticket["token"], camera_luma=LUMAS[0], tone_hz=440).connect()
        browser = Browser(f"{platform.gateway_url}/help")
        try:
            await browser.open()
            # The pupil's session in the client's storage (with a profile: the client asks for one first,
            # ID-5), then the call's link; the camera and microphone check, then join.
            if not api.ok("GET", "/me", pupil["access_token"]).get("profile_complete"):
                api.ok("PUT", "/me/profile", pupil["access_token"], json={
                    "last_name": "Зуева", "first_name": "Ира", "birth_date": "2014-02-03", "sex": "female"})
            session = {"access": pupil["access_token"], "refresh": pupil["refresh_token"],
                       "sessionId": pupil["session_id"], "userId": pupil["user_id"],
                       "expiresAt": int(time.time() * 1000) + pupil["expires_in"] * 1000}
            await until_page(browser, "location.pathname === '/help' && document.readyState === 'complete'")
            await browser.evaluate(f"localStorage.setItem('sfera.session', {json.dumps(json.dumps(session))})")
            await browser.evaluate(f"location.assign('/call/{call['call_id']}')")
            await until_page(browser, "[...document.querySelectorAll('button')].some(b => "
                                      "b.textContent.includes('Войти в звонок') && !b.disabled)")
            await browser.evaluate("[...document.querySelectorAll('button')].find(b => "
                                   "b.textContent.includes('Войти в звонок')).click()")
            # browser -> SFU -> aiortc: the fake camera's frames decode, the fake microphone is heard
            await until(lambda: (peer.received.get(peer.slot_of(pupil_id, "camera") or "") or
                                 type("", (), {"frames": 0})).frames >= 30, timeout=40,
                        what="the browser's camera decoded by the aiortc peer")
            await until(lambda: peer.slot_of(pupil_id, "microphone") is not None, what="the browser's microphone")
            # aiortc -> SFU -> browser: frames decoded in the page, and they are the aiortc camera's grey
            stats = {}
            for _ in range(100):
                stats = await browser.evaluate("window.sferaStats ? window.sferaStats() : null") or {}
                if stats.get("inboundVideoFrames", 0) >= 30 and stats.get("inboundAudioPackets", 0) >= 50:
                    break
                await asyncio.sleep(0.2)
            assert stats.get("inboundVideoFrames", 0) >= 30 and stats.get("inboundAudioPackets", 0) >= 50, stats
            assert stats["outboundVideoFrames"] > 0 and stats["outboundAudioPackets"] > 0, stats
            slots = await browser.evaluate("window.sferaState.slots")
            (mid,) = [m for m, shown in slots.items() if shown and shown["user_id"] == admin_id
                      and shown["source"] == "camera"]
            brightness = await browser.evaluate(f"window.sferaBrightness({json.dumps(mid)})")
            assert brightness is not None and abs(brightness - EXPECTED_RGB) < 15, brightness
            assert not await browser.evaluate("window.sferaState.errors")
        finally:
            await browser.close()
            await peer.close()

    # Its own thread: Playwright's sync API (the web tests, same session) keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()
