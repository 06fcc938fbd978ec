"""Issue #17 ("the bridge reads its whole log"): the operator's tools -- a resync after binding a school, a replay
of the inbox, the index of linked people built for an older store -- find the provider's classes, linked people
and deliveries in the bridge's read model (ejournal_bridge.readmodel), not by reading every notification ever
stored (each delivery's body with them); on memory, SQLite and PostgreSQL (EJ-3, EJ-4)."""

from __future__ import annotations

import uuid

import pytest

from ejournal_bridge.domain import Delivery, class_id_of

from .test_reads import Bridge

pytestmark = pytest.mark.integration


def dump(model) -> dict[str, list]:
    with model.reading() as db:
        return {t: sorted(repr(sorted((k, v) for k, v in r.items() if k != "seq"))
                          for r in db.rows(f"SELECT * FROM {{{t}}}")) for t in model.projection.tables}


def delivered(bridge: Bridge) -> Bridge:
    school = bridge.school
    for name, records in (("orgs", [school.org]), ("classes", school.classes), ("users", school.users),
                          ("enrollments", school.enrollments), ("lessons", school.lessons)):
        bridge.deliver(f"{name}.upserted", records)
    return bridge


def notifications_read(bridge: Bridge, action) -> int:
    """How many notifications ``action`` reads through the store's recorder."""
    recorder, count = bridge.app.recorder, [0]
    original = recorder.select_notifications

    def counting(*args, **kwargs):
        found = list(original(*args, **kwargs))
        count[0] += len(found)
        return found

    recorder.select_notifications = counting
    try:
        action()
    finally:
        recorder.select_notifications = original
    return count[0]


def test_a_resync_reads_the_providers_classes_and_links_not_the_whole_log_EJ_4(store_settings):
    bridge = delivered(Bridge(store_settings, students=10))
    school = bridge.school
    klass = school.classes[0]["sourcedId"]
    linked = [school.class_teacher(klass), *school.students_of(klass)[:2]]
    for person in linked:
        bridge.link(person)
    log = bridge.app.recorder.max_notification_id()
    bridge.app.resync(bridge.provider.id, force=True)  # the read model is caught up on the way
    bridge.sent.clear()
    assert notifications_read(bridge, lambda: bridge.app.resync(bridge.provider.id, force=True)) < 5 < log
    kinds = {c["kind"] for c in bridge.sent}
    assert {"class_students", "class_parents"} <= kinds
    assert len({c["class_id"] for c in bridge.sent}) == len(school.classes)
    assert sorted(bridge.app.linked_external_ids(bridge.provider.id)) == sorted(linked)


def test_an_unlinked_person_leaves_the_linked_people_a_resync_tells_school_about_EJ_1(store_settings):
    bridge = delivered(Bridge(store_settings, students=4))
    school = bridge.school
    teacher = school.of_role("teacher")[0]["sourcedId"]
    pupil = school.of_role("student")[0]["sourcedId"]
    user = bridge.link(teacher)
    bridge.link(pupil)
    assert sorted(bridge.app.linked_external_ids(bridge.provider.id)) == sorted([teacher, pupil])
    bridge.app.unlink(user, bridge.provider.id)
    assert bridge.app.linked_external_ids(bridge.provider.id) == [pupil]


def test_a_replay_processes_the_providers_deliveries_in_the_order_received(store_settings):
    bridge = delivered(Bridge(store_settings, students=4))
    other = Bridge.__new__(Bridge)  # a second provider on the same store: its deliveries are not replayed
    other.school, other.sent, other.app = bridge.school, bridge.sent, bridge.app
    from shared.contracts.api.ejournal_bridge import RegisterProvider
    from tools.ejournal_sim.webhooks import WebhookSender
    other.provider, other.secret = bridge.app.register_provider(RegisterProvider(
        "16", "Другой журнал", "http://other.test", "client", "secret"))
    other.sender = WebhookSender("unused", other.secret)
    other.deliver("orgs.upserted", [bridge.school.org])
    order = []
    process = bridge.app.process_delivery

    def recorded(delivery_id, *args, **kwargs):
        order.append(delivery_id)
        return process(delivery_id, *args, **kwargs)

    bridge.app.process_delivery = recorded
    result = bridge.app.replay_inbox(bridge.provider.id)
    received = [n.originator_id for n in bridge.app.recorder.select_notifications(start=1, limit=10**6)
                if n.topic.endswith("Delivery.Received")]
    mine = [d for d in received if bridge.app.find(Delivery, d).provider_id == bridge.provider.id]
    assert order == mine and len(mine) == 5 and result["deliveries"] == 5


def test_the_read_model_rebuilt_from_scratch_equals_the_incremental_one(store_settings):
    bridge = delivered(Bridge(store_settings, students=4))
    user = bridge.link(bridge.school.of_role("teacher")[0]["sourcedId"])
    bridge.link(bridge.school.of_role("student")[0]["sourcedId"])
    bridge.app.unlink(user, bridge.provider.id)
    model = bridge.app.read_model
    incremental = dump(model)
    assert all(incremental.values())
    assert model.rebuild() == model.head()
    assert dump(model) == incremental


def test_a_binds_resync_goes_through_the_bound_schools_classes_only_issue_17(store_settings):
    """A region's e-journal has many schools: binding one resyncs its classes, not the region's."""
    bridge = delivered(Bridge(store_settings, students=4))
    school = bridge.school
    org = school.org["sourcedId"]
    other = {**school.classes[0], "sourcedId": "r16-class-elsewhere", "title": "9Я", "org": "r16-org-2"}
    bridge.deliver("classes.upserted", [other])
    _, resync = bridge.app.bind_school(bridge.provider.id, org, uuid.uuid4())
    bridge.sent.clear()
    bridge.app.run_school_resync(bridge.provider.id, org, resync.resync_id)
    done = bridge.app.school_resync(bridge.provider.id, org)
    assert (done.state, done.classes_total, done.classes_done) == ("done", len(school.classes), len(school.classes))
    assert class_id_of(bridge.provider.id, other["sourcedId"]) not in {c.get("class_id") for c in bridge.sent}
    # The class moves to the bound school: the next bind's resync goes through it too.
    bridge.deliver("classes.upserted", [{**other, "org": org}])
    _, again = bridge.app.bind_school(bridge.provider.id, org, uuid.uuid4())
    bridge.app.run_school_resync(bridge.provider.id, org, again.resync_id)
    assert bridge.app.school_resync(bridge.provider.id, org).classes_total == len(school.classes) + 1
