"""Message search (issue #17): by words in one chat or across one's chats, from the tables a projection keeps of
messaging's notification log (messaging.search, shared.projection), against memory, SQLite and PostgreSQL. Russian
word forms on every store; an edit re-indexes, a deletion hides; only one's chats of now; newest first, paged
without gaps; rebuilt from scratch equals kept up event by event."""

from __future__ import annotations

import uuid

import pytest
from marshmallow import ValidationError

from messaging import search
from messaging.application import MessagingApplication
from messaging.readmodel import micros
from messaging.search import SearchProjection
from messaging.search import main as search_main
from messaging.seed import sentence, write_history
from shared.config import settings
from shared.contracts.api.messaging import CreateChat, MessageSearchInput, PostMessage, SearchMessages, UpdateChat
from shared.errors import Forbidden, Invalid
from shared.projection import Db, ReadModel
from shared.projection import main as projection_main
from shared.store import make_application
from shared.store.testing import use_store_settings

from .test_application import School

pytestmark = pytest.mark.integration


@pytest.fixture
def school(store_settings) -> School:
    return School(make_application(MessagingApplication, "messaging", create_table=True, config=store_settings))


def find(school: School, user: uuid.UUID, q: str, chat_id: uuid.UUID | None = None, limit: int = 50) -> list[str]:
    items, _ = school.app.search_messages(user, SearchMessages(q, chat_id, None, limit))
    return [item["text"] for item in items]


def dump(model: ReadModel) -> dict[str, list]:
    """Every row of every table of the search read model (the FTS5 rows with their rowids), in a stable order."""
    with model.reading() as db:
        tables = {t: db.rows("SELECT rowid, body FROM {search_words}" if t == "search_words"
                             else f"SELECT * FROM {{{t}}}")
                  for t in model.projection.tables if not (db.postgres and t == "search_words")}
    return {t: sorted(repr(sorted(r.items())) for r in rows) for t, rows in tables.items()}


def manual_chat(school: School, creator: uuid.UUID, members: list[uuid.UUID], name: str = "Кружок"):
    return school.app.create_chat(creator, CreateChat(school.org, name, members, closed=False))


def test_word_forms_find_each_other_on_every_store(school):
    five = school.klass()
    a, b = school.join("student", five), school.join("student", five)
    (chat,) = school.chat_of("class", a)
    school.app.post(a, PostMessage(chat.id, "Завтра урок математики в 9:00"))
    school.app.post(b, PostMessage(chat.id, "Контрольная работа по физике в пятницу"))
    school.app.post(b, PostMessage(chat.id, "Ёлка в актовом зале"))
    assert find(school, a, "уроки") == ["Завтра урок математики в 9:00"]
    assert find(school, a, "контрольной") == ["Контрольная работа по физике в пятницу"]
    assert find(school, a, "МАТЕМ") == ["Завтра урок математики в 9:00"]  # the start of a word, any case
    assert find(school, a, "елка") == ["Ёлка в актовом зале"]  # ё is е
    assert find(school, a, "контрольная пятницу") == ["Контрольная работа по физике в пятницу"]  # every word
    assert find(school, a, "контрольная урок") == []
    assert find(school, a, "в пятницу") == ["Контрольная работа по физике в пятницу"]  # a stop word is no filter
    assert find(school, a, "9") == ["Завтра урок математики в 9:00"]


def test_numbers_joined_by_hyphens_and_words_of_digits_and_letters_are_found_as_typed(school):
    """PostgreSQL's parser read "3-14" as 3 and the number -14, and a query "1e5a00" as a phrase of two words: on
    PostgreSQL neither was found as typed. Both sides are now our words, on every store."""
    five = school.klass()
    a = school.join("student", five)
    (chat,) = school.chat_of("class", a)
    school.app.post(a, PostMessage(chat.id, "Консультация в кабинете 3-14"))
    school.app.post(a, PostMessage(chat.id, "Код доступа 1e5a00"))
    assert find(school, a, "14") == ["Консультация в кабинете 3-14"]
    assert find(school, a, "кабинет 3") == ["Консультация в кабинете 3-14"]
    assert find(school, a, "1e5a00") == ["Код доступа 1e5a00"]
    assert find(school, a, "1e5a") == ["Код доступа 1e5a00"]


