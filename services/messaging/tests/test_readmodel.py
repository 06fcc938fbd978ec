"""Messaging's read model (issue #17): the chat list, the organization inbox and "who has read" page in SQL from
tables a projection keeps from messaging's notification log (messaging.readmodel, shared.projection), against
memory, SQLite and PostgreSQL. The aggregates stay the reference: each list shows what they say, in their order."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from messaging import handlers
from messaging.application import MessagingApplication
from messaging.domain import ReadMark
from messaging.readmodel import MessagingProjection
from messaging.readmodel import main as readmodel_main
from messaging.service import chat_view
from shared.contracts import make_event
from shared.contracts.api.messaging import ChatListItem, ChatView, CreateChat, PostMessage, UpdateChat
from shared.errors import Forbidden, Invalid
from shared.paging import decode_cursor
from shared.projection import _Memory
from shared.store import make_application
from shared.store.testing import all_pages as paged
from shared.store.testing import dump_read_model as dump
from shared.store.testing import resumes_after_a_failure_mid_batch, use_store_settings

from .test_application import NOW, School

pytestmark = pytest.mark.integration


@pytest.fixture
def school(store_settings) -> School:
    return School(make_application(MessagingApplication, "messaging", create_table=True, config=store_settings))


# -- the answers as they were computed before the read model (from the aggregates) ---------------------------


def old_chat_list(app: MessagingApplication, user: uuid.UUID) -> list[dict]:
    """The ``chats`` RPC's answer before the read model: ``chats_of`` (aggregate by aggregate, sorted in memory)."""
    return [ChatListItem().dump({**item, "chat": chat_view(item["chat"], app.members_seen_by(item["chat"], user))})
            for item in app.chats_of(user)]


def new_chat_list(app: MessagingApplication, user: uuid.UUID) -> list[dict]:
    return ChatListItem(many=True).dump(app.chat_list(user)[0])


def old_readers(app: MessagingApplication, actor: uuid.UUID, chat_id: uuid.UUID, seq: int) -> dict:
    """``readers`` before the read model: a ``ReadMark`` per member (every page at once)."""
    chat = app.chat(chat_id)
    author = app._page_of(chat_id, seq).message(seq)["author_id"]
    hidden = set() if str(actor) in app.concealed(chat) else app.concealed(chat)

    def read_until(member: str) -> int:
        mark = app.find(ReadMark, ReadMark.create_id(chat_id, uuid.UUID(member)))
        return mark.read_until if mark else -1

    everyone = sorted({"" if m in hidden else m for m in chat.members if m != author and read_until(m) >= seq})
    return {"items": [{"user_id": k or None} for k in everyone], "count": len(everyone)}


def all_readers(app: MessagingApplication, actor: uuid.UUID, chat_id: uuid.UUID, seq: int, limit: int) -> dict:
    items, cursor, counts = [], None, set()
    while True:
        page = app.readers(actor, chat_id, seq, cursor, limit)
        assert len(page["items"]) <= limit
        items += page["items"]
        counts.add(page["count"])
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(counts) == 1
            return {"items": items, "count": counts.pop()}


def a_cursor_of_ours(cursor: str, page: list) -> None:
    assert decode_cursor(cursor)


def all_pages(list_page, limit: int) -> list:
    return paged(list_page, limit, a_cursor_of_ours)


