"""What the contracts refuse and how: every bad event keeps the exact error (message and field errors) that make_event
and parse_event gave before validation was made cheaper (issue #17), and every good event keeps its exact wire form."""

import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError, fields

from shared.contracts import ContractError, get_contract, loading, make_event, parse_event, registry

pytestmark = pytest.mark.unit

NOW = datetime(2026, 9, 1, 8, 30, tzinfo=timezone.utc)
U = uuid.UUID("6f1c1b52-3d0e-4f8e-9a57-0c9e3a1d2b11")
GOOD = {"user_id": U, "phone": "+79001234567", "registered_via": "phone", "registered_at": NOW}
ENVELOPE = {
    "specversion": "1.0", "id": "identity:7:UserRegistered.v1", "source": "/sfera/identity",
    "type": "identity.UserRegistered.v1", "time": "2026-09-01T08:30:00+00:00", "subject": None,
    "datacontenttype": "application/json",
    "data": {"user_id": str(U), "phone": "+79001234567", "email": None, "registered_via": "phone", "invite_token": None,
             "last_name": None, "first_name": None, "patronymic": None, "birth_date": None, "sex": None,
             "registered_at": "2026-09-01T08:30:00+00:00"},
}
MISSING = ["Missing data for required field."]
NOT_STRING = ["Not a valid string."]
DATA_ERROR = "identity.UserRegistered.v1: data does not match the contract"
ENVELOPE_ERROR = "malformed CloudEvents envelope"


def test_the_envelope_a_producer_writes_is_the_one_on_the_wire():
    event = make_event("identity.UserRegistered.v1", GOOD, event_id="identity:7:UserRegistered.v1", time=NOW)
    assert event.to_dict() == ENVELOPE
    assert json.loads(event.to_json()) == ENVELOPE
    assert parse_event(event.to_json()) == event


@pytest.mark.parametrize("event_type, data, message, errors", [
    ("identity.UserRegistered.v1", {**GOOD, "registered_via": "pigeon"}, DATA_ERROR,
     {"registered_via": ["Must be one of: phone, email."]}),
    ("identity.UserRegistered.v1", {**GOOD, "registered_at": datetime(2026, 9, 1)}, DATA_ERROR,
     {"registered_at": ["Not a valid aware datetime."]}),
    ("identity.UserRegistered.v1", {"phone": "+7"}, DATA_ERROR,
     {"user_id": MISSING, "registered_via": MISSING, "registered_at": MISSING}),
    ("identity.UserRegistered.v1", {**GOOD, "email": "nope"}, DATA_ERROR, {"email": ["Not a valid email address."]}),
    ("identity.UserRegistered.v9", GOOD, "unknown event type 'identity.UserRegistered.v9'", {}),
    ("messaging.MessagePosted.v1",
     {"chat_id": U, "message_id": U, "seq": 1, "posted_at": NOW,
      "poll": {"question": "q", "options": ["a"], "multiple": "maybe", "extra": 1}},
     "messaging.MessagePosted.v1: data does not match the contract", {"poll": {"multiple": ["Not a valid boolean."]}}),
])
def test_a_producer_is_refused_bad_data_with_the_same_error(event_type, data, message, errors):
    with pytest.raises(ContractError) as info:
        make_event(event_type, data, event_id="x")
    assert (str(info.value), info.value.errors) == (message, errors)


@pytest.mark.parametrize("body, message, errors", [
    ({}, ENVELOPE_ERROR, {k: MISSING for k in ("specversion", "id", "source", "type", "time", "data")}),
    ({**ENVELOPE, "specversion": 1.0, "id": "", "source": 5, "subject": 7, "datacontenttype": None, "data": [1]},
     ENVELOPE_ERROR,
     {"specversion": NOT_STRING, "id": ["Shorter than minimum length 1."], "source": NOT_STRING,
      "subject": NOT_STRING, "datacontenttype": ["Field may not be null."], "data": ["Not a valid mapping type."]}),
    ({**ENVELOPE, "specversion": "0.3"}, ENVELOPE_ERROR, {"specversion": ["Must be equal to 1.0."]}),
    ({**ENVELOPE, "time": "2026-09-01T08:30:00"}, ENVELOPE_ERROR, {"time": ["Not a valid aware datetime."]}),
    ({**ENVELOPE, "time": "yesterday"}, ENVELOPE_ERROR, {"time": ["Not a valid datetime."]}),
    ({**ENVELOPE, "time": None}, ENVELOPE_ERROR, {"time": ["Field may not be null."]}),
    ({**ENVELOPE, "type": ""}, ENVELOPE_ERROR, {"type": ["Shorter than minimum length 1."]}),
    ({**ENVELOPE, "type": "identity.UserRegistered.v9"}, "unknown event type 'identity.UserRegistered.v9'", {}),
    ({**ENVELOPE, "data": {**ENVELOPE["data"], "user_id": "not-a-uuid", "registered_via": "pigeon"}}, DATA_ERROR,
     {"user_id": ["Not a valid UUID."], "registered_via": ["Must be one of: phone, email."]}),
    (b"[1]", "envelope must be a JSON object", {}),
    (b"{nope", "body is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)", {}),
])
def test_a_consumer_refuses_a_bad_event_with_the_same_error(body, message, errors):
    with pytest.raises(ContractError) as info:
        parse_event(body if isinstance(body, bytes) else json.dumps(body))
    assert (str(info.value), info.value.errors) == (message, errors)


