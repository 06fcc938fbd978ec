"""Messaging's read model (issue #17): the tables the chat list, the organization inbox and "who has read" are
paged from, kept by a projection of messaging's notification log (``shared.projection``) in messaging's own
database.

- ``chats``: one row per chat: what the list shows of it (kind, organization, class, subject, name, closed, its
  creator, its members in their order as JSON) and its last message: seq (-1 for none), author, on whose behalf,
  a snippet of its text, when, deleted (edits and deletions of the last message follow it).
  ``name_words``: the words of the name the list shows (its name, else its subject; none for a dialog or an inbox
  thread, which the client names by a person or the school) for ``?q=``.
- ``people`` and ``organizations``: the words of each person's name (last, first, patronymic: ``PersonName``, from
  identity's events) and each organization's (``OrgRoster``'s, from school's): ``?q=`` matches a dialog by the
  other member's name, an inbox thread by its writer's (for the admins) or the school's (for the writer), as the
  web client names them; never by a name the viewer is not shown (the admins who answer a thread, CH-5).
- ``lists``: whose list each ``UserChats`` aggregate is; ``chat_members``: one row per (person, chat) the
  person's ``UserChats`` holds, with ``pos`` (the list's version when the chat joined it: the list's order,
  the chat list's tie-break after the last seq).
- ``read_marks``: how far each person has read each chat (``ReadMark``), for unread counts and "who has read".
- ``rosters`` and ``inbox``: each organization's inbox threads (``OrgRoster``), in the order they opened.

The chat list is ordered as before the read model: last seq first (newest), then the order the chats joined the
person's list; user ids are compared as code points (PostgreSQL ``COLLATE "C"``).
``python -m messaging.readmodel rebuild`` (or ``python -m shared.projection rebuild messaging``) rebuilds it.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from messaging.domain import SYSTEM_KINDS, Chat, MessagePage, OrgRoster, PersonName, ReadMark, UserChats
from shared.contracts.api.messaging import CHAT_FILTER_MAX_CHARS as FILTER_MAX_CHARS
from shared.errors import Invalid
from shared.paging import decode_cursor, encode_cursor
from shared.projection import Db, Projection, handles, iso_or_none, text_or_none
from shared.textsearch import words

SNIPPET = 200  # characters of the last message kept for a preview
UNNAMED_KINDS = ("direct", "inbox")  # the client names them by a person or the school, not by the chat's name


def spaced_words(text: str | None) -> str:
    """The words of a name, each after a space (`` 5а математика``): ``LIKE '% word%'`` is a prefix."""
    return "".join(f" {w}" for w in words(text or "", None))


def name_words(kind: str, name: str | None, subject: str | None) -> str:
    """The words of a chat's own shown name (none for a dialog or an inbox thread: named by a person or a school)."""
    return "" if kind in UNNAMED_KINDS else spaced_words(name or subject)