def a_term(school: School) -> dict:
    """Classes, an organization chat, manual chats, a dialog and inbox threads; messages posted, edited and
    deleted; read marks; people leaving a chat, removed from one and moving class. The read model is caught up
    (by queries in between) at several points on the way."""
    app = school.app
    admin, admin_b = school.join("admin"), school.join("admin")
    five, six = school.klass("5А"), school.klass("6А")
    teacher = school.join("teacher")
    school.teach(teacher, five, ["Математика"])
    pupils = [school.join("student", five) for _ in range(4)] + [school.join("student", six)]
    parent = school.join("parent", five)
    (class_chat,) = school.chat_of("class", pupils[0])
    manual = app.create_chat(teacher, CreateChat(school.org, "Кружок", tuple(pupils[:3])))
    closed = app.create_chat(teacher, CreateChat(school.org, "Олимпиада", (pupils[0], pupils[4]), closed=True))
    for n in range(3):
        app.post(pupils[n], PostMessage(class_chat.id, f"привет {n}"))
    app.chat_list(pupils[0])  # a catch-up half-way
    first = app.post(teacher, PostMessage(manual.id, "Завтра в 15:00"))["seq"]
    app.post(pupils[1], PostMessage(manual.id, "Хорошо"))
    app.edit(teacher, manual.id, first, "Завтра в 16:00")
    last = app.post(pupils[2], PostMessage(manual.id, "ой"))["seq"]
    app.delete(pupils[2], manual.id, last)  # the last message deleted: the preview follows
    app.mark_read(pupils[1], manual.id, first)
    app.mark_read(pupils[0], class_chat.id, 1)
    app.mark_read(pupils[0], class_chat.id, 0)  # never backwards
    app.mark_read(teacher, class_chat.id, 99)
    dialog = app.direct(pupils[0], teacher)
    app.post(teacher, PostMessage(dialog.id, "Зайди после урока"))
    app.remove_member(pupils[1], manual.id, pupils[1])  # leaves (CH-3)
    app.remove_member(teacher, closed.id, pupils[4])  # removed by the closed chat's creator (CH-3)
    thread = app.inbox_thread(pupils[3], school.org)
    app.post(pupils[3], PostMessage(thread.id, "Когда каникулы?"))
    app.post(admin_b, PostMessage(thread.id, "С 28 октября."))
    app.mark_read(admin, thread.id, 1)
    app.mark_read(pupils[3], thread.id, 1)
    other_thread = app.inbox_thread(parent, school.org)
    app.post(parent, PostMessage(other_thread.id, "Справка"))
    school.send("MemberLeft", organization_id=school.org, user_id=pupils[2], left_at=NOW)  # leaves the school
    for n, person in enumerate([admin, admin_b, teacher, *pupils, parent]):
        named(app, person, f"Фамилия{n}", "Имя", registered=True)
    named(app, teacher, "Петрова", "Анна", "Сергеевна", NOW + timedelta(hours=1))  # a rename
    school.send("OrganizationUpdated", organization_id=school.org, name="Гимназия Лобачевского", country="RU",
                city="Казань", updated_at=NOW + timedelta(hours=1))
    return {"admin": admin, "admin_b": admin_b, "teacher": teacher, "pupils": pupils, "parent": parent,
            "class_chat": class_chat, "manual": manual, "closed": closed, "dialog": dialog, "thread": thread,
            "other_thread": other_thread, "five": five, "six": six}


def named(app: MessagingApplication, user: uuid.UUID, last: str, first: str, patronymic: str | None = None,
          at=NOW, registered: bool = False) -> bool:
    """identity's UserRegistered (``registered``) or ProfileUpdated of a person with this name, as of ``at``."""
    if registered:
        event = make_event("identity.UserRegistered.v1", {
            "user_id": user, "registered_via": "phone", "phone": "+79000000000", "last_name": last,
            "first_name": first, "patronymic": patronymic, "registered_at": at}, event_id=f"identity:{uuid.uuid4()}")
        return handlers.on_user_registered(app, event)
    event = make_event("identity.ProfileUpdated.v1", {
        "user_id": user, "last_name": last, "first_name": first, "patronymic": patronymic, "updated_by": user,
        "updated_at": at}, event_id=f"identity:{uuid.uuid4()}")
    return handlers.on_profile_updated(app, event)


def people(world: dict) -> list[uuid.UUID]:
    return [world["admin"], world["admin_b"], world["teacher"], *world["pupils"], world["parent"]]


def test_the_read_model_rebuilt_from_scratch_equals_the_incremental_one(school):
    a_term(school)
    model = school.app.read_model
    incremental = dump(model)
    assert all(incremental[t] for t in ("chats", "chat_members", "read_marks", "inbox", "people", "organizations"))
    assert model.rebuild() == model.head()
    assert dump(model) == incremental


