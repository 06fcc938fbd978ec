"""School's other lists in its database (issue #17): invite links, join requests, documents, articles, channels,
channel posts and the applications waiting for a decision, paged in SQL from one table a projection keeps from
school's notification log (``shared.projection``), beside ``school.readmodel``'s members and organizations.

- ``list_items``: one row per entry (``kind``: invite, join_request, document, article, channel, post,
  application, class) in its list (``list_id``: the organization, the channel, ``applications``) at its place
  (``seq``: the version of the list's aggregate that added it -- ``InviteIndex``, ``MaterialsIndex``,
  ``JoinRequestQueue``, ``ApplicationQueue``, the organization's ``ChannelAdded`` and ``ClassAdded``, the channel's
  ``Posted`` -- so the order is the one the
  aggregate's list had; none while out of the list), with what a list filters on (``owner``, ``status``,
  ``published_at``), what changes often (``uses``) and the rest of the entry's view (``data``, JSON).
- ``list_people``: names, for the join requests.

A page is one index range scan, ``(kind, list_id, seq)`` after the cursor's ``seq``; the cursor stands for
``s<seq>`` of the last entry shown (``shared.paging``). ``python -m shared.projection rebuild school`` rebuilds it
with the rest of school's read models.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

from school.domain import (
    ApplicationQueue,
    Article,
    Channel,
    Document,
    InviteIndex,
    InviteLink,
    JoinRequest,
    JoinRequestQueue,
    MaterialsIndex,
    Organization,
    OrganizationApplication,
    Person,
    SchoolClass,
    graduation_day,
)
from shared.errors import Invalid
from shared.paging import decode_cursor, encode_cursor
from shared.projection import Db, Projection, handles, text_or_none

APPLICATIONS = "applications"  # the one list of applications waiting for a decision (ApplicationQueue)


def _json(data: dict[str, Any]) -> str:
    return json.dumps({k: v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v
                       for k, v in data.items()}, ensure_ascii=False)


class ListsProjection(Projection):
    name = "school_lists"
    version = 3  # 3: an application's region (SC-2)
    tables = ("list_items", "list_people")

    def create_tables(self, db: Db) -> None:
        db.execute("CREATE TABLE {list_items} (kind TEXT NOT NULL, item_id TEXT NOT NULL, list_id TEXT, seq BIGINT, "
                   "owner TEXT, status TEXT, uses INTEGER NOT NULL DEFAULT 0, published_at TEXT, data TEXT NOT NULL, "
                   "PRIMARY KEY (kind, item_id))")
        db.execute("CREATE INDEX rm_list_items_order ON {list_items} (kind, list_id, seq)")
        db.execute("CREATE TABLE {list_people} (user_id TEXT PRIMARY KEY, last_name TEXT, first_name TEXT)")

    @handles(Person.Recorded, Person.Renamed)
    def named(self, db: Db, event: Any) -> None:
        db.execute("INSERT INTO {list_people} (user_id, last_name, first_name) VALUES (?, ?, ?) "
                   "ON CONFLICT (user_id) DO UPDATE SET last_name = excluded.last_name, "
                   "first_name = excluded.first_name", (str(event.originator_id), event.last_name, event.first_name))

    # -- the other lists (items) ------------------------------------------------------------------------------

    def _item(self, db: Db, kind: str, item_id: Any, list_id: Any, /, owner: Any = None, status: str | None = None,
              published_at: str | None = None, seq: int | None = None, **data: Any) -> None:
        db.execute("INSERT INTO {list_items} (kind, item_id, list_id, seq, owner, status, published_at, data) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, item_id) DO UPDATE SET "
                   "list_id = excluded.list_id, owner = excluded.owner, status = excluded.status, "
                   "published_at = excluded.published_at, data = excluded.data",
                   (kind, str(item_id), text_or_none(list_id), seq, text_or_none(owner), status, published_at,
                    _json(data)))

    def _update(self, db: Db, kind: str, item_id: Any, data: dict[str, Any] | None = None, **columns: Any) -> None:
        """Columns set, and ``data`` merged into the row's JSON (a read first: only for events seldom applied)."""
        if data:
            row = db.one("SELECT data FROM {list_items} WHERE kind = ? AND item_id = ?", (kind, str(item_id)))
            if row is None:
                return
            columns["data"] = _json({**json.loads(row["data"]), **data})
        if columns:
            assigned = ", ".join(f"{c} = ?" for c in columns)
            db.execute(f"UPDATE {{list_items}} SET {assigned} WHERE kind = ? AND item_id = ?",
                       (*columns.values(), kind, str(item_id)))

    def _listed(self, db: Db, kind: str, item_id: Any, seq: int) -> None:
        """The entry takes its place in its list: the list aggregate's version that added it (saved after the entry
        today; were it saved first, the entry's own event fills the row in and keeps the place)."""
        db.execute("INSERT INTO {list_items} (kind, item_id, seq, data) VALUES (?, ?, ?, '{{}}') "
                   "ON CONFLICT (kind, item_id) DO UPDATE SET seq = excluded.seq", (kind, str(item_id), seq))

    @handles(InviteLink.Created)
    def invite_created(self, db: Db, event: Any) -> None:
        self._item(db, "invite", event.originator_id, event.organization_id, event.created_by, "active",
                   organization_id=event.organization_id, class_id=event.class_id, role=event.role,
                   expires_at=event.expires_at, max_uses=event.max_uses,
                   email_registration_allowed=event.email_registration_allowed, created_by=event.created_by)

    @handles(InviteLink.Used)
    def invite_used(self, db: Db, event: Any) -> None:
        db.execute("UPDATE {list_items} SET uses = uses + 1 WHERE kind = 'invite' AND item_id = ?",
                   (str(event.originator_id),))

    @handles(InviteLink.Revoked)
    def invite_revoked(self, db: Db, event: Any) -> None:
        self._update(db, "invite", event.originator_id, status="revoked")

    @handles(InviteIndex.Added)
    def invite_listed(self, db: Db, event: Any) -> None:
        self._listed(db, "invite", event.invite_id, event.originator_version)

    @handles(JoinRequest.Sent)
    def join_request_sent(self, db: Db, event: Any) -> None:
        self._item(db, "join_request", event.originator_id, event.organization_id, event.user_id, "pending",
                   user_id=event.user_id, message=event.message)

    @handles(JoinRequest.Resent)
    def join_request_resent(self, db: Db, event: Any) -> None:
        self._update(db, "join_request", event.originator_id, {"message": event.message}, status="pending")

    @handles(JoinRequest.Accepted)
    def join_request_accepted(self, db: Db, event: Any) -> None:
        self._update(db, "join_request", event.originator_id, status="accepted")

    @handles(JoinRequest.Hidden)
    def join_request_hidden(self, db: Db, event: Any) -> None:
        self._update(db, "join_request", event.originator_id, status="hidden")

    @handles(JoinRequestQueue.Opened)
    def join_queue_opened(self, db: Db, event: Any) -> None:
        """The queue's events name the person only: its row says whose organization the queue is."""
        self._item(db, "join_queue", event.originator_id, event.organization_id)

    @handles(JoinRequestQueue.Added, JoinRequestQueue.Removed)
    def join_request_queued(self, db: Db, event: Any) -> None:
        added = isinstance(event, JoinRequestQueue.Added)  # a person already waiting keeps their place
        db.execute("UPDATE {list_items} SET seq = ? WHERE kind = 'join_request' AND owner = ? AND list_id = ("
                   "SELECT list_id FROM {list_items} WHERE kind = 'join_queue' AND item_id = ?)"
                   + (" AND seq IS NULL" if added else ""),
                   (event.originator_version if added else None, str(event.user_id), str(event.originator_id)))

    @handles(Document.Published)
    def document_published(self, db: Db, event: Any) -> None:
        self._item(db, "document", event.originator_id, event.organization_id, event.published_by, "published",
                   published_at=event.timestamp.isoformat(), organization_id=event.organization_id,
                   title=event.title, file_name=event.file_name, media_type=event.media_type, size=event.size,
                   published_by=event.published_by)

    @handles(Document.Deleted)
    def document_deleted(self, db: Db, event: Any) -> None:
        self._update(db, "document", event.originator_id, status="deleted")

    @handles(Article.Drafted)
    def article_drafted(self, db: Db, event: Any) -> None:
        self._item(db, "article", event.originator_id, event.organization_id, event.author_id, "draft",
                   organization_id=event.organization_id, author_id=event.author_id, title=event.title,
                   html=event.html, cover_image_id=event.cover_image_id)

    @handles(Article.Edited)
    def article_edited(self, db: Db, event: Any) -> None:
        self._update(db, "article", event.originator_id, {"title": event.title, "html": event.html,
                                                          "cover_image_id": text_or_none(event.cover_image_id)})

    @handles(Article.Published)
    def article_published(self, db: Db, event: Any) -> None:
        self._update(db, "article", event.originator_id, status="published",
                     published_at=event.published_at.isoformat())

    @handles(MaterialsIndex.Added)
    def material_listed(self, db: Db, event: Any) -> None:
        db.execute("UPDATE {list_items} SET seq = ? WHERE kind IN ('document', 'article') AND item_id = ?",
                   (event.originator_version, str(event.material_id)))

    @handles(Channel.Created)
    def channel_created(self, db: Db, event: Any) -> None:
        self._item(db, "channel", event.originator_id, event.organization_id, event.created_by,
                   organization_id=event.organization_id, name=event.name)

    @handles(Organization.ChannelAdded)
    def channel_listed(self, db: Db, event: Any) -> None:
        self._listed(db, "channel", event.channel_id, event.originator_version)

    @handles(Channel.Posted)
    def posted(self, db: Db, event: Any) -> None:
        self._item(db, "post", event.post_id, event.originator_id, event.author_id, seq=event.originator_version,
                   post_id=event.post_id, author_id=event.author_id, text=event.text,
                   published_at=event.published_at.isoformat())

    @handles(SchoolClass.Created)
    def class_created(self, db: Db, event: Any) -> None:
        self._item(db, "class", event.originator_id, event.organization_id, None, "open",
                   organization_id=event.organization_id, name=event.name.strip(), start_year=event.start_year,
                   end_year=event.end_year)

    @handles(SchoolClass.Graduated)
    def class_graduated(self, db: Db, event: Any) -> None:
        self._update(db, "class", event.originator_id, status="graduated")

    @handles(Organization.ClassAdded)
    def class_listed(self, db: Db, event: Any) -> None:
        self._listed(db, "class", event.class_id, event.originator_version)

    @handles(OrganizationApplication.Submitted)
    def application_submitted(self, db: Db, event: Any) -> None:
        self._item(db, "application", event.originator_id, APPLICATIONS, event.submitted_by, "pending",
                   name=event.name, kind=event.kind, country=event.country, city=event.city,
                   region=event.region, admin_phone=event.admin_phone, note=event.note, organization_id=None,
                   reason=None)

    @handles(OrganizationApplication.Approved)
    def application_approved(self, db: Db, event: Any) -> None:
        self._update(db, "application", event.originator_id, {"organization_id": str(event.organization_id)},
                     status="approved")

    @handles(OrganizationApplication.Rejected)
    def application_rejected(self, db: Db, event: Any) -> None:
        self._update(db, "application", event.originator_id, {"reason": event.reason}, status="rejected")

    @handles(ApplicationQueue.Added)
    def application_queued(self, db: Db, event: Any) -> None:
        self._listed(db, "application", event.application_id, event.originator_version)

    @handles(ApplicationQueue.Removed)
    def application_unqueued(self, db: Db, event: Any) -> None:
        db.execute("UPDATE {list_items} SET seq = NULL WHERE kind = 'application' AND item_id = ?",
                   (str(event.application_id),))


