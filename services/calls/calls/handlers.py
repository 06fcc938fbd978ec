"""calls's event handlers: each reads an integration event and calls a typed application method with plain
values and the event's id (the application knows no CloudEvent)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from calls.application import CallsApplication
from calls.nodes import NodeRegistry
from shared.contracts import CloudEvent
from shared.errors import DomainError
from shared.observability import metrics

log = logging.getLogger("calls")

LESSON_FACTS = ("organization_id", "class_id", "subject", "teacher_user_id", "provider_id", "external_class_id",
                "external_teacher_id", "external_lesson_id", "remote")


def _call_id(event: CloudEvent) -> uuid.UUID:
    return uuid.UUID(str(event.data["call_id"]))


def on_participant_connected(app: CallsApplication, event: CloudEvent) -> bool:
    return app.participant_connected(_call_id(event), str(event.data.get("user_id") or ""), event_id=event.id,
                                     node=event.data.get("node"), sequence=event.sequence)


def on_participant_disconnected(app: CallsApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.participant_disconnected(_call_id(event), str(data.get("user_id") or ""), data.get("reason"),
                                        event_id=event.id, node=data.get("node"), sequence=event.sequence)


def on_recording_written(app: CallsApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.recording_written(_call_id(event), data["recording_id"], data["blob_key"], data["size"],
                                 data["media_type"], data["duration"], data["file_name"], event_id=event.id)


def lesson_facts(event: CloudEvent) -> tuple[uuid.UUID, dict, bool]:
    """A lesson event's lesson id, the facts calls keeps of it, and whether it was cancelled."""
    data = event.data
    facts = {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in data.items() if k in LESSON_FACTS}
    return uuid.UUID(str(data["lesson_id"])), facts, event.contract.name == "LessonCancelled"


def on_lesson(app: CallsApplication, event: CloudEvent) -> bool:
    """LessonPublished, LessonRescheduled, LessonCancelled: keep the published remote lessons."""
    lesson_id, facts, cancelled = lesson_facts(event)
    return app.record_lesson(lesson_id, facts, cancelled, event_id=event.id, sequence=event.sequence)


# What refuses a journal's start for good (the request is then recorded as handled); any other error retries it.
LESSON_START_REFUSALS = frozenset({"lesson.not_found", "lesson.teacher_not_linked", "lesson.class_not_linked",
                                   "lesson.ended_since", "call.subject_busy"})


def on_lesson_start_requested(app: CallsApplication, event: CloudEvent,
                              lesson_chat: Callable[[str, dict], uuid.UUID | None]) -> bool:
    """The teacher launched the lesson from the journal: start its call unless one is under way (CA-8).
    ``lesson_chat(teacher_user_id, facts)``: the lesson's subject chat, messaging's knowledge."""
    if app.already_processed(event.id):  # the call's start is not what process_once records: check first
        return False
    lesson_id, facts, cancelled = lesson_facts(event)
    app.keep_lesson(lesson_id, facts, cancelled, event.sequence)
    teacher, info = event.data.get("teacher_user_id"), app.lesson_info(lesson_id)
    if info.ended_after(event.sequence):  # the journal ended it after this was asked (messaging not asked; the
        # command checks again on what it writes: start_lesson's asked_as_of)
        log.info("lesson call not started", extra={"lesson_id": str(lesson_id), "code": "lesson.ended_since"})
    elif teacher:
        chat_id = lesson_chat(str(teacher), info.facts)
        try:  # the call and the request's record in one transaction: a redelivery starts no second call
            return app.start_lesson(None, lesson_id, chat_id, by_journal=True, asked_as_of=event.sequence,
                                    event_id=event.id) is not None
        except DomainError as exc:
            if exc.code not in LESSON_START_REFUSALS:
                raise  # e.g. request.busy (the store's retries ran out): the event is retried, not dropped
            log.info("lesson call not started", extra={"lesson_id": str(lesson_id), "code": exc.code})
    return app.process_once(event.id)


def on_lesson_end_requested(app: CallsApplication, event: CloudEvent) -> bool:
    """CA-7: the lesson was ended from the journal (confirmed there): end its call for everyone."""
    if app.already_processed(event.id):
        return False
    lesson_id = uuid.UUID(str(event.data["lesson_id"]))
    if event.sequence is not None:  # kept with no call too: a start asked before it, coming after, starts nothing
        app.lesson_ended(lesson_id, lesson_facts(event)[1], event.sequence)
    call = app.lesson_call(lesson_id)
    if call is not None and not call.ended:
        app.end(None, call.id, "ended_from_journal")
    return app.process_once(event.id)


def on_node_heartbeat(nodes: NodeRegistry, event: CloudEvent) -> None:
    """An SFU node is alive (issue #17): the registry of this calls process hears it."""
    data = event.data
    nodes.heard(data["node"], data["url"], [str(c) for c in data.get("calls") or []], data.get("participants") or 0,
                data.get("boot"))


def lose_dead_nodes(app: CallsApplication, nodes: NodeRegistry) -> int:
    """The calls of the nodes that fell silent (or started again, their rooms gone) lose their participants (a
    rejoin goes to a live node)."""
    retries = nodes.take_uncleared()  # before this check adds its own failures: those wait for the next
    gone = 0
    for node, calls in nodes.newly_dead():
        metrics.sfu_nodes_lost.inc()
        log.warning("sfu node dead", extra={"node": node, "calls": len(calls)})
        gone += _clear_node(app, nodes, node, calls)
    for node, calls in retries:
        gone += _clear_node(app, nodes, node, calls)
    metrics.sfu_nodes_live.set(len(nodes.live()))
    return gone


def _clear_node(app: CallsApplication, nodes: NodeRegistry, node: str, calls: set[str]) -> int:
    """The calls of a dead node lose their participants; those that failed are tried again at the next check (the
    node is named dead once)."""
    gone, failed = 0, set()
    for call_id in calls:
        try:
            gone += len(app.node_lost(uuid.UUID(call_id), node))
        except Exception:  # one call's failure must not keep the others' people seated
            log.exception("node_lost failed", extra={"node": node, "call_id": call_id})
            failed.add(call_id)
    if failed:
        nodes.not_cleared(node, failed)
    return gone
