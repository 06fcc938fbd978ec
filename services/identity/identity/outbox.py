"""Which of identity's domain events become integration events (mapping only)."""

from __future__ import annotations

from collections.abc import Iterable

from identity.domain import Account, ParentLinks, Session

Published = tuple[str, dict, str | None]


def to_integration_events(e: object) -> Iterable[Published]:
    if isinstance(e, Account.Registered):
        yield "identity.UserRegistered.v1", {
            "user_id": e.originator_id, "phone": e.phone, "email": e.email, "registered_via": e.registered_via,
            "invite_token": e.invite_token, "registered_at": e.timestamp,
        }, str(e.originator_id)
    elif isinstance(e, Account.ProfileUpdated):
        yield "identity.ProfileUpdated.v1", {
            "user_id": e.originator_id, "last_name": e.last_name, "first_name": e.first_name,
            "patronymic": e.patronymic, "birth_date": e.birth_date, "sex": e.sex, "updated_by": e.updated_by,
            "updated_at": e.timestamp,
        }, str(e.originator_id)
    elif isinstance(e, Account.PhoneDetached):
        yield "identity.PhoneDetached.v1", {
            "user_id": e.originator_id, "new_user_id": e.new_account_id, "detached_at": e.detached_at,
        }, str(e.originator_id)
    elif isinstance(e, ParentLinks.ParentLinked):
        yield "identity.ParentLinked.v1", {
            "link_id": e.link_id, "parent_user_id": e.parent_id, "child_user_id": e.child_id,
            "parent_number": e.parent_number, "consent_given_at": e.consent_given_at,
            "linked_at": e.linked_at,
        }, None
    elif isinstance(e, ParentLinks.ParentUnlinked):
        yield "identity.ParentUnlinked.v1", {
            "link_id": e.link_id, "parent_user_id": e.parent_id, "child_user_id": e.child_id,
            "unlinked_by": e.unlinked_by, "unlinked_at": e.unlinked_at,
        }, None
    elif isinstance(e, Session.Revoked):
        yield "identity.SessionEnded.v1", {
            "session_id": e.originator_id, "reason": e.reason, "ended_at": e.at,
        }, None
