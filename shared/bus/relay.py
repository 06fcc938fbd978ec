"""The outbox relay: publishes a service's public domain events, in the order of
its notification log, to the topic exchange ``<service>.events``.

The notification log *is* the outbox (events and notification ids are written
in one transaction by ``Application.save``). The relay reads after its last
published position, maps each domain event with the service's ``outbox.py``,
publishes the batch persistent with publisher confirms, and only then records
the new position (a ``Tracking`` row in the service's own store). A crash
between the two republishes the batch: at least once, with stable event ids
(``<service>:<notification id>:<Name>.v<N>``) so consumers drop the copies.

It wakes when its store has new events instead of polling it fast: on PostgreSQL it
LISTENs to the channel eventsourcing NOTIFYs in every transaction that inserts into the
service's events table (``<events table>``, delivered on commit), with a slow safety poll
(``SFERA_RELAY_SAFETY_POLL``) should a notification be missed or the listening connection
be down; on SQLite (no notifications) it polls every ``SFERA_RELAY_POLL_INTERVAL`` while
there is activity and backs off, doubling, to ``SFERA_RELAY_IDLE_POLL`` when idle.
``SFERA_RELAY_WAKE=poll`` restores the old fixed fast poll (the benchmark's baseline).

It does not wait for a batch's confirms before reading the next (issue #17, paced latency): up to
``SFERA_RELAY_IN_FLIGHT`` batches are published and unconfirmed at once, and the position moves past the oldest
ones as their confirms come (one write for all confirmed together, at most once in ``SFERA_RELAY_POSITION_INTERVAL``
while busy). A nack, a lost connection or a confirm overdue
publishes again everything after the recorded position. ``SFERA_RELAY_IN_FLIGHT=1``: each batch confirmed and its
position recorded before the next read (the old way; bench.pipeline's baseline).

A busy relay reads at most once in ``SFERA_RELAY_LINGER`` (issue #17, the burst): under a burst each commit woke it
for a read of its own (a select, a batch of one to publish and confirm); after a read that found events (not a full
batch) the next one waits until that much time has passed since. A read after a quiet moment is at once.

One relay per service publishes at a time: it holds the lease ``outbox:<service>``
(shared/lease.py). Another replica of it is a standby: healthy, not publishing,
asking for the lease every ``SFERA_RELAY_LEASE_POLL`` seconds, and it takes over
when the holder dies. Should two ever publish at once anyway, the one whose
position write loses the race reads the position again instead of crashing.

Its own process, plain asyncio, no eventlet: ``python -m shared.bus.relay <service>``.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg
from eventsourcing.persistence import IntegrityError, Notification, Tracking
from psycopg import sql

from shared.bus.naming import event_exchange
from shared.bus.publisher import ConfirmingPublisher, OutgoingMessage, PublishError
from shared.bus.trace import stage_trace
from shared.config import env_float, env_int, env_str, settings
from shared.contracts import CloudEvent, get_contract, make_event
from shared.lease import Lease
from shared.observability import metrics
from shared.observability.http import Readiness, serve
from shared.observability.logging import configure_logging, get_logger
from shared.observability.profiling import profiled
from shared.platform import SERVICES, load
from shared.production import refuse_unsafe_start
from shared.shutdown import exit_within
from shared.store import ServiceApplication, make_application

log = get_logger("shared.bus.relay")

# A mapping returns, for one domain event, the integration events it becomes:
# (contract type, data, subject). Most domain events are private: [].
Mapping = Callable[[object], Iterable[tuple[str, dict, str | None]]]

# Fault injection for the reliability tests: SIGKILL the relay after the broker
# confirmed a batch and before the position is recorded.
FAULT_KILL_AFTER_PUBLISH = "SFERA_FAULT_RELAY_KILL_AFTER_PUBLISH"
WAKE_MODES = ("store", "poll")


class StoreListener:
    """Sets ``notified`` whenever the store's events table gets new rows: a dedicated
    autocommit connection LISTENs to the channel eventsourcing's PostgreSQL recorder
    NOTIFYs on every insert (``recorder.channel_name``, delivered when the inserting
    transaction commits). ``listening`` is False while it is (re)connecting; the relay
    then polls. Each (re)connection sets ``notified`` once, for what was committed
    before LISTEN took effect."""

    def __init__(self, recorder: object, stopping: asyncio.Event):
        self.channel: str = recorder.channel_name  # type: ignore[attr-defined]
        kwargs = dict(recorder.datastore.pool.kwargs)  # type: ignore[attr-defined]  # the app's own database
        kwargs.pop("row_factory", None)
        self.conninfo = kwargs
        self.stopping = stopping
        self.notified = asyncio.Event()
        self.notified_at: float | None = None  # when the first notification since ``notified`` was cleared came
        self.listening = False
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name=f"listen {self.channel}")

    async def _run(self) -> None:
        backoff = 0.2
        while not self.stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(autocommit=True, connect_timeout=5,
                                                                 **self.conninfo) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self.listening = True
                    self.notified.set()
                    backoff = 0.2
                    log.info("relay listening for new events", extra={"channel": self.channel})
                    async for _ in conn.notifies():
                        if not self.notified.is_set():
                            self.notified_at = time.time()
                        self.notified.set()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                if self.listening or backoff == 0.2:
                    log.warning("relay cannot listen for new events, polling", extra={"error": str(exc)})
            finally:
                self.listening = False
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=backoff)
            except TimeoutError:
                pass
            backoff = min(backoff * 2, 5.0)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing, whatever it ended with
                pass
            self.task = None


@dataclass
class _Batch:
    """A batch handed to the broker: its last notification id and its confirm."""

    last: int
    messages: list[OutgoingMessage]
    confirmed: asyncio.Future
    published_at: float
    ids: list[int]  # its notification ids when tracing (shared/bus/trace.py)


class OutboxRelay:
    def __init__(
        self,
        service: str,
        app: ServiceApplication,
        mapping: Mapping,
        amqp_uri: str,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.02,
        idle_poll: float = 0.25,
        safety_poll: float = 1.0,
        wake: str = "store",
        lease: Lease | None = None,
        lease_poll: float = 1.0,
        in_flight: int = 8,
        confirm_timeout: float = 30.0,
        position_interval: float = 0.05,
        linger: float = 0.002,
    ):
        self.service = service
        self.app = app
        self.mapping = mapping
        self.publisher = ConfirmingPublisher(amqp_uri, [event_exchange(service)])
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.idle_poll = max(idle_poll, poll_interval)
        self.safety_poll = safety_poll
        if wake not in WAKE_MODES:
            raise ValueError(f"SFERA_RELAY_WAKE={wake!r}: expected one of {', '.join(WAKE_MODES)}")
        self.wake = wake
        self.next_poll = poll_interval
        self.position_key = f"outbox:{service}"
        self.published_to: int | None = None  # the position this relay recorded last, while it holds the lease
        self.confirmed_to: int | None = None  # confirmed by the broker, its position not written yet
        self.confirmed_ids: list[int] = []  # their notification ids when tracing
        self.position_interval = position_interval
        self.position_written_at = 0.0  # monotonic
        self.linger = linger
        self.busy_read_at: float | None = None  # monotonic: the last read that found events, not a full batch
        self.read_to: int | None = None  # the last notification handed to the broker (confirmed or not)
        self.in_flight = max(1, in_flight)
        self.confirm_timeout = confirm_timeout
        self.unconfirmed: deque[_Batch] = deque()  # published, oldest first, not yet recorded
        self.stopping = asyncio.Event()
        self.connected = False
        self.lease = lease or Lease(f"outbox:{service}")
        self.lease_poll = lease_poll
        metrics.relay_lease_held.labels(service).set(0)
        notifying = wake == "store" and hasattr(app.process_recorder, "channel_name")  # PostgreSQL
        self.listener = StoreListener(app.process_recorder, self.stopping) if notifying else None
        self.trace = stage_trace()  # bench.pipeline's stages (shared/bus/trace.py); None in production
        self.woken_at: float | None = None  # when the notification this read follows came

    def position(self) -> int:
        return self.app.process_recorder.max_tracking_id(self.position_key) or 0

    def record_position(self, last: int) -> None:
        """The position is a saving, not a guarantee (a lost one only republishes what consumers find processed):
        on PostgreSQL it is committed without waiting for the disk (shared/store/recorders.py)."""
        recorder = self.app.process_recorder
        getattr(recorder, "insert_tracking_unsynced", recorder.insert_tracking)(Tracking(self.position_key, last))

    def to_messages(self, notification: Notification) -> list[OutgoingMessage]:
        domain_event = self.app.mapper.to_domain_event(notification)
        messages = []
        for event_type, data, subject in self.mapping(domain_event):
            routing_key = get_contract(event_type).routing_key
            event: CloudEvent = make_event(
                event_type,
                data,
                event_id=f"{self.service}:{notification.id}:{routing_key}",
                subject=subject,
                time=getattr(domain_event, "timestamp", None),
                sequence=notification.originator_version,  # consumers tell an aggregate's older events from newer
            )
            messages.append(
                OutgoingMessage(
                    exchange=event.contract.exchange,
                    routing_key=event.contract.routing_key,
                    body=event.to_json(),
                    message_id=event.id,
                    type=event.type,
                )
            )
        return messages

    async def publish_once(self) -> int:
        """Read the next batch and hand it to the broker; returns how many notifications it covered. Its position
        is recorded once the broker confirmed it and every batch before it (``record_confirmed``): with
        ``in_flight`` > 1 the relay reads and publishes the next batches meanwhile (an event committed while
        the broker writes the one before to its disk does not wait for that), up to ``in_flight`` batches
        unconfirmed; with 1, each batch is confirmed and recorded before the next read (the old way).

        Woken by its store (``listener``), it does not write the position of the batches confirmed meanwhile before
        this read: that write is a round trip of its own, and it sat in the new events' latency. The loop writes it
        once a confirm wakes it with nothing new to read (``wait_for_events``), or here when the window is full."""
        if self.listener is None or not self.listener.listening or len(self.unconfirmed) >= self.in_flight:
            self.record_confirmed()
            if len(self.unconfirmed) >= self.in_flight:
                await self._confirmed(self.unconfirmed[0])
                self.record_confirmed()
        # While it holds the lease nobody else moves the position: the one it recorded, not a read per batch.
        if self.read_to is None:
            self.read_to = self.published_to if self.published_to is not None else self.position()
        reading = time.time()
        notifications = self.app.process_recorder.select_notifications(start=self.read_to + 1,
                                                                       limit=self.batch_size)
        self.busy_read_at = time.monotonic() if 0 < len(notifications) < self.batch_size else None
        if not notifications:
            if not self.unconfirmed:
                metrics.outbox_lag.labels(self.service).set(0)
            return 0
        ids = [n.id for n in notifications] if self.trace else []
        if self.trace:
            if self.woken_at is not None:
                self.trace.record("relay_notified", ids, self.woken_at)
            self.trace.record("relay_reading", ids, reading)
            self.trace.record("relay_selected", ids)
        messages = [m for n in notifications for m in self.to_messages(n)]
        last = notifications[-1].id
        if messages:
            if self.trace:
                self.trace.record("relay_mapped", ids)
            confirmed = self.publisher.publish(messages)
            if self.trace:
                confirmed.add_done_callback(lambda f: f.cancelled() or f.exception() or
                                            self.trace.record("relay_confirmed", ids))
        else:  # none of them public: nothing to wait for
            confirmed = asyncio.get_running_loop().create_future()
            confirmed.set_result([])
        self.unconfirmed.append(_Batch(last, messages, confirmed, time.monotonic(), ids))
        self.read_to = last
        if len(notifications) < self.batch_size:
            metrics.outbox_lag.labels(self.service).set(0)  # it read up to the head; what came since wakes it
        else:
            head = self.app.process_recorder.max_notification_id() or last
            metrics.outbox_lag.labels(self.service).set(max(0, head - last))
        if self.in_flight == 1:
            await self._confirmed(self.unconfirmed[0])
            self.record_confirmed()
        return len(notifications)

    async def _confirmed(self, batch: _Batch) -> None:
        """Until the broker confirmed ``batch`` (or failed it: ``record_confirmed`` raises that)."""
        left = self.confirm_timeout - (time.monotonic() - batch.published_at)
        await asyncio.wait([batch.confirmed], timeout=max(0.0, left))

    def record_confirmed(self, *, now: bool = False) -> None:
        """Records the position after the batches the broker confirmed, oldest first (one write for them all);
        raises ``PublishError`` when the oldest unconfirmed batch was refused, its connection broke or its
        confirm is overdue: the caller reconnects and everything after the recorded position is read again."""
        done: list[_Batch] = []
        while self.unconfirmed:
            batch = self.unconfirmed[0]
            if not batch.confirmed.done():
                if time.monotonic() - batch.published_at > self.confirm_timeout:
                    self.forget_unconfirmed()
                    raise PublishError(f"no confirm within {self.confirm_timeout}s")
                break
            error = batch.confirmed.exception()
            if error is not None:
                self.forget_unconfirmed()
                raise error if isinstance(error, PublishError) else PublishError(str(error))
            done.append(self.unconfirmed.popleft())
        if not done:
            self._write_position(now)
            return
        for batch in done:
            for m in batch.messages:
                metrics.events_published.labels(self.service, m.type).inc()
        if any(batch.messages for batch in done) and os.environ.get(FAULT_KILL_AFTER_PUBLISH):
            log.warning("fault injection: killing the relay before it records its position")
            os.kill(os.getpid(), signal.SIGKILL)
        self.confirmed_to = done[-1].last
        self.confirmed_ids += [i for batch in done for i in batch.ids]
        self._write_position(now)

    def _write_position(self, now: bool) -> None:
        """Writes the position confirmed so far, at most once in ``position_interval`` while the relay is busy
        (``now``: at once): each write is a round trip and a commit, and a lost one only republishes what
        consumers then find processed. Under a burst it was written after nearly every confirm (bench.pipeline
        --bursts: 0.2-0.4 writes an event)."""
        last = self.confirmed_to
        if last is None or (not now and time.monotonic() - self.position_written_at < self.position_interval - 1e-3):
            return
        try:
            self.record_position(last)
        except IntegrityError:
            # Another relay recorded this position first (two holders for a moment): read it again.
            log.warning("position already recorded by another relay", extra={"position": last})
            self.forget_unconfirmed()
            self.published_to = None
            return
        except BaseException:
            self.forget_unconfirmed()
            self.published_to = None  # recorded or not: read it again
            raise
        self.published_to = last
        if self.trace:
            self.trace.record("relay_recorded", self.confirmed_ids)
        self.confirmed_to, self.confirmed_ids = None, []
        self.position_written_at = time.monotonic()
        metrics.outbox_position.labels(self.service).set(last)
        log.debug("position recorded", extra={"position": last})

    def forget_unconfirmed(self) -> None:
        """Batches published but not recorded are read again (after the recorded position) and published again:
        at least once, consumers drop the copies by their event ids."""
        for batch in self.unconfirmed:
            if batch.confirmed.done():
                if not batch.confirmed.cancelled():
                    batch.confirmed.exception()  # retrieved: no "never retrieved" warning
            else:
                batch.confirmed.cancel()
        self.unconfirmed.clear()
        self.confirmed_to, self.confirmed_ids = None, []
        self.read_to = None

    @property
    def standby(self) -> bool:
        return not self.lease.held

    async def hold_lease(self) -> bool:
        """Wait (as a standby) until this relay holds the lease; False when stopping first."""
        announced = False
        while not self.stopping.is_set():
            if self.lease.acquire():
                log.info("relay holds the lease, publishing", extra={"service": self.service})
                metrics.relay_lease_held.labels(self.service).set(1)
                return True
            if not announced:
                log.info("relay on standby: another relay holds the lease", extra={"service": self.service})
                announced = True
            await self._sleep(self.lease_poll)
        return False

    async def run(self) -> None:
        try:
            await self._publish_while_holding()
        finally:
            if self.listener is not None:
                await self.listener.close()

    async def _publish_while_holding(self) -> None:
        backoff = 0.2
        checked = time.monotonic()
        read = True  # False: woken by a confirm alone, nothing new in the store to read
        while not self.stopping.is_set():
            if self.standby:
                self.connected = False
                self.forget_unconfirmed()
                self.published_to = None  # another relay may have published meanwhile
                await self.publisher.close()
                if not await self.hold_lease():
                    break
                checked = time.monotonic()
            elif time.monotonic() - checked >= self.lease_poll:
                checked = time.monotonic()
                if not self.lease.still_held():
                    metrics.relay_lease_held.labels(self.service).set(0)
                    self.forget_unconfirmed()
                    self.published_to = None
                    continue
            try:
                if not self.publisher.is_open:
                    self.connected = False
                    self.forget_unconfirmed()
                    await self.publisher.connect()
                    self.connected = True
                    backoff = 0.2
                    log.info("relay connected", extra={"service": self.service, "position": self.position()})
                    read = True
                published = 0
                if read:
                    await self._linger()  # before the wake-up is cleared: what commits meanwhile is in this read
                    if self.listener is not None:
                        self.listener.start()
                        self.woken_at, self.listener.notified_at = self.listener.notified_at, None
                        self.listener.notified.clear()  # before reading: a commit from now on wakes the next wait
                    published = await self.publish_once()
                    if published >= self.batch_size:
                        continue
                else:
                    self.record_confirmed()
                read = await self.wait_for_events(published > 0)
            except (TimeoutError, PublishError, OSError) as exc:
                self.connected = False
                self.forget_unconfirmed()
                log.warning("relay cannot publish, will retry", extra={"error": str(exc), "retry_in": backoff})
                await self.publisher.close()
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                read = True
        await self._record_before_closing()
        await self.publisher.close()
        self.lease.release()
        metrics.relay_lease_held.labels(self.service).set(0)

    async def _record_before_closing(self, timeout: float = 2.0) -> None:
        """Stopping: the confirms of what was published, a moment, so that its position is recorded (else it is
        only published again by the next relay)."""
        if not self.unconfirmed or not self.publisher.is_open or self.standby:
            if not self.standby:  # what was confirmed, written now
                try:
                    self._write_position(now=True)
                except Exception as exc:  # noqa: BLE001 - stopping: what is not recorded is published again
                    log.warning("relay stopping before its position was recorded", extra={"error": str(exc)})
            self.forget_unconfirmed()
            return
        try:
            await asyncio.wait([b.confirmed for b in self.unconfirmed], timeout=timeout)
            self.record_confirmed(now=True)
        except Exception as exc:  # noqa: BLE001 - stopping: what is not recorded is published again
            log.warning("relay stopping before its last batches were confirmed", extra={"error": str(exc)})
        self.forget_unconfirmed()

    async def wait_for_events(self, active: bool) -> bool:
        """Until the store may have new events: notified (PostgreSQL, safety poll as the longest
        wait), or after a poll interval that doubles from the fast one to ``idle_poll`` while idle.
        Listening, the oldest unconfirmed batch's confirm wakes it too, to record its position, and so does the
        time to write a position confirmed before (``position_interval``): then it returns False (nothing new to
        read, unless notified meanwhile)."""
        if self.listener is not None and self.listener.listening:
            confirm = self.unconfirmed[0].confirmed if self.unconfirmed else None
            timeout = self.safety_poll
            if self.confirmed_to is not None:
                timeout = min(timeout, max(0.0, self.position_written_at + self.position_interval - time.monotonic()))
            notified = asyncio.ensure_future(self.listener.notified.wait())
            stopping = asyncio.ensure_future(self.stopping.wait())
            try:
                await asyncio.wait([notified, stopping, *([confirm] if confirm else [])], timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                notified.cancel()
                stopping.cancel()
            if self.listener.notified.is_set():
                return True
            return not ((confirm is not None and confirm.done()) or self.confirmed_to is not None)
        if self.wake == "poll" or active:
            self.next_poll = self.poll_interval
        await self._sleep(self.next_poll)
        if self.wake == "store":
            self.next_poll = min(self.next_poll * 2, self.idle_poll)
        return True

    async def _linger(self) -> None:
        """Busy (the last read found events, not a full batch): until ``linger`` has passed since that read."""
        if self.linger and self.busy_read_at is not None:
            wait = self.busy_read_at + self.linger - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass


def build_relay(service: str) -> OutboxRelay:
    app = make_application(load(SERVICES[service].application), service)
    mapping = importlib.import_module(f"{service}.outbox").to_integration_events
    return OutboxRelay(
        service,
        app,
        mapping,
        settings().amqp_uri,
        batch_size=env_int("SFERA_RELAY_BATCH", 500),
        poll_interval=env_float("SFERA_RELAY_POLL_INTERVAL", 0.02),
        idle_poll=env_float("SFERA_RELAY_IDLE_POLL", 0.25),
        safety_poll=env_float("SFERA_RELAY_SAFETY_POLL", 1.0),
        wake=env_str("SFERA_RELAY_WAKE", "store"),
        lease_poll=env_float("SFERA_RELAY_LEASE_POLL", 1.0),
        in_flight=env_int("SFERA_RELAY_IN_FLIGHT", 8),
        position_interval=env_float("SFERA_RELAY_POSITION_INTERVAL", 0.05),
        linger=env_float("SFERA_RELAY_LINGER", 0.002),
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: python -m shared.bus.relay <{'|'.join(SERVICES)}>", file=sys.stderr)
        return 2
    service = argv[0]
    refuse_unsafe_start(f"{service}-relay")
    configure_logging(f"{service}-relay")
    relay = build_relay(service)

    def broker_check() -> None:
        if not relay.connected and not relay.standby:  # a standby does not connect until it holds the lease
            raise RuntimeError("not connected to the broker")

    def store_check() -> None:
        relay.app.process_recorder.max_notification_id()

    readiness = Readiness()  # /healthz: ok once the loop runs (publishing, or standing by for the lease)

    def stop() -> None:
        exit_within()  # a publish waiting for the broker must not hold the exit
        readiness.stopping()
        relay.stopping.set()  # before the loop runs too: it then ends at once

    # before the port answers: a stop from then on is a clean stop (the loop's own handlers replace these)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop())
    config = settings()
    serve(f"{service}-relay", config.metrics_port, {"broker": broker_check, "store": store_check}, readiness,
          host=config.metrics_host)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        started = time.monotonic()
        log.info("relay starting", extra={"service": service})
        readiness.ready()
        await relay.run()
        log.info("relay stopped", extra={"service": service, "uptime_s": round(time.monotonic() - started, 1)})

    with profiled(f"{service}-relay"):  # SFERA_PROFILE_DIR only (bench.pipeline --profile)
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
