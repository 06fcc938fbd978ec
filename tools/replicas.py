"""Replicas under load (issue #17): several processes of every service, relay and gateway (tools/devstack's
``StackConfig.replicas``) take tools/chaos.py's mixed load through a round-robin balancer in front of the
gateways, and one replica of a service may be killed midway. Measured, per run:

- lost / doubled / late: chaos's accounting of every operation of the load;
- each process's share: its RPCs and events handled (services), events published (relays), requests answered
  (gateways), read from its own /metrics (a killed one's just before it was killed);
- the lease: every half second, which relays of each service hold their lease (``sfera_relay_lease_held``) and
  whether one published while it stood by;
- busy: the share of the load's API answers that were ``request.busy`` (429: a command lost its race more
  times than it retries) or ``request.conflict`` (409: a race lost outside a retried command).

    .venv/bin/python -m tools.replicas --replicas 2 --seconds 30       # a table on stdout

tests/reliability/test_replicas.py asserts on a bounded run; bench/replicas.py compares 2 replicas with 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from shared.platform import SERVICES
from shared.store import make_application
from tests.e2e.api import Api
from tests.fixtures.ledger import LedgerApplication
from tests.reliability.conftest import LEDGER_SERVICE
from tools import chaos

BUSY_CODES = ("request.busy", "request.conflict")
# per process kind, the counter that says how much of the load it carried
# (services: also their commands run again after a lost race, and refused as busy: how hot their keys were)
WORK = {"service": ("sfera_rpc_duration_seconds", "sfera_events_consumed", "sfera_command_retries"),
        "relay": ("sfera_events_published",),
        "gateway": ("sfera_http_request_duration_seconds",)}


class CountingApi(Api):
    """The e2e client, counting its answers by (status, error code)."""

    def __init__(self, stack):
        super().__init__(stack)
        self.answers: Counter = Counter()
        self._lock = threading.Lock()

    def call(self, method: str, path: str, token: str | None = None, **kwargs):
        response = super().call(method, path, token, **kwargs)
        code = ""
        if response.status_code >= 400:
            try:
                code = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
        with self._lock:
            self.answers[(response.status_code, code)] += 1
        return response


def scrape(port: int) -> dict[str, float]:
    """Totals of a process's counters and histogram counts by metric name (labels summed); gauges by name and
    first label value (``sfera_relay_lease_held``); {} when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    totals: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total") or sample.name.endswith("_count"):
                totals[sample.name.removesuffix("_total").removesuffix("_count")] += sample.value
            elif family.type == "gauge":
                totals[sample.name] += sample.value
    return dict(totals)


def kind_of(stack, process: str) -> str | None:
    for service in SERVICES:
        if process in stack.replicas_of(service):
            return "service"
        if process in stack.replicas_of(f"{service}-relay"):
            return "relay"
    return "gateway" if process in stack.replicas_of("gateway") else None


def share(stack, process: str) -> dict[str, float]:
    """What ``process`` did so far: {counter: total} of its kind's WORK counters."""
    kind = kind_of(stack, process)
    totals = scrape(stack.metrics_port(process))
    return {name: totals.get(name, 0.0) for name in WORK.get(kind, ())}


@dataclass
class LeaseWatch:
    """Samples every relay's lease gauge and published count; notes two holders at once and a standby that
    published."""

    stack: object
    samples: int = 0
    two_holders: list = field(default_factory=list)  # (service, holders) seen at once
    standby_published: list = field(default_factory=list)  # (relay, events) published while it stood by
    holders_seen: dict = field(default_factory=dict)  # service -> relays seen holding
    _last: dict = field(default_factory=dict)

    def sample(self) -> None:
        self.samples += 1
        for service in SERVICES:
            holders = []
            for relay in self.stack.replicas_of(f"{service}-relay"):
                totals = scrape(self.stack.metrics_port(relay))
                if not totals:
                    continue  # killed or not answering: it holds nothing it can publish with
                held = totals.get("sfera_relay_lease_held", 0.0) >= 1
                published = totals.get("sfera_events_published", 0.0)
                before = self._last.get(relay)
                if before is not None and not held and not before[0] and published > before[1]:
                    self.standby_published.append((relay, published - before[1]))
                self._last[relay] = (held, published)
                if held:
                    holders.append(relay)
                    self.holders_seen.setdefault(service, set()).add(relay)
            if len(holders) > 1:
                self.two_holders.append((service, holders))


