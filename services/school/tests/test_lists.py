"""School's other lists page in its database (issue #17): invite links, join requests, documents, articles,
channels, channel posts and pending applications come from ``school.lists``' table, kept by a projection of
school's notification log, never from their aggregates loaded one by one -- on memory, SQLite and PostgreSQL.
The aggregates stay the reference: each list shows what its index aggregate says, in its order."""

from __future__ import annotations

import uuid

import pytest

from school.application import CONSOLE
from school.domain import (
    ApplicationQueue,
    InviteIndex,
    JoinRequest,
    JoinRequestQueue,
    MaterialsIndex,
    Organization,
)
from shared.contracts.api.school import AcceptJoinRequest, CreateInvite, DraftArticle, EditArticle, SubmitApplication
from shared.errors import DomainError, Invalid
from shared.paging import encode_cursor
from shared.store.testing import dump_read_model as dump

from .conftest import School


def invite(app, admin, org, klass, role="student"):
    return app.create_invite(admin, CreateInvite(org, role, klass if role == "student" else None, "7d", None,
                                                 False))[0]


def document(app, who, org, title):
    return app.publish_document(who, org, title, "d.pdf", "application/pdf", 1000, "ab" * 32)


def article(app, who, org, title):
    return app.draft_article(who, DraftArticle(org, title, "<p>Текст</p>", None))


def a_term(school: School) -> dict:
    """Every list filled, changed and caught up (by the lists read in between) at several points on the way."""
    app = school.app
    operator = school.operator()
    org, admin = school.organization(name="Гимназия №2")
    klass = school.klass(org, admin)
    graduating = school.klass(org, admin, "4Б", 2018, 2025)
    app.graduate_due(app.today())  # graduated by the job
    school.klass(org, admin, "11А", 2015, 2022)  # graduated by the date alone (SC-4)
    teacher = school.member(org, admin, "teacher", last_name="Учителева")
    app.assign_self(teacher, org, klass, ["Математика"])
    invites = [invite(app, admin, org, klass), invite(app, teacher, org, klass), invite(app, admin, org, klass,
                                                                                       "teacher")]
    app.invites(admin, org)  # a catch-up half-way
    app.revoke_invite(admin, invites[0].id)
    pupil = school.user(last_name="Ученикова")
    app.join_by_invite(dict((i.id, t) for i, t in app.invites(admin, org))[invites[1].id], pupil)
    people = [school.user(last_name=f"Просящий{n}") for n in range(4)]
    for person in people:
        app.request_to_join(person, org, f"Возьмите {person}")
    app.join_requests(admin, org)
    app.accept_join_request(admin, AcceptJoinRequest(org, people[1], "teacher"))
    app.hide_join_request(admin, org, people[2])
    app.request_to_join(people[0], org, "Ещё раз")  # keeps its place
    school.app.rename_person(event_id=f"identity:{uuid.uuid4()}:ProfileChanged.v1", user_id=people[3],
                             last_name="Переименованный", first_name="Имя")
    docs = [document(app, admin, org, "Устав"), document(app, teacher, org, "План")]
    gone = app.repository.get(docs[0].id)
    gone.delete(admin)
    app.save(gone)
    articles = [article(app, admin, org, "Черновик"), article(app, teacher, org, "Статья учителя")]
    app.publish_article(teacher, articles[1].id)
    app.edit_article(admin, EditArticle(articles[0].id, "Черновик, правка", "<p>Новый</p>", None))
    channels = [app.create_channel(admin, org, f"Канал {n}") for n in range(3)]
    for n in range(5):
        app.post(admin, channels[1].id, f"Новость {n}")
    applications = [app.submit_application(None, SubmitApplication(f"Школа {n}", "school", "RU", "Уфа",
                                                                   f"+7900333{n:04d}", None)) for n in range(4)]
    app.reject_application(operator, applications[1].id, "Нет такой школы")
    return {"org": org, "admin": admin, "teacher": teacher, "pupil": pupil, "klass": klass, "operator": operator,
            "invites": invites, "people": people, "docs": docs, "articles": articles, "channels": channels,
            "applications": applications, "graduating": graduating}


# -- the lists as the aggregates say them (the code before the read model) ----------------------------------------


def invites_from_aggregates(app, org, actor=None) -> list[tuple]:
    index = app.find(InviteIndex, InviteIndex.create_id(org))
    found = [app.repository.get(uuid.UUID(i)) for i in index.invite_ids]
    return [(i.id, i.uses, i.revoked, i.role, i.class_id, i.expires_at, i.max_uses, i.created_by) for i in found
            if actor is None or i.created_by == actor]


def requests_from_aggregates(app, org) -> list[tuple]:
    queue = app.find(JoinRequestQueue, JoinRequestQueue.create_id(org))
    found = [app.repository.get(JoinRequest.create_id(org, uuid.UUID(u))) for u in queue.pending]
    return [(r.user_id, r.message, r.status, *app.person_name(str(r.user_id)).values()) for r in found]


