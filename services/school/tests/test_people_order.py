"""identity's events about people, as school's consumers get them: each event type through its own queue, retried
with back-off and dead-lettered after the last attempt, so in any order and late (docs/architecture.md, "Rules that
hold over time"). ParentLinked / ParentUnlinked carry ``sequence``, the version of the child's ``ParentLinks`` in
identity (Opened is 1, so a child's first link is 2); ProfileUpdated carries the account's (UserRegistered is 1)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from school import handlers
from school.application import CONSOLE, SchoolApplication
from school.domain import Relatives
from shared.contracts import make_event
from shared.contracts.api.school import CreateInvite, SubmitApplication
from shared.errors import NotFound, NotYet
from shared.store import make_application
from shared.store.testing import racing, run_together

from .conftest import OPERATOR_PHONE, School

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
ATTEMPTS = 5  # shared/bus/consumer.py: DEFAULT_MAX_ATTEMPTS, then the event goes to <queue>.dlq


def parent_event(kind: str, parent, child, sequence: int | None):
    """As identity's relay publishes it: id ``<service>:<notification id>:<routing key>``."""
    data = {"link_id": uuid.uuid4(), "parent_user_id": parent, "child_user_id": child}
    if kind == "ParentLinked":
        data.update(parent_number=1, consent_given_at=NOW, linked_at=NOW)
    else:
        data.update(unlinked_by=parent, unlinked_at=NOW)
    return make_event(f"identity.{kind}.v1", data, event_id=f"identity:{uuid.uuid4()}:{kind}.v1", sequence=sequence)


def linked(parent, child, sequence: int | None):
    return parent_event("ParentLinked", parent, child, sequence)


def unlinked(parent, child, sequence: int | None):
    return parent_event("ParentUnlinked", parent, child, sequence)


def pupil_in_class(school: School):
    org, admin = school.organization()
    klass = school.klass(org, admin)
    return org, admin, klass, school.member(org, admin, "student", klass)


def parent_here(school: School, org, person) -> bool:
    membership = school.app.membership(org, person)
    return membership is not None and membership.has("parent")


def test_pl4_ro5_an_unlink_that_overtakes_its_link_keeps_the_unlinked_person_out(school):
    """identity linked a stranger to a child (v2) and an admin unlinked them (v3); the ParentLinked queue lags. The
    ParentUnlinked is applied at once (no NotYet until it is dead-lettered), and the late ParentLinked makes nobody a
    parent: the stranger never sees the class nor reaches the parents' chats. A relink after it (v4) still counts."""
    org, admin, klass, pupil = pupil_in_class(school)
    stranger = school.user()
    assert handlers.on_parent_unlinked(school.app, unlinked(stranger, pupil, 3)) is True
    assert handlers.on_parent_linked(school.app, linked(stranger, pupil, 2)) is True  # applied: it changes nothing
    assert not parent_here(school, org, stranger)
    assert str(stranger) not in school.app.find(Relatives, Relatives.create_id(pupil, "parents")).ids
    assert str(stranger) not in {m["user_id"] for m in school.app.members(admin, org, klass)[0]}
    assert handlers.on_parent_linked(school.app, linked(stranger, pupil, 4)) is True
    assert parent_here(school, org, stranger) and school.app.membership(org, stranger).class_id == klass


def test_pl4_ro5_an_unlink_before_its_link_is_never_dead_lettered(school):
    """The reproduction of the audit: every attempt of the early ParentUnlinked is applied or a duplicate, none
    raises NotYet (which would dead-letter it after the last attempt and leave the late link standing)."""
    org, _, _, pupil = pupil_in_class(school)
    stranger = school.user()
    early = unlinked(stranger, pupil, 3)
    outcomes = [handlers.on_parent_unlinked(school.app, early) for _attempt in range(ATTEMPTS)]
    assert outcomes == [True] + [False] * (ATTEMPTS - 1)
    handlers.on_parent_linked(school.app, linked(stranger, pupil, 2))
    assert not parent_here(school, org, stranger)


def test_pl4_ro5_a_late_unlink_never_undoes_a_newer_relink(school):
    """identity: linked (v2), unlinked (v3), linked again (v4): the parent is linked. The ParentUnlinked waits in a
    retry queue while the relink is applied, then comes: it is older than the link school holds and changes
    nothing."""
    org, _, klass, pupil = pupil_in_class(school)
    parent = school.user()
    assert handlers.on_parent_linked(school.app, linked(parent, pupil, 2)) is True
    assert handlers.on_parent_linked(school.app, linked(parent, pupil, 4)) is True
    assert handlers.on_parent_unlinked(school.app, unlinked(parent, pupil, 3)) is True
    assert parent_here(school, org, parent) and school.app.membership(org, parent).class_id == klass
    assert str(pupil) in school.app.find(Relatives, Relatives.create_id(parent, "children")).ids
    assert handlers.on_parent_unlinked(school.app, unlinked(parent, pupil, 5)) is True  # a newer one applies
    assert not parent_here(school, org, parent)


def test_pl4_ro5_each_parents_link_keeps_its_own_order(school):
    """The versions are the child's: one parent's newer event says nothing of another parent's link."""
    org, _, _, pupil = pupil_in_class(school)
    mother, father = school.user(), school.user()
    handlers.on_parent_linked(school.app, linked(mother, pupil, 3))
    handlers.on_parent_linked(school.app, linked(father, pupil, 2))  # older than the mother's, but his own first
    assert parent_here(school, org, mother) and parent_here(school, org, father)
    handlers.on_parent_unlinked(school.app, unlinked(father, pupil, 4))
    assert parent_here(school, org, mother) and not parent_here(school, org, father)


