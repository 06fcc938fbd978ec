"""Messaging: a class chat of 40 members, all connected by WebSocket, 10 of them
posting; send -> delivered latency at rising rates, and history pages of a chat
of 100,000 messages. On the running platform (PostgreSQL with fsync, RabbitMQ,
every service, the gateway).

Baseline of the same run: ``GET /api/v1/me`` (one authenticated RPC).

    python -m bench.messaging [--members 40] [--posters 10] [--history 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import threading
import time
import uuid

import requests
import simple_websocket

from bench import report
from bench.pipeline import percentile
from bench.platform import SmsCapture, burst, running_platform
from bench.school import OPERATOR, approved_school, auth, sign_in, wait_until
from tests.helpers import WebSocketClient

RATES = (10, 25, 50, 100, 200)
STEP_SECONDS = 5


def school_with_class(api: str, sms: SmsCapture, members: int) -> tuple[str, list[str]]:
    """A class whose chat has ``members`` pupils; returns the chat id and their tokens."""
    org_id, admin = approved_school(api, sms, "Школа")
    klass = requests.post(f"{api}/organizations/{org_id}/classes", headers=auth(admin), timeout=30,
                          json={"name": "7А", "start_year": 2022, "end_year": 2029}).json()
    link = requests.post(f"{api}/organizations/{org_id}/invites", headers=auth(admin), timeout=30,
                         json={"role": "student", "class_id": klass["class_id"], "max_uses": members}).json()["token"]
    tokens = [sign_in(api, sms, f"+7916{i:07d}") for i in range(members)]
    for token in tokens:
        requests.post(f"{api}/invites/{link}/membership", headers=auth(token), timeout=30).raise_for_status()

    def class_chat():
        chats = requests.get(f"{api}/chats", headers=auth(tokens[0]), timeout=30).json()
        found = [c["chat"] for c in chats if c["chat"]["kind"] == "class"]
        return found[0] if found and len(found[0]["member_ids"]) == members else None

    wait_until(class_chat, timeout=120)
    return class_chat()["chat_id"], tokens


def live_latency(stack, api: str, chat_id: str, tokens: list[str], posters: int) -> list[dict]:
    ws_url = stack.gateway_url.replace("http://", "ws://") + "/api/v1/realtime?access_token="
    sockets = []
    for n, token in enumerate(tokens):
        ws = WebSocketClient.connect(ws_url + token)
        greeting = json.loads(ws.receive(timeout=30) or "{}")
        if greeting.get("type") != "ready":
            raise RuntimeError(f"socket {n}: no ready from the gateway: {greeting}")
        sockets.append(ws)
    received: dict[str, list[float]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def listen(ws) -> None:
        while not stop.is_set():
            try:
                raw = ws.receive(timeout=0.2)
            except simple_websocket.ConnectionClosed:
                return
            if raw is None:
                continue
            message = json.loads(raw)
            if message["type"] == "MessagePosted":
                with lock:
                    received.setdefault(message["data"]["text"], []).append(time.time())

    listeners = [threading.Thread(target=listen, args=(ws,), daemon=True) for ws in sockets]
    for t in listeners:
        t.start()
    rows = []
    for rate in RATES:
        sent: dict[str, float] = {}
        interval = posters / rate
        failures = 0

        def post(poster: int, rate: int = rate, sent: dict = sent, interval: float = interval) -> None:
            nonlocal failures
            session = requests.Session()
            started = time.perf_counter()
            n = 0
            while time.perf_counter() - started < STEP_SECONDS:
                text = f"{rate}:{poster}:{n}:{uuid.uuid4().hex[:6]}"
                sent[text] = time.time()
                if session.post(f"{api}/chats/{chat_id}/messages", headers=auth(tokens[poster]), timeout=30,
                                json={"text": text}).status_code != 201:
                    failures += 1
                n += 1
                pause = started + n * interval - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)

        threads = [threading.Thread(target=post, args=(p,)) for p in range(posters)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        post_seconds = time.perf_counter() - began
        time.sleep(2)  # let the last deliveries land
        latencies = []
        delivered = 0
        with lock:
            for text, at in sent.items():
                arrivals = received.get(text, [])
                delivered += len(arrivals)
                latencies += [(a - at) * 1000 for a in arrivals]
        expected = len(sent) * len(sockets)
        rows.append({"rate": rate, "achieved": len(sent) / post_seconds, "delivered": delivered / max(1, expected),
                     "p50": percentile(latencies, 0.5) if latencies else float("nan"),
                     "p99": percentile(latencies, 0.99) if latencies else float("nan"), "failures": failures})
        print(f"  target {rate:4d} msg/s: sent {len(sent) / post_seconds:6.1f}/s, delivered "
              f"{100 * delivered / max(1, expected):5.1f}% of {expected}, p50 {rows[-1]['p50']:7.1f} ms, "
              f"p99 {rows[-1]['p99']:7.1f} ms", flush=True)
        if rows[-1]["delivered"] < 0.99 or rows[-1]["achieved"] < 0.9 * rate:
            break
    stop.set()
    for ws in sockets:
        ws.close()
    return rows


def long_history(stack, api: str, token: str, user_id: str, total: int) -> dict:
    """Have messaging write ``total`` messages into one chat of its own store (its seed command: the bench
    does not import the service), then read random history pages through the gateway."""
    seeded = subprocess.run([sys.executable, "-m", "messaging.seed", "history", "--user", user_id,
                             "--messages", str(total)], env=stack.env(), check=True, capture_output=True, text=True)
    written = json.loads(seeded.stdout.strip().splitlines()[-1])
    chat_id = written["chat_id"]
    print(f"  wrote {total} messages in {written['seconds']:.1f} s (python -m messaging.seed)", flush=True)
    session = requests.Session()

    def read(_: int) -> float:
        before = random.randrange(50, total)
        t0 = time.perf_counter()
        response = session.get(f"{api}/chats/{chat_id}/messages?before={before}&limit=50", headers=auth(token),
                               timeout=30)
        response.raise_for_status()
        assert response.json()["items"][0]["seq"] == before - 1
        return time.perf_counter() - t0

    seconds, latencies = burst(read, list(range(300)), 1)

    def me(_: int) -> float:
        t0 = time.perf_counter()
        session.get(f"{api}/me", headers=auth(token), timeout=30).raise_for_status()
        return time.perf_counter() - t0

    _, base = burst(me, list(range(300)), 1)
    return {"p50": percentile(latencies, 0.5) * 1000, "p99": percentile(latencies, 0.99) * 1000,
            "base_p50": percentile(base, 0.5) * 1000, "base_p99": percentile(base, 0.99) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--posters", type=int, default=10)
    parser.add_argument("--history", type=int, default=100_000)
    args = parser.parse_args()
    sms = SmsCapture()
    with running_platform(sms, SFERA_OPERATOR_PHONES=OPERATOR) as (stack, api):
        print(f"a class chat of {args.members}, all on WebSocket, {args.posters} posting ...", flush=True)
        chat_id, tokens = school_with_class(api, sms, args.members)
        rows = live_latency(stack, api, chat_id, tokens, args.posters)
        me = requests.get(f"{api}/me", headers=auth(tokens[0]), timeout=30).json()
        print(f"history of {args.history} messages ...", flush=True)
        history = long_history(stack, api, tokens[0], me["user_id"], args.history)
    sustained = [r for r in rows if r["delivered"] >= 0.99 and r["achieved"] >= 0.9 * r["rate"]]
    best = sustained[-1] if sustained else rows[0]
    print()
    print(f"highest sustained rate: {best['achieved']:.1f} msg/s into a chat of {args.members} "
          f"({best['achieved'] * args.members:.0f} deliveries/s): send -> delivered p50 {best['p50']:.1f} ms, "
          f"p99 {best['p99']:.1f} ms")
    report.row("messaging", f"live chat delivery: highest sustained rate into a chat of {args.members} (all on "
               f"WebSocket, {args.posters} posting), send -> delivered", f"{best['achieved']:.1f} msg/s, p99 "
               f"{best['p99']:.1f} ms (p50 {best['p50']:.1f} ms)", f"GET /me p99 {history['base_p99']:.1f} ms",
               best["p99"] / history["base_p99"], ">= 200 msg/s, p99 <= 100 ms")
    print(f"history page of 50 in a {args.history}-message chat: p50 {history['p50']:.1f} ms, "
          f"p99 {history['p99']:.1f} ms; baseline GET /me p50 {history['base_p50']:.1f} ms, "
          f"p99 {history['base_p99']:.1f} ms (ratio p50 {history['p50'] / history['base_p50']:.2f}x)")


if __name__ == "__main__":
    main()
    print(report.table(report.rows("messaging")), flush=True)
