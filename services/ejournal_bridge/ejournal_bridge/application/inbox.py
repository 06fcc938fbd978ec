"""Webhooks (EJ-4): verified against the provider's secret and the published schema, stored and acknowledged;
each delivery is then processed once, and an operator can replay the inbox."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from ejournal_bridge.application.base import BridgeBase, ChatSink
from ejournal_bridge.domain import REPLAY_WINDOW, Delivery, Enrollment, JournalPerson, Lesson
from ejournal_bridge.readmodel import deliveries_of
from shared.clock import utcnow
from shared.errors import Invalid

DELIVERY_CHUNK = 25  # records of a delivery applied per command (and per hold of the provider's lock)
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "webhook.schema.json"  # package data; docs/ejournal/ links it


@lru_cache(maxsize=1)
def webhook_validator():
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    # formats checked ("date"; "date-time" needs a package not installed, and a lesson's times are parsed below)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("a time needs its offset")
    return parsed


def check_webhook_body(raw: bytes, now: datetime | None = None) -> dict:
    """The body against the published JSON Schema, and its times parsed: a bad one
    is refused (400) before anything is stored."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Invalid("webhook.malformed", "The body is not JSON.") from None
    errors = sorted(webhook_validator().iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        raise Invalid("webhook.malformed", "The body does not follow the webhook schema.",
                      {"errors": [{"path": "/".join(map(str, e.absolute_path)), "message": e.message[:300]}
                                  for e in errors[:10]]})
    try:
        occurred = parse_time(body["occurred_at"])
        if now is not None and occurred > now + REPLAY_WINDOW:
            # each record is the entity as of this time (``Dated``): one from the future (a wrong clock or time
            # offset at the journal) would make every true record after it stale until then
            raise ValueError(f"occurred_at {body['occurred_at']} is later than now")
        # a lesson's times, which its schema requires as text; another record's are no part of its schema (extra
        # properties are let through) and nothing reads them: before, they were parsed too, a KeyError or an
        # AttributeError (a 5xx) when they were not both there as text
        for record in body["records"] if body["type"] == "lessons.upserted" else ():
            if parse_time(record["endsAt"]) <= parse_time(record["startsAt"]):
                raise ValueError("endsAt before startsAt")
    except ValueError as exc:
        raise Invalid("webhook.malformed", f"A time is not valid: {exc}.") from None
    return body


class Inbox(BridgeBase):
    def receive_webhook(self, provider_id: uuid.UUID, timestamp: str, signature: str, raw: bytes,
                        now: datetime | None = None) -> tuple[Delivery, bool]:
        """Returns the delivery and whether it is a repeat (which changes nothing)."""
        now = now or utcnow()
        provider = self.provider(provider_id)
        provider.verify(timestamp, signature, raw, now, self.box.open)
        body = check_webhook_body(raw, now)
        delivery_id = Delivery.create_id(provider_id, body["event_id"])
        existing = self.find(Delivery, delivery_id)
        if existing is not None:
            return existing, True
        delivery = Delivery(provider_id=provider_id, event_id=body["event_id"], type=body["type"], body=body,
                            received_at=now)
        try:
            self.save(delivery)
        except IntegrityError:
            again = self.find(Delivery, delivery_id)  # a concurrent copy of the same delivery won
            if again is None:
                raise
            return again, True
        return delivery, False

    def process_delivery(self, delivery_id: uuid.UUID, event_id: str, chats: ChatSink | None = None) -> bool:
        """Apply a stored delivery to the mirror once, then bring the chats of the
        classes it touched in line (idempotent: safe to repeat after a failure).

        Its records are applied ``DELIVERY_CHUNK`` at a time, each chunk one command recorded once with its own
        id (``<event id>#<n>``): the provider's lock is held for a chunk, not a whole delivery, so a person
        linking meanwhile waits a fraction of a second, not the delivery (issue #17). A repeat after a failure
        skips the chunks applied. Returns whether anything was applied now."""
        delivery = self.get_as(Delivery, delivery_id, "delivery.not_found", "No such delivery.")
        records = delivery.body["records"]
        affected: set[str] = set()
        linked: list[str] = []  # the linked people it touched: their organizations may have changed (EJ-2)
        # A delivery processed whole under its event id (before chunks) is not applied again.
        whole_before = self.already_processed(event_id)
        applied: list[bool] = []
        for n, start in enumerate(range(0, len(records), DELIVERY_CHUNK)):
            if whole_before:
                break
            if self.already_processed(f"{event_id}#{n}"):
                applied.append(False)  # applied before this repeat: not even read again
                continue
            chunk = records[start:start + DELIVERY_CHUNK]
            touched: set[str] = set()
            chunk_linked: list[str] = []

            def command(chunk: list[dict] = chunk, touched: set[str] = touched, chunk_linked: list[str] = chunk_linked,
                        processed_id: str = f"{event_id}#{n}") -> bool:
                pending: dict[uuid.UUID, Aggregate] = {}
                touched.clear()
                self._apply(delivery, pending, touched, chunk)
                self._note_linked(pending, delivery.provider_id)
                chunk_linked[:] = [p.external_id for p in pending.values()
                                   if isinstance(p, JournalPerson) and p.user_id]
                return self.process_once(processed_id, *pending.values())

            applied.append(self.retrying(command, ("provider", delivery.provider_id)))
            affected |= touched
            linked += chunk_linked
        complete = bool(applied) and all(applied)
        if not complete:
            affected.update(self._touched_classes(delivery))
        self.sync_chats(delivery.provider_id, affected, chats)
        if delivery.body["type"].startswith("users."):
            # Applied once before (a retry after a failure here): every person of the delivery is looked at.
            self.announce_memberships(delivery.provider_id,
                                      linked if complete else [r["sourcedId"] for r in records])
        return any(applied)

    def _touched_classes(self, delivery: Delivery) -> set[str]:
        pending: dict = {}
        provider_id, body = delivery.provider_id, delivery.body
        kind = body["type"].split(".")[0]
        found: set[str] = set()
        for record in body["records"]:
            if kind == "classes":
                found.add(record["sourcedId"])
            elif kind == "users":
                found |= self._classes_of(self._person(pending, provider_id, record["sourcedId"]), pending)
            elif kind == "enrollments":
                enrollment = self.find(Enrollment, Enrollment.create_id(provider_id, record["sourcedId"]))
                if enrollment is not None and enrollment.class_id:  # not a deletion's tombstone
                    found.add(enrollment.class_id)
            elif kind in ("lessons", "lesson"):
                lesson = self.find(Lesson, Lesson.create_id(provider_id, record["sourcedId"]))
                if lesson is not None:
                    found.add(lesson.external_class_id)
        return found

    def request_replay(self, provider_id: uuid.UUID) -> uuid.UUID:
        """An operator asks for the inbox to be replayed; it runs from the bridge's own event."""
        replay_id = uuid.uuid4()

        def command() -> None:
            provider = self.provider(provider_id)
            provider.request_replay(replay_id)
            self.save(provider)

        self.retrying(command, ("provider", provider_id))
        return replay_id

    def replay_inbox(self, provider_id: uuid.UUID, chats: ChatSink | None = None,
                     replay_id: uuid.UUID | None = None) -> dict:
        """Process every stored delivery of a provider again, in order, then tell
        messaging every chat again: the same chats come out, not copies (an
        operator's tool after a fix; the test of idempotence end to end)."""
        self.provider(provider_id)
        with self.read_model.reading() as db:  # the provider's deliveries in order, not the whole log (issue #17)
            deliveries = deliveries_of(db, provider_id)
        replay = uuid.uuid4()
        count = 0
        for delivery_id in deliveries:
            delivery = self.find(Delivery, delivery_id)
            if delivery is not None:
                self.process_delivery(delivery_id, f"replay:{replay}:{delivery_id}", chats)
                count += 1
        result = {"deliveries": count, "chats_sent": self.resync(provider_id, chats, force=True)}
        if replay_id is not None:
            def command() -> None:
                provider = self.provider(provider_id)
                provider.finish_replay(replay_id, count, result["chats_sent"])
                self.save(provider)

            self.retrying(command, ("provider", provider_id))
        return result
