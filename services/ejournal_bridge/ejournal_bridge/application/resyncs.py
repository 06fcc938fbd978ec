"""Binding a school and the resync it starts (issue #17): the bind answers at once with the binding recorded and a
resync requested in the same save; the resync runs from the request's own event (``SchoolResyncRequested``, through
the outbox and a consumer), in steps whose progress ``SchoolResync`` records: resumable after a crash, idempotent
(chats already sent are not sent again, memberships already told not told again), its state to read."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from ejournal_bridge.application.base import BridgeBase, ChatSink, log
from ejournal_bridge.domain import Provider, SchoolResync
from ejournal_bridge.readmodel import classes_of
from shared.clock import utcnow
from shared.errors import NotFound

RESYNC_CLASSES_STEP = 5  # classes whose chats one step sends (each step's progress recorded)
RESYNC_PEOPLE_STEP = 50  # linked people told to school per step


class Superseded(Exception):
    """A later bind asked for another resync of the school: this one stops."""


class Resyncs(BridgeBase):
    def bind_school(self, provider_id: uuid.UUID, external_org_id: str,
                    organization_id: uuid.UUID) -> tuple[Provider, SchoolResync]:
        """A journal's school is a platform organization: its chats belong to it (admins moderate them). The
        binding and the request for its resync are one save; the resync runs in the background."""
        def command() -> tuple[Provider, SchoolResync]:
            provider = self.provider(provider_id)
            provider.bind_school(external_org_id, organization_id)
            key = SchoolResync.create_id(provider_id, external_org_id)
            resync = self.find(SchoolResync, key) or SchoolResync(provider_id=provider_id,
                                                                   external_org_id=external_org_id)
            resync.request(uuid.uuid4(), organization_id, utcnow())
            self.save(provider, resync)
            return provider, resync

        return self.retrying(command, ("provider", provider_id))

    def school_resync(self, provider_id: uuid.UUID, external_org_id: str) -> SchoolResync:
        """The binding of a school and its resync's progress."""
        self.provider(provider_id)
        found = self.find(SchoolResync, SchoolResync.create_id(provider_id, external_org_id))
        if found is None or found.resync_id is None:
            raise NotFound("binding.not_found", "This school of the e-journal is not bound.",
                           {"external_org_id": external_org_id})
        return found

    def school_resyncs(self, provider_id: uuid.UUID, external_org_ids: list[str]) -> list[SchoolResync]:
        found = (self.find(SchoolResync, SchoolResync.create_id(provider_id, o)) for o in external_org_ids)
        return [r for r in found if r is not None and r.resync_id is not None]

    def _resync_step(self, provider_id: uuid.UUID, external_org_id: str, resync_id: uuid.UUID,
                     change: Callable[[SchoolResync], None]) -> SchoolResync:
        def command() -> SchoolResync:
            resync = self.find(SchoolResync, SchoolResync.create_id(provider_id, external_org_id))
            if resync is None or resync.resync_id != resync_id:
                raise Superseded()
            change(resync)
            self.save(resync)
            return resync

        return self.retrying(command, ("provider", provider_id))

    def run_school_resync(self, provider_id: uuid.UUID, external_org_id: str, resync_id: uuid.UUID,
                          chats: ChatSink | None = None) -> dict:
        """The resync a bind asked for: every linked person's organizations told to school, then every class of
        the bound school (not the region's others): its chats (what changed) to messaging, step by step from where
        the last run stopped. A repeat of a finished or superseded request does nothing. A failure is recorded (and
        raised: the consumer tries again, which resumes)."""
        provider_id, resync_id = uuid.UUID(str(provider_id)), uuid.UUID(str(resync_id))
        resync = self.find(SchoolResync, SchoolResync.create_id(provider_id, external_org_id))
        if resync is None or resync.resync_id != resync_id or resync.state == "done":
            return {"state": "skipped"}
        step = lambda change: self._resync_step(provider_id, external_org_id, resync_id, change)  # noqa: E731
        try:
            with self.read_model.reading() as db:  # not the whole log (issue #17)
                classes = sorted(classes_of(db, provider_id, external_org_id))  # the bound school's only
            people = sorted(set(self.linked_external_ids(provider_id)))
            resync = step(lambda r: r.start(len(people), len(classes)))
            people = [p for p in people if resync.people_cursor is None or p > resync.people_cursor]
            for start in range(0, len(people), RESYNC_PEOPLE_STEP):
                chunk = people[start:start + RESYNC_PEOPLE_STEP]
                self.announce_memberships(provider_id, chunk)
                resync = step(lambda r, chunk=chunk: r.people_progressed(chunk[-1], len(chunk)))
            classes = [c for c in classes if resync.classes_cursor is None or c > resync.classes_cursor]
            for start in range(0, len(classes), RESYNC_CLASSES_STEP):
                chunk = classes[start:start + RESYNC_CLASSES_STEP]
                sent = self.sync_chats(provider_id, chunk, chats)
                resync = step(lambda r, chunk=chunk, sent=sent: r.classes_progressed(chunk[-1], len(chunk), sent))
            resync = step(lambda r: r.finish(utcnow()))
        except Superseded:
            return {"state": "superseded"}
        except Exception as exc:
            log.warning("school resync failed", extra={"provider": str(provider_id), "org": external_org_id,
                                                       "error": repr(exc)[:300]})
            reason = f"{type(exc).__name__}: {exc}"[:500]
            try:
                step(lambda r: r.fail(reason, utcnow()))
            except Superseded:
                return {"state": "superseded"}
            raise
        return {"state": resync.state, "people": resync.people_done, "classes": resync.classes_done,
                "chats_sent": resync.chats_sent}
