"""Who joins, sees, records and stays in a call is decided by the chat's members now, never by the call's
snapshot taken at its start (an outside audit: a teacher removed from the school re-entered a class call they had
started, as its admin; an invited pupil who left the school re-entered too). Lesson calls keep the journal's rule;
a call with chosen members is not recorded into the whole chat (CA-6); the school's inbox takes no call (CH-5)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.testing.services import worker_factory

from calls import handlers
from calls import service as calls_service
from calls.application import CallsApplication
from calls.nodes import NodeRegistry
from calls.outbox import to_integration_events
from calls.service import CallsService
from shared.config import settings
from shared.contracts import make_event
from shared.contracts.api.calls import StartCall
from shared.contracts.join_token import verify_join_token
from shared.errors import Conflict, Forbidden, Gone, NotFound
from shared.store import make_application

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def app(store_settings) -> CallsApplication:
    return make_application(CallsApplication, "calls", create_table=True, config=store_settings)


def people(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def ids(*users: uuid.UUID) -> list[str]:
    return [str(u) for u in users]


def published(app: CallsApplication, teacher: uuid.UUID, class_id: uuid.UUID, subject: str = "Физика") -> uuid.UUID:
    lesson_id = uuid.uuid4()
    data = dict(lesson_id=lesson_id, provider_id=uuid.uuid4(), region="16", external_lesson_id=f"L{lesson_id}",
                organization_id=uuid.uuid4(), class_id=class_id, external_class_id="C1", subject=subject,
                teacher_user_id=str(teacher), external_teacher_id="T1", starts_at=NOW,
                ends_at=NOW + timedelta(minutes=45), remote=True)
    handlers.on_lesson(app, make_event("ejournal_bridge.LessonPublished.v1", data, event_id=f"ej:{uuid.uuid4()}"))
    return lesson_id


def events_of(app: CallsApplication, event_type: str) -> list[dict]:
    return [data for n in app.process_recorder.select_notifications(start=1, limit=10_000)
            for t, data, _ in to_integration_events(app.mapper.to_domain_event(n)) if t == event_type]


# -- joining: the chat's members now (CA-2, CA-10) ----------------------------------------------------------------
@pytest.mark.integration
def test_ca2_ca10_the_starter_and_a_chosen_member_who_left_the_chat_join_no_more(app):
    """The audit's reproduction: the call's snapshot (``started_by``, ``invited``) admitted them, with an admin
    token with the right to moderate for the removed teacher."""
    teacher, chosen, other = people(3)
    call = app.start_call(teacher, StartCall(uuid.uuid4(), invited_user_ids=[chosen]), ids(teacher, chosen, other))
    app.leave(teacher, call.id)
    members_now = ids(other)  # the school removed the teacher; the chosen pupil left the school
    for gone in (teacher, chosen):
        assert not app.may_join(app.call(call.id), gone, members_now)
        with pytest.raises(Forbidden) as refused:
            app.join(gone, call.id, members_now)
        assert refused.value.code == "call.not_invited"
    with pytest.raises(Forbidden):
        app.join(other, call.id, members_now)  # in the chat, never chosen: as before
    _, token, _ = app.join(chosen, call.id, ids(teacher, chosen, other))  # still a member: joins as chosen
    assert verify_join_token(token)["role"] == "participant"


@pytest.mark.integration
def test_ca9_ca10_a_broadcasts_presenter_who_left_the_chat_joins_no_more(app):
    admin, presenter, viewer = people(3)
    call = app.start_call(admin, StartCall(uuid.uuid4(), kind="broadcast", presenter_ids=[presenter]),
                          ids(admin, presenter, viewer), uuid.uuid4(), may_broadcast=True)
    with pytest.raises(Forbidden):
        app.join(presenter, call.id, ids(admin, viewer))
    _, token, _ = app.join(viewer, call.id, ids(admin, viewer))
    assert verify_join_token(token)["role"] == "viewer"


@pytest.mark.integration
def test_ca2_ej5_a_lesson_call_keeps_the_journals_rule_its_teacher_and_the_lesson_chats_members(app):
    """A lesson's call is the journal's: its teacher joins with or without a subject chat; its pupils are the
    subject chat's members the journal sets, and one who left the class (the chat) joins no more."""
    teacher, pupil, left = people(3)
    lesson = published(app, teacher, uuid.uuid4())
    call = app.start_lesson(teacher, lesson, uuid.uuid4())
    app.leave(teacher, call.id)
    assert app.may_join(app.call(call.id), teacher, [])  # no chat known: still the lesson's teacher
    app.join(teacher, call.id, ids(pupil))
    app.join(pupil, call.id, ids(teacher, pupil))
    with pytest.raises(Forbidden):
        app.join(left, call.id, ids(teacher, pupil))


