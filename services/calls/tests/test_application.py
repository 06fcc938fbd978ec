"""The calls application against every store (memory, SQLite, PostgreSQL): starting
from a chat or a published lesson, joining with tokens, the 100-person limit,
controls, breakout rooms, recording, the one-lesson-per-subject rule (CA-1..CA-10)."""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from calls import handlers
from calls.application import CallsApplication
from calls.domain import MAX_BREAKOUTS, MAX_PARTICIPANTS, plan_breakouts
from calls.outbox import to_integration_events
from shared.contracts import get_contract, make_event
from shared.contracts.api.calls import MoveParticipant, OpenBreakouts, SetPermissions, StartCall
from shared.contracts.join_token import TOKEN_AUDIENCE, verify_join_token
from shared.errors import Conflict, Forbidden, Gone, Invalid, NotFound, Unauthorized
from shared.store import make_application

pytestmark = pytest.mark.integration
NOW = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def app(store_settings) -> CallsApplication:
    return make_application(CallsApplication, "calls", create_table=True, config=store_settings)


def people(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def published(app: CallsApplication, teacher: str | None, class_id=None, subject="Физика", name="LessonPublished",
              lesson_id=None) -> uuid.UUID:
    lesson_id = lesson_id or uuid.uuid4()
    data = dict(lesson_id=lesson_id, provider_id=uuid.uuid4(), region="16", external_lesson_id=f"L{lesson_id}",
                organization_id=uuid.uuid4(), class_id=class_id or uuid.uuid4(), external_class_id="C1",
                subject=subject, teacher_user_id=teacher, external_teacher_id="T1", starts_at=NOW,
                ends_at=NOW + timedelta(minutes=45), remote=True)
    handlers.on_lesson(app, make_event(f"ejournal_bridge.{name}.v1", data, event_id=f"ej:{uuid.uuid4()}"))
    return lesson_id


def published_events(app: CallsApplication) -> list[tuple[str, dict]]:
    out = []
    for n in app.process_recorder.select_notifications(start=1, limit=10_000):
        for event_type, data, _ in to_integration_events(app.mapper.to_domain_event(n)):
            wire = make_event(event_type, data, event_id=f"calls:{n.id}").data
            get_contract(event_type).schema().load(wire)  # what travels fits its contract
            out.append((event_type, wire))
    return out


def test_ca2_a_call_from_a_chat_makes_its_starter_the_admin_and_invites_everyone_or_chosen_members(app):
    members = people(5)
    call = app.start_call(uuid.UUID(members[0]), StartCall(uuid.uuid4(), title="Урок"), members)
    assert call.started_by == uuid.UUID(members[0]) and call.role_of(uuid.UUID(members[0])) == "admin"
    assert call.rights(call.started_by) == ["subscribe", "audio", "video", "screen", "moderate"]
    _, token, ttl = app.join(uuid.UUID(members[3]), call.id, members)
    claims = verify_join_token(token)
    assert claims["sub"] == members[3] and claims["call"] == str(call.id) and claims["role"] == "participant"
    assert claims["room"] == str(call.id) and 0 < ttl <= 600
    with pytest.raises(Forbidden) as e:
        app.join(uuid.uuid4(), call.id, members)
    assert e.value.code == "call.not_invited"

    chosen = app.start_call(uuid.UUID(members[0]), StartCall(uuid.uuid4(), invited_user_ids=[uuid.UUID(members[1])]),
                            members)
    app.join(uuid.UUID(members[1]), chosen.id, members)
    with pytest.raises(Forbidden):
        app.join(uuid.UUID(members[2]), chosen.id, members)  # in the chat but not chosen
    with pytest.raises(Invalid) as e:
        app.start_call(uuid.UUID(members[0]), StartCall(uuid.uuid4(), invited_user_ids=[uuid.uuid4()]), members)
    assert e.value.code == "call.not_in_chat"
    with pytest.raises(Forbidden) as e:
        app.start_call(uuid.uuid4(), StartCall(uuid.uuid4()), members)
    assert e.value.code == "chat.members_only"
    started = [d for t, d in published_events(app) if t == "calls.CallStarted.v1"]
    assert [str(d["started_by"]) for d in started] == [members[0], members[0]]
    assert sorted(map(str, started[1]["invited_user_ids"])) == sorted([members[0], members[1]])


def test_ca10_join_tokens_are_signed_short_lived_and_for_the_sfu_only(app, monkeypatch):
    members = people(2)
    call = app.start_call(uuid.UUID(members[0]), StartCall(uuid.uuid4()), members)
    _, token, _ = app.join(uuid.UUID(members[1]), call.id, members)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == TOKEN_AUDIENCE and claims["exp"] - claims["iat"] == 120
    forged = jwt.encode({**claims, "role": "admin"}, "not-the-secret-but-long-enough-for-hs256", algorithm="HS256")
    with pytest.raises(Unauthorized) as e:
        verify_join_token(forged)
    assert e.value.code == "call.invalid_token"
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, "dev-only-sfu-token-secret-change-me",
                         algorithm="HS256")
    with pytest.raises(Unauthorized) as e:
        verify_join_token(expired)
    assert e.value.code == "call.token_expired"
    monkeypatch.setenv("SFERA_SFU_TOKEN_SECRET", "rotated-secret-that-is-long-enough-for-hs256")
    with pytest.raises(Unauthorized):
        verify_join_token(token)