def test_the_chat_list_answers_as_the_aggregates_did_CH_3_CH_4_CH_5(school):
    world = a_term(school)
    app = school.app
    for person in people(world):
        assert new_chat_list(app, person) == old_chat_list(app, person)
    pupils, manual, closed = world["pupils"], str(world["manual"].id), str(world["closed"].id)
    listed = {p: [c["chat"]["chat_id"] for c in new_chat_list(app, p)] for p in pupils}
    assert manual not in listed[pupils[1]]  # left the manual chat (CH-3)
    assert closed not in listed[pupils[4]]  # removed from the closed chat by its creator: no longer sees it (CH-3)
    assert str(world["class_chat"].id) not in listed[pupils[2]]  # left the school: out of its class chat (CH-2)
    mine = {c["chat"]["chat_id"]: c for c in new_chat_list(app, pupils[0])}
    assert mine[str(world["class_chat"].id)]["unread"] == 1  # read up to 1 of 0..2 (CH-4)
    thread = next(c for c in new_chat_list(app, pupils[3]) if c["chat"]["kind"] == "inbox")
    assert thread["chat"]["member_ids"] == [str(pupils[3])]  # the admins answer as the organization (CH-5)
    admin_view = next(c for c in new_chat_list(app, world["admin"]) if c["chat"]["chat_id"] == str(world["thread"].id))
    assert len(admin_view["chat"]["member_ids"]) == 3


def test_the_last_message_of_each_chat_is_kept_for_its_preview_CH_4(school):
    world = a_term(school)
    with school.app.read_model.reading() as db:
        rows = {r["chat_id"]: r for r in db.rows("SELECT * FROM {chats}")}
    manual = rows[str(world["manual"].id)]
    assert (manual["last_seq"], manual["last_text"], bool(manual["last_deleted"])) == (2, "", True)
    dialog = rows[str(world["dialog"].id)]
    assert (dialog["last_text"], dialog["last_author"]) == ("Зайди после урока", str(world["teacher"]))
    assert dialog["last_at"]
    assert rows[str(world["closed"].id)]["last_seq"] == -1


def test_the_inbox_answers_as_the_aggregates_did_and_pages_CH_5(school):
    world = a_term(school)
    app, admin = school.app, world["admin"]
    expected = [chat_view(c) for c in app.inbox(admin, school.org)]
    assert [c["chat_id"] for c in expected] == [str(world["thread"].id), str(world["other_thread"].id)]
    assert ChatView(many=True).dump(app.inbox_page(admin, school.org)[0]) == expected
    paged = all_pages(lambda c, n: app.inbox_page(admin, school.org, c, n), 1)
    assert ChatView(many=True).dump(paged) == expected
    with pytest.raises(Forbidden):
        app.inbox_page(world["pupils"][0], school.org)


def test_who_has_read_answers_as_the_aggregates_did_CH_4_CH_5(school):
    world = a_term(school)
    app = school.app
    cases = [(world["pupils"][1], world["class_chat"].id, 1), (world["teacher"], world["manual"].id, 0),
             (world["pupils"][3], world["thread"].id, 0), (world["admin"], world["thread"].id, 0),
             (world["admin_b"], world["thread"].id, 1), (world["pupils"][0], world["class_chat"].id, 0)]
    for actor, chat_id, seq in cases:
        for limit in (1, 2, 50):
            assert all_readers(app, actor, chat_id, seq, limit) == old_readers(app, actor, chat_id, seq)
    pupil_view = app.readers(world["pupils"][3], world["thread"].id, 0, None, 10)
    assert pupil_view["items"] == [{"user_id": None}]  # the admin who read shows as the organization (CH-5)
    with pytest.raises(Invalid):
        app.readers(world["teacher"], world["manual"].id, 0, "not-a-cursor", 10)


def test_a_person_in_300_chats_pages_in_order_without_duplicates_or_gaps(school):
    app = school.app
    teacher, pupil = school.join("teacher"), school.join("student")
    chats = [app.create_chat(teacher, CreateChat(school.org, f"Чат {n}", (pupil,))) for n in range(300)]
    for n, chat in enumerate(chats):
        for _ in range(n % 4):  # ties in last seq: the order they joined the list breaks them
            app.post(teacher, PostMessage(chat.id, "m"))
    app.mark_read(pupil, chats[7].id, 1)
    for limit in (7, 50):
        listed = all_pages(lambda c, n: app.chat_list(pupil, c, n), limit)
        ids = [c["chat"]["chat_id"] for c in listed]
        assert len(ids) == len(set(ids)) == 301  # and the school's chat
        assert ChatListItem(many=True).dump(listed) == old_chat_list(app, pupil)
    with pytest.raises(Invalid, match="cursor"):
        app.chat_list(pupil, "bm90LW91cnM", 10)


