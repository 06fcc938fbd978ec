"""Event pipeline benchmark: commit -> outbox relay -> RabbitMQ -> consumer applied.

Throughput is a burst of N commits until all are applied; latency is also
measured with commits paced at half that rate, where no backlog builds. Each figure
and its baselines run in turns, ``--rounds`` times (the machine is shared: load comes
and goes); the figures are the medians, a ratio the median of each round's own.
Measured in one run, on private RabbitMQ and PostgreSQL servers (durable: fsync
on), next to two baselines of the same run:

- raw pika: persistent messages published with confirms (BlockingConnection,
  one confirm per message) to a durable queue and consumed with acks;
- raw psycopg: one INSERT per transaction into a plain table.

The pipeline: producers (``--producers`` threads in the burst, one paced) commit N
``Account.Registered`` events to identity's event store (one transaction each);
identity's relay publishes them as ``UserRegistered``; the ledger consumer
(tests/fixtures) applies each with its event id in the same transaction, its
concurrent deliveries sharing transactions (group commit, shared/store/group.py;
the same run's baseline: ``SFERA_STORE_GROUP_COMMIT=off``, one per event).
Latency is commit -> applied: from the commit of identity's event to the commit of
the ledger's transaction that applied it, as PostgreSQL recorded both
(track_commit_timestamp). The runs before measured from the aggregate's creation
(before the producer's commit) to the handler's event (before the ledger's commit);
that figure is printed too.

The relay is woken by its store (PostgreSQL LISTEN/NOTIFY, issue #17); the same run
measures the old fixed 20 ms poll (``SFERA_RELAY_WAKE=poll``) as its baseline: the
paced latency again, and each relay's CPU seconds over 10 s idle (/proc/<pid>/stat).

A save on PostgreSQL is one statement, one round trip (shared/store/recorders.py); the same
run measures burst and paced latency again with eventsourcing's own insert transaction
(``SFERA_STORE_SAVE_FUNCTION=off``: the producers', the relay's position and the consumer's
saves, 5-6 round trips each) as its baseline.

The relay publishes the next batches while the broker has not confirmed the one before (shared/bus/relay.py);
the same run measures paced latency in turns with one batch at a time (``SFERA_RELAY_IN_FLIGHT=1``) as its baseline,
and splits each event's way into stages (commit -> relay notified -> select -> mapped -> confirmed / consumer
delivery -> applied commit) from the relay's and the consumer's trace (``SFERA_PIPELINE_TRACE``, shared/bus/trace.py)
and PostgreSQL's commit timestamps.

    python -m bench.pipeline [--events 10000]
    python -m bench.pipeline --stages [--events 500 --rate 300 --rounds 2 --variant 'label:NAME=value,...' ...]

``--stages``: paced runs only, each variant (the relay's and the consumer's environment) in turns, with the same
run's floors (raw pika on a classic and a quorum queue, a raw psycopg INSERT and commit) and each stage's p50.
``--stages --profile DIR``: the consumer's and the relay's CPU by layer (cProfile on the thread's CPU clock,
shared/observability/profiling.py), where the paced row's missing milliseconds are.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pika
import psycopg
from psycopg import sql

from bench import report
from bench.platform import environment, private_stack
from identity.application import IdentityApplication
from identity.domain import Account
from shared.bus.trace import TRACE_FILE, read_trace
from shared.clock import utcnow
from shared.contracts import CloudEvent
from shared.observability.profiling import PROFILE_DIR, by_package
from shared.store import make_application
from tests.fixtures.ledger import LedgerApplication, Tally
from tests.helpers import metric
from tools.devstack.infra import Postgres, free_port
from tools.devstack.stack import Stack


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, count: int, seconds: float, latencies_ms: list[float] | None) -> dict:
    row = {"name": name, "events": count, "seconds": seconds, "rate": count / seconds}
    if latencies_ms:
        row.update(p50=percentile(latencies_ms, 0.50), p99=percentile(latencies_ms, 0.99),
                   mean=statistics.fmean(latencies_ms))
    return row


def bench_pika(amqp_uri: str, n: int, quorum: bool = False) -> dict:
    """Publish with a confirm each, one at a time, to a durable classic queue (``quorum``: a quorum queue, as the
    platform's consumer queues are: a message is delivered and confirmed once the broker has it on disk)."""
    queue = "bench.raw.quorum" if quorum else "bench.raw"
    setup = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = setup.channel()
    channel.queue_declare(queue=queue, durable=True, arguments={"x-queue-type": "quorum"} if quorum else None)
    channel.queue_purge(queue)
    setup.close()
    latencies: list[float] = []
    finished = threading.Event()

    def consume() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        ch = connection.channel()
        ch.basic_qos(prefetch_count=100)

        def on_message(ch, method, properties, body):
            latencies.append((time.time() - float(body)) * 1000)
            ch.basic_ack(method.delivery_tag)
            if len(latencies) == n:
                ch.stop_consuming()

        ch.basic_consume(queue, on_message)
        ready.set()
        ch.start_consuming()
        connection.close()
        finished.set()

    ready = threading.Event()
    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    ready.wait(10)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    ch = connection.channel()
    ch.confirm_delivery()
    started = time.perf_counter()
    for _ in range(n):
        ch.basic_publish("", queue, repr(time.time()).encode(), pika.BasicProperties(delivery_mode=2))
    finished.wait(300)
    elapsed = time.perf_counter() - started
    connection.close()
    return summary(f"raw pika: publish+confirm -> consume{' (quorum queue)' if quorum else ''}", n, elapsed,
                   latencies)


def bench_psycopg(pg: Postgres, n: int) -> dict:
    with psycopg.connect(host="127.0.0.1", port=pg.port, dbname="sfera", user=pg.user, password=pg.password,
                         autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute("CREATE TABLE bench_raw (id bigserial PRIMARY KEY, body jsonb NOT NULL)")
        latencies = []
        started = time.perf_counter()
        for i in range(n):
            at = time.perf_counter()
            with conn.transaction():
                conn.execute("INSERT INTO bench_raw (body) VALUES (%s)", (f'{{"i": {i}}}',))
            latencies.append((time.perf_counter() - at) * 1000)
        elapsed = time.perf_counter() - started
    row = summary("raw psycopg: INSERT, one per transaction", n, elapsed, None)
    row["commit_p50"] = percentile(latencies, 0.5)  # a transaction's INSERT and its commit, fsync and all
    return row


def bench_consumer_saves(stack: Stack, n: int, save_function: str) -> dict:
    """The consumer's part alone: the ledger applying ``n`` UserRegistered one after another in this process (its
    tally's read and its ``process_once`` save, one transaction each), with the one-statement save or
    eventsourcing's save transaction (``SFERA_STORE_SAVE_FUNCTION``)."""
    with environment(SFERA_STORE_SAVE_FUNCTION=save_function):  # read when the recorder is made
        ledger = make_application(LedgerApplication, "ledger", config=stack.settings())
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        event = CloudEvent(id=f"bench:{save_function}:{i}", source="identity", type="identity.UserRegistered.v1",
                           time=utcnow(), subject=None, data={"user_id": uuid.uuid4()})
        at = time.perf_counter()
        ledger.count(event)
        latencies.append((time.perf_counter() - at) * 1000)
    elapsed = time.perf_counter() - started
    ledger.close()
    return summary(f"consumer apply alone (read + save), save function {save_function}", n, elapsed, latencies)


class Pipeline:
    """Commits to identity's store; reads back what the ledger applied."""

    def __init__(self, stack: Stack, ledger_metrics: str, first_phone: int = 1):
        config = stack.settings()
        self.ledger_metrics = ledger_metrics
        self.identity = make_application(IdentityApplication, "identity", config=config)
        self.ledger = make_application(LedgerApplication, "ledger", config=config)
        self.applied: dict = {}
        self.position = 0
        self.serial = itertools.count(first_phone)

    def commit(self) -> tuple:
        account = Account(phone=f"+7901{next(self.serial):07d}", email=None, registered_via="phone")
        self.identity.save(account)
        return account.id, account.created_on

    def read_applied(self) -> int:
        while True:
            batch = self.ledger.process_recorder.select_notifications(start=self.position + 1, limit=5000)
            if not batch:
                return len(self.applied)
            for notification in batch:
                event = self.ledger.mapper.to_domain_event(notification)
                if isinstance(event, Tally.Counted):
                    self.applied[event.originator_id] = event.timestamp
            self.position = batch[-1].id

    def wait_applied(self, commits: dict, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not all(k in self.applied for k in commits):
            if time.monotonic() > deadline:
                missing = sum(k not in self.applied for k in commits)
                raise SystemExit(f"pipeline lost events: {missing} of {len(commits)} not applied")
            time.sleep(0.05)
            self.read_applied()

    def consumer_commits(self) -> tuple[float, float]:
        """The ledger's transactions of applied events so far, and the events they wrote (group commit)."""
        return (metric(self.ledger_metrics, "sfera_store_group_saves_count", service="ledger"),
                metric(self.ledger_metrics, "sfera_store_group_saves_sum", service="ledger"))

    def consumer_reads(self) -> tuple[float, float]:
        """The ledger's statements reading aggregates so far, and the reads they answered (group reads)."""
        return (metric(self.ledger_metrics, "sfera_store_group_reads_count", service="ledger"),
                metric(self.ledger_metrics, "sfera_store_group_reads_sum", service="ledger"))

    def latencies(self, commits: dict) -> list[float]:
        """From the producer's aggregate creation (before its commit) to the ledger handler's event (before its
        commit): the figure of the runs before the commit timestamps."""
        return [(self.applied[k] - t).total_seconds() * 1000 for k, t in commits.items()]

    def commit_latencies(self, commits: dict) -> list[float]:
        """Commit -> applied: from the commit of identity's event to the commit of the ledger's transaction that
        applied it, both as PostgreSQL recorded them (track_commit_timestamp, one clock)."""
        committed = commit_times(self.identity, list(commits), "originator_version = 1")
        applied = commit_times(self.ledger, list(commits), "topic LIKE '%%Counted'")
        return [(applied[k] - committed[k]).total_seconds() * 1000 for k in commits]


def commit_times(app, originator_ids: list, where: str) -> dict:
    """Each aggregate's event (``where``) -> the commit time of the transaction that wrote it."""
    recorder = app.process_recorder
    statement = sql.SQL("SELECT originator_id, pg_xact_commit_timestamp(xmin) AS at FROM {} "
                        "WHERE originator_id = ANY(%s) AND " + where).format(
        sql.Identifier(recorder.datastore.schema, recorder.events_table_name))
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, (originator_ids,))
        return {row["originator_id"]: row["at"] for row in curs.fetchall()}


# One event's way, stage by stage: the instants in order (PostgreSQL's commit timestamps at both ends, the relay's and
# the consumer's trace lines between, shared/bus/trace.py; one wall clock on one machine).
STAGES = [
    ("producer commit -> relay notified", "committed", "relay_notified"),
    ("relay notified -> select starts (wake)", "relay_notified", "relay_reading"),
    ("select (relay reads the log)", "relay_reading", "relay_selected"),
    ("map to integration events", "relay_selected", "relay_mapped"),
    ("publish -> confirmed", "relay_mapped", "relay_confirmed"),
    ("publish -> consumer delivery", "relay_mapped", "consumer_delivered"),
    ("consumer delivery -> applied commit", "consumer_delivered", "applied"),
    ("applied commit -> handler done (ack next)", "applied", "consumer_handled"),
    ("producer commit -> applied commit (total)", "committed", "applied"),
]


def stage_latencies(pipeline: Pipeline, commits: dict, trace: Path) -> dict[str, list[float]]:
    """Each stage's durations (ms) over the events of ``commits``, from the relay's and consumer's trace."""
    recorder = pipeline.identity.process_recorder
    statement = sql.SQL("SELECT originator_id, notification_id, pg_xact_commit_timestamp(xmin) AS at FROM {} "
                        "WHERE originator_id = ANY(%s) AND originator_version = 1").format(
        sql.Identifier(recorder.datastore.schema, recorder.events_table_name))
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, (list(commits),))
        produced = {row["originator_id"]: (str(row["notification_id"]), row["at"].timestamp())
                    for row in curs.fetchall()}
    applied = commit_times(pipeline.ledger, list(commits), "topic LIKE '%%Counted'")
    traced = read_trace(str(trace))
    by_notification: dict[str, dict[str, float]] = {}
    for stage, times in traced.items():
        for key, at in times.items():
            notification = key.split(":")[1] if ":" in key else key  # a consumer's key is the event id
            by_notification.setdefault(notification, {}).setdefault(stage, at)
    durations: dict[str, list[float]] = {name: [] for name, _, _ in STAGES}
    for originator, (notification, committed) in produced.items():
        instants = {"committed": committed, "applied": applied[originator].timestamp(),
                    **by_notification.get(notification, {})}
        for name, start, end in STAGES:
            if start in instants and end in instants:
                durations[name].append((instants[end] - instants[start]) * 1000)
    return durations


def print_stages(runs: list[tuple[str, dict[str, list[float]]]]) -> None:
    """p50 of each stage, one column per run."""
    print(f"{'stage p50 (ms)':46}" + "".join(f" {label[:22]:>22}" for label, _ in runs))
    for name, _, _ in STAGES:
        cells = [f"{statistics.median(d[name]):22.3f}" if d[name] else f"{'-':>22}" for _, d in runs]
        print(f"{name:46} " + " ".join(cells))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` and its live children (PostgreSQL's backends, the Erlang VM's helpers)."""
    total = cpu_seconds(root)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if int(stat[1]) == root:
                total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has been busy (not idle nor waiting for the disk), from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Where a run's CPU went: each process of the pipeline's (this process: the producers; the consumer; the relay;
    PostgreSQL's and RabbitMQ's servers with their children) and the machine's, over one run."""

    def __init__(self, stack: Stack):
        self.roots = {"producers": os.getpid(), "consumer": stack.processes["ledger"].process.pid,
                      "relay": stack.processes["identity-relay"].process.pid,
                      "postgres": stack.postgres.process.pid, "rabbitmq": stack.rabbitmq.process.pid}

    def sample(self) -> dict[str, float]:
        seconds = {name: cpu_seconds(pid) if name == "producers" else tree_cpu_seconds(pid)  # (the others' parent)
                   for name, pid in self.roots.items()}
        seconds["machine"] = machine_busy_seconds()
        return seconds

    @staticmethod
    def per_event(before: dict[str, float], after: dict[str, float], events: int) -> dict[str, float]:
        """CPU ms an event of each, and ``others``: the machine's busy time none of them used."""
        ms = {name: (after[name] - before[name]) / events * 1000 for name in before}
        ms["others"] = ms["machine"] - sum(v for k, v in ms.items() if k != "machine")
        return ms


def idle_relay_cpu(stack: Stack, seconds: float = 10.0) -> float:
    """CPU seconds identity's relay spends over ``seconds`` with nothing to publish."""
    time.sleep(2.0)  # whatever it was doing settles
    pid = stack.processes["identity-relay"].process.pid
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - before


def bench_pipeline_burst(pipeline: Pipeline, n: int, producers: int, meter: CpuMeter | None = None) -> dict:
    """Throughput: commit n events as fast as ``producers`` threads can (one transaction each, like that many
    requests at once), until all are applied; with a ``meter``, each process's CPU ms an event (``cpu``)."""
    commits = {}
    transactions_before, saves_before = pipeline.consumer_commits()
    statements_before, reads_before = pipeline.consumer_reads()
    cpu_before = meter.sample() if meter else None

    def produce(count: int) -> None:
        for _ in range(count):
            key, at = pipeline.commit()
            commits[key] = at

    started = time.perf_counter()
    threads = [threading.Thread(target=produce, args=(n // producers + (i < n % producers),))
               for i in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    commit_seconds = time.perf_counter() - started
    pipeline.wait_applied(commits)
    elapsed = time.perf_counter() - started
    cpu = CpuMeter.per_event(cpu_before, meter.sample(), n) if meter else None
    row = summary("pipeline burst: commit -> relay -> broker -> applied", n, elapsed,
                  pipeline.commit_latencies(commits))
    row["p50_handler"] = percentile(pipeline.latencies(commits), 0.5)
    row["commit_rate"] = n / commit_seconds
    transactions, saves = pipeline.consumer_commits()
    row["commits"], row["saves"] = transactions - transactions_before, saves - saves_before
    row["cpu"] = cpu
    statements, reads = pipeline.consumer_reads()
    row["reads"], row["read_statements"] = reads - reads_before, statements - statements_before
    return row


def bench_pipeline_paced(pipeline: Pipeline, n: int, rate: float, commits: dict | None = None) -> dict:
    """Latency: commits paced at ``rate``/s (below saturation), so no backlog builds; ``commits`` gets each
    event's aggregate id -> its creation time."""
    commits = {} if commits is None else commits
    interval = 1 / rate
    started = time.perf_counter()
    for i in range(n):
        delay = started + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        key, at = pipeline.commit()
        commits[key] = at
    pipeline.wait_applied(commits)
    elapsed = time.perf_counter() - started
    row = summary(f"pipeline paced at {rate:.0f}/s (half the burst rate)", n, elapsed,
                  pipeline.commit_latencies(commits))
    row["p50_handler"] = percentile(pipeline.latencies(commits), 0.5)
    return row


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``label:NAME=value,NAME=value`` -> the label and the relay's and consumer's environment."""
    label, _, assignments = text.partition(":")
    return label, dict(a.split("=", 1) for a in assignments.split(",") if a)


def restart_pipeline(stack: Stack, ledger_port: int, env: dict[str, str] | None = None, *, ledger: bool = True,
                     relay: bool = True) -> None:
    """The ledger (on its port) and identity's relay again, or only one of them, with ``env`` (each variant of a
    stages run, each baseline of the main run); a process restarted without ``env`` is back to the defaults."""
    env = env or {}
    restarted = []
    if ledger:
        stack.stop_process("ledger")
        if env.get("SFERA_BENCH_CONSUMER") == "bare":  # the experiment without nameko and eventlet
            stack.spawn("ledger", [sys.executable, "-m", "bench.bare_consumer"],
                        f"http://127.0.0.1:{ledger_port}/healthz", SFERA_METRICS_PORT=str(ledger_port), **env)
        else:
            stack.start_service("ledger", "tests.fixtures.ledger:LedgerService", port=ledger_port, **env)
        restarted.append("ledger")
    if relay:
        stack.stop_process("identity-relay")
        stack.start_relay("identity", **env)
        restarted.append("identity-relay")
    stack.wait_healthy(restarted)


@contextmanager
def traced_pipeline() -> Iterator[tuple[Stack, int, Path]]:
    """A private stack running the ledger (on the port it yields) and identity's relay, both writing each event's
    stages to the trace file it yields."""
    with private_stack() as stack:
        trace = stack.config.var_dir / "pipeline-trace.txt"
        stack.config.extra_env[TRACE_FILE] = str(trace)
        stack.prepare(migrate=["identity", "ledger=tests.fixtures.ledger:LedgerApplication"],
                      topology=["tests.fixtures.ledger:LedgerService"])
        ledger_port = free_port()
        stack.start_service("ledger", "tests.fixtures.ledger:LedgerService", port=ledger_port)
        stack.start_relay("identity")
        stack.wait_healthy()
        yield stack, ledger_port, trace


def stages_main(args: argparse.Namespace) -> None:
    """Paced runs only, the variants in turns, each event's stages from the trace: where the paced latency goes."""
    variants = [parse_variant(v) for v in args.variant] or [("as is", {})]
    profiles = Path(args.profile).resolve() if args.profile else None
    with traced_pipeline() as (stack, ledger_port, trace):
        pika_row = bench_pika(stack.amqp_uri, args.events)
        quorum_row = bench_pika(stack.amqp_uri, args.events, quorum=True)
        pg_row = bench_psycopg(stack.postgres, args.events)
        pipeline = Pipeline(stack, f"http://127.0.0.1:{ledger_port}/metrics")
        bench_pipeline_paced(pipeline, 100, args.rate)  # warm up: connections, caches
        runs: dict[str, dict[str, list[float]]] = {label: {} for label, _ in variants}
        for turn in range(args.rounds):
            for label, env in variants:
                if profiles:  # a folder a variant and round: its processes write theirs when they stop
                    env = {**env, PROFILE_DIR: str(profiles / f"{label.replace(' ', '_')}-round{turn + 1}")}
                restart_pipeline(stack, ledger_port, env)
                bench_pipeline_paced(pipeline, 50, args.rate)  # the new processes' first events
                commits: dict = {}
                meter = CpuMeter(stack)
                before = meter.sample()
                row = bench_pipeline_paced(pipeline, args.events, args.rate, commits)
                cpu = CpuMeter.per_event(before, meter.sample(), args.events)
                print(f"round {turn + 1} {label}: p50 {row['p50']:.2f} ms, p99 {row['p99']:.2f} ms; CPU ms per event: "
                      + ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items()), flush=True)
                for stage, durations in stage_latencies(pipeline, commits, trace).items():
                    runs[label].setdefault(stage, []).extend(durations)
    print(f"\nthe same run's floors, p50: raw pika {pika_row['p50']:.2f} ms (classic queue), "
          f"{quorum_row['p50']:.2f} ms (quorum queue: the broker's disk write before delivery); raw psycopg "
          f"INSERT + commit {pg_row['commit_p50']:.2f} ms (the producer's and the consumer's disk write)")
    print(f"{args.rounds} rounds of {args.events} events at {args.rate:.0f}/s "
          "per variant, in turns")
    print_stages(list(runs.items()))
    if profiles:
        print_profiles(profiles, args.events + 50)


def print_profiles(folder: Path, events: int, top: int = 18) -> None:
    """Each profiled process's CPU (its main thread, under the profiler) an event, and its heaviest layers."""
    for path in sorted(folder.glob("*/*.prof")):
        total, layers = by_package(path)
        print(f"\n{path.parent.name} {path.stem.rsplit('-', 1)[0]}: {total * 1000 / events:.2f} ms CPU an event "
              f"profiled ({path}); its own time by layer:")
        for layer, seconds in layers[:top]:
            print(f"  {100 * seconds / total:5.1f} %  {seconds * 1e6 / events:7.1f} µs an event  {layer}")


STATS_FLUSHED = 11.0  # an idle backend reports its statistics within 10 s (PostgreSQL 15's PGSTAT_IDLE_INTERVAL)


def store_counts(stack: Stack) -> dict[str, int]:
    """PostgreSQL's statements of the pipeline's clients so far, by what they touched (pg_stat_user_tables): the relay's
    reads of identity's log (index scans of its events table) and its position writes (identity's tracking rows
    written), the consumer's reads (index scans of the ledger's events table) and processed events (its tracking
    rows)."""
    rows = stack.postgres.psql("SELECT schemaname, relname, coalesce(idx_scan, 0), n_tup_ins + n_tup_upd "
                               "FROM pg_stat_user_tables WHERE schemaname IN ('identity', 'ledger')",
                               database=stack.config.pg_database)
    counts = {}
    for line in rows.splitlines():
        schema, table, scans, written = line.split("|")
        kind = "tracking" if "tracking" in table else "events" if "events" in table else None
        if kind:
            counts[f"{schema} {kind} scans"] = int(scans)
            counts[f"{schema} {kind} written"] = int(written)
    return counts


def bursts_main(args: argparse.Namespace) -> None:
    """Bursts only, raw pika and each variant (the producers', the relay's and the consumer's environment) in turns,
    with where each one's CPU went: is it the producers' commits, the relay or the consumer that holds it back?"""
    variants = [parse_variant(v) for v in args.variant] or [("as is", {})]
    with traced_pipeline() as (stack, ledger_port, trace):
        metrics_url = f"http://127.0.0.1:{ledger_port}/metrics"
        pipelines = {}
        for i, (label, env) in enumerate(variants):
            with environment(**env):  # read when the producers' recorder is made
                pipelines[label] = Pipeline(stack, metrics_url, first_phone=1 + i * 1_000_000)
        pg_row = bench_psycopg(stack.postgres, args.events)
        print(f"raw psycopg: {pg_row['rate']:.0f}/s, INSERT + commit p50 {pg_row['commit_p50']:.2f} ms", flush=True)
        runs: dict[str, list[dict]] = {"raw pika": [], **{label: [] for label, _ in variants}}
        for turn in range(args.rounds):
            runs["raw pika"].append(bench_pika(stack.amqp_uri, args.events))
            print(f"round {turn + 1} raw pika: {runs['raw pika'][-1]['rate']:.0f}/s", flush=True)
            for label, env in variants:
                restart_pipeline(stack, ledger_port, {TRACE_FILE: "", **env})  # no trace: as in production
                bench_pipeline_paced(pipelines[label], 50, 200)  # the new processes' first events
                time.sleep(STATS_FLUSHED)
                counted = store_counts(stack)
                row = bench_pipeline_burst(pipelines[label], args.events, args.producers, CpuMeter(stack))
                time.sleep(STATS_FLUSHED)
                counted = {k: (v - counted.get(k, 0)) / args.events for k, v in store_counts(stack).items()}
                print("  statements an event: relay reads {:.3f}, relay position writes {:.3f}; consumer reads "
                      "{:.3f}, events recorded {:.3f}".format(
                          counted.get("identity events scans", 0), counted.get("identity tracking written", 0),
                          counted.get("ledger events scans", 0), counted.get("ledger tracking written", 0)))
                row["ratio"] = row["rate"] / runs["raw pika"][-1]["rate"]
                if args.paced:
                    row["paced"] = bench_pipeline_paced(pipelines[label], args.paced, args.rate)["p50"]
                    print(f"  paced at {args.rate:.0f}/s: p50 {row['paced']:.2f} ms", flush=True)
                runs[label].append(row)
                print(f"round {turn + 1} {label}: {row['rate']:.0f}/s ({row['ratio']:.2f}x raw pika), producers "
                      f"committed {row['commit_rate']:.0f}/s, consumer {row['saves'] / max(1, row['commits']):.1f} "
                      f"events a commit, {row['reads'] / max(1, row['read_statements']):.1f} reads a statement "
                      f"(group reads); CPU ms an event: "
                      + ", ".join(f"{name} {ms:.3f}" for name, ms in row["cpu"].items()), flush=True)
    print(f"\n{args.events} events, {args.producers} producers, {args.rounds} rounds in turns (medians)")
    load = f"load {os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores"
    pika_rate = statistics.median(r["rate"] for r in runs["raw pika"])
    for label, _ in variants:
        rows = runs[label]
        own = [sum(v for k, v in r["cpu"].items() if k not in ("machine", "others")) for r in rows]
        report.row("pipeline", f"burst of {args.events} ({label}), in turns with raw pika",
                   f"{statistics.median(r['rate'] for r in rows):.0f} events/s, "
                   f"{statistics.median(own):.2f} ms CPU an event",
                   f"raw pika {pika_rate:.0f}/s (per round "
                   + ", ".join(f"{r['ratio']:.2f}x" for r in rows) + f"; {load})",
                   statistics.median(r["ratio"] for r in rows), ">= 0.5x raw pika")
        if args.paced:
            report.row("pipeline", f"paced at {args.rate:.0f}/s ({label}), p50 commit -> applied",
                       f"{statistics.median(r['paced'] for r in rows):.2f} ms", load, None, "p50 <= 5 ms")
    if len(variants) > 1:
        (first, _), (second, _) = variants[:2]
        report.row("pipeline", f"burst {first} vs {second} (in turns)",
                   f"{statistics.median(r['rate'] for r in runs[first]):.0f} events/s",
                   f"{second} {statistics.median(r['rate'] for r in runs[second]):.0f}/s ({load})",
                   statistics.median(a["rate"] / b["rate"] for a, b in zip(runs[first], runs[second], strict=True)),
                   "> 1x")
    for label, _ in variants:
        rows = runs[label]
        print(f"{label:24} {statistics.median(r['rate'] for r in rows):7.0f}/s "
              f"{statistics.median(r['ratio'] for r in rows):5.2f}x raw pika (per round "
              + ", ".join(f"{r['ratio']:.2f}x" for r in rows) + ")"
              + (f"; paced at {args.rate:.0f}/s p50 {statistics.median(r['paced'] for r in rows):.2f} ms"
                 if args.paced else ""))
    print()
    print(report.table(report.rows("pipeline")), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--producers", type=int, default=4,
                        help="threads committing the burst (one serial producer caps it at its own commit rate)")
    parser.add_argument("--stages", action="store_true",
                        help="paced runs only (--events each, at --rate), each event's way stage by stage")
    parser.add_argument("--rate", type=float, default=300.0, help="--stages: commits per second")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of each figure and its baselines (--stages: of each variant), in turns")
    parser.add_argument("--variant", action="append", default=[],
                        help="--stages, --bursts: label:NAME=value,... the relay's and consumer's environment of one "
                             "variant (--bursts: the producers' too)")
    parser.add_argument("--bursts", action="store_true",
                        help="bursts only (--events each), raw pika and each --variant in turns, with each "
                             "process's CPU an event")
    parser.add_argument("--paced", type=int, default=0,
                        help="--bursts: after each burst, this many events paced at --rate (p50 commit -> applied)")
    parser.add_argument("--profile", metavar="DIR",
                        help="--stages: the consumer and the relay of every variant under cProfile (thread CPU time, "
                             "shared/observability/profiling.py), their profiles into DIR and where their CPU went "
                             "printed; the profiler slows them: the latencies of such a run are not figures")
    args = parser.parse_args()
    if args.bursts:
        bursts_main(args)
        return
    if args.stages:
        stages_main(args)
        return
    n = args.events
    paced_n = max(500, n // 5)
    with traced_pipeline() as (stack, ledger_port, trace):
        print(f"{n} events each, {args.rounds} rounds in turns ...", flush=True)
        pg_row = bench_psycopg(stack.postgres, n)
        saves = [bench_consumer_saves(stack, min(n, 1000), mode) for mode in ("on", "off", "on", "off")]
        pipeline = Pipeline(stack, f"http://127.0.0.1:{ledger_port}/metrics")
        # the baseline of the one-statement save: eventsourcing's insert transaction for the producers' saves
        with environment(SFERA_STORE_SAVE_FUNCTION="off"):  # read when the recorders are made
            eventsourcing_saves = Pipeline(stack, f"http://127.0.0.1:{ledger_port}/metrics", first_phone=5_000_000)
        # Each figure and its baselines in turns, round after round (a shared machine's load comes and goes: runs one
        # after the other compared a quiet minute with a busy one): raw pika, the pipeline as configured, the consumer
        # one transaction per event (SFERA_STORE_GROUP_COMMIT=off), eventsourcing's save transaction for every save
        # (SFERA_STORE_SAVE_FUNCTION=off: producers, relay's position, consumer).
        bursts: dict[str, list[dict]] = {"pika": [], "pipeline": [], "alone": [], "eventsourcing": []}
        for _ in range(args.rounds):
            bursts["pika"].append(bench_pika(stack.amqp_uri, n))
            restart_pipeline(stack, ledger_port)
            bursts["pipeline"].append(bench_pipeline_burst(pipeline, n, args.producers))
            restart_pipeline(stack, ledger_port, {"SFERA_STORE_GROUP_COMMIT": "off"}, relay=False)
            bursts["alone"].append(bench_pipeline_burst(pipeline, n, args.producers))
            restart_pipeline(stack, ledger_port, {"SFERA_STORE_SAVE_FUNCTION": "off"})
            bursts["eventsourcing"].append(bench_pipeline_burst(eventsourcing_saves, n, args.producers))
        rate = statistics.median(r["rate"] for r in bursts["pipeline"]) / 2
        # paced at half the burst rate: the pipeline, the relay on the old 20 ms poll (SFERA_RELAY_WAKE=poll), and
        # eventsourcing's save transaction
        paced: dict[str, list[dict]] = {"pipeline": [], "poll": [], "eventsourcing": []}
        for _ in range(args.rounds):
            restart_pipeline(stack, ledger_port)
            paced["pipeline"].append(bench_pipeline_paced(pipeline, paced_n, rate))
            restart_pipeline(stack, ledger_port, {"SFERA_RELAY_WAKE": "poll"})
            paced["poll"].append(bench_pipeline_paced(pipeline, paced_n, rate))
            restart_pipeline(stack, ledger_port, {"SFERA_STORE_SAVE_FUNCTION": "off"})
            paced["eventsourcing"].append(bench_pipeline_paced(eventsourcing_saves, paced_n, rate))
        restart_pipeline(stack, ledger_port)
        idle_woken = idle_relay_cpu(stack)
        restart_pipeline(stack, ledger_port, {"SFERA_RELAY_WAKE": "poll"}, ledger=False)
        idle_polling = idle_relay_cpu(stack)
        # the baseline of the relay's pipeline: one batch at a time, confirmed and recorded before the next read
        # (SFERA_RELAY_IN_FLIGHT=1)
        windows: dict[str, dict] = {w: {"latencies": [], "stages": {}} for w in ("8", "1")}
        for _ in range(args.rounds):
            for window, seen in windows.items():
                restart_pipeline(stack, ledger_port, {"SFERA_RELAY_IN_FLIGHT": window}, ledger=False)
                commits: dict = {}
                bench_pipeline_paced(pipeline, max(250, n // 10), rate, commits)
                seen["latencies"] += pipeline.commit_latencies(commits)
                for stage, durations in stage_latencies(pipeline, commits, trace).items():
                    seen["stages"].setdefault(stage, []).extend(durations)
    names = {("burst", "alone"): "pipeline burst, consumer one transaction per event",
             ("burst", "eventsourcing"): "pipeline burst, eventsourcing's save transaction",
             ("paced", "poll"): f"pipeline paced at {rate:.0f}/s, relay on the old 20 ms poll",
             ("paced", "eventsourcing"): f"pipeline paced at {rate:.0f}/s, eventsourcing's save transaction"}
    for kind, runs_of in (("burst", bursts), ("paced", paced)):
        for key, runs in runs_of.items():
            for i, row in enumerate(runs):
                row["name"] = f"{names.get((kind, key), row['name'])[:52]} (#{i + 1})"
    saves_on = min((r for r in saves[::2]), key=lambda r: r["p50"])  # each the better of two runs (a loaded machine)
    saves_off = min((r for r in saves[1::2]), key=lambda r: r["p50"])

    def mid(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def each(a: list[dict], b: list[dict], key: str) -> list[float]:
        """a's ``key`` over b's in the same round, round by round."""
        return [x[key] / y[key] for x, y in zip(a, b, strict=True)]

    def turns(a: list[dict], b: list[dict], key: str) -> float:
        return statistics.median(each(a, b, key))

    def rounds(a: list[dict], b: list[dict], key: str) -> str:
        return "per round " + ", ".join(f"{r:.2f}x" for r in each(a, b, key))

    pika, pipe, alone, es = bursts["pika"], bursts["pipeline"], bursts["alone"], bursts["eventsourcing"]
    pipe_rate, pika_rate, alone_rate, es_rate = (mid(r, "rate") for r in (pipe, pika, alone, es))
    pika_p50, paced_p50, es_p50 = mid(pika, "p50"), mid(paced["pipeline"], "p50"), mid(paced["eventsourcing"], "p50")
    print()
    print(f"{'':58} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8}   (latency: send/commit -> consumed/applied)")
    for row in [*pika, pg_row, *pipe, *alone, *es, *(r for runs in paced.values() for r in runs), saves_on, saves_off]:
        p50 = f"{row['p50']:8.2f}" if "p50" in row else f"{'-':>8}"
        p99 = f"{row['p99']:8.2f}" if "p99" in row else f"{'-':>8}"
        print(f"{row['name']:58} {row['rate']:9.0f} {p50} {p99}")
    serial = 1 / (1 / pika_rate + 1 / pg_row["rate"])
    commits, applied = sum(r["commits"] for r in pipe), sum(r["saves"] for r in pipe)
    print(f"\nmedians of {args.rounds} rounds; ratios: the median of each round's ratio (both runs of it in turns)")
    print(f"producer commit rate into the event store: {mid(pipe, 'commit_rate'):.0f}/s")
    print(f"pipeline throughput / raw pika:          {turns(pipe, pika, 'rate'):.2f}x ({rounds(pipe, pika, 'rate')}; "
          f"consumer one transaction per event: {turns(alone, pika, 'rate'):.2f}x; "
          f"group commit / one per event {turns(pipe, alone, 'rate'):.2f}x)")
    print(f"pipeline throughput / raw psycopg:       {pipe_rate / pg_row['rate']:.2f}x")
    print(f"pipeline throughput / pika+psycopg in series ({serial:.0f}/s): {pipe_rate / serial:.2f}x")
    print(f"paced pipeline p50 / raw pika p50:       {paced_p50 / pika_p50:.1f}x "
          f"(latency as commit -> applied commit, PostgreSQL's commit timestamps; as the runs before measured it, "
          f"aggregate created -> handler's event: p50 {mid(paced['pipeline'], 'p50_handler'):.1f} ms)")
    print(f"paced pipeline p99 / raw pika p99:       {mid(paced['pipeline'], 'p99') / mid(pika, 'p99'):.1f}x")
    print(f"paced pipeline p50 / with the old 20 ms poll p50: {turns(paced['pipeline'], paced['poll'], 'p50'):.2f}x")
    print(f"one-statement saves / eventsourcing's save transaction: burst {turns(pipe, es, 'rate'):.2f}x "
          f"({pipe_rate:.0f}/s vs {es_rate:.0f}/s = {turns(es, pika, 'rate'):.2f}x raw pika); "
          f"paced p50 {paced_p50:.2f} ms vs {es_p50:.2f} ms")
    print(f"consumer apply alone, p50: {saves_on['p50']:.2f} ms with the one-statement save, {saves_off['p50']:.2f} ms "
          f"with eventsourcing's save transaction ({saves_on['p50'] / saves_off['p50']:.2f}x)")
    print(f"idle relay CPU over 10 s: woken by the store {idle_woken:.2f} s ({idle_woken * 10:.2f} % of a core), "
          f"old 20 ms poll {idle_polling:.2f} s ({idle_polling * 10:.2f} %); "
          f"ratio {idle_woken / idle_polling if idle_polling else float('nan'):.3f}x")
    print(f"consumer transactions in the bursts: {commits:.0f} for {applied:.0f} applied events "
          f"({applied / max(1, commits):.1f} events per commit; group commit, shared/store/group.py); "
          f"with SFERA_STORE_GROUP_COMMIT=off one per event (the group's metrics are not kept then)")
    report.row("pipeline", f"event pipeline burst, {n} events ({args.producers} producers): commit -> relay -> "
               f"broker -> applied (median of {args.rounds}, in turns)", f"{pipe_rate:.0f} events/s",
               f"raw pika publish+confirm -> consume {pika_rate:.0f}/s ({rounds(pipe, pika, 'rate')})",
               turns(pipe, pika, "rate"), ">= 0.5x raw pika")
    report.row("pipeline", "consumer group commit vs one transaction per event (burst, in turns)",
               f"{pipe_rate:.0f} events/s",
               f"SFERA_STORE_GROUP_COMMIT=off {alone_rate:.0f}/s ({rounds(pipe, alone, 'rate')})",
               turns(pipe, alone, "rate"), "> 1x")
    report.row("pipeline", f"event pipeline paced at {rate:.0f}/s, p50 commit -> applied", f"{paced_p50:.1f} ms",
               f"raw pika p50 {pika_p50:.2f} ms", paced_p50 / pika_p50, "p50 <= 5 ms")
    report.row("pipeline", "consumer apply alone (tally read + process_once save), p50",
               f"{saves_on['p50']:.2f} ms", f"SFERA_STORE_SAVE_FUNCTION=off {saves_off['p50']:.2f} ms",
               saves_on["p50"] / saves_off["p50"], "< 1x")
    report.row("pipeline", "one-statement saves vs eventsourcing's save transaction (burst, in turns)",
               f"{pipe_rate:.0f} events/s",
               f"SFERA_STORE_SAVE_FUNCTION=off {es_rate:.0f}/s ({rounds(pipe, es, 'rate')})",
               turns(pipe, es, "rate"), "> 1x")
    report.row("pipeline", "one-statement saves vs eventsourcing's save transaction (paced p50, in turns)",
               f"{paced_p50:.2f} ms", f"SFERA_STORE_SAVE_FUNCTION=off {es_p50:.2f} ms",
               turns(paced["pipeline"], paced["eventsourcing"], "p50"), "< 1x")
    piped, one = (percentile(windows[w]["latencies"], 0.5) for w in ("8", "1"))
    print(f"paced at {rate:.0f}/s in turns: relay pipelined (8 batches in flight) p50 {piped:.2f} ms, one batch at a "
          f"time (SFERA_RELAY_IN_FLIGHT=1) p50 {one:.2f} ms ({piped / one:.2f}x); each event's way:")
    print_stages([("8 in flight", windows["8"]["stages"]), ("1 in flight (before)", windows["1"]["stages"])])
    report.row("pipeline", f"relay pipelined vs one batch at a time (paced at {rate:.0f}/s, p50, in turns)",
               f"{piped:.2f} ms", f"SFERA_RELAY_IN_FLIGHT=1 {one:.2f} ms", piped / one, "< 1x")
    print()
    print(report.table(report.rows("pipeline")), flush=True)


if __name__ == "__main__":
    main()
