"""What messaging does on other services' events: each ``on_<event>`` reads the event's data
and calls the application with plain values and the event's id (the application knows no
CloudEvent; ``@once_per_event`` on its methods applies each event once)."""

from __future__ import annotations

import uuid

from messaging.application import MessagingApplication
from shared.contracts import CloudEvent


# -- people's names from identity (the chat list's filter: dialogs and inbox threads) ---------------------
def on_user_registered(app: MessagingApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.name_person(data["user_id"], data.get("last_name"), data.get("first_name"), data.get("patronymic"),
                           data["registered_at"], event_id=event.id)


def on_profile_updated(app: MessagingApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.name_person(data["user_id"], data["last_name"], data["first_name"], data.get("patronymic"),
                           data["updated_at"], event_id=event.id)


# -- rosters from school (CH-1, CH-2) ---------------------------------------------------------------
def on_organization_registered(app: MessagingApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.open_organization_chat(data["organization_id"], data["name"], data["registered_at"], event_id=event.id)


def on_organization_updated(app: MessagingApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.update_organization(data["organization_id"], data["name"], data.get("settings") or {},
                                   data["updated_at"], event_id=event.id, sequence=event.sequence)


def on_class_created(app: MessagingApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.open_class_chat(data["organization_id"], data["class_id"], data["name"], event_id=event.id)


def _membership(app: MessagingApplication, event: CloudEvent, left: bool) -> bool:
    """MemberJoined / MemberRoleChanged / MemberLeft carry the person's roles and class as they are now, and
    their membership's version (``sequence``): applied in its order."""
    data = event.data
    roles: list[str] = [] if left else (data.get("roles") or [data["role"]])
    return app.update_membership(data["organization_id"], data["user_id"], roles,
                                 None if left else data.get("class_id"), data.get("subjects") or {}, left,
                                 event_id=event.id, sequence=event.sequence,
                                 parent_classes=None if left else data.get("parent_classes"))


def on_member_joined(app: MessagingApplication, event: CloudEvent) -> bool:
    return _membership(app, event, left=False)


def on_member_role_changed(app: MessagingApplication, event: CloudEvent) -> bool:
    return _membership(app, event, left=False)


def on_member_left(app: MessagingApplication, event: CloudEvent) -> bool:
    return _membership(app, event, left=True)


def on_teacher_assigned(app: MessagingApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.assign_teacher(data["organization_id"], data["class_id"], data["user_id"], data["subjects"],
                              event_id=event.id, sequence=event.sequence)


# -- calls (CA-6) ---------------------------------------------------------------------------------------
def on_recording_ready(app: MessagingApplication, event: CloudEvent) -> bool:
    """A call's recording: posted into the call's chat (a call without a chat has nowhere to post it)."""
    data = event.data
    if data.get("chat_id") is None:
        return False
    return app.post_call_recording(uuid.UUID(str(data["chat_id"])), uuid.UUID(str(data["admin_id"])),
                                   data["duration"], data["file_name"], data["media_type"], data["size"],
                                   data["blob_key"], event_id=event.id)
