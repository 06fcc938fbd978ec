"""The e-journal's published remote lessons, kept so that their teacher can start their calls (CA-2, CA-7, EJ-5)."""

from __future__ import annotations

import uuid

from calls.application.base import CallsBase
from calls.domain import Call, LessonInfo
from shared.store import once_per_event


class Lessons(CallsBase):
    @once_per_event
    def record_lesson(self, lesson_id: uuid.UUID, facts: dict, cancelled: bool, *, event_id: str) -> bool:
        """Keep a lesson's facts, once per event, with the event's id."""
        return self._keep_lesson(lesson_id, facts, cancelled, event_id)

    def keep_lesson(self, lesson_id: uuid.UUID, facts: dict, cancelled: bool = False) -> bool:
        """Keep a lesson's facts (the caller records its event itself)."""
        return self._keep_lesson(lesson_id, facts, cancelled, None)

    def _keep_lesson(self, lesson_id: uuid.UUID, facts: dict, cancelled: bool, event_id: str | None) -> bool:
        def command() -> bool:
            info = self.find(LessonInfo, LessonInfo.create_id(lesson_id))
            if info is None:
                info = LessonInfo(lesson_id=lesson_id, facts=facts)
            elif info.facts != facts:
                info.update(facts=facts)
            if cancelled and info.facts.get("remote"):
                info.update(facts={**facts, "remote": False})
            if event_id is not None:
                return self.process_once(event_id, info)
            self.save(info)
            return True

        return self.retrying(command, ("lesson", lesson_id))

    def lesson_call(self, lesson_id: uuid.UUID) -> Call | None:
        info = self.find(LessonInfo, LessonInfo.create_id(lesson_id))
        return self.find(Call, info.call_id) if info and info.call_id else None

    def lesson_info(self, lesson_id: uuid.UUID) -> LessonInfo | None:
        return self.find(LessonInfo, LessonInfo.create_id(lesson_id))