def materials_from_aggregates(app, org, kind) -> list:
    index = app.find(MaterialsIndex, MaterialsIndex.create_id(org, kind))
    return [app.repository.get(uuid.UUID(m)) for m in reversed(index.ids)]


def test_the_lists_rebuilt_from_scratch_equal_the_incremental_ones(school):
    a_term(school)
    model = school.app.lists
    incremental = dump(model)
    with model.reading() as db:
        kinds = {row["kind"] for row in db.rows("SELECT DISTINCT kind FROM {list_items}")}
    assert {"invite", "join_request", "document", "article", "channel", "post", "application", "class"} <= kinds
    assert model.rebuild() == model.head()
    assert dump(model) == incremental


def test_each_list_shows_what_its_aggregates_say_in_their_order_SC_3_SC_5_SC_10_SC_11_SC_12(school):
    w = a_term(school)
    app, org, admin, teacher = school.app, w["org"], w["admin"], w["teacher"]
    listed = [(i.id, i.uses, i.revoked, i.role, i.class_id, i.expires_at, i.max_uses, i.created_by)
              for i, _ in app.invites(admin, org)]
    assert listed == invites_from_aggregates(app, org)
    assert [i[0] for i in listed[1:]] == [i.id for i in w["invites"]] and listed[1][2] and listed[2][1] == 1
    assert [i.id for i, _ in app.invites(teacher, org)] == [i[0] for i in invites_from_aggregates(app, org, teacher)]
    requests = [(r.user_id, r.message, r.status, r.last_name, r.first_name) for r in app.join_requests(admin, org)]
    assert requests == requests_from_aggregates(app, org)
    assert [r[0] for r in requests] == [w["people"][0], w["people"][3]]
    assert requests[0][1] == "Ещё раз" and requests[1][3] == "Переименованный"
    docs = app.documents(w["pupil"], org)
    expected = [d for d in materials_from_aggregates(app, org, "documents") if not d.deleted]
    assert [(d.id, d.title, d.published_at) for d in docs] == [(d.id, d.title, d.created_on) for d in expected]
    assert [d.id for d in docs] == [w["docs"][1].id]
    for actor in (admin, teacher, w["pupil"]):
        expected = [a for a in materials_from_aggregates(app, org, "articles")
                    if a.published_at is not None or a.author_id == actor or actor == admin]
        assert [(a.id, a.title, a.html, a.published_at) for a in app.articles(actor, org)] == [
            (a.id, a.title, a.html, a.published_at) for a in expected]
    assert [a.title for a in app.articles(admin, org)] == ["Статья учителя", "Черновик, правка"]
    channel_ids = app.repository.get(Organization.create_id(org)).channel_ids
    assert [str(c.id) for c in app.channels(w["pupil"], org)] == channel_ids
    channel = app.repository.get(w["channels"][1].id)
    assert app.posts(w["pupil"], channel.id, None, 100) == (list(reversed(channel.posts)), None)
    classes = app.classes(w["pupil"], org)
    organization = app.repository.get(Organization.create_id(org))
    expected = [app.repository.get(uuid.UUID(c)) for c in organization.class_ids]
    assert [(c.id, c.name, c.start_year, c.end_year, c.graduated, app.class_graduated(c)) for c in classes] == [
        (c.id, c.name, c.start_year, c.end_year, c.graduated, app.class_graduated(c)) for c in expected]
    assert [app.class_graduated(c) for c in classes] == [False, True, True]
    assert classes[1].graduated and classes[1].id == w["graduating"] and not classes[2].graduated
    queue = app.find(ApplicationQueue, ApplicationQueue.create_id())
    pending = app.pending_applications(w["operator"])
    assert [str(a.id) for a in pending] == queue.pending
    assert [a.name for a in pending] == ["Школа 0", "Школа 2", "Школа 3"]


def test_the_lists_do_not_load_their_entries_aggregate_by_aggregate(school, monkeypatch):
    w = a_term(school)
    app, org, admin = school.app, w["org"], w["admin"]
    for n in range(20):
        invite(app, admin, org, w["klass"])
        document(app, admin, org, f"Документ {n}")
        app.post(admin, w["channels"][0].id, f"Пост {n}")
    loaded = []
    get = app.repository.get

    def counted(aggregate_id, *args, **kwargs):
        found = get(aggregate_id, *args, **kwargs)
        loaded.append(type(found).__name__)
        return found

    monkeypatch.setattr(app.repository, "get", counted)
    assert len(app.invites(admin, org)) == 24
    assert len(app.documents(admin, org)) == 21
    assert len(app.posts(admin, w["channels"][0].id, None, 50)[0]) == 20
    assert len(app.join_requests(admin, org)) == 2
    assert len(app.pending_applications(CONSOLE)) == 3
    # the actor's membership and the organization (or channel) for the rights checks; no entry
    assert len(app.classes(admin, org)) == 3
    assert not {"InviteLink", "Document", "JoinRequest", "OrganizationApplication", "Article", "SchoolClass"} & set(
        loaded), loaded
    assert len(loaded) <= 15, loaded