def test_ca1_a_hundred_take_part_and_the_hundred_and_first_is_refused_until_a_seat_frees(app):
    members = people(MAX_PARTICIPANTS + 1)
    call = app.start_call(uuid.UUID(members[0]), StartCall(uuid.uuid4()), members)
    for m in members[1:MAX_PARTICIPANTS]:
        app.join(uuid.UUID(m), call.id, members)
    assert len(app.call(call.id).present(time.time())) == MAX_PARTICIPANTS
    app.join(uuid.UUID(members[5]), call.id, members)  # someone already in rejoins: same seat
    with pytest.raises(Conflict) as e:
        app.join(uuid.UUID(members[-1]), call.id, members)
    assert e.value.code == "call.full" and e.value.details == {"limit": 100}
    app.leave(uuid.UUID(members[7]), call.id)
    app.join(uuid.UUID(members[-1]), call.id, members)
    assert len(app.call(call.id).present(time.time())) == MAX_PARTICIPANTS


def test_only_those_in_a_call_leave_it_to_anyone_else_it_does_not_exist(app):
    members = people(2)
    call = app.start_call(uuid.UUID(members[0]), StartCall(uuid.uuid4()), members)
    with pytest.raises(NotFound) as e:
        app.leave(uuid.uuid4(), call.id)  # a stranger got the call's view back before
    assert e.value.code == "call.not_found"
    app.join(uuid.UUID(members[1]), call.id, members)
    assert app.leave(uuid.UUID(members[1]), call.id).id == call.id


def test_ca1_an_admitted_person_who_never_connects_frees_the_seat_when_the_token_expires(app):
    members = people(3)
    call = app.start_call(uuid.UUID(members[0]), StartCall(uuid.uuid4()), members)
    app.join(uuid.UUID(members[1]), call.id, members)
    call = app.call(call.id)
    assert len(call.present(time.time())) == 2
    assert len(call.present(time.time() + 121)) == 0  # nobody connected to the SFU


SFU_HANDLERS = {"ParticipantConnected": handlers.on_participant_connected,
                "ParticipantDisconnected": handlers.on_participant_disconnected,
                "RecordingWritten": handlers.on_recording_written}


def on_sfu_fact(app, event):
    """What the service's consumer of the SFU's event type calls."""
    return SFU_HANDLERS[event.contract.name](app, event)


def sfu_fact(app, name: str, sequence: int | None = None, **data):
    return on_sfu_fact(app, make_event(f"sfu.{name}.v1", data, event_id=f"sfu:{uuid.uuid4()}", sequence=sequence))


def test_a_flapping_connections_late_connect_never_seats_a_ghost_CA_1_CA_3(app):
    """An outside review: a connection that flapped had its ParticipantDisconnected applied before its
    ParticipantConnected (separate queues): the late connect marked the person in the call until it ended,
    counted towards the 100 and sent them the board's pushes. The node numbers its facts (``sequence``): a fact
    older than the one applied for that person changes nothing."""
    members = people(2)
    admin, a = (uuid.UUID(m) for m in members)
    call = app.start_call(admin, StartCall(uuid.uuid4()), members)
    app.join(a, call.id, members)
    room = str(call.id)
    sfu_fact(app, "ParticipantDisconnected", 11, call_id=call.id, user_id=a, room=room, node="n1", reason="left")
    sfu_fact(app, "ParticipantConnected", 10, call_id=call.id, user_id=a, room=room, node="n1")
    assert not app.call(call.id).participants[str(a)]["connected"]
    sfu_fact(app, "ParticipantDisconnected", 13, call_id=call.id, user_id=a, room=room, node="n1", reason="left")
    sfu_fact(app, "ParticipantConnected", 9, call_id=call.id, user_id=a, room=room, node="n1")  # gone, not there
    assert not app.call(call.id).participants[str(a)]["connected"]
    app.join(a, call.id, members)  # back: the node's next facts count
    sfu_fact(app, "ParticipantDisconnected", 14, call_id=call.id, user_id=a, room=room, node="n1", reason="left")
    assert app.call(call.id).participants[str(a)]["admitted"]  # one of no connection never cancels an admission
    sfu_fact(app, "ParticipantConnected", 15, call_id=call.id, user_id=a, room=room, node="n1")
    assert app.call(call.id).participants[str(a)]["connected"]
    sfu_fact(app, "ParticipantConnected", 17, call_id=call.id, user_id=a, room=room, node="n1")  # changes nothing
    sfu_fact(app, "ParticipantDisconnected", 16, call_id=call.id, user_id=a, room=room, node="n1", reason="left")
    assert app.call(call.id).participants[str(a)]["connected"]  # older than the connect applied last: set aside
    sfu_fact(app, "ParticipantDisconnected", 18, call_id=call.id, user_id=a, room=room, node="n1", reason="left")
    app.join(a, call.id, members)  # on another node: its numbers are its own (its clock is not the first one's)
    sfu_fact(app, "ParticipantConnected", 3, call_id=call.id, user_id=a, room=room, node="n2")
    assert app.call(call.id).participants[str(a)]["connected"]


