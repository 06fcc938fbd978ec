"""Account linking: OAuth 2 authorization code with PKCE (EJ-1, EJ-2); after a link or unlink the person's
chats and organizations follow."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from typing import Any
from urllib.parse import urlencode

from ejournal_bridge.application.base import BridgeBase, ChatSink
from ejournal_bridge.domain import LINK_ATTEMPT_TTL, AccountLink, JournalPerson, LinkAttempt
from shared.clock import utcnow
from shared.errors import Forbidden, NotFound
from shared.links import link_id_from_token, link_token


class Links(BridgeBase):
    def start_link(self, user_id: uuid.UUID, provider_id: uuid.UUID, redirect_uri: str,
                   login_hint: str | None = None) -> tuple[LinkAttempt, str]:
        """The e-journal's sign-in page to send the person to (from the platform or the journal's side)."""
        provider = self.provider(provider_id)
        verifier = secrets.token_urlsafe(48)
        attempt = LinkAttempt(user_id=user_id, provider_id=provider_id, code_verifier=verifier,
                              expires_at=utcnow() + LINK_ATTEMPT_TTL)
        self.save(attempt)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = {"response_type": "code", "client_id": provider.client_id, "redirect_uri": redirect_uri,
                 "state": link_token("ejournal-link", attempt.id), "code_challenge": challenge,
                 "code_challenge_method": "S256", "scope": "profile"}
        if login_hint:
            query["login_hint"] = login_hint
        return attempt, f"{provider.base_url}/oauth/authorize?{urlencode(query)}"

    def finish_link(self, actor_id: uuid.UUID, state: str, code: str, redirect_uri: str) -> AccountLink:
        """The journal sent the person back with a code: exchange it, learn who they are there, link.

        Only the account that started the attempt finishes it (EJ-1), checked before the code is spent: the
        attempt's ``state`` travels in a URL anyone can forward. Finished by whoever came back with it, a stranger
        who started a link and sent its address to a pupil became that pupil here once the pupil signed in at the
        journal (their class chats, their timetable; the pupil's own link cut: one person, one account)."""
        attempt_id = link_id_from_token("ejournal-link", state or "")
        attempt = self.find(LinkAttempt, attempt_id) if attempt_id else None
        if attempt is None:
            raise NotFound("link.not_found", "This sign-in is not one of ours; start again.")
        if attempt.user_id != actor_id:
            raise Forbidden("link.not_yours", "This link to the e-journal was started from another account: "
                                              "start linking from your own account.")
        attempt.check_open(utcnow())
        provider = self.provider(attempt.provider_id)
        token = self.journal.exchange_code(provider, code, redirect_uri, attempt.code_verifier,
                                           self.open_client_secret(provider))
        me = self.journal.me(provider, token)
        external_id, role = me["sourcedId"], me["role"]

        def command() -> AccountLink:
            fresh = self.find(LinkAttempt, attempt.id)
            fresh.check_open(utcnow())
            pending: dict = {fresh.id: fresh}
            fresh.finish(external_id)
            now = utcnow()
            link = self.find(AccountLink, AccountLink.create_id(attempt.user_id, provider.id))
            if link is not None and link.active and link.external_person_id != external_id:
                # This account was someone else there before: that person is no longer linked to it.
                self._person(pending, provider.id, link.external_person_id).link(None)
                link.unlink(now)
            person = self._person(pending, provider.id, external_id)
            if person.user_id and person.user_id != attempt.user_id:
                # That journal person was linked to another account: one person, one account.
                other = self.find(AccountLink, AccountLink.create_id(person.user_id, provider.id))
                if other is not None and other.active:
                    other.unlink(now)
                    pending[other.id] = other
            if person.user_id != attempt.user_id:
                person.link(attempt.user_id)
            if link is None:
                link = AccountLink(user_id=attempt.user_id, provider_id=provider.id, region=provider.region,
                                   external_person_id=external_id, role=role, linked_at=now)
            else:
                link.relink(external_id, role, now)
            pending[link.id] = link
            self._note_linked(pending, provider.id)
            self.save(*pending.values())
            return link

        return self.retrying(command, ("provider", provider.id))

    def links_of(self, user_id: uuid.UUID) -> list[AccountLink]:
        found = [self.find(AccountLink, AccountLink.create_id(user_id, p.id)) for p in self.providers()]
        return [link for link in found if link is not None and link.active]

    def unlink(self, user_id: uuid.UUID, provider_id: uuid.UUID) -> None:
        def command() -> None:
            link = self.find(AccountLink, AccountLink.create_id(user_id, provider_id))
            if link is None or not link.active:
                raise NotFound("link.not_found", "This account is not linked to that e-journal.")
            link.unlink(utcnow())
            person = self.find(JournalPerson, JournalPerson.create_id(provider_id, link.external_person_id))
            changed: dict[uuid.UUID, Any] = {link.id: link}
            if person is not None and person.user_id == user_id:
                person.link(None)
                changed[person.id] = person
            self._note_linked(changed, provider_id)
            self.save(*changed.values())

        self.retrying(command, ("provider", provider_id))

    def refresh_person(self, provider_id: uuid.UUID, external_person_id: str,
                       chats: ChatSink | None = None) -> int:
        """After a link or unlink: the chats of the person's classes (EJ-3: the class
        teacher's three appear at once; students and parents land in theirs, EJ-4)."""
        pending: dict = {}
        person = self._person(pending, provider_id, external_person_id)
        sent = self.sync_chats(provider_id, self._classes_of(person, pending), chats)
        self.announce_memberships(provider_id, [external_person_id])
        return sent
