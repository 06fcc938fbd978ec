"""What identity does on other services' events: each ``on_<event>`` reads the event's data and calls the
application with plain values and the event's id (the application knows no CloudEvent; ``@once_per_event`` on
its methods applies each event once)."""

from __future__ import annotations

from identity.application import IdentityApplication
from shared.contracts import CloudEvent


# -- memberships from school ------------------------------------------------------------------------
# Each carries its time: an older report than the newest applied changes nothing (they come out of order).
def on_member_joined(app: IdentityApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.add_membership(data["user_id"], data["organization_id"], data["role"], data.get("class_id"),
                              data.get("roles") or [], data.get("joined_at"), event_id=event.id)


def on_member_role_changed(app: IdentityApplication, event: CloudEvent) -> bool:
    """SC-9: an admin changed the member's role or class; ``roles`` are all they hold there now."""
    data = event.data
    return app.change_membership(data["user_id"], data["organization_id"], data.get("roles") or [],
                                 data.get("class_id"), data.get("changed_at"), event_id=event.id)


def on_member_left(app: IdentityApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.end_membership(data["user_id"], data["organization_id"], data.get("left_at"), event_id=event.id)


# -- who shares a chat, from messaging (ID-7) ----------------------------------------------------------
def on_chat_members(app: IdentityApplication, event: CloudEvent) -> bool:
    """ChatCreated (``member_ids``) and ChatMembersChanged (``added``, ``removed``)."""
    data = event.data
    return app.track_chat_members(str(data["chat_id"]), data.get("member_ids") or data.get("added") or [],
                                  data.get("removed") or [], event_id=event.id, sequence=event.sequence)


on_chat_created = on_chat_members_changed = on_chat_members


# -- the e-journal bridge (EJ-2) -----------------------------------------------------------------------
def on_journal_account_linked(app: IdentityApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.confirm_journal_teacher(data["user_id"], data["role"], data["provider_id"], data["region"],
                                       data.get("linked_at"), event_id=event.id)


def on_journal_account_unlinked(app: IdentityApplication, event: CloudEvent) -> bool:
    """The account is no longer that journal person (unlinked, or the person linked another account)."""
    data = event.data
    return app.end_journal_link(data["user_id"], data["provider_id"], data.get("unlinked_at"), event_id=event.id)
