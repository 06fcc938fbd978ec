"""Message search (issue #17): in a chat and across one's chats, by words, from tables a projection keeps from
messaging's notification log (``shared.projection``) in messaging's own database.

- ``search_messages``: one row per message not deleted: its chat and seq, author (and on whose behalf), its text as
  last edited, its poll's question and its attachments' file names (all three searched), when it was posted
  (``posted_us``, microseconds: the order) and edited. An edit replaces the text searched; a deletion removes the
  row. Full text as ``shared.textsearch`` does it: PostgreSQL a ``tsvector`` (Russian stems and plain words, GIN
  index); SQLite (and memory stores) an FTS5 table ``search_words`` (rowid: the message row's id) of the words and
  their Snowball stems. Every word of the query must match, as the start of a word or of its stem ("уроки" finds
  "урок", "контрольной" finds "контрольная").
- ``search_members``: who is a member of which chat NOW (the chat's own events: created, members changed). A person
  finds only messages of their chats, the whole history of each (as the history endpoint shows it: the domain has
  no rule hiding history from later members); removed, they find nothing of it any more.
- ``search_chats``: each chat's name, kind and organization (a hit names its chat; CH-5 hides who answered on
  behalf of an organization from all but its admins).

Results are newest first (posted time, then chat id, then seq), paged by that key (keyset: no gaps, no doubles,
whatever is posted meanwhile). On PostgreSQL a page reads each of one's chats newest first (an index by chat and
time), in windows, until a page of hits is sure to be the newest: a common word costs a few rows a chat, whatever
else the store holds; a word rare in one's chats is found by its GIN index (``search_page``).
``python -m messaging.search rebuild`` rebuilds these tables from scratch
(``python -m shared.projection rebuild messaging`` rebuilds every read model of messaging).
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

from messaging.domain import Chat, MessagePage
from messaging.readmodel import micros
from shared.errors import Invalid
from shared.paging import decode_cursor, encode_cursor
from shared.projection import Db, Projection, handles, iso_or_none, text_or_none
from shared.textsearch import (
    DOCUMENT_SQL,
    FTS5_TOKENIZE,
    document,
    document_params,
    fts_match,
    kept_terms,
    tsquery,
    words,
)


def searched_text(text: str, poll_question: str | None, names: list[str]) -> str:
    return " ".join(filter(None, [text, poll_question, *names]))


class SearchProjection(Projection):
    name = "search"
    version = 6  # 3: the search column holds our words as lexemes (shared.textsearch); 4: no index by time; 5: GIN
    # without a pending list; 6: the same terms on every store (shared.textsearch: our stems and stop words, FTS5
    # splitting nothing of its own)
    tables = ("search_messages", "search_words", "search_members", "search_chats")

    def create_tables(self, db: Db) -> None:
        ordered = ' COLLATE "C"' if db.postgres else ""
        key, search = ("", ", search tsvector NOT NULL") if db.postgres else ("id INTEGER PRIMARY KEY, ", "")
        db.execute(f"CREATE TABLE {{search_messages}} ({key}chat_id TEXT{ordered} NOT NULL, seq BIGINT NOT NULL, "
                   "message_id TEXT NOT NULL, author_id TEXT, on_behalf_of TEXT, text TEXT NOT NULL, "
                   "poll_question TEXT, attachment_names TEXT NOT NULL, posted_us BIGINT NOT NULL, "
                   f"posted_at TEXT NOT NULL, edited_at TEXT{search}, "
                   + ("PRIMARY KEY (chat_id, seq))" if db.postgres else "UNIQUE (chat_id, seq))"))
        # Each chat's rows newest first: PostgreSQL's search reads them chat by chat (search_page).
        db.execute("CREATE INDEX rm_search_messages_order ON {search_messages} (chat_id, posted_us, seq)")
        if db.postgres:
            # Each message goes into the GIN as it is written (rebuilding 40,000 messages: 12.1 s instead of 9.3 s),
            # not to its pending list first: every search scanned that list whole until a vacuum emptied it (after
            # that rebuild 10,812 entries: a word's GIN scan 4.5 ms instead of 1.7 ms).
            db.execute("CREATE INDEX rm_search_messages_words ON {search_messages} USING GIN (search) "
                       "WITH (fastupdate = off)")
        else:
            db.execute(f"CREATE VIRTUAL TABLE {{search_words}} USING fts5(body, {FTS5_TOKENIZE})")
        db.execute(f"CREATE TABLE {{search_members}} (user_id TEXT NOT NULL, chat_id TEXT{ordered} NOT NULL, "
                   "PRIMARY KEY (user_id, chat_id))")
        db.execute("CREATE INDEX rm_search_members_chat ON {search_members} (chat_id)")
        db.execute("CREATE TABLE {search_chats} (chat_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, "
                   "organization_id TEXT)")

    # -- chats and who is in them now ------------------------------------------------------------------

    @handles(Chat.Created)
    def chat_created(self, db: Db, event: Any) -> None:
        chat_id = str(event.originator_id)
        db.execute("INSERT INTO {search_chats} (chat_id, kind, name, organization_id) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (chat_id) DO NOTHING",
                   (chat_id, event.kind, event.name, text_or_none(event.organization_id)))
        self._join(db, chat_id, list(dict.fromkeys(event.member_ids)))

    @staticmethod
    def _join(db: Db, chat_id: str, member_ids: list[str]) -> None:
        for user_id in member_ids:
            db.execute("INSERT INTO {search_members} (user_id, chat_id) VALUES (?, ?) "
                       "ON CONFLICT (user_id, chat_id) DO NOTHING", (str(user_id), chat_id))

    @handles(Chat.MembersChanged)
    def members_changed(self, db: Db, event: Any) -> None:
        chat_id = str(event.originator_id)
        for user_id in event.removed:
            db.execute("DELETE FROM {search_members} WHERE user_id = ? AND chat_id = ?", (str(user_id), chat_id))
        self._join(db, chat_id, list(event.added))

    @handles(Chat.Renamed)
    def renamed(self, db: Db, event: Any) -> None:
        db.execute("UPDATE {search_chats} SET name = ? WHERE chat_id = ?", (event.name, str(event.originator_id)))

    @handles(Chat.OrganizationSet)
    def organization_set(self, db: Db, event: Any) -> None:
        db.execute("UPDATE {search_chats} SET organization_id = ? WHERE chat_id = ?",
                   (text_or_none(event.organization_id), str(event.originator_id)))

    # -- messages ----------------------------------------------------------------------------------------

    @handles(MessagePage.Posted)
    def posted(self, db: Db, event: Any) -> None:
        chat_id, text = str(event.chat_id), event.text or ""
        poll = getattr(event, "poll", None) or None
        question = poll.get("question") if poll else None
        names = [a.get("file_name") or "" for a in getattr(event, "attachments", None) or []]
        params = (chat_id, event.seq, str(event.message_id), text_or_none(event.author_id),
                  text_or_none(event.on_behalf_of), text,
                  question, json.dumps(names, ensure_ascii=False), micros(event.posted_at),
                  iso_or_none(event.posted_at), *self._document(db, searched_text(text, question, names)))
        head = ("INSERT INTO {search_messages} (chat_id, seq, message_id, author_id, on_behalf_of, text, "
                "poll_question, attachment_names, posted_us, posted_at, edited_at"
                + (", search" if db.postgres else "") + ") VALUES ")
        row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL" + (f", {DOCUMENT_SQL}" if db.postgres else "") + ")"
        tail = " ON CONFLICT (chat_id, seq) DO NOTHING"
        if db.postgres:  # a burst's rows in one INSERT (the next other statement or the batch's end writes them)
            db.insert_later(head, row, tail, params)
        else:  # the words' row takes the message row's id: written at once
            db.execute(head + row + tail, params)
            db.execute("INSERT INTO {search_words} (rowid, body) SELECT id, ? FROM {search_messages} "
                       "WHERE chat_id = ? AND seq = ?",
                       (document(searched_text(text, question, names)), chat_id, event.seq))

    @staticmethod
    def _document(db: Db, text: str) -> tuple[Any, ...]:
        return document_params(text) if db.postgres else ()

    @handles(MessagePage.Edited)
    def edited(self, db: Db, event: Any) -> None:
        chat_id, text = str(event.chat_id), event.text or ""
        row = db.one("SELECT poll_question, attachment_names" + ("" if db.postgres else ", id")
                     + " FROM {search_messages} WHERE chat_id = ? AND seq = ?", (chat_id, event.seq))
        if row is None:
            return
        body = searched_text(text, row["poll_question"], json.loads(row["attachment_names"]))
        if db.postgres:
            db.execute(f"UPDATE {{search_messages}} SET text = ?, edited_at = ?, search = {DOCUMENT_SQL} "
                       "WHERE chat_id = ? AND seq = ?",
                       (text, iso_or_none(event.edited_at), *self._document(db, body), chat_id, event.seq))
        else:
            db.execute("UPDATE {search_messages} SET text = ?, edited_at = ? WHERE id = ?",
                       (text, iso_or_none(event.edited_at), row["id"]))
            db.execute("DELETE FROM {search_words} WHERE rowid = ?", (row["id"],))
            db.execute("INSERT INTO {search_words} (rowid, body) VALUES (?, ?)", (row["id"], document(body)))

    @handles(MessagePage.Deleted)
    def deleted(self, db: Db, event: Any) -> None:
        chat_id = str(event.chat_id)
        if not db.postgres:
            db.execute("DELETE FROM {search_words} WHERE rowid IN (SELECT id FROM {search_messages} "
                       "WHERE chat_id = ? AND seq = ?)", (chat_id, event.seq))
        db.execute("DELETE FROM {search_messages} WHERE chat_id = ? AND seq = ?", (chat_id, event.seq))


# -- the query ----------------------------------------------------------------------------------------------

# PostgreSQL: each of one's chats is read newest first (its index by (chat, posted, seq)), a window of rows at a time,
# each row checked against the words, a chat's window stopping at a page's worth of hits; the page stands once every
# chat's unread rows are older than a page of hits. A common word's page is a few hundred rows read, whatever else
# the store holds (others' chats, one's old history). Windows grow while the hits come at a rate that fills the page
# within READ_MAX rows; a rarer word's hits come from its GIN index (all of them in one's chats, sorted).
WINDOW_ROWS = 4096  # the first windows: this many rows over one's chats (WINDOW_MIN..WINDOW_MAX a chat)
WINDOW_MIN, WINDOW_MAX = 32, 1024
READ_MAX = 16384  # rows read by the windows at most for a page (then the GIN)
# A hit the GIN gives costs about what this many rows read in windows cost (40,000 rows on PostgreSQL 15: the GIN's
# page of a word of 94 hits 0.9 ms, of 474 hits 4.5 ms, of 2,640 hits 6.8 ms; the windows' page of 1,010 rows read
# 1.6 ms).
GIN_HIT_ROWS = 4
POSTED_MAX = SEQ_MAX = 2**63 - 1
SEQ_MIN = -(2**63)
_COLUMNS = ("m.chat_id, m.seq, m.message_id, m.author_id, m.on_behalf_of, m.text, m.poll_question, "
            "m.attachment_names, m.posted_us, m.posted_at, m.edited_at")

Key = tuple[int, str, int]


def _after(cursor: str | None) -> Key | None:
    key = decode_cursor(cursor)
    if key is None:
        return None
    try:
        posted_us, chat_id, seq = key.split("|")
        return int(posted_us), str(uuid.UUID(chat_id)), int(seq)
    except ValueError:
        raise Invalid("paging.invalid_cursor", "This cursor is not one a page gave; start from the first page.",
                      {"cursor": cursor[:100] if cursor else cursor}) from None


def _key(row: dict) -> Key:
    """A row's place in the results (newest first is the largest key; chat ids compare as bytes, as COLLATE "C")."""
    return int(row["posted_us"]), row["chat_id"], int(row["seq"])


