"""The e-journal's published remote lessons, kept so that their teacher can start their calls (CA-2, CA-7, EJ-5)."""

from __future__ import annotations

import uuid

from calls.application.base import CallsBase
from calls.domain import Call, LessonInfo
from shared.store import once_per_event


class Lessons(CallsBase):
    @once_per_event
    def record_lesson(self, lesson_id: uuid.UUID, facts: dict, cancelled: bool, *, event_id: str,
                      sequence: int | None = None) -> bool:
        """Keep a lesson's facts, once per event, with the event's id."""
        return self._keep_lesson(lesson_id, facts, cancelled, event_id, sequence)

    def keep_lesson(self, lesson_id: uuid.UUID, facts: dict, cancelled: bool = False,
                    sequence: int | None = None) -> bool:
        """Keep a lesson's facts (the caller records its event itself)."""
        return self._keep_lesson(lesson_id, facts, cancelled, None, sequence)

    def _keep_lesson(self, lesson_id: uuid.UUID, facts: dict, cancelled: bool, event_id: str | None,
                     sequence: int | None) -> bool:
        """The facts of the lesson's version ``sequence``, unless newer ones are kept (its events come through
        separate queues and retries, in any order)."""
        if cancelled:
            facts = {**facts, "remote": False}

        def command() -> bool:
            info = self.find(LessonInfo, LessonInfo.create_id(lesson_id))
            if info is None:
                info = LessonInfo(lesson_id=lesson_id, facts=facts, version=sequence)
            elif not info.facts_outdated(sequence) and (info.facts != facts or sequence is not None):
                info.update(facts=facts, version=sequence)
            if event_id is not None:
                return self.process_once(event_id, info)
            self.save(info)
            return True

        return self.retrying(command, ("lesson", lesson_id))

    def lesson_ended(self, lesson_id: uuid.UUID, facts: dict, version: int) -> None:
        """The journal ended the lesson as of ``version`` (LessonInfo.ended_after), a call under way or not."""

        def command() -> None:
            info = self.find(LessonInfo, LessonInfo.create_id(lesson_id))
            if info is None:  # the end came first: its facts are the lesson's as of its version
                info = LessonInfo(lesson_id=lesson_id, facts=facts, version=version)
            if getattr(info, "ended_version", 0) >= version:  # as late an end is kept already
                return
            info.end_requested(version)
            self.save(info)

        self.retrying(command, ("lesson", lesson_id))

    def lesson_call(self, lesson_id: uuid.UUID) -> Call | None:
        info = self.find(LessonInfo, LessonInfo.create_id(lesson_id))
        return self.find(Call, info.call_id) if info and info.call_id else None

    def lesson_info(self, lesson_id: uuid.UUID) -> LessonInfo | None:
        return self.find(LessonInfo, LessonInfo.create_id(lesson_id))
