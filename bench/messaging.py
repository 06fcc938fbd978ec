"""Messaging: live chat delivery into class chats of 40 members, every member connected by WebSocket (issue #17:
"200 msg/s into 40-member chats", p99 send -> delivered <= 100 ms); and history pages of a chat of 100,000
messages. On the running platform (PostgreSQL with fsync, RabbitMQ, every service, the gateway).

Two load generators, both reported:

- open loop (the headline rows): sends paced at the asked rate whatever the answers do, each by one of the chat's
  40 members in turn, as many in flight as the platform keeps waiting; latency counted from each send's
  *scheduled* time. One chat at rising rates, then 200 msg/s spread over 5 chats.
- closed loop (the rows of earlier sessions, kept so nothing is hidden): 10 posters of a chat, each waiting for
  its answer before its next post. Such a generator can never send more than 10 / (POST latency) a second and
  waits out the platform's slow moments instead of measuring them (coordinated omission): it measures latency at
  the rate it manages, not the capacity asked for. The posters' schedules are spread over their interval; the
  spread step also runs them all starting at once, as before 2026-12-01 (every poster posting in the same
  millisecond 4 times a second: that measured how a burst of 50 drains, not 200 msg/s).

The members' sockets are read by a process of their own (bench.listeners: arrival times not behind the posters'
threads, the reader's own lateness printed); ``--listeners thread``: a thread of the bench's, as before.

Baseline of the same run: ``GET /api/v1/me`` (one authenticated RPC).

    python -m bench.messaging [--members 40] [--posters 10] [--chats 5] [--spread-rate 200] [--history 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import threading
import time
import uuid
from typing import NamedTuple

import requests

from bench import report
from bench.listeners import Listeners
from bench.pipeline import percentile
from bench.platform import SmsCapture, burst, running_platform
from bench.school import OPERATOR, approved_school, auth, sign_in, wait_until

RATES = (10, 25, 50, 100, 200)
OPEN_RATES = (50, 100, 200)
STEP_SECONDS = 5


def school_with_classes(api: str, sms: SmsCapture, members: int, classes: int) -> list[tuple[str, list[str]]]:
    """``classes`` classes of one school, each with ``members`` pupils; each class chat's id and its pupils' tokens."""
    org_id, admin = approved_school(api, sms, "Школа")
    links = []
    for n in range(classes):
        klass = requests.post(f"{api}/organizations/{org_id}/classes", headers=auth(admin), timeout=30, json={
            "name": f"{n % 11 + 1}{'АБВГД'[n // 11]}", "start_year": 2022, "end_year": 2029}).json()
        links.append(requests.post(f"{api}/organizations/{org_id}/invites", headers=auth(admin), timeout=30,
                                   json={"role": "student", "class_id": klass["class_id"],
                                         "max_uses": members}).json()["token"])
    _, tokens = burst(lambda i: sign_in(api, sms, f"+7916{i:07d}"), list(range(members * classes)), 8)

    def join(i: int) -> None:
        requests.post(f"{api}/invites/{links[i // members]}/membership", headers=auth(tokens[i]),
                      timeout=60).raise_for_status()

    burst(join, list(range(members * classes)), 8)

    def class_chat(token: str):
        chats = requests.get(f"{api}/chats", headers=auth(token), timeout=30).json()
        found = [c["chat"] for c in chats if c["chat"]["kind"] == "class"]
        return found[0] if found and len(found[0]["member_ids"]) == members else None

    found = []
    for n in range(classes):
        first = tokens[n * members]
        wait_until(lambda first=first: class_chat(first), timeout=120)
        found.append((class_chat(first)["chat_id"], tokens[n * members:(n + 1) * members]))
    return found


async def post_message(session, api: str, chat_id: str, token: str, text: str) -> int:
    """One POST of a chat message on an aiohttp session: its status (0: no answer, the connection failed)."""
    import aiohttp

    try:
        async with session.post(f"{api}/chats/{chat_id}/messages", headers=auth(token),
                                json={"text": text}) as response:
            await response.read()
            return response.status
    except (TimeoutError, aiohttp.ClientError):
        return 0


def run_on_uvloop(coroutine):
    """Runs a load generator's coroutine to its end on uvloop (libuv's loop, as the realtime server's): the bench's
    own work a request is then a fraction of what it was, and it shares the platform's cores."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def paced_posts(api: str, posters: list[tuple[str, str, str]], interval: float, seconds: float,
                each: dict[str, list] | None = None, phased: bool = True
                ) -> tuple[dict[str, float], list[float], int, float]:
    """Each (chat, token, name) posts every ``interval`` s for ``seconds``, waiting for each answer before its next
    post: the texts sent with their send times, each POST's answer time (ms), the failures, and how long the
    posting took (the longest poster's window); ``each`` gets every text's [sent, answered (wall clock), status].
    The posters are coroutines of one uvloop loop on one aiohttp session (a keep-alive connection each): 50
    threads of ``requests`` took 1.7 s of the bench's CPU for 10 s at 200 msg/s, the platform's two cores shared
    with them.

    ``phased``: the posters' schedules are spread evenly over one interval (poster k of n starts k/n of it late),
    so that the rate arrives as evenly as the answers let it. Unphased, every poster starts at once: all of them
    post in the same millisecond every interval (50 posts at once 4 times a second for 200 msg/s over 5 chats of
    10 posters), and the figure measures how fast such a burst drains, not the rate; kept to compare."""
    import aiohttp

    sent: dict[str, float] = {}
    answered: list[float] = []
    failures = 0

    async def post(session, began: float, k: int, chat_id: str, token: str, name: str) -> None:
        nonlocal failures
        started = began + (k * interval / len(posters) if phased else 0.0)
        await asyncio.sleep(max(0.0, started - time.perf_counter()))
        n = 0
        while n * interval < seconds:  # by the schedule: a timer waking a hair early adds no post
            text = f"{name}:{n}:{uuid.uuid4().hex[:6]}"
            sent[text] = time.time()
            t0 = time.perf_counter()
            status = await post_message(session, api, chat_id, token, text)
            if status != 201:
                failures += 1
            answered.append((time.perf_counter() - t0) * 1000)
            if each is not None:
                each[text] = [sent[text], time.time(), status]
            n += 1
            if n * interval < seconds and (pause := started + n * interval - time.perf_counter()) > 0:
                await asyncio.sleep(pause)
        return time.perf_counter() - started

    async def run() -> float:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=30)) as session:
            began = time.perf_counter() + 0.05
            # each poster's own window, from its phase to its last answer: ``seconds`` when every poster kept up
            # (the rate asked), longer when answers made one fall behind; not the phases' spread too (10 posters
            # at 1 s intervals: up to 0.9 s more)
            return max(seconds, *await asyncio.gather(*(post(session, began, k, *poster)
                                                        for k, poster in enumerate(posters))))

    return sent, answered, failures, run_on_uvloop(run())


