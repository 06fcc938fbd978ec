"""One person in 300 chats reads their chat list a page (50) at a time, on the running platform (PostgreSQL with
fsync, RabbitMQ, every service, the gateway): issue #17's "a page of a person's 300 chats", paged in SQL from
messaging's read model (messaging/readmodel.py). The school's admin makes 300 chats with the person, posts in a
third of them and the person reads some; then the person reads every page of their list over and over from
concurrent clients, and the whole list (``GET /chats`` without a limit, as the web client asks) as well.

Baseline of the same run: ``GET /api/v1/me`` (one authenticated RPC) at the same concurrency; the page's p99 is
printed as a ratio of its p99 (goal <= 2).

    python -m bench.chat_list [--chats 300] [--clients 8] [--samples 2000]
"""

from __future__ import annotations

import argparse
import time

import requests

from bench import report
from bench.pipeline import percentile
from bench.platform import SmsCapture, burst, running_platform
from bench.school import OPERATOR, approved_school, auth, sign_in, wait_until

PAGE = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    sms = SmsCapture()
    with running_platform(sms, SFERA_OPERATOR_PHONES=OPERATOR) as (stack, api):
        org_id, admin = approved_school(api, sms, "Школа чатов")
        link = requests.post(f"{api}/organizations/{org_id}/invites", headers=auth(admin), timeout=30,
                             json={"role": "teacher", "validity": "1d", "max_uses": 1}).json()["token"]
        person = sign_in(api, sms, "+79160000001")
        requests.post(f"{api}/invites/{link}/membership", headers=auth(person), timeout=30).raise_for_status()
        person_id = requests.get(f"{api}/me", headers=auth(person), timeout=30).json()["user_id"]

        refused: dict[str, int] = {}

        def create(n: int) -> str:
            for _ in range(5):  # every new chat joins the same two people's lists (UserChats): writes collide
                response = requests.post(f"{api}/chats", headers=auth(admin), timeout=30, json={
                    "organization_id": org_id, "name": f"Чат {n}", "member_ids": [person_id]})
                if response.status_code == 201:
                    return response.json()["chat_id"]
                code = response.json().get("error", {}).get("code", "?") if response.content else "?"
                refused[f"{response.status_code} {code}"] = refused.get(f"{response.status_code} {code}", 0) + 1
            return ""

        wait_until(lambda: bool(create(0)))  # the first once messaging has learnt that the person joined
        print(f"making {args.chats} chats with one person ...", flush=True)
        burst(create, list(range(1, args.chats)), args.clients)
        if refused:
            print(f"  refused on the way (then retried): {refused}", flush=True)
        listed = requests.get(f"{api}/chats", headers=auth(person), timeout=60).json()
        chats = [c["chat"]["chat_id"] for c in listed]
        if len(chats) < args.chats:
            raise RuntimeError(f"the person is in {len(chats)} chats, not {args.chats}")

        def talk(chat_id: str) -> float:
            t0 = time.perf_counter()
            for _ in range(2):
                requests.post(f"{api}/chats/{chat_id}/messages", headers=auth(admin), timeout=30,
                              json={"text": "Домашнее задание на завтра"}).raise_for_status()
            requests.put(f"{api}/chats/{chat_id}/read", headers=auth(person), timeout=30,
                         json={"seq": 0}).raise_for_status()
            return time.perf_counter() - t0

        burst(talk, chats[::3], args.clients)

        chats_url = f"{api}/chats?limit={PAGE}"
        cursors: list[str | None] = [None]
        response = requests.get(chats_url, headers=auth(person), timeout=60)
        counted = len(response.json())
        while response.headers.get("X-Next-Cursor"):
            cursors.append(response.headers["X-Next-Cursor"])
            response = requests.get(f"{chats_url}&cursor={cursors[-1]}", headers=auth(person), timeout=60)
            counted += len(response.json())
        if counted != len(chats):
            raise RuntimeError(f"the pages held {counted} chats, not {len(chats)}")

        def chats_page(n: int) -> float:
            cursor = cursors[n % len(cursors)]
            t0 = time.perf_counter()
            page = requests.get(chats_url + (f"&cursor={cursor}" if cursor else ""), headers=auth(person), timeout=30)
            page.raise_for_status()
            if len(page.json()) != min(PAGE, counted - PAGE * (n % len(cursors))):
                raise RuntimeError("a page of the chat list came back short")
            return time.perf_counter() - t0

        def whole_list(_: int) -> float:
            t0 = time.perf_counter()
            requests.get(f"{api}/chats", headers=auth(person), timeout=30).raise_for_status()
            return time.perf_counter() - t0

        def me(_: int) -> float:
            t0 = time.perf_counter()
            requests.get(f"{api}/me", headers=auth(person), timeout=30).raise_for_status()
            return time.perf_counter() - t0

        samples = list(range(args.samples))
        page_seconds, page_latencies = burst(chats_page, samples, args.clients)
        whole_seconds, whole_latencies = burst(whole_list, samples[: max(200, args.samples // 4)], args.clients)
        base_seconds, base_latencies = burst(me, samples, args.clients)

    def line(name: str, seconds: float, latencies: list[float]) -> str:
        return (f"{name:34} {len(latencies) / seconds:8.1f}/s  p50 {percentile(latencies, 0.5) * 1000:.1f} ms   "
                f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms")

    page_p99, base_p99 = percentile(page_latencies, 0.99) * 1000, percentile(base_latencies, 0.99) * 1000
    whole_p99 = percentile(whole_latencies, 0.99) * 1000
    print()
    print(f"one person in {len(chats)} chats, {args.clients} concurrent clients, {len(cursors)} pages of {PAGE}")
    print(line(f"a page ({PAGE}) of the chat list:", page_seconds, page_latencies))
    print(line(f"the whole list ({len(chats)} chats):", whole_seconds, whole_latencies))
    print(line("baseline GET /api/v1/me:", base_seconds, base_latencies))
    print(f"ratio chat list page p99 / GET /me p99 = {page_p99 / base_p99:.2f}x (goal <= 2)")
    print(f"ratio whole chat list p99 / GET /me p99 = {whole_p99 / base_p99:.2f}x")
    report.row("chat_list", f"a page ({PAGE}) of a person's {len(chats)} chats, p99", f"{page_p99:.1f} ms",
               f"GET /me p99 {base_p99:.1f} ms", page_p99 / base_p99, "<= 2x")
    report.row("chat_list", f"a person's whole list of {len(chats)} chats, p99", f"{whole_p99:.1f} ms",
               f"GET /me p99 {base_p99:.1f} ms", whole_p99 / base_p99, "—")
    print()
    print(report.table(report.rows("chat_list")))


if __name__ == "__main__":
    main()