def test_a_consumer_reads_what_the_envelope_schema_accepts_as_it_did():
    """Optional envelope fields take their defaults, unknown ones are ignored, a subject is kept; the data is the
    contract's load (defaults filled, unknown fields dropped)."""
    lean = {k: v for k, v in ENVELOPE.items() if k not in ("subject", "datacontenttype")}
    lean["data"] = {"user_id": str(U), "registered_via": "email", "email": "a@b.ru", "registered_at": ENVELOPE["time"],
                    "later": 1}
    event = parse_event({**lean, "extension": "x", "subject": "s1"})
    assert (event.subject, event.time, event.id) == ("s1", NOW, ENVELOPE["id"])
    assert event.data == {"user_id": U, "email": "a@b.ru", "registered_via": "email", "registered_at": NOW,
                          "phone": None, "invite_token": None, "last_name": None, "first_name": None,
                          "patronymic": None, "birth_date": None, "sex": None}
    assert parse_event(lean).subject is None
    moscow = parse_event({**lean, "time": "2026-09-01T11:30:00.250000+03:00"}).time
    assert moscow == NOW + timedelta(milliseconds=250) and moscow.utcoffset() == timedelta(hours=3)


def sample(field: fields.Field, full: bool):
    """A value a producer could pass for ``field`` (python objects, as the outboxes do)."""
    if isinstance(field, fields.Nested):
        return example(field.schema, full)
    if isinstance(field, fields.List):
        return [sample(field.inner, full), sample(field.inner, full)]
    if isinstance(field, fields.Dict):
        if field.value_field is not None:
            return {"k": sample(field.value_field, full)}
        return {"k": [1, "v"]}
    for validator in field.validators:
        for attribute in ("choices", "comparable", "min"):
            if getattr(validator, attribute, None) is not None:
                value = getattr(validator, attribute)
                return list(value)[0] if attribute == "choices" else value
    kinds = [(fields.UUID, uuid.uuid4()), (fields.DateTime, NOW + timedelta(microseconds=7)),
             (fields.Date, date(2012, 3, 4)), (fields.Email, "a@b.ru"), (fields.Boolean, True),
             (fields.Integer, 3), (fields.Float, 2), (fields.String, "текст")]
    return next(value for kind, value in kinds if isinstance(field, kind))


def example(schema, full: bool) -> dict:
    """Every field (full) or only the required ones and the nested schemas' required ones, so the schema fills its
    defaults, nested ones too."""
    def nested(f):
        return isinstance(f, fields.Nested) or isinstance(getattr(f, "inner", None), fields.Nested)

    return {name: sample(f, full) for name, f in schema.load_fields.items() if full or f.required or nested(f)}


@pytest.mark.parametrize("event_type", sorted(registry))
@pytest.mark.parametrize("full", [True, False], ids=["every_field", "required_only"])
def test_every_contract_keeps_its_wire_form(event_type, full):
    """The envelope's data is what dumping the validated data gives, for every contract, whether the producer gave
    every field or the schema filled the defaults (in nested schemas too)."""
    schema = get_contract(event_type).data_schema()
    data = example(schema, full)
    if "starts_at" in data and "ends_at" in data:  # the lessons' contracts check the order
        data["ends_at"] = data["starts_at"] + timedelta(minutes=45)
    event = make_event(event_type, data, event_id="x", time=NOW)
    expected = schema.dump(schema.load(schema.dump(data)))
    assert event.to_dict()["data"] == expected
    assert json.loads(event.to_json())["data"] == json.loads(json.dumps(expected))
    assert parse_event(event.to_json()) == event