def test_the_chat_list_shows_the_chat_of_the_newest_message_first_not_the_longest_CH_4(school):
    """The list was ordered by each chat's last seq (how many messages it has): a busy chat written in last week
    came above one written a minute ago, and a page of the list was not "the most recent chats" (the web client
    sorts by the last message's time, so later pages put chats above those shown). Ties and chats without
    messages: the order they joined one's list."""
    app = school.app
    teacher, pupil = school.join("teacher"), school.join("student")
    busy, quiet, silent, late = (app.create_chat(teacher, CreateChat(school.org, name, (pupil,)))
                                 for name in ("Болтливый", "Тихий", "Молчаливый", "Поздний"))
    for n in range(5):
        app.post(teacher, PostMessage(busy.id, f"сообщение {n}"))
    app.post(teacher, PostMessage(quiet.id, "одно, но новее"))
    app.post(teacher, PostMessage(late.id, "самое новое"))
    expected = [str(late.id), str(quiet.id), str(busy.id)]
    for limit in (None, 1, 2):
        listed = (app.chat_list(pupil)[0] if limit is None
                  else all_pages(lambda c, n: app.chat_list(pupil, c, n), limit))
        ids = [str(c["chat"]["chat_id"]) for c in listed]
        assert ids[:3] == expected, limit
        assert ids.index(str(silent.id)) > 2  # no message: after every chat with one
    assert old_chat_list(app, pupil) == new_chat_list(app, pupil)


def test_the_chat_list_filters_by_the_words_of_the_shown_name_newest_first_paged(school):
    """?q= (issue #17): the web client filtered only the chats it had loaded. Each word of q starts a word of the
    name the list shows (its name, else its subject; case and ё folded), newest first, paged; renames follow;
    a message's text is no name (dialogs and inbox threads by their people's names: the test after this one)."""
    app = school.app
    teacher, pupil = school.join("teacher"), school.join("student")
    five = school.klass("5Ё")
    school.teach(teacher, five, ["Математика"])
    chats = [app.create_chat(teacher, CreateChat(school.org, f"Кружок {n}", (pupil,))) for n in range(120)]
    wanted = [app.create_chat(teacher, CreateChat(school.org, name, (pupil,)))
              for name in ("Шахматный кружок ЁЛКИ", "Ёлочный базар", "шахматы-ёлки")]
    for chat in (wanted[2], *chats[::7], wanted[0]):  # the last one written first
        app.post(teacher, PostMessage(chat.id, "m"))
    app.post(teacher, PostMessage(app.direct(pupil, teacher).id, "Шахматы завтра"))
    app.update_chat(teacher, UpdateChat(chats[5].id, "Елки-палки"))

    def found(q: str, limit: int | None = None) -> list[str]:
        listed = (app.chat_list(pupil, None, None, q)[0] if limit is None
                  else all_pages(lambda c, n: app.chat_list(pupil, c, n, q), limit))
        return [c["chat"]["name"] for c in listed]

    assert found("шахм ёлк") == found("ШАХМ елк", 1) == ["Шахматный кружок ЁЛКИ", "шахматы-ёлки"]
    assert found("елки") == ["Шахматный кружок ЁЛКИ", "шахматы-ёлки", "Елки-палки"]  # a rename is followed
    whole = [c["chat"]["name"] for c in app.chat_list(pupil)[0]]  # the unfiltered list's order
    eleven = [n for n in whole if (n or "").startswith("Кружок 11")]
    assert len(eleven) == 11 and found("кружок 11", 2) == found("кружок 11") == eleven
    assert eleven[:2] == ["Кружок 119", "Кружок 112"]        # written to, newest first; then the order joined
    assert found("ужок") == [] and found("зтра") == []      # a prefix of a word, not any part of it
    assert found("шахматы") == ["шахматы-ёлки"]             # the dialog's text is no name
    for bad, code in (("!!! ...", "chats.filter_no_words"), ("а" * 101, "chats.filter_too_long")):
        with pytest.raises(Invalid, match=code):
            app.chat_list(pupil, None, 10, bad)