def filter_words(q: str | None) -> list[str]:
    """The words of the chat list's ``?q=`` (None: no filter); 400 for a filter too long or without a word."""
    if q is None:
        return []
    if len(q) > FILTER_MAX_CHARS:
        raise Invalid("chats.filter_too_long", f"Filter by at most {FILTER_MAX_CHARS} characters.",
                      {"max_chars": FILTER_MAX_CHARS})
    found = words(q)
    if not found:
        raise Invalid("chats.filter_no_words", "Type a word of a chat's name: letters or digits.")
    return found


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def micros(value: Any) -> int:
    """A moment (a datetime or its ISO text) as microseconds since 1970, UTC: a sort key SQL compares as a number."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - EPOCH) // timedelta(microseconds=1)


class MessagingProjection(Projection):
    name = "messaging"
    version = 4  # 2: last_us, the list's order; 3: name_words (?q=); 4: people's and organizations' names (?q=)
    tables = ("chats", "lists", "chat_members", "read_marks", "rosters", "inbox", "people", "organizations")

    def create_tables(self, db: Db) -> None:
        ordered = ' COLLATE "C"' if db.postgres else ""
        db.execute("CREATE TABLE {chats} (chat_id TEXT PRIMARY KEY, kind TEXT NOT NULL, organization_id TEXT, "
                   "class_id TEXT, subject TEXT, name TEXT, closed INTEGER NOT NULL, created_by TEXT, "
                   "members TEXT NOT NULL, last_seq BIGINT NOT NULL, last_author TEXT, last_on_behalf_of TEXT, "
                   "last_text TEXT, last_at TEXT, last_us BIGINT NOT NULL, last_deleted INTEGER NOT NULL, "
                   "name_words TEXT NOT NULL DEFAULT '')")
        db.execute("CREATE TABLE {lists} (list_id TEXT PRIMARY KEY, user_id TEXT NOT NULL)")
        db.execute(f"CREATE TABLE {{chat_members}} (user_id TEXT{ordered} NOT NULL, chat_id TEXT NOT NULL, "
                   "pos BIGINT NOT NULL, PRIMARY KEY (user_id, chat_id))")
        db.execute("CREATE INDEX rm_chat_members_chat ON {chat_members} (chat_id, user_id)")
        db.execute(f"CREATE TABLE {{read_marks}} (mark_id TEXT PRIMARY KEY, chat_id TEXT NOT NULL, "
                   f"user_id TEXT{ordered} NOT NULL, read_until BIGINT NOT NULL)")
        db.execute("CREATE UNIQUE INDEX rm_read_marks_member ON {read_marks} (chat_id, user_id)")
        db.execute("CREATE TABLE {rosters} (roster_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL)")
        db.execute("CREATE TABLE {inbox} (organization_id TEXT NOT NULL, member_id TEXT NOT NULL, "
                   "chat_id TEXT NOT NULL, pos BIGINT NOT NULL, PRIMARY KEY (organization_id, member_id))")
        db.execute("CREATE INDEX rm_inbox_order ON {inbox} (organization_id, pos)")
        db.execute(f"CREATE TABLE {{people}} (user_id TEXT{ordered} PRIMARY KEY, name_words TEXT NOT NULL)")
        db.execute("CREATE TABLE {organizations} (organization_id TEXT PRIMARY KEY, name_words TEXT NOT NULL)")

    # -- chats -------------------------------------------------------------------------------------------

    @handles(Chat.Created)
    def chat_created(self, db: Db, event: Any) -> None:
        members = list(dict.fromkeys(event.member_ids))
        db.execute("INSERT INTO {chats} (chat_id, kind, organization_id, class_id, subject, name, closed, created_by, "
                   "members, last_seq, last_us, last_deleted, name_words) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, -1, -1, 0, ?) ON CONFLICT (chat_id) DO NOTHING",
                   (str(event.originator_id), event.kind, text_or_none(event.organization_id),
                    text_or_none(getattr(event, "class_id", None)), getattr(event, "subject", None), event.name,
                    int(bool(getattr(event, "closed", False))), text_or_none(event.created_by), json.dumps(members),
                    name_words(event.kind, event.name, getattr(event, "subject", None))))

    @handles(Chat.MembersChanged)
    def members_changed(self, db: Db, event: Any) -> None:
        chat_id = str(event.originator_id)
        row = db.one("SELECT members FROM {chats} WHERE chat_id = ?", (chat_id,))
        if row is not None:
            gone = set(event.removed)
            members = [m for m in json.loads(row["members"]) if m not in gone] + list(event.added)
            db.execute("UPDATE {chats} SET members = ? WHERE chat_id = ?", (json.dumps(members), chat_id))

    @handles(Chat.Renamed)
    def renamed(self, db: Db, event: Any) -> None:
        row = db.one("SELECT kind, subject FROM {chats} WHERE chat_id = ?", (str(event.originator_id),))
        shown = name_words(row["kind"], event.name, row["subject"]) if row is not None else ""
        db.execute("UPDATE {chats} SET name = ?, closed = ?, name_words = ? WHERE chat_id = ?",
                   (event.name, int(bool(event.closed)), shown, str(event.originator_id)))

    @handles(Chat.OrganizationSet)
    def organization_set(self, db: Db, event: Any) -> None:
        db.execute("UPDATE {chats} SET organization_id = ? WHERE chat_id = ?",
                   (text_or_none(event.organization_id), str(event.originator_id)))

    # -- messages: the last one of each chat -----------------------------------------------------------------

    @handles(MessagePage.Posted)
    def posted(self, db: Db, event: Any) -> None:  # a later post of the chat makes it moot (last_seq < ?)
        db.execute_latest(("last", str(event.chat_id)), event.seq,
                          "UPDATE {chats} SET last_seq = ?, last_author = ?, last_on_behalf_of = ?, last_text = ?, "
                          "last_at = ?, last_us = ?, last_deleted = 0 WHERE chat_id = ? AND last_seq < ?",
                          (event.seq, text_or_none(event.author_id), text_or_none(event.on_behalf_of),
                           (event.text or "")[:SNIPPET], iso_or_none(event.posted_at), micros(event.posted_at),
                           str(event.chat_id), event.seq))

    @handles(MessagePage.Edited)
    def edited(self, db: Db, event: Any) -> None:
        db.execute("UPDATE {chats} SET last_text = ? WHERE chat_id = ? AND last_seq = ?",
                   ((event.text or "")[:SNIPPET], str(event.chat_id), event.seq))

    @handles(MessagePage.Deleted)
    def deleted(self, db: Db, event: Any) -> None:
        db.execute("UPDATE {chats} SET last_text = '', last_deleted = 1 WHERE chat_id = ? AND last_seq = ?",
                   (str(event.chat_id), event.seq))

    # -- everyone's list of chats ------------------------------------------------------------------------

    @handles(UserChats.Opened)
    def list_opened(self, db: Db, event: Any) -> None:
        db.execute("INSERT INTO {lists} (list_id, user_id) VALUES (?, ?) ON CONFLICT (list_id) DO NOTHING",
                   (str(event.originator_id), str(event.user_id)))

    @handles(UserChats.Joined)
    def joined(self, db: Db, event: Any) -> None:
        db.execute("INSERT INTO {chat_members} (user_id, chat_id, pos) SELECT user_id, ?, ? FROM {lists} "
                   "WHERE list_id = ? ON CONFLICT (user_id, chat_id) DO NOTHING",
                   (str(event.chat_id), event.originator_version, str(event.originator_id)))

    @handles(UserChats.Left)
    def left(self, db: Db, event: Any) -> None:
        db.execute("DELETE FROM {chat_members} WHERE chat_id = ? AND user_id = "
                   "(SELECT user_id FROM {lists} WHERE list_id = ?)", (str(event.chat_id), str(event.originator_id)))

    # -- read marks ----------------------------------------------------------------------------------------

    @handles(ReadMark.Opened)
    def mark_opened(self, db: Db, event: Any) -> None:
        db.execute("INSERT INTO {read_marks} (mark_id, chat_id, user_id, read_until) VALUES (?, ?, ?, -1) "
                   "ON CONFLICT (mark_id) DO NOTHING",
                   (str(event.originator_id), str(event.chat_id), str(event.user_id)))

    @handles(ReadMark.Read)
    def read(self, db: Db, event: Any) -> None:  # older Read events carry no chat and user: the mark's id does
        db.execute_latest(("mark", str(event.originator_id)), event.seq,  # moved only forward: the furthest wins
                          "UPDATE {read_marks} SET read_until = CASE WHEN read_until < ? THEN ? ELSE read_until END "
                          "WHERE mark_id = ?", (event.seq, event.seq, str(event.originator_id)))

    # -- the organization inbox (CH-5) ---------------------------------------------------------------------

    @handles(OrgRoster.Opened)
    def roster_opened(self, db: Db, event: Any) -> None:
        db.execute("INSERT INTO {rosters} (roster_id, organization_id) VALUES (?, ?) ON CONFLICT (roster_id) "
                   "DO NOTHING", (str(event.originator_id), str(event.organization_id)))

    @handles(OrgRoster.InboxOpened)
    def inbox_opened(self, db: Db, event: Any) -> None:
        db.execute("INSERT INTO {inbox} (organization_id, member_id, chat_id, pos) SELECT organization_id, ?, ?, ? "
                   "FROM {rosters} WHERE roster_id = ? ON CONFLICT (organization_id, member_id) "
                   "DO UPDATE SET chat_id = excluded.chat_id",
                   (str(event.member_id), str(event.chat_id), event.originator_version, str(event.originator_id)))


    # -- the names dialogs and inbox threads are shown by ---------------------------------------------------

    @handles(PersonName.Named, PersonName.Renamed)
    def person_named(self, db: Db, event: Any) -> None:
        shown = spaced_words(" ".join(n for n in (event.last_name, event.first_name, event.patronymic) if n))
        db.execute("INSERT INTO {people} (user_id, name_words) VALUES (?, ?) ON CONFLICT (user_id) "
                   "DO UPDATE SET name_words = excluded.name_words", (str(event.user_id), shown))

    @handles(OrgRoster.Named)
    def organization_named(self, db: Db, event: Any) -> None:
        db.execute("INSERT INTO {organizations} (organization_id, name_words) SELECT organization_id, ? "
                   "FROM {rosters} WHERE roster_id = ? ON CONFLICT (organization_id) "
                   "DO UPDATE SET name_words = excluded.name_words",
                   (spaced_words(event.name), str(event.originator_id)))


# -- queries ----------------------------------------------------------------------------------------------------


def _chat(row: dict) -> dict:
    """The ``ChatView`` fields of a chat row (``member_ids``: all its members)."""
    return {"chat_id": uuid.UUID(row["chat_id"]), "kind": row["kind"],
            "organization_id": uuid.UUID(row["organization_id"]) if row["organization_id"] else None,
            "class_id": uuid.UUID(row["class_id"]) if row["class_id"] else None, "subject": row["subject"],
            "name": row["name"], "closed": bool(row["closed"]), "system": row["kind"] in SYSTEM_KINDS,
            "created_by": row["created_by"], "member_ids": json.loads(row["members"])}


def concealed(chat: dict) -> set[str]:
    """As ``Base.concealed``: in an inbox thread the admins answer as the organization."""
    if chat["kind"] == "inbox":
        return set(chat["member_ids"]) - {str(chat["created_by"])}
    return set()


def members_seen_by(chat: dict, viewer: uuid.UUID) -> list[str]:
    """As ``Base.members_seen_by``: the members the viewer may see."""
    hidden = concealed(chat)
    if str(viewer) in hidden:
        return list(chat["member_ids"])
    return [m for m in chat["member_ids"] if m not in hidden]


def _numbers(cursor: str | None, count: int) -> tuple[int, ...] | None:
    """The numbers a keyset cursor of ours stands for (``paging.invalid_cursor`` for any other)."""
    key = decode_cursor(cursor)
    if key is None:
        return None
    try:
        numbers = tuple(int(part) for part in key.split(":"))
    except ValueError:
        numbers = ()
    if len(numbers) != count:
        raise Invalid("paging.invalid_cursor", "This cursor is not one a page gave; start from the first page.",
                      {"cursor": cursor[:100] if cursor else cursor})
    return numbers


CHAT_COLUMNS = ("c.chat_id, c.kind, c.organization_id, c.class_id, c.subject, c.name, c.closed, c.created_by, "
                "c.members, c.last_seq, c.last_us")


def _shown_names(db: Db) -> tuple[str, str]:
    """The joins and the expression of the words of each chat's name as its viewer (``m.user_id``) is shown it:
    a dialog's other member's name; an inbox thread's writer's (to its admins) or the school's (to the writer:
    the admins answer as the school, CH-5, and their names are never matched); any other chat's own name."""
    c_ordered = 'c.created_by COLLATE "C"' if db.postgres else "c.created_by"  # as m.user_id compares
    joins = ("LEFT JOIN {chat_members} o ON c.kind = 'direct' AND o.chat_id = c.chat_id AND o.user_id <> m.user_id "
             "LEFT JOIN {people} p ON p.user_id = CASE WHEN c.kind = 'direct' THEN o.user_id "
             f"WHEN c.kind = 'inbox' AND {c_ordered} <> m.user_id THEN {c_ordered} END "
             f"LEFT JOIN {{organizations}} g ON c.kind = 'inbox' AND {c_ordered} = m.user_id "
             "AND g.organization_id = c.organization_id ")
    return joins, "COALESCE(p.name_words, g.name_words, c.name_words)"


