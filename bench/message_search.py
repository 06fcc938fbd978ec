"""Message search (issue #17): a person's search across their chats (and in one chat) by words, over thousands of
messages, on the running platform (PostgreSQL with fsync, RabbitMQ, every service, the gateway).

messaging's seed command writes ``--chats`` chats of ``--messages`` school-like Russian sentences each for the
person, and as many for someone else (rows the search must pass over); the first search catches the search read
model up (timed), then random searches of one or two words (word forms, prefixes), a page of 20 each.

Baseline of the same run: ``GET /api/v1/me`` (one authenticated RPC).

    python -m bench.message_search [--chats 10] [--messages 2000] [--searches 300]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time

import requests

from bench import report
from bench.pipeline import percentile
from bench.platform import SmsCapture, burst, running_platform
from bench.school import auth, sign_in

QUERIES = ("урок", "уроки математики", "контрольной", "экскурсии", "олимпиада", "собрание пятницу", "диктанты",
           "каникулы", "сочинение литературе", "кабинет 12", "домашнее", "химии")


def seed(stack, user_id: str, chats: int, messages: int) -> dict:
    done = subprocess.run([sys.executable, "-m", "messaging.seed", "history", "--user", user_id, "--messages",
                           str(messages), "--chats", str(chats), "--sentences"], env=stack.env(), check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=10)
    parser.add_argument("--messages", type=int, default=2000, help="in each chat")
    parser.add_argument("--searches", type=int, default=300)
    args = parser.parse_args()
    sms = SmsCapture()
    with running_platform(sms) as (stack, api):
        token, other = sign_in(api, sms, "+79990000011"), sign_in(api, sms, "+79990000012")
        me = requests.get(f"{api}/me", headers=auth(token), timeout=30).json()["user_id"]
        someone = requests.get(f"{api}/me", headers=auth(other), timeout=30).json()["user_id"]
        total = args.chats * args.messages
        print(f"seeding {args.chats} chats of {args.messages} messages for the person, as many for someone else ...",
              flush=True)
        mine = seed(stack, me, args.chats, args.messages)
        theirs = seed(stack, someone, args.chats, args.messages)
        print(f"  wrote {2 * total} messages in {mine['seconds'] + theirs['seconds']:.1f} s", flush=True)
        session = requests.Session()

        t0 = time.perf_counter()
        while True:  # the read models catch up in the background (SFERA_READ_MODEL_INTERVAL) and in the query
            first = session.get(f"{api}/messages/search", params={"q": "урок"}, headers=auth(token), timeout=300)
            if first.status_code != 503 or time.perf_counter() - t0 > 600:
                break
        first.raise_for_status()
        caught_up = time.perf_counter() - t0
        print(f"  first search answered {caught_up:.1f} s after the seed (the read models catching up with "
              f"{2 * total} messages)", flush=True)
        assert first.json()["items"] and {i["chat_id"] for i in first.json()["items"]} <= set(mine["chat_ids"])

        def search(n: int, chat_id: str | None = None) -> float:
            params = {"q": random.Random(n).choice(QUERIES), "limit": 20, **({"chat_id": chat_id} if chat_id else {})}
            t = time.perf_counter()
            response = session.get(f"{api}/messages/search", params=params, headers=auth(token), timeout=30)
            response.raise_for_status()
            return time.perf_counter() - t

        def in_one_chat(n: int) -> float:
            return search(n, mine["chat_ids"][n % len(mine["chat_ids"])])

        def whoami(_: int) -> float:
            t = time.perf_counter()
            session.get(f"{api}/me", headers=auth(token), timeout=30).raise_for_status()
            return time.perf_counter() - t

        burst(search, list(range(20)), 1)  # warm
        # In turns (a search across, one in a chat, GET /me): what else the machine runs meanwhile weighs on all three
        # alike, not on one series (the ratio is the figure).
        across, one, base = [], [], []
        for n in range(args.searches):
            across.append(search(n))
            one.append(in_one_chat(n))
            base.append(whoami(n))
        by_query: dict[str, list[float]] = {}
        for n, latency in enumerate(across):
            by_query.setdefault(random.Random(n).choice(QUERIES), []).append(latency)

    def ms(latencies: list[float], q: float) -> float:
        return percentile(latencies, q) * 1000

    print()
    print(f"search across {args.chats} chats ({total} of the person's messages, {2 * total} in the store), a page "
          f"of 20: p50 {ms(across, 0.5):.1f} ms, p99 {ms(across, 0.99):.1f} ms")
    print(f"search in one chat of {args.messages}: p50 {ms(one, 0.5):.1f} ms, p99 {ms(one, 0.99):.1f} ms")
    print(f"baseline GET /me: p50 {ms(base, 0.5):.1f} ms, p99 {ms(base, 0.99):.1f} ms; ratio across p99 / GET /me "
          f"p99 = {ms(across, 0.99) / ms(base, 0.99):.2f}x (goal <= 2)")
    print("across, by query (p50 / max ms): " + ", ".join(
        f"{q} {ms(v, 0.5):.1f}/{max(v) * 1000:.1f}" for q, v in sorted(by_query.items())))
    report.row("message_search", f"search across {args.chats} chats, {total} messages, page of 20, p99",
               f"{ms(across, 0.99):.1f} ms", f"GET /me p99 {ms(base, 0.99):.1f} ms",
               ms(across, 0.99) / ms(base, 0.99), "<= 2x")
    report.row("message_search", f"search in one chat of {args.messages}, page of 20, p99", f"{ms(one, 0.99):.1f} ms",
               f"GET /me p99 {ms(base, 0.99):.1f} ms", ms(one, 0.99) / ms(base, 0.99), "<= 2x")
    report.row("message_search", f"first search: read model catching up with {2 * total} messages",
               f"{caught_up:.1f} s", "—", None, "once per deploy/rebuild")


if __name__ == "__main__":
    main()