def live_latency(stack, api: str, chat_id: str, tokens: list[str], posters: int, listeners=Listeners) -> list[dict]:
    ws_url = stack.gateway_url.replace("http://", "ws://") + "/api/v1/realtime?access_token="
    sockets = listeners(ws_url, tokens)
    rows = []
    try:
        for rate in RATES:
            sent, answered, failures, post_seconds = paced_posts(
                api, [(chat_id, tokens[p], f"{rate}:{p}") for p in range(posters)], posters / rate, STEP_SECONDS)
            time.sleep(2)  # let the last deliveries land
            sockets.refresh()
            latencies = [(a - at) * 1000 for text, at in sent.items() for a in sockets.arrivals.get(text, [])]
            expected = len(sent) * len(tokens)
            rows.append({"rate": rate, "achieved": len(sent) / post_seconds,
                         "delivered": len(latencies) / max(1, expected),
                         "p50": percentile(latencies, 0.5) if latencies else float("nan"),
                         "p99": percentile(latencies, 0.99) if latencies else float("nan"), "failures": failures})
            print(f"  target {rate:4d} msg/s: sent {len(sent) / post_seconds:6.1f}/s, delivered "
                  f"{100 * rows[-1]['delivered']:5.1f}% of {expected}, p50 {rows[-1]['p50']:7.1f} ms, "
                  f"p99 {rows[-1]['p99']:7.1f} ms (POST answered p50 {percentile(answered, 0.5):.1f} ms, "
                  f"p99 {percentile(answered, 0.99):.1f} ms)", flush=True)
            if rows[-1]["delivered"] < 0.99 or rows[-1]["achieved"] < 0.9 * rate:
                break
    finally:
        sockets.close()
    return rows


