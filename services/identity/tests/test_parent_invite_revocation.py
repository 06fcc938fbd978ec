"""The child's link for parents after an unlink or a revocation (PL-2, PL-5), against every store.

An outside audit: unlinking a parent left the child's live link as it was, so whoever was removed (a stranger who
had taken the QR code, removed by the school's admin) came straight back with the same token as soon as the unlink
freed a place, and ``parent_invite`` kept showing that token, so nobody could change it."""

from __future__ import annotations

import threading
import uuid

import pytest

from identity.domain import ParentInvite, ParentLinks
from shared.errors import DomainError, Forbidden, Gone
from shared.store.testing import run_together

from .conftest import Identity

pytestmark = pytest.mark.integration


def a_child_with_a_stranger_linked(identity: Identity) -> dict:
    """A pupil of a school with its admin, and someone who took the pupil's QR code and confirmed it."""
    school = uuid.uuid4()
    child, admin, stranger = identity.person(), identity.person(), identity.person()
    identity.join(child, "student", school, uuid.uuid4())
    identity.join(admin, "admin", school)
    token = identity.app.parent_invite(child, now=identity.clock.now).token
    identity.app.confirm_parent_link(token, stranger, consent=True, now=identity.clock.now)
    return {"school": school, "child": child, "admin": admin, "stranger": stranger, "token": token}


def refused_as_revoked(identity: Identity, token: str, person: uuid.UUID) -> None:
    now = identity.clock.now
    for attempt in (lambda: identity.app.confirm_parent_link(token, person, consent=True, now=now),
                    lambda: identity.app.open_parent_invite(token, person, now=now),
                    lambda: identity.app.preview_parent_invite(token, now=now)):
        with pytest.raises(Gone) as info:
            attempt()
        assert info.value.code == "parent_link.revoked"


@pytest.mark.parametrize("by", ["admin", "stranger"])
def test_unlinking_a_parent_revokes_the_childs_link_and_the_next_one_is_new_PL_2_PL_5(identity, by):
    """The school's admin removes the stranger, or the stranger leaves: the token they used (still within its
    7 days) takes nobody back, neither them nor anyone else who holds it; the child is shown a new link."""
    w = a_child_with_a_stranger_linked(identity)
    identity.app.unlink_parent(w[by], w["child"], w["stranger"], now=identity.clock.advance(minutes=5))
    identity.clock.advance(hours=1)
    refused_as_revoked(identity, w["token"], w["stranger"])
    refused_as_revoked(identity, w["token"], identity.person())
    assert identity.app.children(w["stranger"]) == [] and identity.app.parents(w["child"]) == []
    fresh = identity.app.parent_invite(w["child"], now=identity.clock.now)
    assert fresh.token != w["token"] and fresh.invite.live(identity.clock.now)
    assert identity.app.parent_invite(w["child"], now=identity.clock.advance(minutes=1)).token == fresh.token
    mum = identity.person()
    identity.app.confirm_parent_link(fresh.token, mum, consent=True, now=identity.clock.now)
    assert [p["user_id"] for p in identity.app.parents(w["child"])] == [mum]


def test_unlinking_one_of_two_parents_revokes_the_used_up_link_too_PL_5(identity):
    """At two parents the link is used up (PL-5) but still within its days: the unlink that frees a place must not
    bring that very token back to life for whoever holds it."""
    w = a_child_with_a_stranger_linked(identity)
    mum = identity.person()
    identity.app.confirm_parent_link(w["token"], mum, consent=True, now=identity.clock.now)
    assert identity.app.parent_invite(w["child"], now=identity.clock.now).used_up
    identity.app.unlink_parent(w["admin"], w["child"], w["stranger"], now=identity.clock.advance(minutes=1))
    refused_as_revoked(identity, w["token"], w["stranger"])
    shown = identity.app.parent_invite(w["child"], now=identity.clock.now)
    assert not shown.used_up and shown.token != w["token"]


