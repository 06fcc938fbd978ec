"""The web client in real browsers. Budgets (issue #14): the JavaScript of the first screen
(gzip, budget 150 kB) and a signed-in teacher's home rendered with its data, next to the
same run's ``GET /me`` round trip as the baseline. The chat (issue #15): a message typed and
sent in one browser -> shown in the other's open chat, p50/p99, next to the same messages'
WebSocket send -> receive (a plain WebSocket client on the same chat, the gateway's own
delivery) and the API's POST -> WebSocket receive without a browser, all in the same run.
Debian's Chromium driven by Playwright; the platform is private (durable PostgreSQL,
RabbitMQ, every service).

    python -m bench.web [--messages 100] [--interval 0.2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
import simple_websocket

from bench import report
from bench.pipeline import percentile
from bench.platform import SmsCapture, running_platform
from bench.school import OPERATOR, auth, wait_until
from tests.helpers import WebSocketClient

TEACHER_PHONE = "+79160000001"

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding"]
# Each shown message's time in the page's clock (epoch ms with sub-ms precision).
WATCH = """() => { window.__shown = {}; new MutationObserver(() => {
  for (const el of document.querySelectorAll('.message-text')) {
    const text = el.textContent.trim();
    if (text.startsWith('bench:') && !(text in window.__shown))
      window.__shown[text] = performance.timeOrigin + performance.now();
  } }).observe(document.body, { childList: true, subtree: true, characterData: true }); }"""
SEND = """(text) => { const box = document.querySelector('#composer-text'); box.value = text;
  box.dispatchEvent(new Event('input')); const at = performance.timeOrigin + performance.now();
  box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true })); return at; }"""


def signed_in(api: str, sms: SmsCapture, phone: str, last: str, first: str) -> dict:
    challenge = requests.post(f"{api}/auth/sign-in-codes", json={"phone": phone}, timeout=30).json()
    session = requests.post(f"{api}/auth/sign-in-codes/{challenge['challenge_id']}/confirmation", timeout=30,
                            json={"code": sms.code_for(phone)}).json()
    requests.put(f"{api}/me/profile", headers=auth(session["access_token"]), timeout=30, json={
        "last_name": last, "first_name": first, "birth_date": "1980-01-01", "sex": "female"}).raise_for_status()
    return session


def another_session(api: str, session: dict, phone: str) -> dict:
    """A second session of the same person (by password, set here): a browser page spends the refresh token it is
    given (it rotates into the page's cookie), so two pages of one person need a session each."""
    password = "bench-Пароль-2026"
    requests.put(f"{api}/me/password", headers=auth(session["access_token"]), timeout=30,
                 json={"new_password": password}).raise_for_status()
    signed = requests.post(f"{api}/auth/password-sign-in", json={"phone": phone, "password": password}, timeout=30)
    signed.raise_for_status()
    return signed.json()


def approved_school(api: str, sms: SmsCapture, admin_phone: str = "+79990000002") -> tuple[str, dict]:
    """A school the operator approved; its id and its admin (signed in with a name, as the pages show people)."""
    operator = signed_in(api, sms, OPERATOR, "Операторова", "Ольга")["access_token"]
    admin = signed_in(api, sms, admin_phone, "Админова", "Анна")
    application = requests.post(f"{api}/organization-applications", timeout=30, json={
        "name": "Школа", "kind": "school", "country": "RU", "city": "Казань", "admin_phone": admin_phone}).json()
    wait_until(lambda: requests.post(f"{api}/operator/applications/{application['application_id']}/approval",
                                     headers=auth(operator), timeout=30).status_code == 200)
    wait_until(lambda: requests.get(f"{api}/me/organizations", headers=auth(admin["access_token"]), timeout=30).json())
    org = requests.get(f"{api}/me/organizations", headers=auth(admin["access_token"]),
                       timeout=30).json()[0]["organization"]["organization_id"]
    return org, admin


def world(api: str, sms: SmsCapture) -> tuple[str, dict, dict]:
    org, admin = approved_school(api, sms)
    link = requests.post(f"{api}/organizations/{org}/invites", headers=auth(admin["access_token"]), timeout=30,
                         json={"role": "teacher", "validity": "1d"}).json()["token"]
    teacher = signed_in(api, sms, TEACHER_PHONE, "Учителева", "Ирина")
    requests.post(f"{api}/invites/{link}/membership", headers=auth(teacher["access_token"]),
                  timeout=30).raise_for_status()
    body = {"organization_id": org, "name": "Бенчмарк", "member_ids": [teacher["user_id"]]}
    made: dict = {}
    wait_until(lambda: (r := requests.post(f"{api}/chats", headers=auth(admin["access_token"]), json=body,
                                           timeout=30)).status_code == 201 and made.update(r.json()) is None)
    return made["chat_id"], admin, teacher


def signed_in_page(browser, base: str, session: dict):
    """A desktop page of the app with ``session`` stored where the client keeps it (on /help, which needs none)."""
    context = browser.new_context(base_url=base, viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto("/help")
    page.evaluate("s => localStorage.setItem('sfera.session', JSON.stringify(s))", {
        "access": session["access_token"], "refresh": session["refresh_token"], "sessionId": session["session_id"],
        "userId": session["user_id"], "expiresAt": int(time.time() * 1000) + session["expires_in"] * 1000})
    return page


def open_chat(browser, base: str, session: dict, chat_id: str):
    page = signed_in_page(browser, base, session)
    page.goto(f"/chats/{chat_id}")
    try:
        page.wait_for_selector("#composer-text")
    except Exception:
        shot = Path(tempfile.gettempdir()) / f"bench-web-{chat_id}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"the chat's page never showed its composer: {page.url}, screenshot {shot}", flush=True)
        raise
    page.wait_for_function("document.querySelector('[data-status]')?.dataset.status === 'online'")
    return page


JS_BUDGET_KB = 150


def first_screen_js_kb(browser, base: str) -> tuple[float, int]:
    """gzip size of every script a new visitor's first screen (sign-in) loads, and how many."""
    context = browser.new_context(base_url=base, viewport={"width": 360, "height": 740})
    page = context.new_page()
    scripts: list = []
    page.on("response", lambda r: scripts.append(r) if r.request.resource_type == "script" else None)
    page.goto("/", wait_until="networkidle")
    size = sum(len(gzip.compress(r.body(), 9)) for r in scripts)
    context.close()
    return size / 1024, len(scripts)


def home_render_ms(browser, base: str, session: dict, runs: int = 10) -> list[float]:
    """A signed-in teacher opens the app: navigation start -> the home's data shown (the teacher's
    section of the dashboard), from the page's own performance clock; the shell is cached after run 1."""
    page = signed_in_page(browser, base, session)
    times = []
    for _ in range(runs):
        page.goto("/", wait_until="commit")
        page.wait_for_selector("[data-home=teacher]")
        times.append(page.evaluate("performance.now()"))
    page.context.close()
    return times


def me_round_trip_ms(api: str, session: dict, runs: int = 30) -> list[float]:
    http = requests.Session()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        http.get(f"{api}/me", headers=auth(session["access_token"]), timeout=30).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(name: str, values: list[float], count: int) -> str:
    if not values:
        return f"{name:<44} nothing arrived of {count}"
    return (f"{name:<44} {len(values):>4}/{count:<4} p50 {percentile(values, 0.50):7.1f} ms   "
            f"p99 {percentile(values, 0.99):7.1f} ms   max {max(values):7.1f} ms")


def build_web_client() -> None:
    """web/dist as the gateway serves it (built only when its inputs changed, as `make setup` does)."""
    built = subprocess.run(["bash", str(ROOT / "tools" / "bootstrap" / "web.sh"), "build"], cwd=ROOT,
                           capture_output=True, text=True)
    if built.returncode:
        raise SystemExit(built.stdout + built.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args()
    build_web_client()
    from playwright.sync_api import sync_playwright

    sms = SmsCapture()
    with running_platform(sms, SFERA_OPERATOR_PHONES=OPERATOR) as (stack, api):
        chat_id, admin, teacher = world(api, sms)
        arrived: dict[str, float] = {}
        stop = threading.Event()
        ws = WebSocketClient.connect(stack.gateway_url.replace("http://", "ws://")
                                     + "/api/v1/realtime?access_token=" + teacher["access_token"])

        def listen() -> None:
            while not stop.is_set():
                try:
                    raw = ws.receive(timeout=0.2)
                except simple_websocket.ConnectionClosed:
                    return
                if raw and raw != "pong":
                    message = json.loads(raw)
                    if message.get("type") == "MessagePosted":
                        arrived.setdefault(message["data"]["text"], time.time() * 1000)

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            js_kb, js_files = first_screen_js_kb(browser, stack.gateway_url)
            home = home_render_ms(browser, stack.gateway_url, another_session(api, teacher, TEACHER_PHONE))
            me = me_round_trip_ms(api, teacher)
            sender = open_chat(browser, stack.gateway_url, admin, chat_id)
            reader = open_chat(browser, stack.gateway_url, teacher, chat_id)
            reader.evaluate(WATCH)
            typed: dict[str, float] = {}
            for n in range(args.messages):
                text = f"bench:{n}:{uuid.uuid4().hex[:6]}"
                typed[text] = sender.evaluate(SEND, text)
                time.sleep(args.interval)
            time.sleep(3)
            shown: dict[str, float] = reader.evaluate("window.__shown")
            browser.close()
        posted: dict[str, float] = {}
        session = requests.Session()
        for n in range(args.messages):
            text = f"api:{n}:{uuid.uuid4().hex[:6]}"
            posted[text] = time.time() * 1000
            session.post(f"{api}/chats/{chat_id}/messages", headers=auth(admin["access_token"]), timeout=30,
                         json={"text": text}).raise_for_status()
            time.sleep(args.interval)
        time.sleep(2)
        stop.set()
        listener.join()
        ws.close()
    browsers = [shown[t] - at for t, at in typed.items() if t in shown]
    sockets = [arrived[t] - at for t, at in typed.items() if t in arrived]
    plain = [arrived[t] - at for t, at in posted.items() if t in arrived]
    print(f"first screen JavaScript: {js_kb:.1f} kB gzip in {js_files} files "
          f"({js_kb / JS_BUDGET_KB:.2f}x the {JS_BUDGET_KB} kB budget)")
    home_p50, me_p50 = statistics.median(home), statistics.median(me)
    print(f"teacher's home with its data: p50 {home_p50:.0f} ms (first load {home[0]:.0f} ms), "
          f"GET /me round trip p50 {me_p50:.1f} ms (baseline, same run): {home_p50 / me_p50:.1f}x")
    print(f"web chat: {args.messages} messages typed in one Chromium, one every {args.interval * 1000:.0f} ms, "
          "into a chat open in another")
    print(summary("typed -> shown in the other browser", browsers, len(typed)))
    print(summary("typed -> the gateway's WebSocket (same run)", sockets, len(typed)))
    print(summary("API POST -> the gateway's WebSocket", plain, len(posted)))
    report.row("web", "first screen JavaScript (gzip)", f"{js_kb:.1f} kB", f"budget {JS_BUDGET_KB} kB",
               js_kb / JS_BUDGET_KB, "<= 1x")
    report.row("web", "teacher's home rendered with its data, p50", f"{home_p50:.0f} ms",
               f"GET /me p50 {me_p50:.1f} ms", home_p50 / me_p50, "printed")
    if browsers and sockets:
        shown_p50, socket_p50 = percentile(browsers, 0.5), percentile(sockets, 0.5)
        report.row("web", "chat message typed -> shown in another browser, p50", f"{shown_p50:.0f} ms",
                   f"typed -> gateway socket p50 {socket_p50:.0f} ms", shown_p50 / socket_p50, "printed")


if __name__ == "__main__":
    main()
