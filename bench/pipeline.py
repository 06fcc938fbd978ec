"""Event pipeline benchmark: commit -> outbox relay -> RabbitMQ -> consumer applied.

Measured in one run, on private RabbitMQ and PostgreSQL servers (durable: fsync
on), next to two baselines of the same run:

- raw pika: persistent messages published with confirms (BlockingConnection,
  one confirm per message) to a durable queue and consumed with acks;
- raw psycopg: one INSERT per transaction into a plain table.

The pipeline: a producer commits N ``Account.Registered`` events to identity's
event store (one transaction each); identity's relay publishes them as
``UserRegistered``; the ledger consumer (tests/fixtures) applies each with its
event id in the same transaction. Latency is commit time -> applied time, read
back from both stores.

    python -m bench.pipeline [--events 10000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import pika
import psycopg

from identity.application import IdentityApplication
from identity.domain import Account
from shared.store import make_application
from tests.fixtures.ledger import LedgerApplication, Tally
from tools.devstack.infra import Postgres, RabbitMQ, free_port
from tools.devstack.stack import Stack, StackConfig


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, count: int, seconds: float, latencies_ms: list[float] | None) -> dict:
    row = {"name": name, "events": count, "seconds": seconds, "rate": count / seconds}
    if latencies_ms:
        row.update(p50=percentile(latencies_ms, 0.50), p99=percentile(latencies_ms, 0.99),
                   mean=statistics.fmean(latencies_ms))
    return row


def bench_pika(amqp_uri: str, n: int) -> dict:
    queue = "bench.raw"
    setup = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = setup.channel()
    channel.queue_declare(queue=queue, durable=True)
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
    return summary("raw pika: publish+confirm -> consume", n, elapsed, latencies)


def bench_psycopg(pg: Postgres, n: int) -> dict:
    with psycopg.connect(host="127.0.0.1", port=pg.port, dbname="sfera", user=pg.user, password=pg.password,
                         autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute("CREATE TABLE bench_raw (id bigserial PRIMARY KEY, body jsonb NOT NULL)")
        started = time.perf_counter()
        for i in range(n):
            with conn.transaction():
                conn.execute("INSERT INTO bench_raw (body) VALUES (%s)", (f'{{"i": {i}}}',))
        elapsed = time.perf_counter() - started
    return summary("raw psycopg: INSERT, one per transaction", n, elapsed, None)


def bench_pipeline(stack: Stack, n: int) -> dict:
    config = stack.settings()
    identity = make_application(IdentityApplication, "identity", config=config)
    ledger = make_application(LedgerApplication, "ledger", config=config)
    commits: dict = {}
    started = time.perf_counter()
    for i in range(n):
        account = Account(phone=f"+7901{i:07d}", email=None, registered_via="phone")
        identity.save(account)
        commits[account.id] = account.created_on
    commit_seconds = time.perf_counter() - started

    def applied_count() -> int:
        return ledger.process_recorder.max_notification_id() or 0

    # Each applied event is two ledger notifications (Tally opened + counted).
    deadline = time.monotonic() + 600
    while applied_count() < 2 * n and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    applied: dict = {}
    position = 0
    while True:
        batch = ledger.process_recorder.select_notifications(start=position + 1, limit=5000)
        if not batch:
            break
        for notification in batch:
            event = ledger.mapper.to_domain_event(notification)
            if isinstance(event, Tally.Counted):
                applied[event.originator_id] = event.timestamp
        position = batch[-1].id
    latencies = [(applied[k] - commits[k]).total_seconds() * 1000 for k in commits if k in applied]
    if len(latencies) != n:
        raise SystemExit(f"pipeline lost events: {n - len(latencies)} of {n} not applied")
    row = summary("pipeline: commit -> relay -> broker -> consumer applied", n, elapsed, latencies)
    row["commit_rate"] = n / commit_seconds
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory(prefix="sfera-bench-") as tmp:
        rabbit = RabbitMQ(Path(tmp) / "rabbitmq", free_port())
        pg = Postgres(Path(tmp) / "postgres", free_port(), durable=True)
        config = StackConfig(var_dir=Path(tmp) / "stack", persistence="postgres", gateway_port=free_port(),
                             metrics_base_port=free_port(), extra_env={"SFERA_LOG_LEVEL": "WARNING"})
        stack = Stack(config, rabbitmq=rabbit, postgres=pg)
        try:
            print(f"starting private RabbitMQ and PostgreSQL (fsync on) in {tmp} ...", flush=True)
            rabbit.start()
            pg.start()
            stack.start_infra()
            stack.prepare(migrate=["identity", "ledger=tests.fixtures.ledger:LedgerApplication"],
                          topology=["tests.fixtures.ledger:LedgerService"])
            stack.start_service("ledger", "tests.fixtures.ledger:LedgerService", port=free_port())
            stack.start_relay("identity")
            stack.wait_healthy()
            print(f"{n} events each ...", flush=True)
            rows = [bench_pika(stack.amqp_uri, n), bench_psycopg(pg, n), bench_pipeline(stack, n)]
        finally:
            stack.stop()
            rabbit.stop()
            pg.stop()
    pika_row, pg_row, pipe = rows
    print()
    print(f"{'':58} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        p50 = f"{row['p50']:8.2f}" if "p50" in row else f"{'-':>8}"
        p99 = f"{row['p99']:8.2f}" if "p99" in row else f"{'-':>8}"
        print(f"{row['name']:58} {row['rate']:9.0f} {p50} {p99}")
    serial = 1 / (1 / pika_row["rate"] + 1 / pg_row["rate"])
    print()
    print(f"producer commit rate into the event store: {pipe['commit_rate']:.0f}/s")
    print(f"pipeline throughput / raw pika:          {pipe['rate'] / pika_row['rate']:.2f}x")
    print(f"pipeline throughput / raw psycopg:       {pipe['rate'] / pg_row['rate']:.2f}x")
    print(f"pipeline throughput / pika+psycopg in series ({serial:.0f}/s): {pipe['rate'] / serial:.2f}x")
    print(f"pipeline p50 / raw pika p50:             {pipe['p50'] / pika_row['p50']:.2f}x")
    print(f"pipeline p99 / raw pika p99:             {pipe['p99'] / pika_row['p99']:.2f}x")


if __name__ == "__main__":
    main()
