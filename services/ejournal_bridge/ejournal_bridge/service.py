"""ejournal_bridge's nameko entrypoints: providers (operators), webhooks into the
inbox, account linking, and the consumers that process the inbox and keep the
chats in line through messaging's command (EJ-1..EJ-5, CH-2)."""

from __future__ import annotations

from datetime import timedelta

from ejournal_bridge import handlers
from ejournal_bridge.application import BridgeApplication, parse_time
from ejournal_bridge.journal import HttpJournalClient
from ejournal_bridge.views import binding_view, link_view, provider_created, provider_detail, provider_view
from shared.bus.consumer import consume_event, consume_event_one_at_a_time
from shared.clock import utcnow
from shared.contracts import CloudEvent
from shared.contracts.api import ejournal_bridge as schemas
from shared.rpc import TransientRpcProxy
from shared.service import EventSourcedApp, Observability, rpc, to_id

# A lesson's call may run before or after its slot (started early, overrunning): look this far either side of now.
LESSON_CALL_LOOKBACK = timedelta(hours=12)


class BridgeService:
    name = "ejournal_bridge"

    app: BridgeApplication = EventSourcedApp(BridgeApplication, journal=HttpJournalClient())
    observability = Observability()
    messaging = TransientRpcProxy("messaging")
    calls = TransientRpcProxy("calls")
    school = TransientRpcProxy("school")

    def _operator(self, actor_id: str) -> None:
        """operator.required unless ``actor_id`` is a platform operator: school decides who is (its console and
        ``python -m ejournal_bridge.operator`` work on the stores themselves; nothing on the broker passes here
        without an operator's id, whatever the gateway checked)."""
        self.school.require_operator(actor_id=actor_id)

    def chats(self, specs: list[dict]) -> list[dict]:
        return self.messaging.define_system_chats(chats=specs)

    @rpc
    def ping(self) -> dict:
        """Liveness through RPC: answers with the store's head position."""
        return {"service": self.name, "position": self.app.process_recorder.max_notification_id() or 0}

    # -- providers (operators: each command checks its actor with school) --------------------------------------
    @rpc
    def register_provider(self, actor_id: str, provider: dict, webhook_base: str) -> dict:
        self._operator(actor_id)
        created, secret = self.app.register_provider(schemas.ProviderInput().load_command(provider))
        return provider_created(created, webhook_base, secret)

    @rpc
    def providers(self, region: str | None = None) -> list[dict]:
        return [provider_view(p) for p in self.app.providers(region)]

    @rpc
    def provider_detail(self, actor_id: str, provider_id: str, webhook_base: str) -> dict:
        self._operator(actor_id)
        provider = self.app.provider(to_id(provider_id, "provider.not_found"))
        return provider_detail(provider, f"{webhook_base}/{provider.id}",
                               self.app.school_resyncs(provider.id, sorted(provider.schools)))

    @rpc
    def rotate_secret(self, actor_id: str, provider_id: str, grace_seconds: int) -> dict:
        self._operator(actor_id)
        grace = timedelta(seconds=grace_seconds)
        secret = self.app.rotate_secret(to_id(provider_id, "provider.not_found"), grace)
        provider = self.app.provider(to_id(provider_id))
        previous = [s["valid_until"] for s in provider.secrets if s["valid_until"]]
        return {"webhook_secret": secret, "previous_valid_until": max(previous)}

    @rpc
    def bind_school(self, actor_id: str, provider_id: str, external_org_id: str, organization_id: str) -> dict:
        """The binding recorded and its resync requested: it runs in the background (``on_resync_requested``,
        issue #17: a whole school's resync inside the RPC outlasted its timeout); its progress is the binding's."""
        self._operator(actor_id)
        _, resync = self.app.bind_school(to_id(provider_id, "provider.not_found"), external_org_id,
                                         to_id(organization_id, "organization.not_found"))
        return binding_view(resync)

    @rpc
    def school_binding(self, actor_id: str, provider_id: str, external_org_id: str) -> dict:
        self._operator(actor_id)
        return binding_view(self.app.school_resync(to_id(provider_id, "provider.not_found"), external_org_id))

    # One at a time like the deliveries (a resync takes the provider's lock step by step).
    @consume_event_one_at_a_time("ejournal_bridge.SchoolResyncRequested.v1")
    def on_resync_requested(self, event: CloudEvent) -> dict:
        return handlers.on_resync_requested(self.app, event, self.chats)

    @rpc
    def request_replay(self, actor_id: str, provider_id: str) -> dict:
        self._operator(actor_id)
        return {"replay_id": str(self.app.request_replay(to_id(provider_id, "provider.not_found")))}

    @consume_event_one_at_a_time("ejournal_bridge.InboxReplayRequested.v1")
    def on_replay_requested(self, event: CloudEvent) -> dict:
        return handlers.on_replay_requested(self.app, event, self.chats)

    # -- webhooks --------------------------------------------------------------------------------------------
    @rpc
    def receive_webhook(self, provider_id: str, timestamp: str, signature: str, body: str) -> dict:
        delivery, duplicate = self.app.receive_webhook(to_id(provider_id, "provider.not_found"), timestamp,
                                                       signature, body.encode())
        return {"delivery_id": str(delivery.id), "duplicate": duplicate}

    # Deliveries take the provider's lock in turn: one at a time, they leave the other workers to RPCs (issue #17).
    @consume_event_one_at_a_time("ejournal_bridge.WebhookAccepted.v1")
    def on_webhook_accepted(self, event: CloudEvent) -> bool:
        return handlers.on_webhook_accepted(self.app, event, self.chats)

    # -- one's timetable with the calls under way (EJ-5, SC-13) -----------------------------------------------
    @rpc
    def my_lessons(self, actor_id: str, start: str | None = None, end: str | None = None) -> list[dict]:
        """The person's lessons in the window, each with its running call and what they can do:
        ``join`` a call under way they may enter, ``start`` a published remote lesson they teach."""
        rows = self.app.lessons_of(to_id(actor_id), parse_time(start) if start else None,
                                   parse_time(end) if end else None)
        running = self.calls.lesson_calls(actor_id, [str(r["lesson_id"]) for r in rows]) if rows else {}
        for row in rows:
            call = running.get(str(row["lesson_id"]))
            row["call"] = call
            row["actions"] = (["join"] if call and call["may_join"] else []) + (
                ["start"] if row["teaching"] and row["remote"] and row["published"] and not call else [])
        return schemas.MyLesson(many=True).dump(rows)

    @rpc
    def lessons_under_way(self, actor_id: str) -> list[dict]:
        """Today's lessons of the person whose call is running now (the dashboard, SC-13)."""
        now = utcnow()
        return [row for row in self.my_lessons(actor_id, (now - LESSON_CALL_LOOKBACK).isoformat(),
                                               (now + LESSON_CALL_LOOKBACK).isoformat()) if row["call"]]

    @rpc
    def lesson_chat_key(self, provider_id: str, external_lesson_id: str) -> dict:
        return {"key": self.app.lesson_chat_key(to_id(provider_id, "provider.not_found"), external_lesson_id)}

    # -- account linking (EJ-1, EJ-2) --------------------------------------------------------------------------
    @rpc
    def start_link(self, actor_id: str, provider_id: str, redirect_uri: str, login_hint: str | None = None) -> dict:
        attempt, url = self.app.start_link(to_id(actor_id), to_id(provider_id, "provider.not_found"), redirect_uri,
                                           login_hint)
        return {"authorize_url": url, "expires_at": attempt.expires_at.isoformat()}

    @rpc
    def finish_link(self, actor_id: str, state: str, code: str, redirect_uri: str) -> dict:
        return link_view(self.app.finish_link(to_id(actor_id), state, code, redirect_uri))

    @rpc
    def links(self, actor_id: str) -> list[dict]:
        return [link_view(link) for link in self.app.links_of(to_id(actor_id))]

    @rpc
    def unlink(self, actor_id: str, provider_id: str) -> None:
        self.app.unlink(to_id(actor_id), to_id(provider_id, "link.not_found"))

    @consume_event("ejournal_bridge.EjournalAccountLinked.v1")
    def on_account_linked(self, event: CloudEvent) -> int:
        return handlers.on_account_linked(self.app, event, self.chats)

    @consume_event("ejournal_bridge.EjournalAccountUnlinked.v1")
    def on_account_unlinked(self, event: CloudEvent) -> int:
        return handlers.on_account_unlinked(self.app, event, self.chats)