def test_ca3_hands_mute_remove_and_the_participant_list(app):
    members = people(4)
    admin, a, b, _ = (uuid.UUID(m) for m in members)
    call = app.start_call(admin, StartCall(uuid.uuid4()), members)
    app.join(a, call.id, members)
    app.join(b, call.id, members)
    assert sfu_fact(app, "ParticipantConnected", call_id=call.id, user_id=a, room=str(call.id), node="n1")
    assert app.call(call.id).participants[str(a)]["connected"]
    app.raise_hand(a, call.id, True)
    app.raise_hand(a, call.id, True)  # once is enough
    assert app.call(call.id).participants[str(a)]["hand"]
    with pytest.raises(Forbidden) as e:
        app.lower_hand_of(b, call.id, a)
    assert e.value.code == "call.admin_only"
    app.lower_hand_of(admin, call.id, a)
    with pytest.raises(Forbidden):
        app.mute(b, call.id, a)
    app.mute(admin, call.id, a)
    assert app.call(call.id).participants[str(a)]["muted"]
    _, token, _ = app.join(a, call.id, members)
    assert verify_join_token(token)["muted"] is True
    app.unmute_self(a, call.id)
    with pytest.raises(NotFound):
        app.mute(admin, call.id, uuid.uuid4())
    app.remove(admin, call.id, b)
    with pytest.raises(Forbidden) as e:
        app.join(b, call.id, members)
    assert e.value.code == "call.removed"
    with pytest.raises(Invalid):
        app.remove(admin, call.id, admin)
    events = published_events(app)
    hands = [d["raised"] for t, d in events if t == "calls.HandRaised.v1"]
    assert hands == [True, False]
    assert [d["muted"] for t, d in events if t == "calls.ParticipantMuted.v1"] == [True, False]
    assert [(str(d["user_id"]), d["reason"]) for t, d in events if t == "calls.ParticipantLeft.v1"] == [
        (str(b), "removed")]
    assert [str(d["user_id"]) for t, d in events if t == "calls.ParticipantJoined.v1"] == [str(a)]


def test_ca4_participants_share_the_screen_only_when_the_admin_allows_it(app):
    members = people(2)
    admin, a = uuid.UUID(members[0]), uuid.UUID(members[1])
    call = app.start_call(admin, StartCall(uuid.uuid4()), members)
    _, token, _ = app.join(a, call.id, members)
    assert "screen" not in verify_join_token(token)["rights"]
    with pytest.raises(Forbidden):
        app.set_permissions(a, SetPermissions(call.id, True))
    app.set_permissions(admin, SetPermissions(call.id, True))
    _, token, _ = app.join(a, call.id, members)
    assert "screen" in verify_join_token(token)["rights"]
    assert [d["screen_share"] for t, d in published_events(app) if t == "calls.PermissionsChanged.v1"] == [True]


