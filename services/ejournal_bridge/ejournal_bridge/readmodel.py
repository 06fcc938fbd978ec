"""The e-journal bridge's read model (issue #17): what its operator tools used to find by reading the whole
notification log -- every delivery's body, every lesson and roster change with them -- kept in tables by a
projection of that log (``shared.projection``), in the bridge's own database.

- ``journal_classes``: each provider's classes (``JournalClass.Opened``) and the journal school each is in
  (``Upserted``; version 2): a replay's resync syncs all of them, a bind's those of the school bound.
- ``account_links``: each account link's provider, journal person and whether it is active (``AccountLink``'s
  Linked, Relinked, Unlinked): a resync tells school about every linked person; a store older than the
  ``LinkedPeople`` index builds it from them.
- ``deliveries``: each stored webhook's provider in the order the inbox received them (``Delivery.Received``;
  ``seq`` is the order the catch-up applied them, the log's): a replay processes them again in that order.

``python -m shared.projection rebuild ejournal_bridge`` rebuilds it from scratch.
"""

from __future__ import annotations

import uuid
from typing import Any

from ejournal_bridge.domain import AccountLink, Delivery, JournalClass
from shared.projection import Db, Projection, handles


class BridgeProjection(Projection):
    name = "ejournal_bridge"
    version = 2  # 2: journal_classes has each class's aggregate id and school (a bind resyncs its school's only)
    tables = ("journal_classes", "account_links", "deliveries")

    def create_tables(self, db: Db) -> None:
        db.execute("CREATE TABLE {journal_classes} (provider_id TEXT NOT NULL, external_id TEXT NOT NULL, "
                   "class_id TEXT NOT NULL UNIQUE, org TEXT, PRIMARY KEY (provider_id, external_id))")
        db.execute("CREATE INDEX rm_journal_classes_org ON {journal_classes} (provider_id, org)")
        db.execute("CREATE TABLE {account_links} (link_id TEXT PRIMARY KEY, provider_id TEXT NOT NULL, "
                   "external_person_id TEXT NOT NULL, active INTEGER NOT NULL)")
        db.execute("CREATE INDEX rm_account_links_provider ON {account_links} (provider_id, active)")
        seq = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if db.postgres else "INTEGER PRIMARY KEY"
        db.execute(f"CREATE TABLE {{deliveries}} (seq {seq}, delivery_id TEXT NOT NULL UNIQUE, "
                   "provider_id TEXT NOT NULL)")
        db.execute("CREATE INDEX rm_deliveries_provider ON {deliveries} (provider_id, seq)")

    @handles(JournalClass.Opened)
    def class_opened(self, db: Db, event: Any) -> None:
        db.execute("INSERT INTO {journal_classes} (provider_id, external_id, class_id) VALUES (?, ?, ?) "
                   "ON CONFLICT DO NOTHING", (str(event.provider_id), event.external_id, str(event.originator_id)))

    @handles(JournalClass.Upserted)
    def class_upserted(self, db: Db, event: Any) -> None:
        db.execute("UPDATE {journal_classes} SET org = ? WHERE class_id = ?", (event.org, str(event.originator_id)))

    @handles(AccountLink.Linked, AccountLink.Relinked)
    def linked(self, db: Db, event: Any) -> None:
        db.execute("INSERT INTO {account_links} (link_id, provider_id, external_person_id, active) VALUES (?, ?, ?, 1) "
                   "ON CONFLICT (link_id) DO UPDATE SET provider_id = excluded.provider_id, "
                   "external_person_id = excluded.external_person_id, active = 1",
                   (str(event.originator_id), str(event.provider_id), event.external_person_id))

    @handles(AccountLink.Unlinked)
    def unlinked(self, db: Db, event: Any) -> None:
        db.execute("UPDATE {account_links} SET active = 0 WHERE link_id = ?", (str(event.originator_id),))

    @handles(Delivery.Received)
    def received(self, db: Db, event: Any) -> None:
        db.execute("INSERT INTO {deliveries} (delivery_id, provider_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                   (str(event.originator_id), str(event.provider_id)))


def classes_of(db: Db, provider_id: uuid.UUID, org: str | None = None) -> set[str]:
    """The provider's classes; with ``org``, those the journal puts in that school."""
    if org is None:
        return {r["external_id"] for r in db.rows("SELECT external_id FROM {journal_classes} WHERE provider_id = ?",
                                                  (str(provider_id),))}
    return {r["external_id"] for r in db.rows(
        "SELECT external_id FROM {journal_classes} WHERE provider_id = ? AND org = ?", (str(provider_id), org))}


def linked_people_of(db: Db, provider_id: uuid.UUID) -> list[str]:
    """The journal people of the provider's active account links."""
    return [r["external_person_id"] for r in db.rows(
        "SELECT external_person_id FROM {account_links} WHERE provider_id = ? AND active = 1 "
        "ORDER BY external_person_id", (str(provider_id),))]


def deliveries_of(db: Db, provider_id: uuid.UUID) -> list[uuid.UUID]:
    """The provider's deliveries in the order the inbox received them."""
    return [uuid.UUID(r["delivery_id"]) for r in db.rows(
        "SELECT delivery_id FROM {deliveries} WHERE provider_id = ? ORDER BY seq", (str(provider_id),))]
