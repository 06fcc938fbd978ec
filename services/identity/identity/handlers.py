"""What identity does on other services' events: each ``on_<event>`` reads the event's data and calls the
application with plain values and the event's id (the application knows no CloudEvent; ``@once_per_event`` on
its methods applies each event once)."""

from __future__ import annotations

from identity.application import IdentityApplication
from shared.contracts import CloudEvent


# -- memberships from school ------------------------------------------------------------------------
def on_member_joined(app: IdentityApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.add_membership(data["user_id"], data["organization_id"], data["role"], data.get("class_id"),
                              event_id=event.id)


def on_member_left(app: IdentityApplication, event: CloudEvent) -> bool:
    return app.end_membership(event.data["user_id"], event.data["organization_id"], event_id=event.id)


# -- who shares a chat, from messaging (ID-7) ----------------------------------------------------------
def on_chat_members(app: IdentityApplication, event: CloudEvent) -> bool:
    """ChatCreated (``member_ids``) and ChatMembersChanged (``added``, ``removed``)."""
    data = event.data
    return app.track_chat_members(str(data["chat_id"]), data.get("member_ids") or data.get("added") or [],
                                  data.get("removed") or [], event_id=event.id)


on_chat_created = on_chat_members_changed = on_chat_members


# -- the e-journal bridge (EJ-2) -----------------------------------------------------------------------
def on_journal_account_linked(app: IdentityApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.confirm_journal_teacher(data["user_id"], data["role"], data["provider_id"], data["region"],
                                       event_id=event.id)