def test_ca5_breakout_rooms_by_hand_and_at_random_moved_and_called_back(app):
    members = people(13)
    admin = uuid.UUID(members[0])
    call = app.start_call(admin, StartCall(uuid.uuid4()), members)
    for m in members[1:]:
        app.join(uuid.UUID(m), call.id, members)
    with pytest.raises(Invalid):
        app.open_breakouts(admin, OpenBreakouts(call.id, MAX_BREAKOUTS + 1))
    with pytest.raises(Forbidden):
        app.open_breakouts(uuid.UUID(members[1]), OpenBreakouts(call.id, 3))
    call = app.open_breakouts(admin, OpenBreakouts(call.id, 3, {uuid.UUID(members[1]): 3}))
    rooms = {uid: p["room"] for uid, p in call.participants.items() if uid != members[0]}
    assert rooms[members[1]] == "room-3" and sorted(set(rooms.values())) == ["room-1", "room-2", "room-3"]
    assert sorted(list(rooms.values()).count(r) for r in ("room-1", "room-2", "room-3")) == [4, 4, 4]
    assert call.participants[members[0]]["room"] == "main"
    _, token, _ = app.join(uuid.UUID(members[1]), call.id, members)
    assert verify_join_token(token)["room"] == f"{call.id}/room-3"
    with pytest.raises(Conflict):
        app.open_breakouts(admin, OpenBreakouts(call.id, 2))
    app.move(admin, MoveParticipant(call.id, uuid.UUID(members[1]), "room-1"))
    with pytest.raises(NotFound):
        app.move(admin, MoveParticipant(call.id, uuid.UUID(members[1]), "room-9"))
    call = app.close_breakouts(admin, call.id)
    assert {p["room"] for p in call.participants.values()} == {"main"}
    changes = [d for t, d in published_events(app) if t == "calls.BreakoutsChanged.v1"]
    assert changes[1]["placement"] == {members[1]: f"{call.id}/room-1"} and changes[2]["closed"]


def test_ca5_fifty_rooms_at_most_and_random_placement_is_even():
    rooms, placed = plan_breakouts(MAX_BREAKOUTS, people(99), None, random.Random(1))
    assert len(rooms) == 50
    sizes = [list(placed.values()).count(r) for r in rooms]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(Invalid):
        plan_breakouts(0, [], None)


def test_ca7_the_admin_ends_the_call_for_everyone_and_nobody_joins_after(app):
    members = people(3)
    admin = uuid.UUID(members[0])
    call = app.start_call(admin, StartCall(uuid.uuid4()), members)
    app.join(uuid.UUID(members[1]), call.id, members)
    with pytest.raises(Forbidden):
        app.end(uuid.UUID(members[1]), call.id)
    ended = app.end(admin, call.id)
    assert ended.ended and not ended.present(time.time())
    app.end(admin, call.id)  # once
    with pytest.raises(Gone) as e:
        app.join(uuid.UUID(members[2]), call.id, members)
    assert e.value.code == "call.ended"
    assert [d["reason"] for t, d in published_events(app) if t == "calls.CallEnded.v1"] == ["ended_by_admin"]


def test_ca8_a_second_lesson_of_the_same_subject_waits_until_the_first_ends(app):
    teacher = uuid.uuid4()
    class_id = uuid.uuid4()
    first = published(app, str(teacher), class_id, "Физика")
    second = published(app, str(teacher), class_id, "физика")  # the same subject, however spelled
    other_subject = published(app, str(teacher), class_id, "Химия")
    call = app.start_lesson(teacher, first, uuid.uuid4())
    assert call.kind == "lesson" and call.started_by == teacher  # CA-2: the teacher is the admin
    with pytest.raises(Conflict) as e:
        app.start_lesson(teacher, second, None)
    assert e.value.code == "call.subject_busy" and e.value.details == {"call_id": str(call.id)}
    app.start_lesson(teacher, other_subject, None)  # another subject is another slot
    app.end(teacher, call.id)
    again = app.start_lesson(teacher, second, None)
    assert again.id != call.id


def test_ca8_a_call_from_the_subject_chat_takes_the_same_slot_as_the_lesson(app):
    """An ad-hoc call in a class's subject chat is a lesson of that subject: neither starts beside the other."""
    teacher, pupil = uuid.uuid4(), uuid.uuid4()
    class_id, chat_id = uuid.uuid4(), uuid.uuid4()
    members = [str(teacher), str(pupil)]
    lesson = published(app, str(teacher), class_id, "Физика")
    running = app.start_lesson(teacher, lesson, chat_id)
    with pytest.raises(Conflict) as busy:
        app.start_call(pupil, StartCall(chat_id), members, subject_slot=(class_id, "ФИЗИКА"))
    assert busy.value.code == "call.subject_busy" and busy.value.details == {"call_id": str(running.id)}
    app.end(teacher, running.id)
    adhoc = app.start_call(pupil, StartCall(chat_id), members, subject_slot=(class_id, "Физика"))
    assert (adhoc.class_id, adhoc.subject) == (class_id, "Физика")
    with pytest.raises(Conflict) as lesson_busy:
        app.start_lesson(teacher, lesson, chat_id)
    assert lesson_busy.value.details == {"call_id": str(adhoc.id)}
    app.end(pupil, adhoc.id)
    assert app.start_lesson(teacher, lesson, chat_id).kind == "lesson"
    app.start_call(pupil, StartCall(uuid.uuid4()), members)  # any other chat: no slot