ODD_VALUES = [None, "", "x", "Текст", 0, 5, -1, 5.5, float("inf"), True, False, "5", "true", [], [None], ["x"], [1],
              [{}], {}, {"k": 1}, {"k": [None]}, str(U).upper(), "{" + str(U) + "}", U, "2026-09-01T08:30:00+00:00",
              "2026-09-01T11:30:00.250001+03:00", "2026-09-01T08:30:00Z", "2026-09-01T08:30:00", "2026-09-01",
              "a@b.ru", "phone", "female", b"bytes", ("x",)]


def outcome(load, schema, data):
    try:
        return "loaded", repr(load(schema, data))  # repr: True == 1, but not for a contract
    except ValidationError as exc:
        return "refused", exc.messages_dict


def mutations(schema, data: dict):
    """The data with each field missing, with each odd value in turn, with an unknown field, recursing into nested
    schemas (alone and as list items)."""
    yield {**data, "unknown_field": 1}
    for name, f in schema.load_fields.items():
        yield {k: v for k, v in data.items() if k != name}
        for odd in ODD_VALUES:
            yield {**data, name: odd}
        inner = f.inner if isinstance(f, fields.List) else f
        if isinstance(inner, fields.Nested) and isinstance(data.get(name), (dict, list)):
            items = data[name] if isinstance(data[name], list) else [data[name]]
            for item in items[:1]:
                for changed in mutations(inner.schema, item):
                    yield {**data, name: [changed] if isinstance(f, fields.List) else changed}


@pytest.mark.parametrize("event_type", sorted(registry))
def test_the_fast_load_is_the_schemas_load_for_odd_data_too(event_type):
    """shared/contracts/loading.py loads what a schema loads and refuses what it refuses with its errors: every
    contract's data with each field missing or given an odd value (in nested schemas too)."""
    schema = get_contract(event_type).data_schema()
    for full in (True, False):
        data = schema.dump(example(schema, full))
        for changed in mutations(schema, data):
            assert outcome(loading.load, schema, changed) == outcome(type(schema).load, schema, changed), changed


@pytest.mark.parametrize("event_type", ["messaging.MessagePosted.v1", "identity.UserRegistered.v1"])
def test_good_data_is_loaded_without_the_schemas_machinery(event_type, monkeypatch):
    schema = get_contract(event_type).data_schema()
    data = schema.dump(example(schema, True))
    expected = schema.load(data)

    def refused(*args, **kwargs):
        raise AssertionError("the schema's load was used")

    monkeypatch.setattr(type(schema), "load", refused)
    assert loading.load(schema, data) == expected
    event = make_event(event_type, example(schema, True), event_id="x", time=NOW)
    assert parse_event(event.to_json()) == event


PYTHON_ODD_VALUES = [*ODD_VALUES, NOW, datetime(2026, 9, 1, 8, 30), date(2026, 9, 1), uuid.uuid4(), 7.25, {"k": U},
                     [U, NOW], object()]


def dumped(dump, schema, data):
    try:
        return "dumped", repr(dump(schema, data))
    except Exception as exc:  # noqa: BLE001 - the same exception either way
        return "raised", type(exc), str(exc)


@pytest.mark.parametrize("event_type", sorted(registry))
def test_the_fast_dump_is_the_schemas_dump(event_type):
    """shared/contracts/loading.py dumps what a producer gives as the schema does, odd values too (nested too)."""
    schema = get_contract(event_type).data_schema()
    for full in (True, False):
        data = example(schema, full)
        for changed in (data, *(c for c in mutations(schema, data)), *({**data, n: odd} for n in schema.dump_fields
                                                                          for odd in PYTHON_ODD_VALUES)):
            assert dumped(loading.dump, schema, changed) == dumped(type(schema).dump, schema, changed), changed


def test_the_envelope_check_is_the_envelope_schemas_load():
    """parse_event's field-by-field envelope check gives what the envelope schema's load gives, or its errors: each
    envelope field missing or given each odd value, an unknown field, and a time with an offset or microseconds."""
    from shared.contracts.envelope import EnvelopeSchema, _envelope

    schema = EnvelopeSchema()
    bodies = [ENVELOPE, {**ENVELOPE, "extension": 1}, {**ENVELOPE, "time": "2026-09-01T11:30:00.250001+03:00"},
              {**ENVELOPE, "time": "2026-09-01T08:30:00Z"}, {**ENVELOPE, "subject": "s"}]
    for name in schema.fields:
        bodies.append({k: v for k, v in ENVELOPE.items() if k != name})
        bodies.extend({**ENVELOPE, name: odd} for odd in ODD_VALUES)
    for body in bodies:
        assert outcome(lambda _, b: _envelope(b), None, body) == outcome(type(schema).load, schema, body), body
