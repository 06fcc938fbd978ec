"""Issue #17, "live chat delivery": a catch-up of a burst of posts into one chat writes the chat's last message once
and each author's read mark once (shared.projection ``Db.execute_latest``), not once a post, and the tables hold what
applying every post one by one gave (CH-4), on every store."""

from __future__ import annotations

import pytest

from messaging.application import MessagingApplication
from shared.contracts.api.messaging import PostMessage
from shared.projection import Db
from shared.store import make_application

from .test_application import School

pytestmark = pytest.mark.integration


def test_a_burst_into_one_chat_updates_its_row_once_and_each_mark_once_CH_4(store_settings, monkeypatch):
    app = make_application(MessagingApplication, "messaging", create_table=True, config=store_settings)
    school = School(app)
    five = school.klass()
    authors = [school.join("student", five) for _ in range(4)]
    (chat,) = school.chat_of("class", authors[0])
    for n, author in enumerate(authors):  # each has a read mark (its opening is another write: it flushes)
        app.post(author, PostMessage(chat.id, f"before {n}"))
    app.read_model.catch_up()
    for n in range(20):
        app.post(authors[n % 4], PostMessage(chat.id, f"m{n}"))
    app.edit(authors[3], chat.id, 23, "m19, edited")  # after the burst, in the same catch-up: kept in order
    ran: list[str] = []
    sql = Db.sql
    monkeypatch.setattr(Db, "sql", lambda self, text: (ran.append(text), sql(self, text))[1])
    app.read_model.catch_up()
    last_updates = [t for t in ran if t.startswith("UPDATE {chats} SET last_seq")]
    mark_updates = [t for t in ran if t.startswith("UPDATE {read_marks}")]
    assert len(last_updates) == 1, len(last_updates)  # 20 before
    assert len(mark_updates) == 4, len(mark_updates)  # 20 before: one an author
    with app.read_model.reading() as db:
        row = db.one("SELECT last_seq, last_text, last_author FROM {chats} WHERE chat_id = ?", (str(chat.id),))
        marks = {r["user_id"]: r["read_until"] for r in db.rows(
            "SELECT user_id, read_until FROM {read_marks} WHERE chat_id = ?", (str(chat.id),))}
    assert (row["last_seq"], row["last_text"], row["last_author"]) == (23, "m19, edited", str(authors[3]))
    assert {a: marks[a] for a in map(str, authors)} == {str(a): 20 + n for n, a in enumerate(authors)}
    items, _ = app.chat_list(authors[1])
    assert [i["unread"] for i in items if str(i["chat"]["chat_id"]) == str(chat.id)] == [23 - 21]


def test_a_burst_into_one_chat_is_one_insert_into_the_search_rows_on_postgres(durable_store_settings, monkeypatch):
    """PostgreSQL: a catch-up's message rows for search in one multi-row INSERT (SQLite's words table takes each
    row's id: one at a time), each row as a post one by one wrote it, an edit in the same batch applied after."""
    app = make_application(MessagingApplication, "messaging", create_table=True, config=durable_store_settings)
    school = School(app)
    five = school.klass()
    authors = [school.join("student", five) for _ in range(4)]
    (chat,) = school.chat_of("class", authors[0])
    app.search_model.catch_up()
    for n in range(20):
        app.post(authors[n % 4], PostMessage(chat.id, f"слово{n} привет"))
    app.edit(authors[1], chat.id, 5, "исправлено")
    ran: list[str] = []
    sql = Db.sql
    monkeypatch.setattr(Db, "sql", lambda self, text: (ran.append(text), sql(self, text))[1])
    app.search_model.catch_up()
    inserts = [t for t in ran if t.startswith("INSERT INTO {search_messages}")]
    assert len(inserts) == (1 if app.search_model.backend.dialect == "postgres" else 20), len(inserts)
    with app.search_model.reading() as db:
        rows = db.rows("SELECT seq, text, author_id, edited_at FROM {search_messages} WHERE chat_id = ? ORDER BY seq",
                       (str(chat.id),))
    assert [(r["seq"], r["text"], r["author_id"]) for r in rows] == [
        (n, "исправлено" if n == 5 else f"слово{n} привет", str(authors[n % 4])) for n in range(20)]
    assert [r["seq"] for r in rows if r["edited_at"]] == [5]
