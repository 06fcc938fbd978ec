"""What the e-journal bridge's use cases share: the provider getter, the mirror's aggregates gathered once per
command (``pending``), the ports to the journal and to messaging's chats."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from ejournal_bridge.domain import PARENT_ROLES, Directory, JournalClass, JournalPerson, Provider
from shared.observability.logging import get_logger
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
    snapshotting_intervals = {JournalClass: 100, JournalPerson: 50, Provider: 50, Directory: 50}

    def __init__(self, env: Any = None, journal: JournalClient | None = None, chats: ChatSink | None = None):
        super().__init__(env)
        self.journal = journal
        self.chats = chats
        self.box = SecretBox.from_settings()  # seals the providers' secrets (SFERA_SECRETS_KEYS)

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

    def _all(self, cls: type, created: str = "Opened") -> list:
        seen: dict[uuid.UUID, Any] = {}
        for notification in self.process_recorder.select_notifications(start=1, limit=10**9):
            if notification.originator_id not in seen and notification.topic.endswith(f"{cls.__qualname__}.{created}"):
                seen[notification.originator_id] = self.find(cls, notification.originator_id)
        return [a for a in seen.values() if a is not None]


def digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]