def interleave(identity: Identity, after: type, action) -> list:
    """Run ``action`` on another thread (its own command), and wait for it, right after the thread that set this up
    first reads an aggregate of class ``after``: a replica's save between two reads of this one's command."""
    find, this_thread, done = identity.app.find, threading.get_ident(), []

    def find_then_act(cls, aggregate_id):
        found = find(cls, aggregate_id)
        if cls is after and not done and threading.get_ident() == this_thread:
            done.append(run_together(action)[0])
        return found

    identity.app.find = find_then_act
    return done


@pytest.mark.parametrize("after, confirmer, action", [
    (ParentInvite, "stranger", "unlink"),
    (ParentInvite, "holder", "unlink"),
    (ParentLinks, "holder", "unlink"),
    (ParentInvite, "holder", "revoke"),
])
def test_a_confirmation_racing_an_unlink_or_a_revocation_links_nobody_with_the_old_link_PL_5(
        identity, after, confirmer, action):
    """A confirmation read the live invite (or the child's parents too) before the unlink (or the child's
    revocation) was saved, and decides after it: it must not link anyone with the link the unlink revoked. Both
    commands write the child's ParentLinks, whose invite generation the confirmation reads before deciding, so
    either it reads the new generation or its save conflicts and it runs again against it."""
    w = a_child_with_a_stranger_linked(identity)
    person = w["stranger"] if confirmer == "stranger" else identity.person()
    now = identity.clock.advance(minutes=5)
    done = interleave(identity, after, {
        "unlink": lambda: identity.app.unlink_parent(w["admin"], w["child"], w["stranger"], now=now),
        "revoke": lambda: identity.app.revoke_parent_invite(w["child"], w["child"], now=now)}[action])
    with pytest.raises(DomainError) as info:
        identity.app.confirm_parent_link(w["token"], person, consent=True, now=now)
    del identity.app.find
    assert done == [None], done
    assert info.value.code == "parent_link.revoked"
    parents = {p["user_id"] for p in identity.app.parents(w["child"])}
    assert person not in parents and identity.app.children(person) == []


@pytest.mark.parametrize("by", ["child", "parent", "admin"])
def test_the_child_a_linked_parent_or_the_schools_admin_revokes_the_link_PL_2(identity, by):
    """A QR code seen by the wrong person: the child (whose link it is, PL-1, PL-2), a parent already linked or an
    admin of the child's school (who may manage the child's links) makes it stop working; the next one shown is
    new. Nobody else can: someone else's revocation would only be a nuisance, or a way to learn who is a pupil."""
    w = a_child_with_a_stranger_linked(identity)
    people = {"child": w["child"], "parent": w["stranger"], "admin": w["admin"]}
    other_school_admin, other_parent, nobody = identity.person(), identity.person(), identity.person()
    identity.join(other_school_admin, "admin")
    identity.link_parent(identity.student(), other_parent)
    for outsider in (other_school_admin, other_parent, nobody):
        with pytest.raises(Forbidden) as info:
            identity.app.revoke_parent_invite(outsider, w["child"], now=identity.clock.now)
        assert info.value.code == "parent_link.revoke_forbidden"
    assert identity.app.parent_invite(w["child"], now=identity.clock.now).token == w["token"]  # still the same
    identity.app.revoke_parent_invite(people[by], w["child"], now=identity.clock.advance(minutes=1))
    refused_as_revoked(identity, w["token"], identity.person())
    assert [p["user_id"] for p in identity.app.parents(w["child"])] == [w["stranger"]]  # links stay
    fresh = identity.app.parent_invite(w["child"], now=identity.clock.now)
    assert fresh.token != w["token"]
    mum = identity.person()
    identity.app.confirm_parent_link(fresh.token, mum, consent=True, now=identity.clock.now)
    assert {p["user_id"] for p in identity.app.parents(w["child"])} == {w["stranger"], mum}


def test_revoking_before_any_link_was_made_changes_nothing_PL_2(identity):
    """A pupil who never asked for a link revokes it: nothing to revoke, and the first link is made as always."""
    child = identity.student()
    identity.app.revoke_parent_invite(child, child, now=identity.clock.now)
    token = identity.app.parent_invite(child, now=identity.clock.now).token
    identity.app.confirm_parent_link(token, identity.person(), consent=True, now=identity.clock.now)
    assert len(identity.app.parents(child)) == 1