class Sockets:
    """Every member's WebSocket, read by one asyncio loop in a thread of its own (aiohttp): each MessagePosted's
    arrival time by its text. A thread a socket would not keep up with 200 sockets; ``--listeners thread``.
    It does not measure its own lateness nor CPU (``Listeners`` does): ``lag_ms`` stays empty, ``cpu`` None."""

    lag_ms: tuple[float, ...] = ()
    cpu: float | None = None

    def __init__(self, ws_url: str, tokens: list[str]):
        self.arrivals: dict[str, list[float]] = {}
        self.frames: dict[str, int] = {}  # frames received by type, every socket's (frames a post: the fan-out's work)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.connected = asyncio.run_coroutine_threadsafe(self._open(ws_url, tokens), self.loop).result(300)

    async def _open(self, ws_url: str, tokens: list[str]) -> int:
        import aiohttp

        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        gate = asyncio.Semaphore(20)

        async def one(token: str):
            async with gate:
                ws = await self.session.ws_connect(ws_url + token, max_msg_size=0)
                greeting = await ws.receive(timeout=60)
                if greeting.type is not aiohttp.WSMsgType.TEXT or json.loads(greeting.data).get("type") != "ready":
                    raise RuntimeError(f"no ready from the gateway: {greeting}")
                return ws

        self.sockets = await asyncio.gather(*(one(t) for t in tokens))
        self.readers = [asyncio.create_task(self._read(ws)) for ws in self.sockets]
        return len(self.sockets)

    async def _read(self, ws) -> None:
        async for frame in ws:
            at = time.time()
            message = json.loads(frame.data)
            self.frames[message["type"]] = self.frames.get(message["type"], 0) + 1
            if message["type"] == "MessagePosted":
                self.arrivals.setdefault(message["data"]["text"], []).append(at)

    def refresh(self) -> None:
        """Nothing to bring: this process's thread fills ``arrivals`` and ``frames`` as frames come."""

    def close(self) -> None:
        async def close() -> None:
            for task in self.readers:
                task.cancel()
            await self.session.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def spread_latency(stack, api: str, chats: list[tuple[str, list[str]]], posters: int, rate: float,
                   seconds: float, each: dict[str, list] | None = None, listeners=Listeners,
                   phased: bool = True) -> dict:
    """``rate`` msg/s spread evenly over ``chats`` (``posters`` of each chat posting, each at its share of the
    rate), every member of every chat connected (by ``listeners``: a process of their own, or ``Sockets``, a
    thread of this one): send -> delivered to each member (``arrivals``: each text's arrival times; ``each``: see
    ``paced_posts``; ``reader_lag_p99``: the listeners' own loop lateness, ms, when they measure it)."""
    ws_url = stack.gateway_url.replace("http://", "ws://") + "/api/v1/realtime?access_token="
    sockets = listeners(ws_url, [token for _, tokens in chats for token in tokens])
    time.sleep(1)
    sent, answered, failures, post_seconds = paced_posts(
        api, [(chat_id, tokens[p], f"spread:{c}.{p}") for p in range(posters) for c, (chat_id, tokens) in
              enumerate(chats)], posters * len(chats) / rate, seconds, each, phased)
    time.sleep(3)  # the last deliveries land
    sockets.close()
    latencies = [(a - at) * 1000 for text, at in sent.items() for a in sockets.arrivals.get(text, [])]
    expected = len(sent) * len(chats[0][1])
    return {"rate": rate, "achieved": len(sent) / post_seconds, "delivered": len(latencies) / max(1, expected),
            "expected": expected, "p50": percentile(latencies, 0.5) if latencies else float("nan"),
            "p99": percentile(latencies, 0.99) if latencies else float("nan"), "failures": failures,
            "answered_p50": percentile(answered, 0.5), "answered_p99": percentile(answered, 0.99),
            "arrivals": sockets.arrivals,
            "reader_lag_p99": percentile(sockets.lag_ms, 0.99) if sockets.lag_ms else None,
            "reader_cpu": sockets.cpu}