def test_ca2_only_the_lessons_teacher_starts_it_and_the_journal_can_end_it(app):
    teacher = uuid.uuid4()
    lesson = published(app, str(teacher))
    with pytest.raises(Forbidden) as e:
        app.start_lesson(uuid.uuid4(), lesson, None)
    assert e.value.code == "call.lesson_teacher_only"
    unlinked = published(app, None)
    with pytest.raises(Conflict) as e:
        app.start_lesson(teacher, unlinked, None)
    assert e.value.code == "lesson.teacher_not_linked"
    with pytest.raises(NotFound):
        app.start_lesson(teacher, uuid.uuid4(), None)
    call = app.start_lesson(None, lesson, None, by_journal=True)
    assert app.lesson_call(lesson).id == call.id
    ended = app.end(None, call.id, "ended_from_journal")  # CA-7, from the journal
    assert ended.ended_reason == "ended_from_journal"


def test_ca9_a_broadcast_has_a_few_presenters_and_viewers_who_only_receive(app):
    members = people(30)
    admin = uuid.UUID(members[0])
    with pytest.raises(Forbidden) as e:
        app.start_call(admin, StartCall(uuid.uuid4(), kind="broadcast", title="Линейка"), members, uuid.uuid4())
    assert e.value.code == "call.broadcast_forbidden"
    with pytest.raises(Invalid):
        app.start_call(admin, StartCall(uuid.uuid4(), kind="broadcast",
                                        presenter_ids=[uuid.UUID(m) for m in members[1:6]]),
                       members, uuid.uuid4(), may_broadcast=True)
    call = app.start_call(admin, StartCall(uuid.uuid4(), kind="broadcast", title="Линейка",
                                           presenter_ids=[uuid.UUID(members[1])]),
                          members, uuid.uuid4(), may_broadcast=True)
    _, presenter, _ = app.join(uuid.UUID(members[1]), call.id, members)
    _, viewer, _ = app.join(uuid.UUID(members[2]), call.id, members)
    assert verify_join_token(presenter)["rights"] == ["subscribe", "audio", "video", "screen"]
    assert verify_join_token(viewer)["rights"] == ["subscribe"] and verify_join_token(viewer)["role"] == "viewer"
    assert call.max_participants > MAX_PARTICIPANTS


def test_ca6_recording_is_the_admins_and_its_file_is_published_for_the_chat(app):
    members = people(2)
    admin = uuid.UUID(members[0])
    chat = uuid.uuid4()
    call = app.start_call(admin, StartCall(chat), members)
    with pytest.raises(Forbidden):
        app.start_recording(uuid.UUID(members[1]), call.id)
    call = app.start_recording(admin, call.id)
    rec = call.recording["recording_id"]
    app.stop_recording(admin, call.id)
    written = dict(call_id=call.id, recording_id=rec, blob_key="ab" * 32, size=1234, media_type="video/webm",
                   duration=3.5, file_name="call.webm")
    event = make_event("sfu.RecordingWritten.v1", written, event_id="sfu:rec-1")
    assert on_sfu_fact(app, event) and not on_sfu_fact(app, event)  # once
    ready = [d for t, d in published_events(app) if t == "calls.RecordingReady.v1"]
    assert len(ready) == 1 and ready[0]["chat_id"] == chat and ready[0]["admin_id"] == admin
    changes = [d["recording"] for t, d in published_events(app) if t == "calls.RecordingChanged.v1"]
    assert changes == [True, False]


def test_sfu_facts_are_applied_once_and_a_disconnect_frees_the_seat(app):
    members = people(2)
    call = app.start_call(uuid.UUID(members[0]), StartCall(uuid.uuid4()), members)
    app.join(uuid.UUID(members[1]), call.id, members)
    event = make_event("sfu.ParticipantConnected.v1", dict(call_id=call.id, user_id=members[1], room="r",
                                                           node="n"), event_id="sfu:c1")
    assert on_sfu_fact(app, event) and not on_sfu_fact(app, event)
    sfu_fact(app, "ParticipantDisconnected", call_id=call.id, user_id=members[1], room="r", node="n",
             reason="disconnected")
    assert members[1] not in app.call(call.id).present(time.time())
    assert [d["reason"] for t, d in published_events(app) if t == "calls.ParticipantLeft.v1"] == ["disconnected"]
