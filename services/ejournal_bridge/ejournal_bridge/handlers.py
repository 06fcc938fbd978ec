"""The e-journal bridge's event handlers (its own events, through the outbox): each reads the event and calls a
typed application method with plain values and the event's id (the application knows no CloudEvent)."""

from __future__ import annotations

from ejournal_bridge.application import BridgeApplication, ChatSink
from shared.contracts import CloudEvent


def on_webhook_accepted(app: BridgeApplication, event: CloudEvent, chats: ChatSink | None = None) -> bool:
    """A stored delivery: applied to the mirror once (with the event's id), then the chats it touched."""
    return app.process_delivery(event.data["delivery_id"], event.id, chats=chats)


def on_replay_requested(app: BridgeApplication, event: CloudEvent, chats: ChatSink | None = None) -> dict:
    return app.replay_inbox(event.data["provider_id"], chats=chats, replay_id=event.data["replay_id"])


def on_resync_requested(app: BridgeApplication, event: CloudEvent, chats: ChatSink | None = None) -> dict:
    """A bind's resync, resumed from its last step when this is a redelivery (issue #17)."""
    data = event.data
    return app.run_school_resync(data["provider_id"], data["external_org_id"], data["resync_id"], chats=chats)


def on_account_linked(app: BridgeApplication, event: CloudEvent, chats: ChatSink | None = None) -> int:
    """EJ-3, EJ-4: the person's chats and organizations follow the link."""
    return app.refresh_person(event.data["provider_id"], event.data["external_person_id"], chats=chats)


on_account_unlinked = on_account_linked  # the same: the person's chats and organizations follow the unlink