class Paced(NamedTuple):
    """An open loop's posts: text -> (scheduled send, answered at: wall clock; the answer's HTTP status), how late the
    generator itself fell behind its schedule at worst (ms), the seconds from the first send to the last answer."""

    posts: dict[str, tuple[float, float, int]]
    late: float
    took: float

    @property
    def sent(self) -> dict[str, float]:
        return {text: scheduled for text, (scheduled, _, _) in self.posts.items()}

    @property
    def answered(self) -> list[float]:
        """Each answer's time from its scheduled send (ms)."""
        return [(answered - scheduled) * 1000 for scheduled, answered, _ in self.posts.values()]

    @property
    def failures(self) -> int:
        return sum(1 for _, _, status in self.posts.values() if status != 201)


async def open_loop_posts(api: str, senders: list[tuple[str, str]], rate: float, seconds: float,
                          label: str) -> Paced:
    """Posts paced at ``rate`` for ``seconds``, the n-th by ``senders[n % len(senders)]`` (chat, token), none
    waiting for another's answer (an open loop: bench.messaging's headline rows, bench.messaging_trace)."""
    import aiohttp

    posts: dict[str, tuple[float, float, int]] = {}
    late = 0.0

    async def post(session, chat_id: str, token: str, text: str, scheduled: float) -> None:
        status = await post_message(session, api, chat_id, token, text)
        posts[text] = (scheduled, time.time(), status)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        tasks = []
        began, wall = time.perf_counter(), time.time()
        for n in range(int(rate * seconds)):
            due = n / rate
            pause = began + due - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            late = max(late, -pause * 1000)
            chat_id, token = senders[n % len(senders)]
            tasks.append(asyncio.create_task(post(session, chat_id, token, f"{label}:{n}:{uuid.uuid4().hex[:6]}",
                                                  wall + due)))
        await asyncio.gather(*tasks)
        took = time.perf_counter() - began
    return Paced(posts, late, took)