@dataclass
class Report:
    replicas: int
    seconds: float  # of load
    ops: Counter  # started, by kind
    accepted: Counter  # by kind
    outcomes: Counter  # (kind, "lost" | "doubled" | "late")
    answers: Counter  # the load's API answers by (status, code)
    work: dict[str, dict[str, float]]  # process -> its counters (a killed one's when killed)
    lease: LeaseWatch
    killed: list[str]
    failed: list[str] = field(default_factory=list)  # the lost and doubled operations, one line each

    @property
    def lost(self) -> int:
        return sum(n for (_, what), n in self.outcomes.items() if what == "lost")

    @property
    def doubled(self) -> int:
        return sum(n for (_, what), n in self.outcomes.items() if what == "doubled")

    @property
    def busy(self) -> int:
        return sum(n for (_, code), n in self.answers.items() if code in BUSY_CODES)

    @property
    def busy_share(self) -> float:
        return self.busy / max(1, sum(self.answers.values()))

    @property
    def throughput(self) -> float:
        """Operations accepted per second of load."""
        return sum(self.accepted.values()) / self.seconds

    def table(self) -> str:
        lines = [f"{self.replicas} replica(s), {self.seconds:.0f} s of load, killed: {', '.join(self.killed) or '-'}",
                 "| kind | started | accepted | lost | doubled | late |", "|---|---|---|---|---|---|"]
        for kind in chaos.KINDS:
            lines.append(f"| {kind} | {self.ops[kind]} | {self.accepted[kind]} | {self.outcomes[(kind, 'lost')]} "
                         f"| {self.outcomes[(kind, 'doubled')]} | {self.outcomes[(kind, 'late')]} |")
        lines += self.failed
        lines += [f"throughput: {self.throughput:.1f} operations accepted/s; API answers: "
                  f"{sum(self.answers.values())}, request.busy/conflict: {self.busy} ({self.busy_share:.2%})",
                  f"lease: {self.lease.samples} samples, two holders at once: {len(self.lease.two_holders)}, "
                  f"published on standby: {len(self.lease.standby_published)}",
                  "", "| process | what it did |", "|---|---|"]
        for process, counters in self.work.items():
            did = ", ".join(f"{name.removeprefix('sfera_')} {value:.0f}" for name, value in counters.items())
            lines.append(f"| {process}{' (killed)' * (process in self.killed)} | {did} |")
        return "\n".join(lines)


def start(stack, replicas: int = 2):
    """Everything of ``stack`` (infrastructure up) in ``replicas`` processes each, the ledger consumer too."""
    stack.config.replicas = replicas
    chaos.start(stack)
    for replica in range(2, replicas + 1):
        stack.start_service("ledger", LEDGER_SERVICE, replica=replica)
    stack.wait_healthy()
    return stack


