"""Replicas (issue #17): the same mixed load (tools/chaos.py's: sign-ins, messages to one chat, joins of one call,
signed e-journal webhooks, ``--workers`` client threads of each kind, no pause) against the whole platform with one
process of every service, relay and gateway, then with two of each (the gateways behind the stack's round-robin
balancer), each on its own private RabbitMQ and durable PostgreSQL, one after the other in the same run.

Printed: operations accepted per second with 1 replica, with 1 whose API calls go through the balancer all the
same (what the extra hop costs; the webhooks go to the gateway directly there), and with 2, and the ratios; per
service, the share of its RPCs and events each replica handled; which relay published; request.busy /
request.conflict answers; lost and doubled (tools/replicas.py's accounting). On one machine the replicas share
its cores: the ratio says what a second process adds there, not what a second machine would.

    python -m bench.replicas [--seconds 30] [--workers 4]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench import report
from shared.platform import SERVICES
from tools import replicas
from tools.devstack.infra import free_port


def measure(count: int, seconds: float, workers: int, balanced: bool = False) -> replicas.Report:
    """``balanced``: one replica, the load's API calls through the balancer all the same (its cost alone)."""
    with tempfile.TemporaryDirectory(prefix="sfera-bench-") as tmp:
        print(f"starting a private platform with {count} replica(s) of each process in {tmp} ...", flush=True)
        stack = replicas.platform(Path(tmp), count)
        try:
            if balanced and count == 1:
                stack.config.gateway_port = free_port()  # the load's client goes to the balancer's port
                stack.start_balancer(["gateway"])
                stack.wait_healthy(["balancer"])
            return replicas.run(stack, seconds, workers=workers)
        finally:
            stack.stop()


def shares(report: replicas.Report, name: str, counter: str) -> str:
    """``name``'s processes' parts of what they did together, e.g. "52% / 48%"."""
    done = {p: c.get(counter, 0.0) for p, c in report.work.items()
            if p == name or (p.startswith(f"{name}-") and p.removeprefix(f"{name}-").isdigit())}
    total = sum(done.values())
    return " / ".join(f"{v / total:.0%}" if total else "-" for v in done.values())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="of load per platform")
    parser.add_argument("--workers", type=int, default=4, help="client threads of each kind of operation")
    args = parser.parse_args()
    one = measure(1, args.seconds, args.workers)
    balanced = measure(1, args.seconds, args.workers, balanced=True)
    two = measure(2, args.seconds, args.workers)

    print("\nReplicas: the same mixed load, 1 vs 2 processes of every service, relay and gateway", flush=True)
    print("| replicas | operations accepted/s | lost | doubled | request.busy/conflict |")
    print("|---|---|---|---|---|")
    for label, r in (("1", one), ("1, API through the balancer", balanced), ("2 (behind the balancer)", two)):
        print(f"| {label} | {r.throughput:.1f} | {r.lost} | {r.doubled} | {r.busy} ({r.busy_share:.2%}) |")
    print(f"throughput with 2 replicas / with 1: {two.throughput / one.throughput:.2f}x "
          f"(/ with 1 through the balancer: {two.throughput / balanced.throughput:.2f}x)")
    print("\nWith 2 replicas, each one's share of the work (RPCs and events handled; requests for the gateways):")
    print("| process | replica 1 / replica 2 |")
    print("|---|---|")
    for service in SERVICES:
        print(f"| {service} | {shares(two, service, 'sfera_rpc_duration_seconds')} |")
        print(f"| {service}-relay (events published) | {shares(two, f'{service}-relay', 'sfera_events_published')} |")
    print(f"| gateway | {shares(two, 'gateway', 'sfera_http_request_duration_seconds')} |", flush=True)
    report.row("replicas", f"2 of every process: ops/s (lost {two.lost}, doubled {two.doubled}, busy "
               f"{two.busy_share:.1%}); gateway shares {shares(two, 'gateway', 'sfera_http_request_duration_seconds')}",
               f"{two.throughput:.1f}/s", f"1 replica {one.throughput:.1f}/s", two.throughput / one.throughput,
               "correct; share of the load printed")


if __name__ == "__main__":
    main()