def test_pl4_ro5_link_events_without_a_sequence_apply_as_they_come(school):
    """Events from before they carried a sequence: an unlink whose link has not arrived waits for it (NotYet, retried),
    as before; in order, they apply as they always did."""
    org, _, _, pupil = pupil_in_class(school)
    parent = school.user()
    with pytest.raises(NotYet):
        handlers.on_parent_unlinked(school.app, unlinked(parent, pupil, None))
    assert handlers.on_parent_linked(school.app, linked(parent, pupil, None)) is True
    assert parent_here(school, org, parent)
    assert handlers.on_parent_unlinked(school.app, unlinked(parent, pupil, None)) is True
    assert not parent_here(school, org, parent)


def profile_updated(user_id, last_name: str, sequence: int | None, first_name: str = "Анна"):
    return make_event("identity.ProfileUpdated.v1", {
        "user_id": user_id, "last_name": last_name, "first_name": first_name, "updated_by": user_id,
        "updated_at": NOW}, event_id=f"identity:{uuid.uuid4()}:ProfileUpdated.v1", sequence=sequence)


def registered(user_id, phone: str, sequence: int | None = 1, last_name: str | None = None):
    return make_event("identity.UserRegistered.v1", {
        "user_id": user_id, "phone": phone, "registered_via": "phone", "last_name": last_name,
        "first_name": last_name and "Старое", "registered_at": NOW},
        event_id=f"identity:{uuid.uuid4()}:UserRegistered.v1", sequence=sequence)


@pytest.mark.parametrize("sequence", [2, None])
def test_sc8_id5_a_profile_update_before_its_registration_names_the_person(school, sequence):
    """identity: registered (v1, the name comes after sign-in), then ProfileUpdated (v2). school's UserRegistered
    queue lags past the retry budget: the ProfileUpdated was dead-lettered and the person stayed nameless in the
    members list. Now whichever comes first makes the person; the registration, older than any profile edit, fills
    in the phone and leaves the name."""
    user = uuid.uuid4()
    assert handlers.on_profile_updated(school.app, profile_updated(user, "Петрова", sequence)) is True
    with pytest.raises(NotFound):  # not registered yet: the person's view (registered via, at) has nothing to say
        school.app.get_person(user)
    assert handlers.on_user_registered(school.app, registered(user, "+79001112233", last_name="Старая")) is True
    person = school.app.get_person(user)
    assert (person.last_name, person.first_name, person.phone) == ("Петрова", "Анна", "+79001112233")
    assert (person.registered_via, person.registered_at) == ("phone", NOW)
    org, admin = school.organization()
    _, token = school.app.create_invite(admin, CreateInvite(org, "student", school.klass(org, admin), "7d", None,
                                                            False))
    school.app.join_by_invite(token, user)
    listed = {m["user_id"]: m for m in school.app.members(admin, org)[0]}
    assert (listed[str(user)]["last_name"], listed[str(user)]["first_name"]) == ("Петрова", "Анна")


def test_sc8_a_profile_known_first_still_orders_later_edits(school):
    """A person made from an early ProfileUpdated keeps its version: an older edit arriving after changes
    nothing, a newer one applies."""
    user = uuid.uuid4()
    handlers.on_profile_updated(school.app, profile_updated(user, "Новая", 4))
    handlers.on_profile_updated(school.app, profile_updated(user, "Средняя", 3))
    handlers.on_user_registered(school.app, registered(user, "+79001112244"))
    assert school.app.get_person(user).last_name == "Новая"
    handlers.on_profile_updated(school.app, profile_updated(user, "Ещё новее", 5))
    assert school.app.get_person(user).last_name == "Ещё новее"


def test_sc1_a_phone_registered_after_the_profile_still_makes_the_applications_admin(school):
    """The registration that arrives after the profile still does what it did: the phone an approved application
    named makes its person the organization's first admin."""
    phone = "+79005554433"
    application = school.app.submit_application(None, SubmitApplication("Гимназия", "school", "RU", "Тверь", phone,
                                                                         None))
    org = school.app.approve_application(CONSOLE, application.id).id
    user = uuid.uuid4()
    handlers.on_profile_updated(school.app, profile_updated(user, "Директорова", 2))
    handlers.on_user_registered(school.app, registered(user, phone))
    assert school.app.membership(org, user).has("admin")


def test_ro5_pl5_two_parents_linked_at_once_on_two_replicas_are_both_kept(durable_store_settings, monkeypatch):
    """Both parents confirm at once (PL-5 allows two) and two replicas apply the two ParentLinked together: both
    write the child's parents and the class's roster, one loses the race. The loser runs again inside the
    application (no IntegrityError back to the consumer's delay queue) and both are parents."""
    monkeypatch.setenv("SFERA_OPERATOR_PHONES", OPERATOR_PHONE)
    setup = School(make_application(SchoolApplication, "school", create_table=True, config=durable_store_settings))
    org, _, klass, pupil = pupil_in_class(setup)
    parents = [setup.user(), setup.user()]
    a, b = (make_application(SchoolApplication, "school", config=durable_store_settings) for _ in range(2))
    with racing(a, b):
        results = run_together(lambda: handlers.on_parent_linked(a, linked(parents[0], pupil, 2)),
                               lambda: handlers.on_parent_linked(b, linked(parents[1], pupil, 3)))
    assert results == [True, True]
    assert all(parent_here(setup, org, p) and setup.app.membership(org, p).class_id == klass for p in parents)
    assert set(setup.app.find(Relatives, Relatives.create_id(pupil, "parents")).ids) == {str(p) for p in parents}