def lease_holders(stack) -> dict[str, int]:
    """PostgreSQL's view: per lease (``outbox:<service>``, a timer's), how many sessions hold its advisory lock
    now (shared/lease.py names each lease's connection ``lease:<name>``)."""
    import psycopg

    c = stack.settings()
    with psycopg.connect(host=c.postgres_host, port=c.postgres_port, dbname=c.postgres_db, user=c.postgres_user,
                         password=c.postgres_password, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT a.application_name, count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND a.application_name LIKE 'lease:%%' GROUP BY a.application_name").fetchall()
    return {name.removeprefix("lease:"): count for name, count in rows}


def relay_holding(stack, service: str) -> str | None:
    """The relay of ``service`` that holds its lease now."""
    for relay in stack.replicas_of(f"{service}-relay"):
        if scrape(stack.metrics_port(relay)).get("sfera_relay_lease_held", 0.0) >= 1:
            return relay
    return None


def run(stack, seconds: float = 20.0, members: int = 5, workers: int = 2, pause: float = 0.0,
        kill: list[str] = (), late_after: float = 10.0, out=sys.stdout, api: CountingApi | None = None) -> Report:
    """The load against ``stack`` (started by ``start``) for ``seconds``; the processes named in ``kill`` are
    SIGKILLed halfway and not started again ("<service>-relay*" kills the one of that service holding the lease).
    ``api``: a client that signed people in on this stack before (the operator signs in once)."""
    api = api or CountingApi(stack)
    chat = chaos.chat_of(api, members)
    api.answers.clear()  # the load's answers, not the setup's
    ledger = make_application(LedgerApplication, "ledger", config=stack.settings())
    processes = [p for p in stack.processes if kind_of(stack, p)]
    before = {p: share(stack, p) for p in processes}  # the setup's part, taken off
    lease = LeaseWatch(stack)
    load = chaos.Load(api, chat, workers=workers, pause=pause)
    watching = threading.Event()
    applied_at: dict[str, float] = {}

    def watch() -> None:
        while not watching.is_set():
            lease.sample()
            chaos.note_applied(ledger, load.ops, applied_at)
            watching.wait(0.5)

    watcher = threading.Thread(target=watch, daemon=True, name="replicas-watch")
    started = time.monotonic()
    load.start()
    watcher.start()
    work: dict[str, dict[str, float]] = {}
    killed = []
    try:
        time.sleep(seconds / 2)
        for name in kill:
            victim = relay_holding(stack, name.removesuffix("*").removesuffix("-relay")) if name.endswith("*") else name
            work[victim] = share(stack, victim)
            stack.stop_process(victim, kill=True)
            killed.append(victim)
            print(f"replicas: killed {victim} at +{time.monotonic() - started:.1f} s", file=out, flush=True)
        time.sleep(seconds - (time.monotonic() - started))
    finally:
        load.finish()
    elapsed = time.monotonic() - started
    watching.set()
    watcher.join(timeout=10)
    verdict = chaos.judge(stack, api, chat, ledger, load.ops, applied_at, late_after)
    for p in processes:
        if p not in work:
            work[p] = share(stack, p)
    work = {p: {k: v - before[p].get(k, 0.0) for k, v in counters.items()} for p, counters in work.items()}
    outcomes: Counter = Counter()
    failed = []
    for op in load.ops:
        for what in verdict(op):
            outcomes[(op.kind, what)] += 1
            if what != "late":
                accepted = f"+{op.accepted - started:.1f} s" if op.accepted else "never"
                failed.append(f"{what}: {op.kind} {op.key} (started +{op.started - started:.1f} s, "
                              f"accepted {accepted})")
    report = Report(stack.config.replicas, elapsed, Counter(op.kind for op in load.ops),
                    Counter(op.kind for op in load.ops if op.accepted), outcomes, api.answers, work, lease, killed,
                    failed)
    print(report.table(), file=out, flush=True)
    return report


def platform(var_dir: Path, replicas: int):
    """A whole platform on PostgreSQL of its own, ``replicas`` of each process."""
    from tools.devstack.infra import free_port, free_port_block
    from tools.devstack.stack import Stack, StackConfig

    config = StackConfig(var_dir=var_dir, persistence="postgres", amqp_port=free_port(), pg_port=free_port(),
                         gateway_port=free_port(), metrics_base_port=free_port_block(40), sfu_port=free_port(),
                         gateway_threads=32, restart_backoff=0.2,
                         extra_env={"SFERA_LOG_LEVEL": "WARNING", **chaos.ENV})
    stack = Stack(config)
    stack.start_infra()
    return start(stack, replicas)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.replicas", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2, help="load threads of each kind")
    parser.add_argument("--kill", nargs="*", default=[], help="processes to SIGKILL halfway, e.g. messaging")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sfera-replicas-") as var:
        stack = platform(Path(var), args.replicas)
        try:
            report = run(stack, args.seconds, workers=args.workers, kill=args.kill)
        finally:
            stack.stop()
    return 1 if report.lost or report.doubled else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