# -- queries ----------------------------------------------------------------------------------------------------

UUIDS = ("organization_id", "class_id", "created_by", "user_id", "published_by", "author_id", "cover_image_id",
         "submitted_by")
TIMES = ("expires_at", "published_at")


class Entry:
    """One entry of a list as its aggregate showed it (``id`` and the attributes the views read)."""

    def __init__(self, **attributes: Any):
        self.__dict__.update(attributes)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Entry({self.__dict__!r})"


def _entry(row: dict[str, Any]) -> Entry:
    data = json.loads(row["data"])
    for key in UUIDS:
        if data.get(key) is not None:
            data[key] = uuid.UUID(data[key])
    for key in TIMES:
        if data.get(key) is not None:
            data[key] = datetime.fromisoformat(data[key])
    return Entry(id=uuid.UUID(row["item_id"]), **data)


def _after(cursor: str | None) -> int | None:
    key = decode_cursor(cursor)
    if key is None:
        return None
    if not (key.startswith("s") and key[1:].isdigit() and len(key) < 20):
        raise Invalid("paging.invalid_cursor", "This cursor is not one a page gave; start from the first page.",
                      {"cursor": cursor[:100] if cursor else cursor})
    return int(key[1:])


def entries(db: Db, kind: str, list_id: Any, cursor: str | None, limit: int | None, *, newest_first: bool = False,
            where: str = "", params: tuple = (), columns: str = "") -> tuple[list[dict[str, Any]], str | None]:
    """A page of a list: its rows in the list's order (``newest_first``: the order reversed) after the cursor's
    place, ``limit`` of them (None: all), filtered by ``where`` (SQL on ``i``, with ``params``), and the cursor of
    the next page when more follow."""
    after = _after(cursor)
    conditions = ["i.kind = ?", "i.list_id = ?", "i.seq IS NOT NULL"]
    values: list[Any] = [kind, str(list_id)]
    if after is not None:
        conditions.append("i.seq < ?" if newest_first else "i.seq > ?")
        values.append(after)
    if where:
        conditions.append(f"({where})")
        values += params
    sql = (f"SELECT i.item_id, i.seq, i.owner, i.status, i.uses, i.published_at, i.data{columns} FROM {{list_items}} i "
           + ("LEFT JOIN {list_people} p ON p.user_id = i.owner " if columns else "")
           + "WHERE " + " AND ".join(conditions) + " ORDER BY i.seq" + (" DESC" if newest_first else ""))
    if limit is not None:
        sql += " LIMIT ?"
        values.append(limit + 1)
    rows = db.rows(sql, values)
    if limit is None or len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(f"s{rows[limit - 1]['seq']}")