def test_a_long_list_pages_without_gaps_or_duplicates_and_shows_changes_in_the_next_page(school):
    app = school.app
    org, admin = school.organization()
    klass = school.klass(org, admin)
    made = [invite(app, admin, org, klass) for _ in range(23)]
    first, cursor = app.invites_page(admin, org, None, 5)
    assert [i.id for i, _ in first] == [i.id for i in made[:5]]
    app.revoke_invite(admin, made[7].id)  # on a page not seen yet
    app.join_by_invite(app.invites(admin, org)[8][1], school.user())
    seen = [i for i, _ in first]
    while cursor is not None:
        page, cursor = app.invites_page(admin, org, cursor, 5)
        seen += [i for i, _ in page]
    assert [i.id for i in seen] == [i.id for i in made]
    assert seen[7].revoked and seen[8].uses == 1
    assert app.invites_page(admin, org, None, 100) == (app.invites_page(admin, org, None, None)[0], None)

    people = [school.user(last_name=f"П{n:02d}") for n in range(12)]
    for person in people:
        app.request_to_join(person, org, None)
    page, cursor = app.join_requests_page(admin, org, None, 4)
    app.accept_join_request(admin, AcceptJoinRequest(org, people[5], "teacher"))  # approved before it was seen
    app.hide_join_request(admin, org, people[1])  # hidden after it was seen
    listed = [r.user_id for r in page]
    while cursor is not None:
        page, cursor = app.join_requests_page(admin, org, cursor, 4)
        listed += [r.user_id for r in page]
    assert listed == people[:5] + people[6:]

    docs = [document(app, admin, org, f"Док {n}") for n in range(11)]
    page, cursor = app.documents_page(admin, org, None, 3)
    gone = app.repository.get(docs[4].id)  # newest first: the fifth document is on the third page
    gone.delete(admin)
    app.save(gone)
    newer = document(app, admin, org, "Свежий")  # newer than the first page: not on the next ones
    listed = [d.id for d in page]
    while cursor is not None:
        page, cursor = app.documents_page(admin, org, cursor, 3)
        listed += [d.id for d in page]
    assert listed == [d.id for d in reversed(docs) if d.id != docs[4].id]
    assert app.documents_page(admin, org, None, 1)[0][0].id == newer.id


def test_posts_made_while_a_reader_pages_are_not_shown_twice_SC_12(school):
    """Before the read model the cursor was an offset into the newest-first posts: a post made between two pages
    pushed the last post of the first page onto the second."""
    org, admin = school.organization()
    channel = school.app.create_channel(admin, org, "Новости")
    for n in range(6):
        school.app.post(admin, channel.id, f"Новость {n}")
    first, cursor = school.app.posts(admin, channel.id, None, 3)
    school.app.post(admin, channel.id, "Срочная новость")
    second, end = school.app.posts(admin, channel.id, cursor, 3)
    assert [p["text"] for p in first + second] == [f"Новость {n}" for n in range(5, -1, -1)] and end is None


@pytest.mark.parametrize("cursor", [encode_cursor("3"), encode_cursor("s"), encode_cursor("s-1"), "nonsense"])
def test_a_cursor_no_page_gave_is_refused(school, cursor):
    org, admin = school.organization()
    with pytest.raises(Invalid) as refused:
        school.app.invites_page(admin, org, cursor, 10)
    assert refused.value.code == "paging.invalid_cursor"


def test_the_rights_to_read_a_list_are_unchanged_RO_2_RO_3(school):
    w = a_term(school)
    app, org = school.app, w["org"]
    outsider = school.user()
    for attempt in (lambda: app.invites(w["pupil"], org), lambda: app.join_requests(w["teacher"], org),
                    lambda: app.documents(outsider, org), lambda: app.articles(outsider, org),
                    lambda: app.channels(outsider, org), lambda: app.posts(outsider, w["channels"][1].id, None, 5),
                    lambda: app.pending_applications(w["admin"])):
        with pytest.raises(DomainError):
            attempt()


def test_the_rpcs_answer_the_whole_list_without_paging_and_a_page_with_it(school):
    """The lists that had no paging keep their answer when called as before; ``cursor``/``limit`` give pages."""
    from types import SimpleNamespace

    from school.service import SchoolService

    org, admin = school.organization()
    klass = school.klass(org, admin)
    for _ in range(5):
        invite(school.app, admin, org, klass)
    service = SimpleNamespace(app=school.app)
    whole = SchoolService.invites(service, str(admin), str(org))
    assert isinstance(whole, list) and len(whole) == 5 and set(whole[0]) >= {"invite_id", "token", "uses"}
    first = SchoolService.invites(service, str(admin), str(org), limit=2)
    rest = SchoolService.invites(service, str(admin), str(org), cursor=first["next_cursor"], limit=10)
    assert first["items"] + rest["items"] == whole and rest["next_cursor"] is None
    assert SchoolService.classes(service, str(admin), str(org)) == [
        {"class_id": str(klass), "organization_id": str(org), "name": "5А", "start_year": 2024, "end_year": 2031,
         "graduated": False}]
    with pytest.raises(Invalid):
        SchoolService.documents(service, str(admin), str(org), cursor=encode_cursor("7"))