def test_every_store_finds_the_same_messages_for_the_same_words(school):
    """One word splitter, stemmer and stop list (shared.textsearch) on every store. SQLite's FTS5 read the text
    itself (й as и: "иод" found "йодом", "naive" found "naïve"), asked a stop word as a word ("для", "the"), took a
    lone letter for none and left English words unstemmed ("lessons" missed "lesson"): PostgreSQL did none of it."""
    five = school.klass()
    a = school.join("student", five)
    (chat,) = school.chat_of("class", a)
    for text in ("Опыт с йодом", "Naïve art club", "Extra lesson today", "Контрольная работа по физике",
                 "Вариант б на доске"):
        school.app.post(a, PostMessage(chat.id, text))
    assert find(school, a, "йод") == ["Опыт с йодом"] and find(school, a, "иод") == []
    assert find(school, a, "naïve") == ["Naïve art club"] and find(school, a, "naive") == []
    assert find(school, a, "lessons") == ["Extra lesson today"]  # an English word's stem
    assert find(school, a, "контрольная для") == ["Контрольная работа по физике"]  # a stop word is no filter
    assert find(school, a, "the lesson") == ["Extra lesson today"]  # nor an English one
    assert find(school, a, "вариант б") == ["Вариант б на доске"]
    assert find(school, a, "работа б") == []  # a lone letter that is no stop word is a word to find
    assert find(school, a, "для") == []  # a query of stop words alone asks them


def test_a_polls_question_and_file_names_are_found_too(school):
    five = school.klass()
    a = school.join("student", five)
    (chat,) = school.chat_of("class", a)
    school.app.post(a, PostMessage(chat.id, "", poll={"question": "Когда экскурсия?", "options": ["Пн", "Вт"]}))
    photo = school.app.upload_attachment(a, chat.id, "file", "Расписание экзаменов.pdf", "application/pdf", 2048,
                                         "ab" * 32)
    school.app.post(a, PostMessage(chat.id, "", attachment_ids=[photo.id]))
    (poll,), _ = school.app.search_messages(a, SearchMessages("экскурсии"))
    assert (poll["poll_question"], poll["text"], poll["attachment_names"]) == ("Когда экскурсия?", "", [])
    (file,), _ = school.app.search_messages(a, SearchMessages("экзамен"))
    assert file["attachment_names"] == ["Расписание экзаменов.pdf"]


def test_an_edit_replaces_the_text_found_and_a_deletion_hides_the_message(school):
    five = school.klass()
    a, b = school.join("student", five), school.join("student", five)
    (chat,) = school.chat_of("class", a)
    sent = school.app.post(a, PostMessage(chat.id, "Домашнее задание: упражнение 5"))
    assert find(school, b, "домашнее") == ["Домашнее задание: упражнение 5"]
    school.app.edit(a, chat.id, sent["seq"], "Сочинение к понедельнику")
    assert find(school, b, "домашнее") == []
    (found,), _ = school.app.search_messages(b, SearchMessages("сочинения"))
    assert (found["seq"], found["text"], found["chat_id"]) == (sent["seq"], "Сочинение к понедельнику", str(chat.id))
    assert found["edited_at"] is not None and found["posted_at"] == sent["posted_at"]
    school.app.delete(a, chat.id, sent["seq"])
    assert find(school, b, "сочинение") == []
    assert find(school, a, "сочинение", chat.id) == []


def test_only_members_of_now_find_a_chats_messages_never_another_schools(school):
    five = school.klass()
    creator, member, stranger = (school.join("teacher"), school.join("student", five), school.join("student", five))
    chat = manual_chat(school, creator, [member])
    school.app.post(creator, PostMessage(chat.id, "Секретная олимпиада по химии"))
    assert find(school, member, "олимпиада") == ["Секретная олимпиада по химии"]
    assert find(school, stranger, "олимпиада") == []  # same school, not in the chat
    with pytest.raises(Forbidden):
        find(school, stranger, "олимпиада", chat.id)  # as for the chat's history
    school.app.remove_member(creator, chat.id, member)
    assert find(school, member, "олимпиада") == []  # removed: nothing of it any more
    with pytest.raises(Forbidden):
        find(school, member, "олимпиада", chat.id)
    # Another school in the same store: its people find their own messages only, and ours find none of theirs.
    other = School(school.app)
    their_pupil = other.join("student", other.klass())
    (their_chat,) = other.chat_of("class", their_pupil)
    school.app.post(their_pupil, PostMessage(their_chat.id, "Олимпиада у нас тоже"))
    assert find(school, their_pupil, "олимпиада") == ["Олимпиада у нас тоже"]
    assert find(school, creator, "олимпиада") == ["Секретная олимпиада по химии"]
    assert find(school, member, "олимпиада") == []