def chat_list(db: Db, user_id: uuid.UUID, cursor: str | None, limit: int | None, q: str | None = None
              ) -> tuple[list[dict], str | None]:
    """One's chats, newest last message first (by its time; then, and for chats without messages after every
    other, the order they joined one's list), after ``cursor``: ``limit`` of them (all with None) as
    {chat, last_seq, unread}, and the cursor of the next page. With ``q`` only those whose name as one is shown
    it (``_shown_names``) has a word starting with each of its words (case and ё folded)."""
    after = _numbers(cursor, 2)
    named = filter_words(q)  # letters and digits only: nothing LIKE would read as a pattern
    joins, shown = _shown_names(db) if named else ("", "")
    keyset, params = f" AND {shown} LIKE ?" * len(named), [str(user_id), *(f"% {w}%" for w in named)]
    if after is not None:
        keyset += " AND (c.last_us < ? OR (c.last_us = ? AND m.pos > ?))"
        params += [after[0], after[0], after[1]]
    paging = "" if limit is None else " LIMIT ?"
    rows = db.rows(f"SELECT {CHAT_COLUMNS}, m.pos, COALESCE(r.read_until, -1) AS read_until "  # noqa: S608
                   "FROM {chat_members} m JOIN {chats} c ON c.chat_id = m.chat_id "
                   "LEFT JOIN {read_marks} r ON r.chat_id = m.chat_id AND r.user_id = m.user_id " + joins +
                   "WHERE m.user_id = ?" + keyset + " ORDER BY c.last_us DESC, m.pos" + paging,
                   (*params, *([] if limit is None else [limit + 1])))
    shown = rows if limit is None else rows[:limit]
    items = [{"chat": _chat(row), "last_seq": int(row["last_seq"]),
              "unread": max(0, int(row["last_seq"]) - int(row["read_until"]))} for row in shown]
    more = limit is not None and len(rows) > limit
    return items, (encode_cursor(f"{shown[-1]['last_us']}:{shown[-1]['pos']}") if more else None)