def test_the_filter_finds_a_dialog_and_an_inbox_thread_by_the_name_their_viewer_is_shown_CH_5(school):
    """?q= matched only chats' own names: a dialog (the client names it by the other person) or an inbox thread (by
    its writer for the admins, by the school for the writer) was found only among the chats the client had loaded.
    Now: by the name the viewer is shown, as identity and school report it (renames followed, an older report
    not undoing a newer one); never by one's own name, nor by the admins' who answer a thread (CH-5)."""
    app = school.app
    admin, teacher = school.join("admin"), school.join("teacher")
    pupil, other = school.join("student"), school.join("student")
    for person, name in ((admin, ("Сидоров", "Олег")), (teacher, ("Петрова", "Анна", "Сергеевна")),
                         (pupil, ("Иванова", "Мария")), (other, ("Ёлкина", "Ольга"))):
        assert named(app, person, *name, registered=True)
    dialog = app.direct(pupil, teacher)
    app.post(teacher, PostMessage(dialog.id, "Зайди после урока"))
    thread = app.inbox_thread(pupil, school.org)
    app.post(admin, PostMessage(thread.id, "Здравствуйте"))
    school.send("OrganizationUpdated", organization_id=school.org, name="Гимназия Лобачевского", country="RU",
                city="Казань", updated_at=NOW + timedelta(days=1))
    for n in range(60):  # more chats than a page of the client's list, each newer than the dialog and the thread
        app.post(teacher, PostMessage(app.create_chat(teacher, CreateChat(school.org, f"Кружок {n}", (pupil,))).id,
                                      "м"))

    def found(user: uuid.UUID, q: str, limit: int | None = None) -> list[str]:
        listed = (app.chat_list(user, None, None, q)[0] if limit is None
                  else all_pages(lambda c, n: app.chat_list(user, c, n, q), limit))
        return [str(c["chat"]["chat_id"]) for c in listed]

    assert found(pupil, "петрова") == found(pupil, "ПЕТР анна серг", 1) == [str(dialog.id)]
    assert found(teacher, "иванова мар") == [str(dialog.id)]
    assert found(pupil, "иванова") == found(teacher, "петрова") == []  # one's own name names none of one's chats
    (school_chat,) = [str(c["chat"]["chat_id"]) for c in app.chat_list(pupil)[0] if c["chat"]["kind"] == "organization"]
    assert found(pupil, "гимназ лобач") == [str(thread.id), school_chat]  # the writer is shown the school (the
    assert found(pupil, "сидоров") == []                               # school's chat follows its rename, CH-1)
    assert found(admin, "иванова") == [str(thread.id)]                 # the admins are shown its writer
    assert found(admin, "гимназия") == [school_chat]                   # not the school: only the school's chat
    assert found(pupil, "иванова петрова") == []                       # every word in the one name shown

    assert named(app, teacher, "Смирнова", "Анна", at=NOW + timedelta(days=2))  # married: a rename
    named(app, teacher, "Петрова", "Анна", at=NOW + timedelta(hours=2))  # an older report, late: changes nothing
    assert found(pupil, "смирнова") == [str(dialog.id)] and found(pupil, "петрова") == []
    assert found(admin, "мария") == [str(thread.id)]
    whole = [c for c in app.chat_list(pupil)[0]]  # paging and order as the unfiltered list's
    clubs = [str(c["chat"]["chat_id"]) for c in whole if (c["chat"]["name"] or "").startswith("Кружок")]
    assert len(clubs) == 60 and found(pupil, "кружок", 7) == clubs
    assert found(pupil, "ёлкина") == []                                # no chat with her