# -- losing access during the call -----------------------------------------------------------------------------
@pytest.mark.integration
def test_ca2_ca7_a_call_whose_admin_left_its_chat_ends_for_everyone_and_frees_its_subject_slot(app):
    """CA-2 gives a call one admin, its starter: without them nobody may mute, remove or end it (CA-7), and an
    adult the school removed must not stay in a call with its pupils. It ends as soon as calls learns of it."""
    teacher, pupil = people(2)
    class_id, chat = uuid.uuid4(), uuid.uuid4()
    call = app.start_call(teacher, StartCall(chat), ids(teacher, pupil), subject_slot=(class_id, "Физика"))
    app.join(pupil, call.id, ids(teacher, pupil))
    assert not app.revoke_lost_access(call.id, ids(teacher, pupil)).ended  # nothing lost: nothing changes
    ended = app.revoke_lost_access(call.id, ids(pupil))
    assert ended.ended and ended.ended_reason == "admin_lost_access" and not ended.present(time.time())
    assert [d["reason"] for d in events_of(app, "calls.CallEnded.v1")] == ["admin_lost_access"]
    with pytest.raises(Gone):
        app.join(pupil, call.id, ids(pupil))
    again = app.start_call(pupil, StartCall(chat), ids(pupil), subject_slot=(class_id, "Физика"))
    assert again.started_by == pupil  # the slot is free (CA-8)


@pytest.mark.integration
def test_ca2_ca3_whoever_in_a_call_left_its_chat_is_removed_from_it(app):
    """The SFU drops whom calls removed (ParticipantLeft, reason ``removed``): a pupil who left the school stays in
    the class's call no longer."""
    teacher, stays, leaves = people(3)
    call = app.start_call(teacher, StartCall(uuid.uuid4()), ids(teacher, stays, leaves))
    for p in (stays, leaves):
        app.join(p, call.id, ids(teacher, stays, leaves))
    call = app.revoke_lost_access(call.id, ids(teacher, stays))
    assert not call.ended and sorted(call.present(time.time())) == sorted(ids(teacher, stays))
    assert [(str(d["user_id"]), d["reason"]) for d in events_of(app, "calls.ParticipantLeft.v1")] == [
        (str(leaves), "lost_access")]
    # not the admin's removal: added back to the chat, they join again (a review: one stale member list barred
    # them from the call for good, "the admin removed you")
    app.join(leaves, call.id, ids(teacher, stays, leaves))
    assert str(leaves) in app.call(call.id).present(time.time())
    lesson_teacher = people(1)[0]
    lesson = app.start_lesson(lesson_teacher, published(app, lesson_teacher, uuid.uuid4()), uuid.uuid4())
    assert not app.revoke_lost_access(lesson.id, []).ended  # the journal's teacher keeps their lesson


# -- recording (CA-6) ----------------------------------------------------------------------------------------
@pytest.mark.integration
def test_ca6_a_call_with_chosen_members_is_not_recorded_into_the_whole_chat(app):
    """The recording is posted into the call's chat for everyone in it: a call of a teacher with one pupil of the
    class would reach the whole class."""
    teacher, pupil, other = people(3)
    chat = uuid.uuid4()
    chosen = app.start_call(teacher, StartCall(chat, invited_user_ids=[pupil]), ids(teacher, pupil, other))
    with pytest.raises(Conflict) as refused:
        app.start_recording(teacher, chosen.id)
    assert refused.value.code == "call.recording_chosen_members"
    assert app.call(chosen.id).recording is None and events_of(app, "calls.RecordingChanged.v1") == []
    everyone = app.start_call(teacher, StartCall(chat), ids(teacher, pupil, other))
    assert app.start_recording(teacher, everyone.id).recording is not None
    lesson = app.start_lesson(teacher, published(app, teacher, uuid.uuid4()), uuid.uuid4())
    assert app.start_recording(teacher, lesson.id).recording is not None


# -- the school's inbox (CH-5) -------------------------------------------------------------------------------
@pytest.mark.integration
def test_ch5_no_call_starts_in_the_schools_inbox(app):
    """The pupil must not learn which admin answers; in a call they would see and hear them, and its view names its
    starter and participants: no call or broadcast starts in an inbox thread."""
    pupil, admin = people(2)
    for kind in ("call", "broadcast"):
        for starter in (pupil, admin):
            with pytest.raises(Forbidden) as refused:
                app.start_call(starter, StartCall(uuid.uuid4(), kind=kind), ids(pupil, admin), uuid.uuid4(),
                               may_broadcast=True, chat_kind="inbox")
            assert refused.value.code == "call.not_in_inbox"
    assert events_of(app, "calls.CallStarted.v1") == []