def inbox_page(db: Db, organization_id: uuid.UUID, cursor: str | None, limit: int | None
               ) -> tuple[list[dict], str | None]:
    """The organization's inbox threads in the order they opened, after ``cursor``."""
    after = _numbers(cursor, 1)
    paging = "" if limit is None else " LIMIT ?"
    rows = db.rows(f"SELECT {CHAT_COLUMNS}, i.pos FROM {{inbox}} i JOIN {{chats}} c ON c.chat_id = i.chat_id "  # noqa: S608
                   "WHERE i.organization_id = ? AND i.pos > ? ORDER BY i.pos" + paging,
                   (str(organization_id), -1 if after is None else after[0],
                    *([] if limit is None else [limit + 1])))
    shown = rows if limit is None else rows[:limit]
    more = limit is not None and len(rows) > limit
    return [_chat(row) for row in shown], (encode_cursor(str(shown[-1]["pos"])) if more else None)


def shared_chat_ids(db: Db, a: uuid.UUID, b: uuid.UUID) -> list[str]:
    """The chats whose lists hold both people (dialogs and inbox threads aside): CH-1's candidates. The tables
    lag the store, so a caller confirms each on the chat itself (``Base.shared_chats``)."""
    return [r["chat_id"] for r in db.rows(
        "SELECT m.chat_id FROM {chat_members} m JOIN {chat_members} o ON o.chat_id = m.chat_id AND o.user_id = ? "
        "JOIN {chats} c ON c.chat_id = m.chat_id WHERE m.user_id = ? AND c.kind NOT IN ('direct', 'inbox') "
        "ORDER BY m.pos", (str(b), str(a)))]


