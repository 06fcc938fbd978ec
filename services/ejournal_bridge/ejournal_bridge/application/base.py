"""What the e-journal bridge's use cases share: the provider getter, the mirror's aggregates gathered once per
command (``pending``), the ports to the journal and to messaging's chats."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from eventsourcing.utils import strtobool

from ejournal_bridge.domain import (
    PARENT_ROLES,
    Backlog,
    Dated,
    Directory,
    JournalClass,
    JournalPerson,
    LinkedPeople,
    Provider,
    SchoolResync,
)
from ejournal_bridge.readmodel import BridgeProjection, linked_people_of
from shared.observability.logging import get_logger
from shared.projection import ReadModel
from shared.secretbox import SecretBox
from shared.store import ServiceApplication

log = get_logger("ejournal_bridge")


class JournalClient(Protocol):
    """What the bridge asks of an e-journal over HTTP (OAuth 2 token endpoint and the signed-in person)."""

    def exchange_code(self, provider: Provider, code: str, redirect_uri: str, code_verifier: str,
                      client_secret: str) -> str: ...

    def me(self, provider: Provider, access_token: str) -> dict: ...


ChatSink = Callable[[list[dict]], Any]


class BridgeBase(ServiceApplication):
    name = "ejournal_bridge"
    snapshotting_intervals = {JournalClass: 100, JournalPerson: 50, Provider: 50, Directory: 50, LinkedPeople: 50,
                              SchoolResync: 50, Backlog: 50}

    def __init__(self, env: Any = None, journal: JournalClient | None = None, chats: ChatSink | None = None):
        super().__init__(env)
        self.journal = journal
        self.chats = chats
        self.box = SecretBox.from_settings()  # seals the providers' secrets (SFERA_SECRETS_KEYS)
        # The classes, links and deliveries the operator's tools go through (ejournal_bridge.readmodel), kept
        # from this store's log instead of reading all of it; a query catches them up first.
        self.read_model = ReadModel(self, BridgeProjection())
        self.read_models = (self.read_model,)
        if strtobool(self.env.get("CREATE_TABLE", "n")):  # the migration step (and memory stores) make them
            self.read_model.ensure()
            self.read_model.catch_up()

    def close(self) -> None:
        self.read_model.close()
        super().close()

    def provider(self, provider_id: uuid.UUID) -> Provider:
        return self.get_as(Provider, provider_id, "provider.not_found", "No such e-journal.")

    def open_client_secret(self, provider: Provider) -> str:
        return self.box.open(provider.client_secret)

    def _get(self, cls: type, pending: dict, provider_id: uuid.UUID, external_id: str) -> Any:
        aggregate_id = cls.create_id(provider_id, external_id)
        if aggregate_id not in pending:
            pending[aggregate_id] = self.find(cls, aggregate_id) or cls(provider_id=provider_id,
                                                                        external_id=external_id)
        return pending[aggregate_id]

    @staticmethod
    def _stale(entity: Dated, occurred_at: datetime, type_: str, record: dict) -> bool:
        """Whether the record is older than the last one applied to its entity (``Dated``): then it changes
        nothing -- every record type of the mirror asks this one question before it applies."""
        if not entity.stale(occurred_at):
            return False
        log.info("webhook record older than the mirror's", extra={"type": type_, "record": record.get("sourcedId"),
                                                                  "occurred_at": occurred_at.isoformat()})
        return True

    def _pending_provider(self, pending: dict, provider_id: uuid.UUID) -> Provider:
        """The provider, loaded once per delivery (every lesson of a delivery needs it)."""
        if provider_id not in pending:
            pending[provider_id] = self.provider(provider_id)
        return pending[provider_id]

    def _person(self, pending: dict, provider_id: uuid.UUID, external_id: str) -> JournalPerson:
        return self._get(JournalPerson, pending, provider_id, external_id)

    def _class(self, pending: dict, provider_id: uuid.UUID, external_id: str) -> JournalClass:
        return self._get(JournalClass, pending, provider_id, external_id)

    def _classes_of(self, person: JournalPerson, pending: dict) -> set[str]:
        """The classes whose chats this person is in: their own, and a parent's children's."""
        found = set(person.classes)
        if person.role in PARENT_ROLES:
            for child in person.relatives:
                found |= set(self._person(pending, person.provider_id, child).classes)
        return found

    def _linked_people(self, pending: dict, provider_id: uuid.UUID) -> LinkedPeople:
        """The provider's index of linked people, read once per command (built from the links when a store
        older than the index has none: saved with the command)."""
        key = LinkedPeople.create_id(provider_id)
        if key not in pending:
            pending[key] = self.find(LinkedPeople, key) or self._built_linked_people(provider_id)
        return pending[key]

    def _built_linked_people(self, provider_id: uuid.UUID) -> LinkedPeople:
        people = {}
        for external_id in self.linked_external_ids(provider_id):
            person = self.find(JournalPerson, JournalPerson.create_id(provider_id, external_id))
            entry = LinkedPeople.entry_of(person) if person is not None else None
            if entry is not None:
                people[person.external_id] = entry
        return LinkedPeople(provider_id=provider_id, people=people)

    def linked_external_ids(self, provider_id: uuid.UUID) -> list[str]:
        """The journal people of the provider's active account links (the read model: no log read whole)."""
        with self.read_model.reading() as db:
            return linked_people_of(db, provider_id)

    def _note_linked(self, pending: dict, provider_id: uuid.UUID) -> None:
        """Before a command saves: the index follows every person of it who is, or just stopped being, linked.
        The people of a roster who never linked cost nothing (the index is not even read)."""
        touched = [p for p in pending.values() if isinstance(p, JournalPerson) and p.provider_id == provider_id
                   and (p.user_id is not None or any(isinstance(e, JournalPerson.Linked) for e in p.pending_events))]
        if touched:
            index = self._linked_people(pending, provider_id)
            for person in touched:
                index.note(person)

    def linked_people(self, provider_id: uuid.UUID) -> LinkedPeople:
        """The index, to read; created (from the links) the first time a store older than it asks."""
        def command() -> LinkedPeople:
            pending: dict = {}
            index = self._linked_people(pending, provider_id)
            if index.pending_events:
                self.save(index)
            return index

        found = self.find(LinkedPeople, LinkedPeople.create_id(provider_id))
        return found if found is not None else self.retrying(command, ("provider", provider_id))


def digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]