def test_who_answered_for_the_organization_stays_hidden_from_all_but_its_admins_CH_5(school):
    admin = school.join("admin")
    pupil = school.join("student", school.klass())
    thread = school.app.inbox_thread(pupil, school.org)
    school.app.post(pupil, PostMessage(thread.id, "Когда каникулы?"))
    school.app.post(admin, PostMessage(thread.id, "Каникулы с 28 октября."))
    (seen_by_pupil,), _ = school.app.search_messages(pupil, SearchMessages("октябрь"))
    assert seen_by_pupil["author_id"] is None and seen_by_pupil["on_behalf_of"] == str(school.org)
    assert seen_by_pupil["chat_kind"] == "inbox"
    items, _ = school.app.search_messages(admin, SearchMessages("каникулы"))
    assert [(i["text"], i["author_id"]) for i in items] == [("Каникулы с 28 октября.", str(admin)),
                                                            ("Когда каникулы?", str(pupil))]


def test_pages_newest_first_without_gaps_or_doubles_while_messages_arrive(school):
    five = school.klass()
    a, b = school.join("student", five), school.join("teacher")
    (class_chat,) = school.chat_of("class", a)
    other = manual_chat(school, b, [a], "Кружок чтения")
    for n in range(23):
        school.app.post(a, PostMessage(class_chat.id, f"Урок номер {n}"))
        school.app.post(b, PostMessage(other.id, f"Уроки чтения {n}"))
        school.app.post(a, PostMessage(class_chat.id, f"Перемена {n}"))
    seen: list[tuple[str, int]] = []
    cursor, pages = None, 0
    while True:
        items, cursor = school.app.search_messages(a, SearchMessages("урок", None, cursor, 7))
        assert len(items) <= 7
        seen += [(i["chat_id"], i["seq"]) for i in items]
        pages += 1
        if pages == 2:  # newer messages arrive meanwhile: they belong before the first page, not in the rest
            school.app.post(a, PostMessage(class_chat.id, "Урок перенесли"))
        if cursor is None:
            break
    assert pages == 7 and len(seen) == len(set(seen)) == 46
    found, _ = school.app.search_messages(a, SearchMessages("урок", None, None, 50))
    newest_first = [(i["chat_id"], i["seq"]) for i in found]
    assert newest_first[0] == (str(class_chat.id), 46) and newest_first[1:] == seen
    assert [i["posted_at"] for i in found] == sorted((i["posted_at"] for i in found), reverse=True)
    in_one, _ = school.app.search_messages(a, SearchMessages("урок", other.id, None, 50))
    assert {i["chat_id"] for i in in_one} == {str(other.id)} and len(in_one) == 23
    assert {i["chat_name"] for i in in_one} == {"Кружок чтения"}


def test_bad_searches_are_refused_with_their_codes(school):
    a = school.join("student", school.klass())
    with pytest.raises(Invalid) as refused:
        school.app.search_messages(a, SearchMessages("!!! ..."))
    assert refused.value.code == "search.no_words"
    with pytest.raises(Invalid) as refused:
        school.app.search_messages(a, SearchMessages("урок", None, "bm90LWEtY3Vyc29y", 10))
    assert refused.value.code == "paging.invalid_cursor"
    for q in ("", "   ", "я" * 201):
        with pytest.raises(ValidationError) as invalid:
            MessageSearchInput().load_command({"q": q})
        assert "q" in invalid.value.messages
    with pytest.raises(ValidationError):
        MessageSearchInput().load_command({"q": "урок", "limit": 51})
    assert MessageSearchInput().load_command({"q": "я" * 200}).limit == 20


def a_term(school: School) -> dict:
    """Chats, members who come and go, messages posted, edited and deleted; searched (caught up) in between."""
    five = school.klass()
    a, b, teacher = school.join("student", five), school.join("student", five), school.join("teacher")
    (class_chat,) = school.chat_of("class", a)
    club = manual_chat(school, teacher, [a, b])
    sent = [school.app.post(a, PostMessage(class_chat.id, f"Урок {n}: контрольная")) for n in range(5)]
    find(school, a, "урок")
    school.app.post(teacher, PostMessage(club.id, "", poll={"question": "Экскурсия?", "options": ["Да", "Нет"]}))
    school.app.edit(a, class_chat.id, sent[1]["seq"], "Урок отменили")
    school.app.delete(a, class_chat.id, sent[2]["seq"])
    school.app.remove_member(teacher, club.id, b)
    school.app.update_chat(teacher, UpdateChat(club.id, name="Кружок истории"))
    find(school, b, "экскурсия")
    school.app.add_members(teacher, club.id, [school.join("student", five)])
    return {"a": a, "b": b, "club": club}