def school_chats_of(db: Db, a: uuid.UUID, b: uuid.UUID) -> list[dict]:
    """The school and class chats of every school either person's school chats belong to (chat_id,
    organization_id, kind, class_id): where CH-1 looks, with school's word on both people, when messaging's own
    chats do not hold one of them yet (``Chats._shared_by_school``)."""
    return db.rows(
        "SELECT chat_id, organization_id, kind, class_id FROM {chats} WHERE kind IN ('organization', 'class') "
        "AND organization_id IN (SELECT c.organization_id FROM {chat_members} m JOIN {chats} c "
        "ON c.chat_id = m.chat_id WHERE m.user_id IN (?, ?) AND c.kind IN ('organization', 'class')) "
        "ORDER BY organization_id, kind DESC", (str(a), str(b)))


def unnamed(db: Db) -> tuple[list[tuple[str, str]], list[str]]:
    """What the chat list's filter lacks a name for (the people and schools named before messaging kept names):
    (person, a member shown their name) for every dialog's and inbox thread's person without one, and the
    organizations without one."""
    people = db.rows("SELECT DISTINCT o.user_id AS person, m.user_id AS viewer FROM {chats} c "
                     "JOIN {chat_members} m ON m.chat_id = c.chat_id "
                     "JOIN {chat_members} o ON o.chat_id = c.chat_id AND o.user_id <> m.user_id "
                     "WHERE (c.kind = 'direct' OR (c.kind = 'inbox' AND o.user_id = c.created_by)) "
                     "AND NOT EXISTS (SELECT 1 FROM {people} p WHERE p.user_id = o.user_id) ORDER BY 1, 2")
    organizations = db.rows("SELECT DISTINCT r.organization_id FROM {rosters} r WHERE NOT EXISTS "
                            "(SELECT 1 FROM {organizations} g WHERE g.organization_id = r.organization_id) ORDER BY 1")
    return [(r["person"], r["viewer"]) for r in people], [r["organization_id"] for r in organizations]


