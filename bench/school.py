"""A whole school joins through invite links: 1,920 students and 80 teachers in
40 classes, on the running platform (PostgreSQL with fsync, RabbitMQ, every
service, the gateway). People first sign in (not timed as joins); then every
one of them opens their class's link and joins, from concurrent clients. Then
the admin reads the 2,000-member school's members list a page (50) at a time,
every page over and over (issue #17: paged in SQL from school's read model).

Baseline of the same run: ``GET /api/v1/me`` (one authenticated RPC) at the
same concurrency; the page's p99 is printed as a ratio of its p99 (goal <= 2).

    python -m bench.school [--students 1920] [--teachers 80] [--classes 40] [--clients 8]
"""

from __future__ import annotations

import argparse
import time

import requests

from bench import report
from bench.pipeline import percentile
from bench.platform import SmsCapture, burst, running_platform

OPERATOR = "+79990000001"


def sign_in(api: str, sms: SmsCapture, phone: str) -> str:
    challenge = requests.post(f"{api}/auth/sign-in-codes", json={"phone": phone}, timeout=30)
    challenge.raise_for_status()
    confirmed = requests.post(f"{api}/auth/sign-in-codes/{challenge.json()['challenge_id']}/confirmation",
                              json={"code": sms.code_for(phone)}, timeout=30)
    confirmed.raise_for_status()
    return confirmed.json()["access_token"]


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def wait_until(probe, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("the platform did not catch up")
        time.sleep(0.1)


def approved_school(api: str, sms: SmsCapture, name: str) -> tuple[str, str]:
    """A school approved by the operator; its id and its admin's access token."""
    operator, admin = sign_in(api, sms, OPERATOR), sign_in(api, sms, "+79990000002")
    application = requests.post(f"{api}/organization-applications", timeout=30, json={
        "name": name, "kind": "school", "country": "RU", "city": "Казань", "admin_phone": "+79990000002"}).json()
    wait_until(lambda: requests.post(f"{api}/operator/applications/{application['application_id']}/approval",
                                     headers=auth(operator), timeout=30).status_code == 200)
    wait_until(lambda: requests.get(f"{api}/me/organizations", headers=auth(admin), timeout=30).json())
    org = requests.get(f"{api}/me/organizations", headers=auth(admin), timeout=30).json()[0]["organization"]
    return org["organization_id"], admin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=1920)
    parser.add_argument("--teachers", type=int, default=80)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    sms = SmsCapture()
    with running_platform(sms, SFERA_OPERATOR_PHONES=OPERATOR) as (stack, api):
        org_id, admin = approved_school(api, sms, "Школа №1000")
        per_class = -(-args.students // args.classes)
        links = []
        for n in range(args.classes):
            klass = requests.post(f"{api}/organizations/{org_id}/classes", headers=auth(admin), timeout=30, json={
                "name": f"{n % 11 + 1}{'АБВГД'[n // 11]}", "start_year": 2020, "end_year": 2031}).json()
            links.append(requests.post(f"{api}/organizations/{org_id}/invites", headers=auth(admin), timeout=30,
                                       json={"role": "student", "class_id": klass["class_id"], "validity": "1d",
                                             "max_uses": per_class}).json()["token"])
        teacher_link = requests.post(f"{api}/organizations/{org_id}/invites", headers=auth(admin), timeout=30,
                                     json={"role": "teacher", "validity": "1d",
                                           "max_uses": args.teachers}).json()["token"]
        people = [(f"+7914{i:07d}", links[i % args.classes]) for i in range(args.students)]
        people += [(f"+7915{i:07d}", teacher_link) for i in range(args.teachers)]

        print(f"signing in {len(people)} people ...", flush=True)
        started = time.perf_counter()
        tokens: list[tuple[str, str]] = []

        def sign(p: tuple[str, str]) -> float:
            t0 = time.perf_counter()
            tokens.append((sign_in(api, sms, p[0]), p[1]))
            return time.perf_counter() - t0

        sign_seconds, _ = burst(sign, people, args.clients)
        print(f"  {len(people) / sign_seconds:.1f} sign-ins/s", flush=True)

        def join(item: tuple[str, str]) -> float:
            token, link = item
            t0 = time.perf_counter()
            response = requests.post(f"{api}/invites/{link}/membership", headers=auth(token), timeout=60)
            if response.status_code != 201:
                raise RuntimeError(f"join failed: {response.status_code} {response.text}")
            return time.perf_counter() - t0

        join_seconds, join_latencies = burst(join, tokens, args.clients)
        members_url = f"{api}/organizations/{org_id}/members?limit=50"
        t0 = time.perf_counter()
        members = requests.get(members_url, headers=auth(admin), timeout=60)
        first_page = time.perf_counter() - t0  # it applies what the read model has not yet of the joins
        members.raise_for_status()
        counted, cursor = len(members.json()["items"]), members.json()["next_cursor"]
        cursors: list[str | None] = [None]  # every page's
        while cursor:
            cursors.append(cursor)
            page = requests.get(f"{members_url}&cursor={cursor}", headers=auth(admin), timeout=60).json()
            counted += len(page["items"])
            cursor = page["next_cursor"]
        samples = max(len(tokens), 2000)

        def members_page(n: int) -> float:
            cursor = cursors[n % len(cursors)]
            t0 = time.perf_counter()
            response = requests.get(members_url + (f"&cursor={cursor}" if cursor else ""), headers=auth(admin),
                                    timeout=30)
            response.raise_for_status()
            if len(response.json()["items"]) != min(50, counted - 50 * (n % len(cursors))):
                raise RuntimeError("a members page came back short")
            return time.perf_counter() - t0

        page_seconds, page_latencies = burst(members_page, list(range(samples)), args.clients)

        def me(_: int) -> float:
            t0 = time.perf_counter()
            requests.get(f"{api}/me", headers=auth(admin), timeout=30).raise_for_status()
            return time.perf_counter() - t0

        base_seconds, base_latencies = burst(me, list(range(samples)), args.clients)
        total = time.perf_counter() - started

    joins = len(tokens)
    print()
    print(f"a school of {args.students} students and {args.teachers} teachers in {args.classes} classes, "
          f"{args.clients} concurrent clients")
    print(f"  joins through invite links: {joins / join_seconds:8.1f} joins/s   p50 "
          f"{percentile(join_latencies, 0.5) * 1000:.1f} ms   p99 {percentile(join_latencies, 0.99) * 1000:.1f} ms")
    print(f"  members listed afterwards:  {counted} (expected {joins + 1} with the admin); the first page "
          f"after the joins {first_page * 1000:.0f} ms")
    print(f"  whole run, sign-ins + joins: {total:.1f} s (sign-ins alone {sign_seconds:.1f} s)")
    print(f"  a page of the members list: {samples / page_seconds:8.1f} pages/s  p50 "
          f"{percentile(page_latencies, 0.5) * 1000:.1f} ms   p99 {percentile(page_latencies, 0.99) * 1000:.1f} ms "
          f"({len(cursors)} pages of 50, each read {samples // len(cursors)}+ times)")
    print(f"baseline GET /api/v1/me:      {samples / base_seconds:8.1f} calls/s  p50 "
          f"{percentile(base_latencies, 0.5) * 1000:.1f} ms   p99 {percentile(base_latencies, 0.99) * 1000:.1f} ms")
    print(f"ratio joins/s / baseline calls/s = {joins / join_seconds / (samples / base_seconds):.2f}x")
    print(f"ratio members page p99 / GET /me p99 = "
          f"{percentile(page_latencies, 0.99) / percentile(base_latencies, 0.99):.2f}x (goal <= 2)")
    page_p99, base_p99 = percentile(page_latencies, 0.99) * 1000, percentile(base_latencies, 0.99) * 1000
    report.row("school", f"a page (50) of a {counted}-member school's members, p99", f"{page_p99:.1f} ms",
               f"GET /me p99 {base_p99:.1f} ms", page_p99 / base_p99, "<= 2x")


if __name__ == "__main__":
    main()