def test_names_from_before_messaging_kept_them_are_asked_once_of_their_owners(school):
    """People and schools named before messaging consumed their names (an existing deployment): the backfill asks
    identity (as a member of the chat, who may see the name) and school for those only, once; later events win."""
    app, old_org = school.app, uuid.uuid4()
    teacher, pupil = school.join("teacher"), school.join("student")
    admin = uuid.uuid4()
    for user, role in ((pupil, "student"), (admin, "admin")):  # a school whose OrganizationRegistered came before
        school.send("MemberJoined", organization_id=old_org, user_id=user, role=role, roles=[role], joined_at=NOW)
    dialog, thread = app.direct(pupil, teacher), app.inbox_thread(pupil, old_org)
    names = {str(teacher): ("Петрова", "Анна", None), str(pupil): ("Иванова", "Мария", "Ивановна")}
    asked: list[tuple[str, str]] = []

    def person_names(viewer: str, person: str):
        asked.append((viewer, person))
        return names.get(person)

    assert app.backfill_names(person_names, {str(old_org): "Лицей №2"}.get) == (2, 1)
    assert {p for _, p in asked} == set(names) and all(v != p for v, p in asked)  # as a member who sees them
    assert (str(admin), str(pupil)) in asked or (str(teacher), str(pupil)) in asked

    def found(user: uuid.UUID, q: str) -> list:
        return [c["chat"]["chat_id"] for c in app.chat_list(user, None, None, q)[0]]

    assert found(pupil, "петрова") == [dialog.id] and found(pupil, "лицей 2") == [thread.id]
    assert found(admin, "иванова ивановна") == [thread.id]
    asked.clear()
    assert app.backfill_names(person_names, {}.get) == (0, 0) and asked == []  # once: nothing left unnamed
    named(app, teacher, "Смирнова", "Анна")  # any event's report is newer than the backfill's
    assert found(pupil, "смирнова") == [dialog.id] and found(pupil, "петрова") == []


def test_a_projection_failing_mid_batch_resumes_without_double_rows(school, monkeypatch):
    a_term(school)
    expected = resumes_after_a_failure_mid_batch(school.app.read_model, "joined", dump, monkeypatch)
    assert all(len(rows) == len(set(rows)) for rows in expected.values())


def test_a_query_sees_a_write_made_just_before_it_by_another_replica(durable_store_settings):
    one = School(make_application(MessagingApplication, "messaging", create_table=True, config=durable_store_settings))
    other = make_application(MessagingApplication, "messaging", config=durable_store_settings)
    for app in (one.app, other):  # the tables are in the store's own database, one copy for every replica
        assert app.read_model.backend.dialect == durable_store_settings.persistence
        assert not isinstance(app.read_model.backend, _Memory)
    pupil = one.join("student", one.klass())
    assert sorted(c["chat"]["kind"] for c in other.chat_list(pupil)[0]) == ["class", "organization"]
    (chat,) = one.chat_of("class", pupil)
    one.app.post(pupil, PostMessage(chat.id, "раз"))
    assert next(c for c in other.chat_list(pupil)[0] if c["chat"]["chat_id"] == chat.id)["last_seq"] == 0


def test_the_rebuild_command_makes_the_read_model_again(durable_store_settings, monkeypatch, capsys):
    config = durable_store_settings
    use_store_settings(monkeypatch, config)
    school = School(make_application(MessagingApplication, "messaging", create_table=True, config=config))
    world = a_term(school)
    expected = dump(school.app.read_model)
    with school.app.read_model.transaction(write=True) as db:
        db.execute("DELETE FROM {chat_members}")
        db.execute("UPDATE {chats} SET last_seq = 42")
    assert readmodel_main(["rebuild"]) == 0
    assert "rebuilt up to notification" in capsys.readouterr().out
    assert dump(school.app.read_model) == expected
    assert new_chat_list(school.app, world["teacher"]) == old_chat_list(school.app, world["teacher"])
    assert readmodel_main([]) == 2


def test_a_new_version_of_the_projection_rebuilds_its_tables(school):
    a_term(school)
    expected = dump(school.app.read_model)

    class Next(MessagingProjection):
        version = MessagingProjection.version + 1

    model = school.app.read_model  # as a process of the next release finds it
    model.projection, model._ready = Next(), False
    with model.transaction(write=True) as db:
        db.execute("DELETE FROM {chats}")
    model.ensure()
    model.catch_up()
    assert dump(model) == expected
