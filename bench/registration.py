"""Registration burst through the gateway: code request -> confirm -> profile ->
password, by concurrent clients, on the running platform (PostgreSQL with fsync,
RabbitMQ, every service, the gateway). SMS go through the HTTP SMS-gateway
adapter to a capture server inside this benchmark, as they would to an operator.

Baseline of the same run: ``GET /api/v1/me`` (one authenticated RPC round trip
through the gateway) at the same concurrency. The argon2id cost is stated and
its time per hash measured.

    python -m bench.registration [--registrations 300] [--clients 8]
"""

from __future__ import annotations

import argparse
import time
import uuid

import requests

from bench import report
from bench.pipeline import percentile
from bench.platform import SmsCapture, burst, running_platform
from identity.passwords import describe_cost, hash_password


def register(api: str, sms: SmsCapture, phone: str) -> float:
    started = time.perf_counter()
    session = requests.Session()
    issued = session.post(f"{api}/auth/sign-in-codes", json={"phone": phone}, timeout=30)
    issued.raise_for_status()
    challenge = issued.json()
    signed = session.post(f"{api}/auth/sign-in-codes/{challenge['challenge_id']}/confirmation",
                          json={"code": sms.code_for(challenge["sent_to"])}, timeout=30)
    signed.raise_for_status()
    auth = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    session.put(f"{api}/me/profile", headers=auth, timeout=30, json={
        "last_name": "Иванова", "first_name": "Мария", "birth_date": "2012-04-01", "sex": "female",
    }).raise_for_status()
    session.put(f"{api}/me/password", headers=auth, timeout=30,
                json={"new_password": f"pass-{uuid.uuid4().hex[:12]}"}).raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registrations", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    sms = SmsCapture()
    with running_platform(sms) as (_, api):
        phones = [f"+7913{i:07d}" for i in range(args.registrations)]
        register(api, sms, "+79139999999")  # warm up every connection pool once
        seconds, latencies = burst(lambda p: register(api, sms, p), phones, args.clients)

        me_session = requests.Session()
        issued = me_session.post(f"{api}/auth/sign-in-codes", json={"phone": "+79138888888"}, timeout=30).json()
        access = me_session.post(f"{api}/auth/sign-in-codes/{issued['challenge_id']}/confirmation", timeout=30,
                                 json={"code": sms.code_for("+79138888888")}).json()["access_token"]

        def me(_: int) -> float:
            started = time.perf_counter()
            requests.get(f"{api}/me", headers={"Authorization": f"Bearer {access}"}, timeout=30) \
                .raise_for_status()
            return time.perf_counter() - started

        base_calls = args.registrations * 4
        base_seconds, base_latencies = burst(me, list(range(base_calls)), args.clients)

    hashes = 20
    started = time.perf_counter()
    for _ in range(hashes):
        hash_password("correct horse battery staple")
    hash_ms = (time.perf_counter() - started) / hashes * 1000

    regs_per_s = args.registrations / seconds
    calls_per_s = base_calls / base_seconds
    p99 = percentile(latencies, 0.99) * 1000
    base_p99 = percentile(base_latencies, 0.99) * 1000
    print()
    print(f"{args.registrations} registrations, {args.clients} concurrent clients, 4 API calls each")
    print(f"  registrations/s:        {regs_per_s:8.1f}   (API calls/s {regs_per_s * 4:.0f})")
    print(f"  registration p50 / p99: {percentile(latencies, 0.5) * 1000:8.1f} / {p99:.1f} ms")
    print(f"baseline: GET /api/v1/me (one RPC), {base_calls} calls at the same concurrency")
    print(f"  calls/s:                {calls_per_s:8.1f}")
    print(f"  p50 / p99:              {percentile(base_latencies, 0.5) * 1000:8.1f} / {base_p99:.1f} ms")
    print(f"password hash: {describe_cost()}, {hash_ms:.1f} ms per hash on one core")
    print(f"ratio: registration API calls/s / baseline calls/s = {regs_per_s * 4 / calls_per_s:.2f}x; "
          f"registration p99 / baseline p99 = {p99 / base_p99:.1f}x")
    report.row("registration", "registrations (4 API calls each), API calls/s", f"{regs_per_s * 4:.0f}/s",
               f"GET /me {calls_per_s:.0f}/s", regs_per_s * 4 / calls_per_s, "printed")


if __name__ == "__main__":
    main()
