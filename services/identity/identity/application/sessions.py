"""Sessions (ID-8): refresh-token rotation with reuse detection, the list of one's sessions, signing out."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from identity.application.base import IdentityBase
from identity.domain import Session, SessionIndex, hash_code
from shared.clock import utcnow
from shared.errors import NotFound, Unauthorized
from shared.store import command

SESSION_IDLE_LIMIT = timedelta(days=30)


class Sessions(IdentityBase):
    def refresh_session(self, refresh_token: str, now: datetime | None = None) -> tuple[Session, str]:
        """Rotate the refresh token. A rotated token presented again means it leaked:
        the whole session is revoked and its holder must sign in again."""
        now = now or utcnow()
        session_id, _, secret = refresh_token.partition(".")
        try:
            session = self.get_as(Session, uuid.UUID(session_id), "auth.invalid_refresh", "")
        except (ValueError, NotFound):
            raise Unauthorized("auth.invalid_refresh", "This refresh token is not valid.") from None
        if not session.active:
            raise Unauthorized("auth.session_revoked", "This session was signed out; sign in again.")
        presented = hash_code(self.secret, session.salt, secret)
        if session.matches_current(presented):
            if now - session.last_used_at > SESSION_IDLE_LIMIT:
                session.revoke(now, "idle")
                self.save(session)
                raise Unauthorized("auth.session_expired", "This session was idle too long; sign in again.")
            new_secret = secrets.token_urlsafe(32)
            session.rotate(hash_code(self.secret, session.salt, new_secret), now)
            self.save(session)
            return session, f"{session.id}.{new_secret}"
        if session.was_rotated(presented):
            session.revoke(now, "refresh_token_reused")
            self.save(session)
            raise Unauthorized("auth.refresh_reused",
                               "This refresh token was already used; the session is signed out for safety.")
        raise Unauthorized("auth.invalid_refresh", "This refresh token is not valid.")

    def sessions_of(self, user_id: uuid.UUID) -> list[Session]:
        index = self.find(SessionIndex, SessionIndex.create_id(user_id))
        sessions = [self.repository.get(sid) for sid in (index.session_ids if index else [])]
        return sorted((s for s in sessions if s.active), key=lambda s: s.last_used_at, reverse=True)

    def session_is_active(self, session_id: uuid.UUID) -> bool:
        session = self.find(Session, session_id)
        return bool(session and session.active)

    @command
    def sign_out(self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime | None = None) -> None:
        session = self.find(Session, session_id)
        if session is None or session.user_id != user_id:
            raise NotFound("session.not_found", "No such session.")
        if session.active:
            session.revoke(now or utcnow(), "signed_out")
            self.save(session)

    @command
    def sign_out_everywhere(self, user_id: uuid.UUID, keep: uuid.UUID | None = None,
                            now: datetime | None = None) -> int:
        now = now or utcnow()
        ended = [s for s in self.sessions_of(user_id) if s.id != keep]
        for session in ended:
            session.revoke(now, "signed_out_everywhere")
        self.save(*ended)
        return len(ended)