def open_loop(stack, api: str, chats: list[tuple[str, list[str]]], rates: tuple[float, ...], seconds: float,
              label: str, listeners=Listeners) -> list[dict]:
    """Open-loop steps: at each rate, posts spread evenly over ``chats``, each post by the next member of its chat
    (all 40 post in turn), every member of every chat on WebSocket (``listeners``, as in ``spread_latency``):
    send (as scheduled) -> delivered to each."""
    ws_url = stack.gateway_url.replace("http://", "ws://") + "/api/v1/realtime?access_token="
    sockets = listeners(ws_url, [token for _, tokens in chats for token in tokens])
    members = len(chats[0][1])
    senders = [(chat_id, tokens[m]) for m in range(members) for chat_id, tokens in chats]
    time.sleep(1)
    rows = []
    try:
        for rate in rates:
            sockets.refresh()
            frames_before = dict(sockets.frames)
            paced = run_on_uvloop(open_loop_posts(api, senders, rate, seconds, f"{label}{rate}"))
            sent, answered, failures, late, took = paced.sent, paced.answered, paced.failures, paced.late, paced.took
            time.sleep(2)  # the last deliveries land
            sockets.refresh()
            latencies = [(a - at) * 1000 for text, at in sent.items() for a in sockets.arrivals.get(text, [])]
            expected = len(sent) * members
            frames = {kind: n - frames_before.get(kind, 0) for kind, n in sockets.frames.items()
                      if n > frames_before.get(kind, 0)}
            row = {"rate": rate, "sent": len(sent), "frames": sum(frames.values()) / max(1, len(sent)),
                   "frame_kinds": {kind: n / max(1, len(sent)) for kind, n in sorted(frames.items())},
                   "achieved": len(sent) / seconds, "taken": len(sent) / took,
                   "delivered": len(latencies) / max(1, expected), "expected": expected, "failures": failures,
                   "late": late,
                   "p50": percentile(latencies, 0.5) if latencies else float("nan"),
                   "p99": percentile(latencies, 0.99) if latencies else float("nan"),
                   "answered_p50": percentile(answered, 0.5), "answered_p99": percentile(answered, 0.99)}
            rows.append(row)
            print(f"  open loop {rate:5.0f} msg/s over {len(chats)} chat(s): {len(sent)} sent (generator at worst "
                  f"{late:.0f} ms behind), taken {row['taken']:.1f} msg/s (all answered in {took:.1f} s), delivered "
                  f"{100 * row['delivered']:5.1f}% of {expected}, p50 "
                  f"{row['p50']:7.1f} ms, p99 {row['p99']:7.1f} ms, {failures} failed (POST answered p50 "
                  f"{row['answered_p50']:.1f} ms, p99 {row['answered_p99']:.1f} ms); WebSocket frames a post "
                  f"{row['frames']:.1f} (" + ", ".join(f"{k} {v:.1f}" for k, v in row["frame_kinds"].items()) + ")",
                  flush=True)
            if row["delivered"] < 0.9:
                break  # losing deliveries: a higher rate tells nothing more (slow ones still reach the asked rate)
    finally:
        sockets.close()
    return rows