def test_the_search_tables_rebuilt_from_scratch_equal_the_incremental_ones(school):
    a_term(school)
    model = school.app.search_model
    incremental = dump(model)
    assert model.rebuild() == model.head()
    assert dump(model) == incremental
    assert incremental["search_messages"] and incremental["search_members"]


def test_the_rebuild_commands_make_the_search_tables_again(durable_store_settings, monkeypatch, capsys):
    config = durable_store_settings
    use_store_settings(monkeypatch, config)
    school = School(make_application(MessagingApplication, "messaging", create_table=True, config=config))
    world = a_term(school)
    expected = dump(school.app.search_model)
    with school.app.search_model.transaction(write=True) as db:
        db.execute("DELETE FROM {search_members}")
        db.execute("UPDATE {search_messages} SET text = 'stale'")
    assert search_main(["rebuild"]) == 0
    assert f"read model search v{SearchProjection.version} rebuilt up to notification" in capsys.readouterr().out
    assert dump(school.app.search_model) == expected
    assert find(school, world["a"], "контрольная") == ["Урок 4: контрольная", "Урок 3: контрольная",
                                                       "Урок 0: контрольная"]
    with school.app.search_model.transaction(write=True) as db:
        db.execute("DELETE FROM {search_members}")
    assert projection_main(["rebuild", "messaging"]) == 0
    assert "read model search" in capsys.readouterr().out
    assert dump(school.app.search_model) == expected


def test_a_seeded_history_of_sentences_is_found_whole_page_after_page(store_settings):
    """messaging.seed's sentences (bench.message_search's data): every message with a form of the word, no other."""
    app = make_application(MessagingApplication, "messaging", create_table=True, config=store_settings)
    user = uuid.uuid4()
    chat = write_history(app, user, 250, text=sentence)
    expected = {seq for seq in range(250) if any(w.startswith("контрольн") for w in sentence(seq).lower().split())}
    found, cursor = [], None
    while True:
        items, cursor = app.search_messages(user, SearchMessages("контрольной", None, cursor, 50))
        found += [(i["chat_id"], i["seq"]) for i in items]
        if cursor is None:
            break
    assert len(found) == len(set(found)) and {seq for _, seq in found} == expected and len(expected) > 10
    assert {c for c, _ in found} == {str(chat.id)}
    assert [seq for _, seq in found] == sorted(expected, reverse=True)  # one time for all: by seq, newest first


@pytest.mark.parametrize("gin_hit_rows", [10**9, 0], ids=["windows-grow", "gin-soon"])
def test_pages_are_the_newest_hits_whichever_way_they_are_read(school, monkeypatch, gin_hit_rows):
    """PostgreSQL reads one's chats newest first in windows (small here: several rounds, growing windows until
    READ_MAX; or the GIN as soon as it looks cheaper); every page is what sorting every hit gives, on every store,
    page after page."""
    monkeypatch.setattr(search, "WINDOW_ROWS", 8)
    monkeypatch.setattr(search, "WINDOW_MIN", 2)
    monkeypatch.setattr(search, "READ_MAX", 120)
    monkeypatch.setattr(search, "GIN_HIT_ROWS", gin_hit_rows)
    every_hit, rows = search._every_hit, Db.rows
    ways: list[str] = []
    monkeypatch.setattr(search, "_every_hit", lambda *a: ways.append("gin") or every_hit(*a))

    def counted(db: Db, text: str, params=()):
        if "LATERAL" in text:
            ways.append("window")
        return rows(db, text, params)

    monkeypatch.setattr(Db, "rows", counted)
    five = school.klass()
    a, b = school.join("student", five), school.join("teacher")
    (class_chat,) = school.chat_of("class", a)
    chats = [class_chat, manual_chat(school, b, [a], "Кружок"), manual_chat(school, b, [a], "Хор"),
             manual_chat(school, b, [], "Чужой")]
    texts = []
    for n in range(150):  # the chats take turns unevenly; a common word, a rarer one, a rare one
        chat = chats[(n * n) % 7 % 4]
        text = " ".join(["урок" if n % 2 else "перемена", "олимпиада" if n % 9 == 0 else "", "диктант" * (n == 7)])
        sent = school.app.post(b if chat is not chats[0] else a, PostMessage(chat.id, text))
        texts.append((micros(sent["posted_at"]), str(chat.id), sent["seq"], chat is not chats[3]))
    for _ in range(20):  # then one chat alone for a while: its rows are the newest ones
        sent = school.app.post(a, PostMessage(class_chat.id, "перемена"))
        texts.append((micros(sent["posted_at"]), str(class_chat.id), sent["seq"], True))
    searches = 0
    for q, has in (("урок", lambda n: n % 2), ("олимпиада", lambda n: n % 9 == 0), ("диктант", lambda n: n == 7)):
        expected = sorted(((t, c, s) for n, (t, c, s, mine) in enumerate(texts[:150]) if mine and has(n)),
                          reverse=True)
        for limit in (1, 4, 7):
            found, cursor = [], None
            while True:
                items, cursor = school.app.search_messages(a, SearchMessages(q, None, cursor, limit))
                searches += 1
                found += [(micros(i["posted_at"]), i["chat_id"], i["seq"]) for i in items]
                if cursor is None:
                    break
            assert found == expected, (q, limit)
    if school.app.search_model.backend.dialect == "postgres":
        windows, gins = ways.count("window"), ways.count("gin")
        if gin_hit_rows:  # more rounds than searches; the GIN for those READ_MAX rows could not fill
            assert windows > searches and 0 < gins < searches
        else:  # a round, then the GIN for every page the first windows could not tell
            assert windows == searches and 0 < gins < searches
    else:
        assert ways.count("gin") == searches


