"""The event catalogue and its CloudEvents envelope."""

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.contracts import ContractError, make_event, parse_event, registry

pytestmark = pytest.mark.unit

NOW = datetime(2026, 9, 1, 8, 30, tzinfo=timezone.utc)


def user_registered(**overrides):
    data = {"user_id": uuid.uuid4(), "phone": "+79001234567", "registered_via": "phone", "registered_at": NOW}
    return {**data, **overrides}


def test_the_design_cards_four_events_exist_with_these_names():
    names = {c.name for c in registry.values()}
    assert {"UserRegistered", "ParentLinked", "LessonScheduled", "CallStarted"} <= names


def test_every_contract_type_is_service_name_and_version():
    for event_type, entry in registry.items():
        assert event_type == f"{entry.service}.{entry.name}.v{entry.version}"
        assert entry.exchange == f"{entry.service}.events"
        assert entry.routing_key == f"{entry.name}.v{entry.version}"


def test_an_event_survives_the_wire_unchanged():
    event = make_event("identity.UserRegistered.v1", user_registered(), event_id="identity:7:UserRegistered.v1",
                       subject="u1", time=NOW)
    body = event.to_json()
    envelope = json.loads(body)
    assert envelope["specversion"] == "1.0"
    assert envelope["source"] == "/sfera/identity"
    assert envelope["type"] == "identity.UserRegistered.v1"
    parsed = parse_event(body)
    assert parsed == event


def test_an_event_carries_its_aggregates_version_as_its_sequence_when_it_has_one():
    """The relay says which version of its aggregate an event is (CloudEvents' sequence extension): consumers
    order an aggregate's events by it. Events from before say none, and are read as before."""
    event = make_event("identity.UserRegistered.v1", user_registered(), event_id="identity:8:UserRegistered.v1",
                       time=NOW, sequence=3)
    assert json.loads(event.to_json())["sequence"] == 3
    assert parse_event(event.to_json()) == event and parse_event(event.to_dict()).sequence == 3
    plain = make_event("identity.UserRegistered.v1", user_registered(), event_id="x", time=NOW)
    assert "sequence" not in plain.to_dict() and parse_event(plain.to_json()).sequence is None
    for bad in ("3", 3.5, [3]):
        with pytest.raises(ContractError) as info:
            parse_event({**event.to_dict(), "sequence": bad})
        assert "sequence" in info.value.errors


def test_producer_refuses_data_that_breaks_the_contract():
    with pytest.raises(ContractError) as info:
        make_event("identity.UserRegistered.v1", user_registered(registered_via="pigeon"), event_id="x")
    assert "registered_via" in info.value.errors


@pytest.mark.parametrize("mutate, field", [
    (lambda e: e.pop("id"), "id"),
    (lambda e: e.update(specversion="0.3"), "specversion"),
    (lambda e: e.update(time="yesterday"), "time"),
    (lambda e: e.pop("data"), "data"),
])
def test_consumer_refuses_a_malformed_envelope(mutate, field):
    envelope = make_event("identity.UserRegistered.v1", user_registered(), event_id="x").to_dict()
    mutate(envelope)
    with pytest.raises(ContractError) as info:
        parse_event(json.dumps(envelope))
    assert field in info.value.errors


def test_consumer_refuses_an_unknown_type_and_invalid_data():
    envelope = make_event("identity.UserRegistered.v1", user_registered(), event_id="x").to_dict()
    with pytest.raises(ContractError, match="unknown event type"):
        parse_event({**envelope, "type": "identity.UserRegistered.v9"})
    with pytest.raises(ContractError):
        parse_event({**envelope, "data": {**envelope["data"], "user_id": "not-a-uuid"}})
    with pytest.raises(ContractError, match="not JSON"):
        parse_event(b"{nope")


def test_consumers_ignore_fields_added_later_in_the_same_version():
    envelope = make_event("identity.UserRegistered.v1", user_registered(), event_id="x").to_dict()
    envelope["data"]["favourite_colour"] = "green"
    assert "favourite_colour" not in parse_event(envelope).data


def test_lesson_scheduled_must_end_after_it_starts():
    data = {
        "lesson_id": uuid.uuid4(), "provider_id": uuid.uuid4(), "region": "77", "external_lesson_id": "L1",
        "external_class_id": "C1", "subject": "Физика", "external_teacher_id": "T1",
        "starts_at": NOW, "ends_at": NOW - timedelta(minutes=1),
    }
    with pytest.raises(ContractError):
        make_event("ejournal_bridge.LessonScheduled.v1", data, event_id="x")
    ok = make_event("ejournal_bridge.LessonScheduled.v1", {**data, "ends_at": NOW + timedelta(minutes=45)},
                    event_id="x")
    assert ok.data["remote"] is False


def test_parent_linked_allows_only_two_parents_PL_5():
    data = {"link_id": uuid.uuid4(), "parent_user_id": uuid.uuid4(), "child_user_id": uuid.uuid4(),
            "parent_number": 3, "consent_given_at": NOW, "linked_at": NOW}
    with pytest.raises(ContractError):
        make_event("identity.ParentLinked.v1", data, event_id="x")


def test_call_started_is_capped_at_100_participants_CA_1():
    data = {"call_id": uuid.uuid4(), "kind": "lesson", "started_by": uuid.uuid4(), "started_at": NOW,
            "max_participants": 101}
    with pytest.raises(ContractError):
        make_event("calls.CallStarted.v1", data, event_id="x")


def test_typed_errors_cross_nameko_rpc_with_their_details_intact():
    from nameko.exceptions import deserialize, serialize

    from shared.errors import TooManyRequests

    original = TooManyRequests("sign_in.resend_too_early", "Wait.", {"retry_after": 42, "ways": ["a", "b"]})
    arrived = deserialize(serialize(original))
    assert type(arrived) is TooManyRequests
    assert arrived.to_dict() == {"code": "sign_in.resend_too_early", "message": "Wait.",
                                 "details": {"retry_after": 42, "ways": ["a", "b"]}}


def test_schemas_are_built_once_not_per_event(monkeypatch):
    """A marshmallow schema costs more to build than to use: producing, sending and reading events reuses one per
    contract and one envelope schema (a profile of the realtime server put 2 of every 5.7 s in building them)."""
    from marshmallow import Schema

    built = []
    original = Schema.__init__

    def counting(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    for n in range(2):  # the first round may build what the contracts need
        event = make_event("identity.UserRegistered.v1", user_registered(), event_id=f"e{n}")
        assert parse_event(event.to_json()).data == event.data
        if n == 0:
            monkeypatch.setattr(Schema, "__init__", counting)
    assert built == []
