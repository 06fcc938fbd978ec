"""Reports to the school's admins (moderation): anyone in a chat reports a message; an admin keeps or removes it."""

from __future__ import annotations

import uuid

from messaging.application.base import Base
from messaging.domain import Report
from shared.clock import utcnow
from shared.errors import Conflict, Gone, Invalid, NotFound


class Reports(Base):
    def report(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int, reason: str) -> Report:
        """Anyone in a chat reports a message to the admins of the chat's school (for a
        dialog: of every school both people belong to)."""
        reason = reason.strip()
        if not 1 <= len(reason) <= 1000:
            raise Invalid("report.invalid_reason", "Say in 1 to 1000 characters what is wrong.")
        chat = self.chat(chat_id)
        self.check_member(chat, actor_id)
        message = self._page_of(chat_id, seq).message(seq)
        if message["deleted"]:
            raise Gone("message.deleted", "This message was deleted.")
        author = message["author_id"]
        if author == str(actor_id):
            raise Invalid("report.own_message", "You cannot report your own message.")
        if chat.organization_id is not None:
            organizations = [str(chat.organization_id)]
        else:
            organizations = sorted({str(c.organization_id) for c in self.shared_chats(actor_id, uuid.UUID(author))
                                    if c.organization_id is not None}) if author else []
        if not organizations:
            raise Invalid("report.no_school", "This chat belongs to no school to report to.")

        def command() -> Report:
            pending: dict = {}
            report = Report(organization_ids=organizations, chat_id=chat_id, seq=seq,
                            message_id=uuid.UUID(message["message_id"]),
                            author_id=uuid.UUID(author) if author else None, text=message["text"],
                            reported_by=actor_id, reason=reason, filed_at=utcnow())
            for organization in organizations:
                self._org_roster(uuid.UUID(organization), pending).receive_report(report.id)
            self.save(report, *pending.values())
            return report

        return self.retrying(command, ("org", organizations[0]))

    def reports(self, admin_id: uuid.UUID, organization_id: uuid.UUID, open_only: bool = True) -> list[Report]:
        roster = self._admin_roster(admin_id, organization_id)
        found = [self.find(Report, uuid.UUID(r)) for r in reversed(roster.reports)]
        return [r for r in found if r is not None and not (open_only and r.resolution)]

    def resolve_report(self, admin_id: uuid.UUID, report_id: uuid.UUID, resolution: str) -> Report:
        """An admin dismisses a report or removes the message (a trace stays)."""
        if resolution not in ("dismissed", "message_removed"):
            raise Invalid("report.invalid_resolution", "dismissed or message_removed.")

        def command() -> Report:
            report = self.find(Report, report_id)
            if report is None or not any(self._admin_of(admin_id, uuid.UUID(o)) for o in report.organization_ids):
                raise NotFound("report.not_found", "No such report.")
            if report.resolution:
                raise Conflict("report.resolved", "This report is already resolved.",
                               {"resolution": report.resolution})
            if resolution == "message_removed":
                page = self._page_of(report.chat_id, report.seq)
                if not page.message(report.seq)["deleted"]:
                    page.delete(report.seq, admin_id, utcnow())
                    self.save(page)
            report.resolve(resolution, admin_id)
            self.save(report)
            return report

        return self.retrying(command, ("report", report_id))