def rpc_transport(stack, user_id: str, calls: int = 200, rounds: int = 4) -> dict[str, dict]:
    """GET /me's RPC (identity.get_person) from this process over nameko's standalone proxy (requests persistent
    and confirmed, a kombu Connection built per publish) and over shared.rpc's (transient, unconfirmed, the pool's
    key kept), in turns: latency and the caller's CPU per call (the gateway's part of every RPC)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from shared.rpc import TransientClusterRpcProxy

    config = {"AMQP_URI": stack.amqp_uri}
    proxies = {"nameko": ClusterRpcProxy(config, timeout=10),
               "shared.rpc": TransientClusterRpcProxy(config, timeout=10)}
    clusters = {name: proxy.start() for name, proxy in proxies.items()}
    found = {name: {"latencies": [], "cpu": 0.0} for name in proxies}
    try:
        for _ in range(rounds):
            for name, cluster in clusters.items():
                cpu = time.process_time()
                for _ in range(calls):
                    t0 = time.perf_counter()
                    cluster.identity.get_person(actor_id=user_id, user_id=user_id)
                    found[name]["latencies"].append(time.perf_counter() - t0)
                found[name]["cpu"] += time.process_time() - cpu
    finally:
        for proxy in proxies.values():
            proxy.stop()
    return {name: {"p50": percentile(r["latencies"], 0.5) * 1000, "p99": percentile(r["latencies"], 0.99) * 1000,
                   "cpu": r["cpu"] / (rounds * calls) * 1000} for name, r in found.items()}


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
    parser.add_argument("--chats", type=int, default=5, help="40-member chats the spread rate goes into")
    parser.add_argument("--spread-rate", type=float, default=200.0)
    parser.add_argument("--spread-seconds", type=float, default=10.0)
    parser.add_argument("--open-seconds", type=float, default=5.0, help="each open-loop step's length")
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--listeners", choices=("process", "thread"), default="process",
                        help="who reads the members' sockets: a process of their own (bench.listeners), or a thread "
                             "of the bench's, beside its posters (the way of sessions before 2026-12-01)")
    args = parser.parse_args()
    listeners = Listeners if args.listeners == "process" else Sockets
    sms = SmsCapture()
    with running_platform(sms, SFERA_OPERATOR_PHONES=OPERATOR) as (stack, api):
        print(f"{args.chats} class chats of {args.members} ...", flush=True)
        chats = school_with_classes(api, sms, args.members, max(1, args.chats))
        chat_id, tokens = chats[0]
        print(f"open loop: a class chat of {args.members}, all on WebSocket, every member posting in turn ...",
              flush=True)
        open_one = open_loop(stack, api, chats[:1], OPEN_RATES, args.open_seconds, "open", listeners)
        print(f"open loop: {args.spread_rate:.0f} msg/s over {len(chats)} chats of {args.members}, all "
              f"{len(chats) * args.members} on WebSocket ...", flush=True)
        open_spread = open_loop(stack, api, chats, (args.spread_rate,), args.spread_seconds, "openspread",
                                listeners)[0]
        print(f"closed loop: a class chat of {args.members}, all on WebSocket, {args.posters} posting ...",
              flush=True)
        rows = live_latency(stack, api, chat_id, tokens, args.posters, listeners)
        print(f"closed loop: {args.spread_rate:.0f} msg/s over {len(chats)} chats of {args.members}, all "
              f"{len(chats) * args.members} on WebSocket, {args.posters} posting in each ...", flush=True)
        spread = spread_latency(stack, api, chats, args.posters, args.spread_rate, args.spread_seconds,
                                listeners=listeners)
        # the same posters all starting at once (as before 2026-12-01): bursts of every poster 4 times a second
        aligned = spread_latency(stack, api, chats, args.posters, args.spread_rate, args.spread_seconds,
                                 listeners=listeners, phased=False)
        for name, found in (("phased", spread), ("aligned", aligned)):
            lag = "" if found["reader_lag_p99"] is None else f"; the listeners' loop late p99 " \
                                                             f"{found['reader_lag_p99']:.1f} ms"
            print(f"  {name}: sent {found['achieved']:6.1f}/s, delivered {100 * found['delivered']:5.1f}% of "
                  f"{found['expected']}, p50 {found['p50']:7.1f} ms, p99 {found['p99']:7.1f} ms, "
                  f"{found['failures']} failed (POST answered p50 {found['answered_p50']:.1f} ms, "
                  f"p99 {found['answered_p99']:.1f} ms{lag})", flush=True)
        me = requests.get(f"{api}/me", headers=auth(tokens[0]), timeout=30).json()
        print("an RPC over nameko's proxy and over shared.rpc's, in turns ...", flush=True)
        transport = rpc_transport(stack, me["user_id"])
        print(f"history of {args.history} messages ...", flush=True)
        history = long_history(stack, api, tokens[0], me["user_id"], args.history)
    base = f"GET /me p99 {history['base_p99']:.1f} ms"
    goal = ">= 200 msg/s, p99 <= 100 ms"
    print()
    for label, found, where in ((f"into a chat of {args.members}", open_one[-1], f"a chat of {args.members}"),
                                (f"spread over {len(chats)} chats of {args.members}", open_spread,
                                 f"{len(chats)} chats of {args.members}")):
        figure = (f"{found['achieved']:.1f} msg/s sent, {found['taken']:.1f} msg/s taken (posts / first send to "
                  f"last answer), {100 * found['delivered']:.1f}% delivered, p99 "
                  f"{found['p99']:.1f} ms (p50 {found['p50']:.1f} ms; POST answered p99 "
                  f"{found['answered_p99']:.1f} ms); {found['frames']:.1f} WebSocket frames a post")
        print(f"open loop, {found['rate']:.0f} msg/s asked {label}: {figure}")
        report.row("messaging", f"live chat delivery, open loop: {found['rate']:.0f} msg/s asked into {where} (all on "
                   "WebSocket, every member posting in turn), scheduled send -> delivered", figure, base,
                   found["p99"] / history["base_p99"], goal)
    sustained = [r for r in rows if r["delivered"] >= 0.99 and r["achieved"] >= 0.9 * r["rate"]]
    best = sustained[-1] if sustained else rows[0]
    print(f"highest sustained rate: {best['achieved']:.1f} msg/s into a chat of {args.members} "
          f"({best['achieved'] * args.members:.0f} deliveries/s): send -> delivered p50 {best['p50']:.1f} ms, "
          f"p99 {best['p99']:.1f} ms")
    report.row("messaging", f"live chat delivery, closed loop: highest sustained rate into a chat of {args.members} "
               f"(all on WebSocket, {args.posters} posting, each waiting for its answer), send -> delivered",
               f"{best['achieved']:.1f} msg/s, p99 {best['p99']:.1f} ms (p50 {best['p50']:.1f} ms)", base,
               best["p99"] / history["base_p99"], goal)
    print(f"{args.spread_rate:.0f} msg/s asked over {len(chats)} chats of {args.members}: sent "
          f"{spread['achieved']:.1f} msg/s ({spread['achieved'] * args.members:.0f} deliveries/s), delivered "
          f"{100 * spread['delivered']:.1f}%: send -> delivered p50 {spread['p50']:.1f} ms, p99 {spread['p99']:.1f} ms "
          f"(posters all starting at once: p50 {aligned['p50']:.1f} ms, p99 {aligned['p99']:.1f} ms)")
    report.row("messaging", f"live chat delivery, closed loop: {args.spread_rate:.0f} msg/s asked, spread over "
               f"{len(chats)} chats of {args.members} (all {len(chats) * args.members} on WebSocket, {args.posters} "
               "posting in each, their schedules spread over the interval, each waiting for its answer), send -> "
               "delivered", f"{spread['achieved']:.1f} msg/s sent, {100 * spread['delivered']:.1f}% delivered, p99 "
               f"{spread['p99']:.1f} ms (p50 {spread['p50']:.1f} ms; all posters at once: p99 {aligned['p99']:.1f} "
               "ms)", base, spread["p99"] / history["base_p99"], goal)
    old, new = transport["nameko"], transport["shared.rpc"]
    print(f"identity.get_person in turns: shared.rpc p50 {new['p50']:.2f} / p99 {new['p99']:.2f} ms, caller CPU "
          f"{new['cpu']:.3f} ms a call; nameko's proxy p50 {old['p50']:.2f} / p99 {old['p99']:.2f} ms, "
          f"{old['cpu']:.3f} ms")
    report.row("messaging", "an RPC's caller (GET /me's identity.get_person from one process, in turns with "
               "nameko's proxy): CPU a call, transient unconfirmed requests (shared.rpc)",
               f"{new['cpu']:.3f} ms CPU, p99 {new['p99']:.1f} ms", f"nameko's proxy {old['cpu']:.3f} ms CPU, p99 "
               f"{old['p99']:.1f} ms", new["cpu"] / old["cpu"], "less CPU per post (about half for 200 msg/s)")
    print(f"history page of 50 in a {args.history}-message chat: p50 {history['p50']:.1f} ms, "
          f"p99 {history['p99']:.1f} ms; baseline GET /me p50 {history['base_p50']:.1f} ms, "
          f"p99 {history['base_p99']:.1f} ms (ratio p50 {history['p50'] / history['base_p50']:.2f}x)")


if __name__ == "__main__":
    main()
    print(report.table(report.rows("messaging")), flush=True)