def search_page(db: Db, user_id: uuid.UUID, text: str, chat_id: uuid.UUID | None, cursor: str | None,
                limit: int) -> tuple[list[dict], str | None]:
    """Messages with every word of ``text`` in the chats ``user_id`` is a member of now (or in ``chat_id`` only:
    the caller has checked the person may read it), newest first after ``cursor``: ``limit`` rows and the cursor
    of the next page when more follow."""
    terms = words(text)
    if not terms:
        raise Invalid("search.no_words", "Type a word to search for: letters or digits.")
    terms = kept_terms(terms)
    after = _after(cursor)
    if db.postgres:
        rows = _by_windows(db, user_id, terms, chat_id, after, limit + 1)
    else:
        rows = _every_hit(db, user_id, terms, chat_id, after, limit + 1)
    items = [{"chat_id": row["chat_id"], "chat_name": row["chat_name"], "chat_kind": row["chat_kind"],
              "organization_id": row["organization_id"], "seq": int(row["seq"]), "message_id": row["message_id"],
              "author_id": row["author_id"], "on_behalf_of": row["on_behalf_of"], "text": row["text"],
              "poll_question": row["poll_question"], "attachment_names": json.loads(row["attachment_names"]),
              "posted_at": row["posted_at"], "edited_at": row["edited_at"]} for row in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return items, (encode_cursor(f"{last['posted_us']}|{last['chat_id']}|{last['seq']}") if last else None)


def _by_windows(db: Db, user_id: uuid.UUID, terms: list[str], chat_id: uuid.UUID | None, after: Key | None,
                wanted: int) -> list[dict]:
    """PostgreSQL: the ``wanted`` newest hits after ``after``, read chat by chat newest first in windows (by the GIN
    index when the hits come too rarely for that).

    Each chat's window gives its hits in order and, when it ends before ``wanted`` hits, its last row (``n`` is the
    window's size): every row of the chat unread is older than that one. A hit newer than every such last row is
    final; the page stands when ``wanted`` hits are. Otherwise the chats whose unread rows could still hold a hit
    of the page are read further, in bigger windows."""
    query, matched = tsquery(terms)
    # The first round: one's chats of now (their number sizes the windows), below the cursor's key (posted, chat,
    # seq) within each chat (posted, seq); the next ones: the open chats below their last rows read.
    if chat_id is None:
        source = ("(SELECT greatest(?, least(?, ? / greatest(count(*), 1))) AS size FROM {search_members} "
                  "WHERE user_id = ?) k CROSS JOIN {search_members} p")
        params: list[Any] = [WINDOW_MIN, WINDOW_MAX, WINDOW_ROWS, str(user_id)]
        where, last = " WHERE p.user_id = ?", [str(user_id)]
    else:
        source = "(SELECT CAST(? AS bigint) AS size) k CROSS JOIN (SELECT CAST(? AS text) COLLATE \"C\" AS chat_id) p"
        params, where, last = [WINDOW_MAX, str(chat_id)], "", []
    bound, bounds = "", []
    if after is not None:
        bound = " AND (m.posted_us, m.seq) < (?, CASE WHEN p.chat_id > ? THEN ? WHEN p.chat_id = ? THEN ? ELSE ? END)"
        bounds = [after[0], after[1], SEQ_MIN, after[1], after[2], SEQ_MAX]
    edges: dict[str, tuple[int, int]] = {}  # the open chats: where their unread rows begin
    reading: dict[str, tuple[int, int]] = {}  # the chats read in this round
    hits: list[dict] = []
    read = found = window = stored = 0
    while True:
        rows = db.rows(
            "SELECT w.*, k.size, c.name AS chat_name, c.kind AS chat_kind, c.organization_id, (SELECT reltuples "
            "FROM pg_class WHERE oid = '{search_messages}'::regclass) AS stored FROM " + source
            + " CROSS JOIN LATERAL (SELECT x.* FROM (SELECT y.*, row_number() OVER () AS n FROM ("
            f"SELECT {_COLUMNS}, m.search @@ (SELECT {query}) AS hit "  # the words' query made once (an InitPlan)
            "FROM {search_messages} m WHERE m.chat_id = p.chat_id" + bound + " ORDER BY m.chat_id DESC, "
            "m.posted_us DESC, m.seq DESC LIMIT k.size) y) x WHERE x.hit OR x.n = k.size LIMIT ?) w "
            "LEFT JOIN {search_chats} c ON c.chat_id = w.chat_id" + where,
            (*params, *matched, *bounds, wanted, *last))
        if rows:
            window, stored = int(rows[0]["size"]), max(stored, int(rows[0]["stored"]))  # (-1: not analyzed yet)
        counts: dict[str, int] = {}
        ends: dict[str, dict] = {}
        for row in rows:
            if row["hit"]:
                hits.append(row)
                counts[row["chat_id"]] = counts.get(row["chat_id"], 0) + 1
            if row["n"] == row["size"]:
                ends[row["chat_id"]] = row
        found += sum(counts.values())
        read += window * len(ends) + len(rows) - len(ends)  # about (a chat that stopped early read more than it gave)
        for chat in reading:
            edges.pop(chat)
        for chat, row in ends.items():  # open while its window ended before a page of hits: older rows unread
            if counts.get(chat, 0) < wanted:
                edges[chat] = (int(row["posted_us"]), int(row["seq"]))
        hits.sort(key=_key, reverse=True)
        del hits[wanted:]
        if len(hits) == wanted:  # a chat whose unread rows are all older than the page's last hit: read enough
            edges = {chat: edge for chat, edge in edges.items() if (edge[0], chat, edge[1]) > _key(hits[-1])}
        if not edges:
            return hits
        # The hits newer than every open chat's unread rows are final. Read on while the hits come often enough to
        # fill the page within READ_MAX rows, and the GIN would give more of them than that (at the rate found, over
        # the whole table) costs; the chats whose unread rows are the newest first (a quarter of them).
        horizon = max((edge[0], chat, edge[1]) for chat, edge in edges.items())
        need = wanted - sum(1 for hit in hits if _key(hit) >= horizon)
        rate = max(found, 1) / read
        if read + need / rate > READ_MAX or GIN_HIT_ROWS * rate * max(stored, read) < need / rate:
            return _by_index(db, user_id, terms, list(edges), after, wanted, hits)
        newest = sorted(edges, key=lambda chat: (edges[chat][0], chat, edges[chat][1]), reverse=True)
        reading = {chat: edges[chat] for chat in newest[:-(-len(newest) // 4)]}
        window = min(window * 4, (READ_MAX - read) // len(reading))
        if window < WINDOW_MIN:
            return _by_index(db, user_id, terms, list(edges), after, wanted, hits)
        source = ("(SELECT CAST(? AS bigint) AS size) k CROSS JOIN (SELECT u.chat_id COLLATE \"C\" AS chat_id, "
                  "u.posted_us, u.seq FROM unnest(?::text[], ?::bigint[], ?::bigint[]) AS u(chat_id, posted_us, "
                  "seq)) p")
        params = [window, list(reading), [e[0] for e in reading.values()], [e[1] for e in reading.values()]]
        bound, bounds, where, last = " AND (m.posted_us, m.seq) < (p.posted_us, p.seq)", [], "", []


def _by_index(db: Db, user_id: uuid.UUID, terms: list[str], chats: list[str], after: Key | None, wanted: int,
              hits: list[dict]) -> list[dict]:
    """PostgreSQL: the ``wanted`` newest of the windows' ``hits`` and the GIN's hits in ``chats`` (those the windows
    left open; the others' hits that can make the page are among ``hits`` already)."""
    found = {(row["chat_id"], row["seq"]): row for row in _every_hit(db, user_id, terms, None, after, wanted, chats)}
    for row in hits:
        found.setdefault((row["chat_id"], row["seq"]), row)
    return sorted(found.values(), key=_key, reverse=True)[:wanted]


def _every_hit(db: Db, user_id: uuid.UUID, terms: list[str], chat_id: uuid.UUID | None,
               after: tuple[int, str, int] | None, wanted: int, chats: list[str] | None = None) -> list[dict]:
    """Every hit in one's chats (or ``chats``) by the words' index (GIN or FTS5), sorted, the ``wanted`` newest."""
    conditions: list[str] = []
    params: list[Any] = []
    if chats is not None:  # a list, not a join: a join made the GIN's scan again for every chat (10 chats: 55 ms)
        conditions.append("m.chat_id = ANY(?::text[])")
        params.append(chats)
    elif chat_id is not None:
        conditions.append("m.chat_id = ?")
        params.append(str(chat_id))
    else:
        conditions.append("m.chat_id IN (SELECT p.chat_id FROM {search_members} p WHERE p.user_id = ?)")
        params.append(str(user_id))
    if db.postgres:
        # The words as a value made once (an InitPlan), unseen by the planner: its estimate of our prefix queries adds
        # up each word's stem and forms apart (a message holds both) and took words rare in one's chats for common
        # ones, reading the whole table (75 ms for "кабинет 12" over 40,000 rows) or an index of it with the words as
        # a filter. Unseen, a word is taken for a rare one (0.5% of rows), as the windows found it: the GIN's hits.
        query, matched = tsquery(terms)
        conditions.append(f"m.search @@ (SELECT {query})")
        params += matched
    else:
        conditions.append("m.id IN (SELECT rowid FROM {search_words} WHERE {search_words} MATCH ?)")
        params.append(fts_match(terms))
    if after is not None:
        conditions.append("(m.posted_us < ? OR (m.posted_us = ? AND (m.chat_id < ? OR (m.chat_id = ? AND m.seq < ?))))")
        params += [after[0], after[0], after[1], after[1], after[2]]
    return db.rows(f"SELECT {_COLUMNS}, c.name AS chat_name, c.kind AS chat_kind, c.organization_id "
                   "FROM {search_messages} m LEFT JOIN {search_chats} c ON c.chat_id = m.chat_id WHERE "
                   + " AND ".join(conditions) + " ORDER BY m.posted_us DESC, m.chat_id DESC, m.seq DESC LIMIT ?",
                   (*params, wanted))



def main(argv: list[str]) -> int:
    """``python -m messaging.search rebuild``: the message search tables from scratch (messaging's
    other read models are left as they are)."""
    from shared.projection import rebuild_command

    return rebuild_command(argv, "messaging.search", "messaging", "search")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