def readers_page(db: Db, chat_id: uuid.UUID, seq: int, author: str | None, hidden: set[str], cursor: str | None,
                 limit: int) -> dict:
    """Who of the chat's members (its author aside) has read up to ``seq`` or further, by user id; the members in
    ``hidden`` show as one reader without an id (``""``, first). A page of ``limit`` after ``cursor``."""
    after = decode_cursor(cursor)
    base = ("FROM {read_marks} r JOIN {chat_members} m ON m.chat_id = r.chat_id AND m.user_id = r.user_id "
            "WHERE r.chat_id = ? AND r.read_until >= ? AND r.user_id <> ?")
    params = [str(chat_id), seq, author or ""]
    if hidden:  # an inbox thread seen by the person who wrote: the organization and that person at most
        found = [row["user_id"] for row in db.rows("SELECT r.user_id " + base, params)]
        everyone = sorted({"" if m in hidden else m for m in found})
        rest = everyone if after is None else [k for k in everyone if k > after]
        count, page, more = len(everyone), rest[:limit], len(rest) > limit
    else:
        count = int(db.one("SELECT COUNT(*) AS n " + base, params)["n"])
        rows = db.rows("SELECT r.user_id " + base + " AND r.user_id > ? ORDER BY r.user_id LIMIT ?",
                       (*params, after if after is not None else "", limit + 1))
        page, more = [row["user_id"] for row in rows[:limit]], len(rows) > limit
    return {"items": [{"user_id": k or None} for k in page], "count": count,
            "next_cursor": encode_cursor(page[-1]) if more else None}


def main(argv: list[str]) -> int:
    """``python -m messaging.readmodel rebuild``: messaging's read models from scratch
    (``python -m shared.projection rebuild messaging``)."""
    from shared.projection import rebuild_command

    return rebuild_command(argv, "messaging.readmodel", "messaging")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
