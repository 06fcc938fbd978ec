"""Issue #17 ("the bridge reads its whole log"): what a webhook costs the bridge does not grow with the school.
Processing one delivery reads the aggregates its records name, the classes it touched and the provider's index
of linked people -- not every pupil and parent of every class it touched (EJ-3, EJ-4, CH-2: the chats still
hold exactly the linked people)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from ejournal_bridge.application import BridgeApplication
from ejournal_bridge.domain import LinkedPeople
from shared.contracts.api.ejournal_bridge import RegisterProvider
from shared.links import link_token
from shared.store import make_application
from tools.ejournal_sim.fixture import FixtureJournal, build_school
from tools.ejournal_sim.webhooks import WebhookSender, sign

pytestmark = pytest.mark.integration



class Bridge:
    def __init__(self, config, students: int, app_class: type[BridgeApplication] = BridgeApplication):
        self.school = build_school("16", classes=2, students=students, teachers=6)
        self.sent: list[dict] = []
        self.app = make_application(app_class, "ejournal_bridge", create_table=True, config=config,
                                    journal=FixtureJournal(self.school), chats=self.sent.extend)
        self.provider, self.secret = self.app.register_provider(RegisterProvider(
            "16", f"ЭШ-{uuid.uuid4().hex[:6]}", "http://journal.test", "client", "secret"))
        self.sender = WebhookSender("unused", self.secret)

    def deliver(self, type_: str, records: list[dict]) -> None:
        body = self.sender.body(type_, records)
        ts = str(int(datetime.now(timezone.utc).timestamp()))
        delivery, _ = self.app.receive_webhook(self.provider.id, ts, sign(self.secret, ts, body), body)
        self.app.process_delivery(delivery.id, f"test:{delivery.id}")

    def link(self, sourced_id: str) -> uuid.UUID:
        user = uuid.uuid4()
        attempt, _ = self.app.start_link(user, self.provider.id, "http://platform/cb")
        self.app.finish_link(user, link_token("ejournal-link", attempt.id), sourced_id, "http://platform/cb")
        self.app.refresh_person(self.provider.id, sourced_id)
        return user

    def reads_of(self, action) -> int:
        """How many aggregates ``action`` reads from the store."""
        repository, count = self.app.repository, [0]
        original = repository.get

        def counting(*args, **kwargs):
            count[0] += 1
            return original(*args, **kwargs)

        repository.get = counting
        try:
            action()
        finally:
            repository.get = original
        return count[0]


def one_delivery_reads(config, students: int) -> tuple[int, Bridge]:
    bridge = Bridge(config, students)
    school = bridge.school
    for name, records in (("orgs", [school.org]), ("classes", school.classes), ("users", school.users),
                          ("enrollments", school.enrollments), ("lessons", school.lessons)):
        bridge.deliver(f"{name}.upserted", records)
    klass = school.classes[0]["sourcedId"]
    pupils = school.students_of(klass)
    for person in [school.class_teacher(klass), pupils[0], *school.user(pupils[1])["agents"]]:
        bridge.link(person)
    bridge.sent.clear()
    # A new pupil joins the first class: its chats change, so the process manager works out their members.
    newcomer = {"sourcedId": "r16-student-new", "role": "student", "familyName": "Новикова", "givenName": "Анна",
                "orgs": [school.org["sourcedId"]], "agents": []}
    bridge.app.journal.others[newcomer["sourcedId"]] = newcomer
    bridge.deliver("users.upserted", [newcomer])
    bridge.link(newcomer["sourcedId"])
    bridge.sent.clear()
    enrollment = {"sourcedId": "r16-enr-new", "class": klass, "user": newcomer["sourcedId"], "role": "student",
                  "primary": False}
    reads = bridge.reads_of(lambda: bridge.deliver("enrollments.upserted", [enrollment]))
    return reads, bridge


def test_a_delivery_reads_the_same_few_aggregates_whatever_the_size_of_the_class(store_settings):
    small, _ = one_delivery_reads(store_settings, students=10)
    large, bridge = one_delivery_reads(store_settings, students=60)
    assert small == large <= 15, (small, large)
    # ... and the chats still hold the linked people: the class teacher, the linked pupils, the other's parents.
    school = bridge.school
    klass = school.classes[0]["sourcedId"]
    (students,) = [c for c in bridge.sent if c.get("kind") == "class_students"]
    assert len(students["member_ids"]) == 3  # the class teacher, the pupil linked before, the newcomer
    everything: list[dict] = []
    bridge.app.sync_chats(bridge.provider.id, {klass}, everything.extend, force=True)
    (parents,) = [c for c in everything if c.get("kind") == "class_parents"]
    assert len(parents["member_ids"]) == 1 + len(school.user(school.students_of(klass)[1])["agents"])


class BridgeBeforeTheIndex(BridgeApplication):
    """The bridge as it was before its index of linked people: it neither keeps nor saves one."""

    name = "ejournal_bridge"  # the same store

    def _note_linked(self, pending, provider_id):
        pass

    def linked_people(self, provider_id):
        return self._built_linked_people(provider_id)


def test_a_store_from_before_the_index_gets_it_from_its_links_EJ_3_EJ_4(durable_store_settings):
    old = Bridge(durable_store_settings, students=10, app_class=BridgeBeforeTheIndex)
    school = old.school
    for name, records in (("orgs", [school.org]), ("classes", school.classes), ("users", school.users),
                          ("enrollments", school.enrollments)):
        old.deliver(f"{name}.upserted", records)
    klass = school.classes[0]["sourcedId"]
    pupil = school.students_of(klass)[0]
    users = {person: old.link(person) for person in (school.class_teacher(klass), pupil, *school.user(pupil)["agents"])}

    new = make_application(BridgeApplication, "ejournal_bridge", config=durable_store_settings, chats=old.sent.extend)
    old.sent.clear()
    new.sync_chats(old.provider.id, {klass}, force=True)
    chats = {c["kind"]: set(c["member_ids"]) for c in old.sent if c.get("kind", "").startswith("class_")}
    teacher = str(users[school.class_teacher(klass)])
    assert chats["class_students"] == {teacher, str(users[pupil])}
    assert chats["class_parents"] == {teacher} | {str(users[p]) for p in school.user(pupil)["agents"]}
    kept = new.find(LinkedPeople, LinkedPeople.create_id(old.provider.id))  # built once, and kept from now on
    assert kept is not None and set(kept.people) == set(users)


def test_a_delivery_touching_every_class_saves_twice_its_own_changes_and_what_messaging_was_told_EJ_4(store_settings):
    bridge = Bridge(store_settings, students=10)
    school = bridge.school
    for name, records in (("orgs", [school.org]), ("classes", school.classes), ("users", school.users),
                          ("enrollments", school.enrollments)):
        bridge.deliver(f"{name}.upserted", records)
    for klass in school.classes:
        bridge.link(school.class_teacher(klass["sourcedId"]))
    # A new subject in every class: every class gets a subject chat.
    lessons = [{**school.lessons[0], "sourcedId": f"new-{k['sourcedId']}", "class": k["sourcedId"],
                "subject": "Астрономия", "teacher": school.class_teacher(k["sourcedId"])} for k in school.classes]
    saves, original = [0], bridge.app.save

    def counting(*objs, **kwargs):
        saves[0] += 1
        return original(*objs, **kwargs)

    bridge.app.save = counting
    bridge.sent.clear()
    bridge.deliver("lessons.upserted", lessons)
    assert sorted(c["name"].split(" · ")[-1] for c in bridge.sent if c.get("kind") == "subject") == [
        "Астрономия"] * len(school.classes)
    assert saves[0] == 1 + 1 + 1  # the delivery stored, applied once, the chats' digests of every class


def test_a_delivery_is_applied_a_chunk_per_command_and_a_repeat_after_a_failure_applies_the_rest_once(store_settings):
    """Issue #17: the provider's lock is held a chunk at a time (a person linking meanwhile does not wait for the
    whole delivery); each chunk is recorded once, so a repeat after a failure applies only what was not."""
    from ejournal_bridge.application.inbox import DELIVERY_CHUNK
    from ejournal_bridge.domain import JournalClass, class_id_of

    bridge = Bridge(store_settings, students=3 * DELIVERY_CHUNK)
    school = bridge.school
    for name, records in (("orgs", [school.org]), ("classes", school.classes), ("users", school.users)):
        bridge.deliver(f"{name}.upserted", records)
    enrollments = [e for e in school.enrollments if e["role"] == "student"]
    assert len(enrollments) > 2 * DELIVERY_CHUNK
    body = bridge.sender.body("enrollments.upserted", enrollments)
    ts = str(int(datetime.now(timezone.utc).timestamp()))
    delivery, _ = bridge.app.receive_webhook(bridge.provider.id, ts, sign(bridge.secret, ts, body), body)
    original, calls = bridge.app._apply, []

    def failing_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the store went away")
        return original(*args, **kwargs)

    bridge.app._apply = failing_second_chunk
    with pytest.raises(RuntimeError):
        bridge.app.process_delivery(delivery.id, "evt-1")
    bridge.app._apply = original
    assert bridge.app.already_processed("evt-1#0") and not bridge.app.already_processed("evt-1#1")
    seen: list[str] = []

    def noting(delivery, pending, affected, records=None):
        seen.extend(r["sourcedId"] for r in records)
        return original(delivery, pending, affected, records)

    bridge.app._apply = noting
    assert bridge.app.process_delivery(delivery.id, "evt-1") is True  # the rest, once
    assert seen == [e["sourcedId"] for e in enrollments[DELIVERY_CHUNK:]]  # not the chunk applied before
    assert bridge.app.process_delivery(delivery.id, "evt-1") is False  # and nothing more
    assert seen == [e["sourcedId"] for e in enrollments[DELIVERY_CHUNK:]]
    bridge.app._apply = original
    for klass in school.classes:
        mirror = bridge.app.find(JournalClass, class_id_of(bridge.provider.id, klass["sourcedId"]))
        assert sorted(mirror.students) == sorted(school.students_of(klass["sourcedId"]))


def test_telling_school_many_linked_peoples_organizations_is_one_save_per_batch_EJ_2(store_settings, monkeypatch):
    """A bind's resync tells school about every linked person (623 in the bench): a batch of them per command and
    save, not one each (issue #17); each changed person is told once, an unchanged one not again."""
    from ejournal_bridge.application import chats as chats_module
    from ejournal_bridge.domain import JournalPerson

    bridge = Bridge(store_settings, students=12)
    school = bridge.school
    for name, records in (("orgs", [school.org]), ("classes", school.classes), ("users", school.users),
                          ("enrollments", school.enrollments)):
        bridge.deliver(f"{name}.upserted", records)
    people = [p["sourcedId"] for p in school.of_role("student")[:7]] + [school.of_role("teacher")[0]["sourcedId"]]
    for person in people:
        bridge.link(person)
    bridge.app.bind_school(bridge.provider.id, school.org["sourcedId"], uuid.uuid4())
    monkeypatch.setattr(chats_module, "ANNOUNCE_BATCH", 3)
    saves, save = [], bridge.app.save
    monkeypatch.setattr(bridge.app, "save", lambda *objects, **kw: saves.append(len(objects)) or save(*objects, **kw))
    assert bridge.app.announce_memberships(bridge.provider.id, [*people, "nobody-linked"]) == len(people)
    assert sorted(saves) == [2, 3, 3]  # 8 people (and one never linked: not saved) in batches of 3
    saves.clear()
    assert bridge.app.announce_memberships(bridge.provider.id, people) == 0 and saves == []  # told already
    told = [bridge.app.find(JournalPerson, JournalPerson.create_id(bridge.provider.id, p)).memberships_announced()
            for p in people]
    assert all(t and t["organization_ids"] for t in told)


def _told(bridge: Bridge) -> dict[str, list]:
    """What school was told last of each account's journal organizations (JournalMembershipsChanged)."""
    return dict(_all_told(bridge))


def _bound(store_settings) -> tuple[Bridge, uuid.UUID]:
    """A journal school delivered whole and bound to a platform organization (its id)."""
    bridge = Bridge(store_settings, students=4)
    school = bridge.school
    for name, records in (("orgs", [school.org]), ("classes", school.classes), ("users", school.users),
                          ("enrollments", school.enrollments)):
        bridge.deliver(f"{name}.upserted", records)
    organization = uuid.uuid4()
    bridge.app.bind_school(bridge.provider.id, school.org["sourcedId"], organization)
    return bridge, organization


def test_an_account_the_journal_person_left_is_told_to_school_as_in_none_of_its_schools_EJ_2(store_settings):
    """EJ-2 tells school the whole set of a linked person's organizations. An account that stopped being that
    journal person (it unlinked, or the person linked another account: one person, one account) was told
    nothing more, so school kept it a teacher of the journal's school: a stranger among its pupils. It is told
    the empty set now, and the account that is the person now gets the set."""
    bridge, organization = _bound(store_settings)
    school = bridge.school
    teacher = school.of_role("teacher")[0]["sourcedId"]
    first = bridge.link(teacher)
    assert _told(bridge)[str(first)] == [str(organization)]
    bridge.app.unlink(first, bridge.provider.id)
    bridge.app.refresh_person(bridge.provider.id, teacher)
    assert _told(bridge)[str(first)] == []
    again = bridge.link(teacher)
    assert _told(bridge)[str(again)] == [str(organization)]
    other = bridge.link(teacher)  # the same journal person links another account: the one before is not them
    told = _told(bridge)
    assert (told[str(again)], told[str(other)]) == ([], [str(organization)])


def test_an_account_moved_to_another_person_of_the_same_journal_keeps_the_school_that_person_gives_EJ_2(
        store_settings):
    """An account relinked from one journal person to another of the same journal (a teacher who picked the wrong
    name first) is the second person now: what school is told of it is the second one's whole set, whichever
    refresh runs first; the first person's refresh does not tell it the empty set (school would have taken the
    school away, then given it back, its chats gone with it)."""
    bridge, organization = _bound(store_settings)
    school = bridge.school
    first, second = (t["sourcedId"] for t in school.of_role("teacher")[:2])
    user = bridge.link(first)
    attempt, _ = bridge.app.start_link(user, bridge.provider.id, "http://platform/cb")
    bridge.app.finish_link(user, link_token("ejournal-link", attempt.id), second, "http://platform/cb")
    for person in (first, second):
        bridge.app.refresh_person(bridge.provider.id, person)
        assert _told(bridge)[str(user)] == [str(organization)]
    told = [e for e in _all_told(bridge) if e[0] == str(user)]
    assert [] not in [orgs for _, orgs in told]


def _all_told(bridge: Bridge) -> list[tuple[str, list]]:
    """Each JournalMembershipsChanged school was told, in order: the account and its organizations."""
    from ejournal_bridge.outbox import to_integration_events

    found = []
    for n in bridge.app.process_recorder.select_notifications(start=1, limit=100_000):
        for t, data, _ in to_integration_events(bridge.app.mapper.to_domain_event(n)):
            if t == "ejournal_bridge.JournalMembershipsChanged.v1":
                found.append((str(data["user_id"]), [str(o) for o in data["organization_ids"]]))
    return found