def invite(row: dict[str, Any]) -> Entry:
    found = _entry(row)
    found.uses, found.revoked = row["uses"], row["status"] == "revoked"
    return found


def join_request(row: dict[str, Any]) -> Entry:
    found = _entry(row)
    found.status, found.last_name, found.first_name = row["status"], row["last_name"], row["first_name"]
    return found


def document(row: dict[str, Any]) -> Entry:
    found = _entry(row)
    found.created_on = found.published_at = datetime.fromisoformat(row["published_at"])
    found.deleted = row["status"] == "deleted"
    return found


def article(row: dict[str, Any]) -> Entry:
    found = _entry(row)
    found.published_at = datetime.fromisoformat(row["published_at"]) if row["published_at"] else None
    return found


def application(row: dict[str, Any]) -> Entry:
    found = _entry(row)
    found.status = row["status"]
    return found


class ClassEntry(Entry):
    def graduated_on(self, today: date) -> bool:
        """SC-4, as ``SchoolClass.graduated_on``: graduation is a fact of the date."""
        return self.graduated or today >= graduation_day(self.end_year)


def school_class(row: dict[str, Any]) -> ClassEntry:
    return ClassEntry(**vars(_entry(row)), graduated=row["status"] == "graduated")


def channel(row: dict[str, Any]) -> Entry:
    return _entry(row)


def post(row: dict[str, Any]) -> dict[str, Any]:
    return {**json.loads(row["data"]), "published_at": row["published_at"]}
