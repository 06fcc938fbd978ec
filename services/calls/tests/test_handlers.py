"""calls's handlers of the e-journal's lesson requests (CA-2, CA-7, CA-8, EJ-5): the teacher starts or ends a
remote lesson in the journal, the bridge asks, calls starts or ends its call -- once per event."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from calls import handlers
from calls.application import CallsApplication
from calls.domain import Call
from shared.contracts import make_event
from shared.errors import TooManyRequests
from shared.store import make_application

pytestmark = pytest.mark.integration
NOW = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def app(store_settings) -> CallsApplication:
    return make_application(CallsApplication, "calls", create_table=True, config=store_settings)


def lesson_event(name: str, lesson_id: uuid.UUID, teacher: str | None, class_id: uuid.UUID,
                 sequence: int | None = None, **extra):
    data = dict(lesson_id=lesson_id, provider_id=uuid.uuid4(), region="16", external_lesson_id=f"L{lesson_id}",
                organization_id=uuid.uuid4(), class_id=class_id, external_class_id="C1", subject="Физика",
                teacher_user_id=teacher, external_teacher_id="T1", starts_at=NOW,
                ends_at=NOW + timedelta(minutes=45), remote=True, **extra)
    return make_event(f"ejournal_bridge.{name}.v1", data, event_id=f"ej:{uuid.uuid4()}", sequence=sequence)


def test_a_lesson_started_from_the_journal_starts_its_call_once_and_ends_it_from_there_CA_7(app):
    teacher, lesson_id, chat = str(uuid.uuid4()), uuid.uuid4(), uuid.uuid4()
    asked = []

    def lesson_chat(user_id: str, facts: dict) -> uuid.UUID:
        asked.append((user_id, facts["subject"]))
        return chat

    start = lesson_event("LessonStartRequested", lesson_id, teacher, uuid.uuid4(), requested_by_external_id="T1")
    assert handlers.on_lesson_start_requested(app, start, lesson_chat) is True
    call = app.lesson_call(lesson_id)
    assert call is not None and call.started_by == uuid.UUID(teacher) and call.chat_id == chat
    assert asked == [(teacher, "Физика")]
    assert handlers.on_lesson_start_requested(app, start, lesson_chat) is False  # a redelivery starts nothing
    assert app.lesson_call(lesson_id).id == call.id and len(asked) == 1

    end = lesson_event("LessonEndRequested", lesson_id, teacher, call.class_id, requested_by_external_id="T1")
    assert handlers.on_lesson_end_requested(app, end) is True
    assert app.call(call.id).ended
    assert handlers.on_lesson_end_requested(app, end) is False


def test_a_journal_start_while_the_subject_s_lesson_is_under_way_starts_nothing_CA_8(app):
    teacher, class_id = str(uuid.uuid4()), uuid.uuid4()
    first, second = uuid.uuid4(), uuid.uuid4()
    assert handlers.on_lesson_start_requested(app, lesson_event("LessonStartRequested", first, teacher, class_id),
                                              lambda *_: None)
    assert handlers.on_lesson_start_requested(app, lesson_event("LessonStartRequested", second, teacher, class_id),
                                              lambda *_: None) is True  # recorded, refused quietly
    assert app.lesson_call(first) is not None and app.lesson_call(second) is None


def test_a_start_without_a_linked_teacher_only_keeps_the_lesson(app):
    lesson_id = uuid.uuid4()
    assert handlers.on_lesson_start_requested(
        app, lesson_event("LessonStartRequested", lesson_id, None, uuid.uuid4()), lambda *_: None) is True
    assert app.lesson_info(lesson_id) is not None and app.lesson_call(lesson_id) is None


def test_a_journal_end_that_comes_before_its_start_leaves_no_call_nobody_ends_CA_7(app):
    """An outside review: the start request retrying (messaging did not answer) while the teacher ended the lesson
    in the journal: the end found no call and was consumed, the start then opened a call nobody ended, which held
    the subject's slot (the next lesson: call.subject_busy). A lesson's events say its version (``sequence``):
    an end is kept even with no call, and a start it came after starts nothing; a later start does."""
    teacher, lesson_id, class_id = str(uuid.uuid4()), uuid.uuid4(), uuid.uuid4()
    assert handlers.on_lesson_end_requested(app, lesson_event("LessonEndRequested", lesson_id, teacher, class_id, 3,
                                                              requested_by_external_id="T1")) is True
    assert handlers.on_lesson_start_requested(app, lesson_event("LessonStartRequested", lesson_id, teacher, class_id,
                                                                2), lambda *_: None) is True
    assert app.lesson_call(lesson_id) is None
    handlers.on_lesson(app, lesson_event("LessonPublished", lesson_id, str(uuid.uuid4()), class_id, 1))
    assert app.lesson_info(lesson_id).facts["teacher_user_id"] == teacher  # the end's facts are newer
    assert handlers.on_lesson_start_requested(app, lesson_event("LessonStartRequested", lesson_id, teacher, class_id,
                                                                4), lambda *_: None) is True
    assert app.lesson_call(lesson_id) is not None and not app.lesson_call(lesson_id).ended


def test_a_journal_end_applied_while_its_start_asks_for_the_chat_leaves_no_call_CA_7_CA_8(app):
    """An outside audit: the start checked the end on the lesson it read before asking messaging for the chat; the
    end, applied meanwhile (another replica, or this one's next delivery), found no call and was consumed, and the
    start's own command then opened a call nobody ended, holding the subject's slot. The command checks the end on
    the lesson it reads and writes, so a start the journal ended after it was asked starts nothing, whenever the
    end comes."""
    teacher, lesson_id, class_id = str(uuid.uuid4()), uuid.uuid4(), uuid.uuid4()
    handlers.on_lesson(app, lesson_event("LessonPublished", lesson_id, teacher, class_id, 1))
    end = lesson_event("LessonEndRequested", lesson_id, teacher, class_id, 3, requested_by_external_id="T1")

    def lesson_chat(user_id, facts):  # messaging is asked; meanwhile the end is applied
        assert handlers.on_lesson_end_requested(app, end) is True
        return None

    assert handlers.on_lesson_start_requested(app, lesson_event("LessonStartRequested", lesson_id, teacher, class_id,
                                                                2), lesson_chat) is True
    assert app.lesson_call(lesson_id) is None
    following = uuid.uuid4()  # the next lesson of the subject is not refused call.subject_busy
    handlers.on_lesson(app, lesson_event("LessonPublished", following, teacher, class_id, 1))
    handlers.on_lesson_start_requested(app, lesson_event("LessonStartRequested", following, teacher, class_id, 2),
                                       lambda *_: None)
    assert app.lesson_call(following) is not None


def _calls_of_lesson(app, lesson_id) -> list[Call]:
    started = [n.originator_id for n in app.process_recorder.select_notifications(start=1, limit=100_000)
               if n.topic.endswith("Call.Started")]
    return [c for c in (app.find(Call, i) for i in started) if c is not None and c.lesson_id == lesson_id]


def test_a_journal_start_is_recorded_with_its_call_so_a_redelivery_after_a_crash_starts_no_second_CA_7(app):
    """An outside audit: the journal's start saved the call, then the request's record on its own; a process killed
    between the two got the request again, and when the teacher had ended that call meanwhile, a second call
    started that nobody asked for. The call and the request's record are one transaction."""
    teacher, lesson_id, class_id = str(uuid.uuid4()), uuid.uuid4(), uuid.uuid4()
    start = lesson_event("LessonStartRequested", lesson_id, teacher, class_id, 2)
    record = app.process_once

    def killed_after_the_save(event_id, *objs):
        record(event_id, *objs)
        raise ConnectionError("the process died after its transaction committed, before the broker's ack")

    app.process_once = killed_after_the_save
    with pytest.raises(ConnectionError):
        handlers.on_lesson_start_requested(app, start, lambda *_: None)
    app.process_once = record
    first = app.lesson_call(lesson_id)
    app.end(uuid.UUID(teacher), first.id)  # the teacher ends it before the redelivery comes
    assert handlers.on_lesson_start_requested(app, start, lambda *_: None) is False  # the redelivery
    assert [c.id for c in _calls_of_lesson(app, lesson_id)] == [first.id]


def test_a_journal_start_the_store_was_too_busy_for_is_retried_not_dropped_CA_7(app):
    """An outside audit: every DomainError of the start was taken for a refusal and the request recorded as
    handled, request.busy too (the store's retries ran out): the start was lost. Only a start's refusals are."""
    teacher, lesson_id, class_id = str(uuid.uuid4()), uuid.uuid4(), uuid.uuid4()
    start = lesson_event("LessonStartRequested", lesson_id, teacher, class_id, 2)
    original = app.start_lesson

    def busy(*args, **kwargs):
        raise TooManyRequests("request.busy", "Too many changes at once; try again in a second.")

    app.start_lesson = busy
    with pytest.raises(TooManyRequests):
        handlers.on_lesson_start_requested(app, start, lambda *_: None)  # the consumer retries it
    app.start_lesson = original
    assert handlers.on_lesson_start_requested(app, start, lambda *_: None) is True
    assert app.lesson_call(lesson_id) is not None


def test_a_lessons_older_facts_never_replace_newer_ones_CA_2_EJ_5(app):
    """An outside review: a late LessonPublished applied after LessonCancelled made the lesson startable again,
    and a rescheduled substitute teacher was replaced by the old one the same way."""
    old, substitute, lesson_id, class_id = str(uuid.uuid4()), str(uuid.uuid4()), uuid.uuid4(), uuid.uuid4()
    handlers.on_lesson(app, lesson_event("LessonRescheduled", lesson_id, substitute, class_id, 3))
    handlers.on_lesson(app, lesson_event("LessonPublished", lesson_id, old, class_id, 2))
    assert app.lesson_info(lesson_id).facts["teacher_user_id"] == substitute
    handlers.on_lesson(app, lesson_event("LessonCancelled", lesson_id, substitute, class_id, 5))
    handlers.on_lesson(app, lesson_event("LessonPublished", lesson_id, substitute, class_id, 4))
    assert app.lesson_info(lesson_id).facts["remote"] is False
    handlers.on_lesson(app, lesson_event("LessonPublished", lesson_id, substitute, class_id, 6))  # published again
    assert app.lesson_info(lesson_id).facts["remote"] is True