# -- through the service: messaging's word on the chat now ------------------------------------------------------
class FakeMessaging:
    """messaging's RPCs that calls asks: a chat's members now, its view, and whether one may add to it (CH-1)."""

    def __init__(self):
        self.chats: dict[str, dict] = {}
        self.refused_writers: dict[tuple[str, str], str] = {}

    def chat(self, members: list[uuid.UUID], kind: str = "manual") -> str:
        chat_id = str(uuid.uuid4())
        self.chats[chat_id] = {"chat_id": chat_id, "kind": kind, "member_ids": ids(*members), "name": None,
                               "organization_id": str(uuid.uuid4())}
        return chat_id

    def members_of(self, chat_id: str) -> list[str]:
        self.asked = getattr(self, "asked", 0) + 1
        if chat_id not in self.chats:
            raise NotFound("chat.not_found", "No such chat.")
        return list(self.chats[chat_id]["member_ids"])

    def get_chat(self, actor_id: str, chat_id: str) -> dict:
        chat = self.chats[chat_id]
        if actor_id not in chat["member_ids"]:
            raise Forbidden("chat.members_only", "Only members of this chat can do this.")
        return dict(chat)

    def check_writer(self, actor_id: str, chat_id: str) -> None:
        self.get_chat(actor_id, chat_id)
        if (actor_id, chat_id) in self.refused_writers:
            raise Forbidden(self.refused_writers[(actor_id, chat_id)], "You no longer share a chat.")


@pytest.fixture
def service(tmp_path, monkeypatch):
    app = make_application(CallsApplication, "calls", config=settings({"PERSISTENCE": "memory",
                                                                        "SFERA_VAR_DIR": str(tmp_path)}))
    monkeypatch.setattr(calls_service, "SWEPT", calls_service.Sweeps(every=0.0))  # each read sweeps (see below)
    messaging = FakeMessaging()
    return worker_factory(CallsService, app=app, nodes=NodeRegistry(timeout=0), messaging=messaging), messaging


@pytest.mark.unit
def test_ca2_ca10_the_service_asks_the_chats_members_now_to_join_and_to_see_a_call(service):
    calls, messaging = service
    teacher, chosen, other = people(3)
    chat = messaging.chat([teacher, chosen, other])
    call = calls.start_call(str(teacher), {"chat_id": chat, "invited_user_ids": [str(chosen)]})
    calls.join(str(chosen), call["call_id"])
    messaging.chats[chat]["member_ids"] = ids(teacher, other)  # the chosen pupil left the school
    with pytest.raises(NotFound):
        calls.get_call(str(chosen), call["call_id"])  # nor reads who is in it
    with pytest.raises(Forbidden):
        calls.join(str(chosen), call["call_id"])
    seen = calls.get_call(str(teacher), call["call_id"])
    assert [p["user_id"] for p in seen["participants"]] == [str(teacher)]  # and is no longer in it
    messaging.chats[chat]["member_ids"] = ids(other)  # the school removed the teacher
    with pytest.raises(NotFound):
        calls.get_call(str(teacher), call["call_id"])
    with pytest.raises(Gone):  # the call ended: nobody administers it
        calls.join(str(teacher), call["call_id"])
    with pytest.raises(NotFound):
        calls.get_call(str(other), call["call_id"])  # never chosen


@pytest.mark.unit
def test_ca2_ch1_a_dialog_its_two_may_no_longer_talk_in_takes_nobody_into_its_call(service):
    calls, messaging = service
    a, b = people(2)
    dialog = messaging.chat([a, b], kind="direct")
    call = calls.start_call(str(a), {"chat_id": dialog})
    messaging.refused_writers[(str(b), dialog)] = "direct.no_shared_chat"  # b left the only chat they shared
    with pytest.raises(Forbidden) as refused:
        calls.join(str(b), call["call_id"])
    assert refused.value.code == "direct.no_shared_chat"
    assert str(b) not in calls.app.call(uuid.UUID(call["call_id"])).participants


@pytest.mark.unit
def test_ch5_the_service_refuses_a_call_in_an_inbox_thread_for_the_pupil_and_for_the_admins(service):
    calls, messaging = service
    pupil, admin = people(2)
    inbox = messaging.chat([pupil, admin], kind="inbox")
    for starter in (pupil, admin):
        with pytest.raises(Forbidden) as refused:
            calls.start_call(str(starter), {"chat_id": inbox})
        assert refused.value.code == "call.not_in_inbox"


@pytest.mark.unit
def test_ca10_the_people_in_a_call_reading_it_ask_messaging_once_a_sweep_not_once_a_read(service, monkeypatch):
    """A review: every read of a call asked messaging for its chat's members, and everyone in a call reads it every
    few seconds (a broadcast's thousand viewers: 250 requests a second). Its people read it as they are; the call
    is checked against the chat at most every ``SWEEP_SECONDS``, and whoever lost access is then out."""
    calls, messaging = service
    clock = [0.0]
    monkeypatch.setattr(calls_service, "SWEPT", calls_service.Sweeps(every=5.0, clock=lambda: clock[0]))
    teacher, pupil = people(2)
    chat = messaging.chat([teacher, pupil])
    call = calls.start_call(str(teacher), {"chat_id": chat})
    calls.join(str(pupil), call["call_id"])
    asked = messaging.asked
    for _ in range(10):
        calls.get_call(str(pupil), call["call_id"])
    assert messaging.asked == asked
    messaging.chats[chat]["member_ids"] = ids(teacher)  # the pupil left the school
    clock[0] += 5.0
    with pytest.raises(NotFound):
        calls.get_call(str(pupil), call["call_id"])
    assert str(pupil) not in [p["user_id"] for p in calls.get_call(str(teacher), call["call_id"])["participants"]]