@pytest.fixture
def postgres_settings(postgres, tmp_path):
    database = f"search{uuid.uuid4().hex[:8]}"
    postgres.ensure_database(database)
    return settings({"SFERA_VAR_DIR": str(tmp_path / "var"), "PERSISTENCE": "postgres",
                     "SFERA_PG_PORT": str(postgres.port), "SFERA_PG_DB": database})


def rows_read(monkeypatch) -> list[int]:
    """Every statement on the search's messages runs EXPLAIN ANALYZE first: the rows its scans of that table read
    (returned or filtered out, every loop), one number a statement."""
    counts: list[int] = []
    rows = Db.rows

    def explained(db: Db, text: str, params=()):
        if "{search_messages}" in text:
            with db.cursor.connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + db.sql(text), tuple(params), prepare=False)
                (plan,) = cursor.fetchone().values()

            def read(node: dict) -> int:
                own = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                       + node.get("Rows Removed by Index Recheck", 0)) * node.get("Actual Loops", 1)
                return (own if node.get("Relation Name") == "rm_search_messages" else 0) + sum(
                    read(child) for child in node.get("Plans", []))

            counts.append(read(plan[0]["Plan"]))
        return rows(db, text, params)

    monkeypatch.setattr(Db, "rows", explained)
    return counts


def test_a_common_words_page_reads_a_few_rows_of_each_chat_not_every_hit_nor_others_rows(postgres_settings,
                                                                                         monkeypatch):
    """10 chats of 200 messages each with the word, and as many of someone else's written after (newer): a page of
    20 reads about 21 rows of each of one's chats (each chat's newest first, stopping at a page of hits), not the
    person's 2,000 hits (the GIN's), nor the 2,000 newer rows of others (walking back in time over everyone's)."""
    app = make_application(MessagingApplication, "messaging", create_table=True, config=postgres_settings)
    me, someone = uuid.uuid4(), uuid.uuid4()
    mine = [write_history(app, me, 200, f"мой {n}", text=lambda seq: f"Урок {seq}") for n in range(10)]
    for n in range(10):
        write_history(app, someone, 200, f"чужой {n}", text=lambda seq: f"Урок {seq}")
    find = app.search_messages(me, SearchMessages("урок", None, None, 5))  # caught up, before counting
    counts = rows_read(monkeypatch)
    items, cursor = app.search_messages(me, SearchMessages("уроки", None, None, 20))
    assert sum(counts) <= 10 * 21 + 10, counts
    newest = str(mine[-1].id)  # write_history posts a chat's messages at its creation: the last chat's are newest
    assert [(i["chat_id"], i["seq"]) for i in items] == [(newest, seq) for seq in range(199, 179, -1)]
    counts.clear()
    items, _ = app.search_messages(me, SearchMessages("уроки", None, cursor, 20))  # the next page: as few
    assert sum(counts) <= 10 * 21 + 10, counts
    assert [(i["chat_id"], i["seq"]) for i in items] == [(newest, seq) for seq in range(179, 159, -1)]
    assert find[0] and cursor
