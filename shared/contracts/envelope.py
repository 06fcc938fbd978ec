"""The CloudEvents 1.0 envelope (structured JSON mode) and the contract registry."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared.bus.naming import event_exchange
from shared.clock import utcnow
from shared.contracts import loading

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


class ContractError(ValueError):
    """An envelope or its data does not match the contract."""

    def __init__(self, message: str, errors: dict[str, Any] | None = None):
        super().__init__(message)
        self.errors = errors or {}


@dataclass(frozen=True)
class Contract:
    service: str
    name: str
    version: int
    schema: type[Schema]

    @property
    def type(self) -> str:
        return f"{self.service}.{self.name}.v{self.version}"

    @property
    def routing_key(self) -> str:
        return f"{self.name}.v{self.version}"

    @property
    def exchange(self) -> str:
        return event_exchange(self.service)

    def data_schema(self) -> Schema:
        """The schema of the event's data, one instance per contract reused by every producer and consumer (building
        a marshmallow schema costs more than loading or dumping with it; its load and dump keep no state)."""
        return _instance(self.schema)


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    return schema()


registry: dict[str, Contract] = {}


def contract(service: str, name: str, version: int) -> Callable[[type[Schema]], type[Schema]]:
    """Register a marshmallow schema as the data of an integration event."""

    def register(schema: type[Schema]) -> type[Schema]:
        entry = Contract(service, name, version, schema)
        if entry.type in registry:
            raise RuntimeError(f"contract {entry.type} registered twice")
        registry[entry.type] = entry
        schema.contract = entry  # type: ignore[attr-defined]
        return schema

    return register


def get_contract(event_type: str) -> Contract:
    try:
        return registry[event_type]
    except KeyError:
        raise ContractError(f"unknown event type {event_type!r}") from None


class DataSchema(Schema):
    """Base of contract schemas: consumers ignore fields they do not know yet,
    so adding an optional field is not a breaking change."""

    class Meta:
        unknown = EXCLUDE


class EnvelopeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    specversion = fields.String(required=True, validate=validate.Equal(SPECVERSION))
    id = fields.String(required=True, validate=validate.Length(min=1))
    source = fields.String(required=True, validate=validate.Length(min=1))
    type = fields.String(required=True, validate=validate.Length(min=1))
    time = fields.AwareDateTime(required=True)
    subject = fields.String(load_default=None, allow_none=True)
    # CloudEvents' "sequence" extension: the version of the aggregate whose domain event this is (the relay's), so a
    # consumer that gets that aggregate's events out of order (separate queues, retries) can tell older from newer
    sequence = fields.Integer(load_default=None, allow_none=True, strict=True)
    datacontenttype = fields.String(load_default=CONTENT_TYPE)
    data = fields.Dict(required=True)


def outdated(sequence: int | None, kept: int) -> bool:
    """Whether an event of that ``sequence`` (its aggregate's version) is older than, or as old as, the version a
    consumer has applied (``kept``; 0: none yet): what it says is there already, or was overtaken. An event
    without a sequence (published before events had one) is never outdated: it applies as it comes, as before."""
    return sequence is not None and sequence <= kept


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    time: datetime
    subject: str | None
    data: dict[str, Any]
    # The data as JSON values (the contract's dump of ``data``) when make_event already has it; not part of equality.
    wire_data: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    sequence: int | None = None  # its aggregate's version, where the relay published it (EnvelopeSchema.sequence)

    @property
    def contract(self) -> Contract:
        return get_contract(self.type)

    def _envelope(self, data: dict[str, Any]) -> dict[str, Any]:
        envelope = {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time.isoformat(),
            "subject": self.subject,
            "datacontenttype": CONTENT_TYPE,
            "data": data,
        }
        if self.sequence is not None:
            envelope["sequence"] = self.sequence
        return envelope

    def json_data(self) -> dict[str, Any]:
        """The data as JSON values: the contract's dump of ``data`` (the caller must not change it)."""
        return self.wire_data if self.wire_data is not None else self.contract.data_schema().dump(self.data)

    def to_dict(self) -> dict[str, Any]:
        return self._envelope(copy.deepcopy(self.wire_data) if self.wire_data is not None else self.json_data())

    def to_json(self) -> bytes:
        return json.dumps(self._envelope(self.json_data()), separators=(",", ":")).encode()


def make_event(
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str,
    subject: str | None = None,
    time: datetime | None = None,
    sequence: int | None = None,
) -> CloudEvent:
    """Build an event, validating ``data`` against its contract (producer side)."""
    entry = get_contract(event_type)
    schema = entry.data_schema()
    try:
        dumped = loading.dump(schema, data)
        loaded = loading.load(schema, dumped)
    except ValidationError as exc:
        raise ContractError(f"{event_type}: data does not match the contract", exc.messages_dict) from exc
    return CloudEvent(
        id=event_id,
        source=f"/sfera/{entry.service}",
        type=event_type,
        time=time or utcnow(),
        subject=subject,
        data=loaded,
        wire_data=_redumped(schema, dumped, loaded),
        sequence=sequence,
    )


# Fields whose dump of their own load of a dump is that dump (a UUID's canonical string, an ISO time, a number, ...).
_SAME_AGAIN = (fields.String, fields.UUID, fields.Integer, fields.Float, fields.Boolean, fields.DateTime, fields.Date)
_SCHEMA_HOOKS = ("pre_dump", "post_dump", "pre_load", "post_load")
_SAME, _NESTED, _NESTED_LIST, _DUMP = range(4)


def _builtin(f: fields.Field) -> bool:
    return type(f).__module__ == fields.__name__


def _same_again(f: fields.Field) -> bool:
    if isinstance(f, fields.List):
        return _same_again(f.inner)
    if isinstance(f, fields.Dict):
        return all(inner is None or _same_again(inner) for inner in (f.key_field, f.value_field))
    return _builtin(f) and isinstance(f, _SAME_AGAIN)


@functools.cache
def _redump_plan(schema: Schema) -> tuple[tuple[str, str, fields.Field, int, bool], ...] | None:
    """Per field of a (cached) schema: its name, its key on the wire, how ``_redumped`` gets its dump and whether its
    dump of None is None (marshmallow's own fields); None: the schema has hooks or a field read from another
    attribute, dump it all again."""
    if any(schema._hooks[hook] for hook in _SCHEMA_HOOKS) or any(f.attribute for f in schema.dump_fields.values()):
        return None
    plan = []
    for name, f in schema.dump_fields.items():
        if isinstance(f, fields.Nested) and not f.many and _builtin(f):
            kind = _NESTED
        elif isinstance(f, fields.List) and isinstance(f.inner, fields.Nested) and not f.inner.many and _builtin(f):
            kind = _NESTED_LIST
        else:
            kind = _SAME if _same_again(f) else _DUMP
        plan.append((name, f.data_key or name, f, kind, _builtin(f)))
    return tuple(plan)


def _redumped(schema: Schema, dumped: dict[str, Any], loaded: dict[str, Any]) -> dict[str, Any]:
    """``schema.dump(loaded)`` where ``loaded = schema.load(dumped)``, without dumping everything again: a field
    the load did not fill with its default is already in ``dumped`` as its dump would give it; the defaults it
    filled (in nested schemas too) are dumped. A field of any other kind (or a schema with hooks) is dumped again."""
    plan = _redump_plan(schema)
    if plan is None:
        return schema.dump(loaded)
    out = {}
    for name, key, f, kind, builtin in plan:
        if name not in loaded:
            continue
        value = loaded[name]
        if value is None and builtin:
            out[key] = None
        elif key not in dumped or kind == _DUMP:
            out[key] = f.serialize(name, loaded, accessor=schema.get_attribute)
        elif kind == _SAME:
            out[key] = dumped[key]
        elif kind == _NESTED:
            out[key] = _redumped(f.schema, dumped[key], value)
        else:
            inner = f.inner.schema
            out[key] = [None if item is None else _redumped(inner, one, item)
                        for one, item in zip(dumped[key], value, strict=True)]
    return out


def parse_event(body: bytes | str | dict[str, Any]) -> CloudEvent:
    """Validate an envelope and its data (consumer side); raises ContractError."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise ContractError(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ContractError("envelope must be a JSON object")
    try:
        envelope = _envelope(body)
    except ValidationError as exc:
        raise ContractError("malformed CloudEvents envelope", exc.messages_dict) from exc
    entry = get_contract(envelope["type"])
    try:
        data = loading.load(entry.data_schema(), envelope["data"])
    except ValidationError as exc:
        raise ContractError(f"{entry.type}: data does not match the contract", exc.messages_dict) from exc
    return CloudEvent(
        id=envelope["id"],
        source=envelope["source"],
        type=envelope["type"],
        time=envelope["time"],
        subject=envelope["subject"],
        data=data,
        sequence=envelope.get("sequence"),
    )


def _envelope(body: dict[str, Any]) -> dict[str, Any]:
    """``EnvelopeSchema().load(body)`` for the envelope producers write (every field a string of the kind the schema
    wants, the data an object), checked field by field without the schema's machinery; the time is read by the
    schema's own field. An envelope that is anything else goes through the schema, so what it refuses and how is
    the schema's own."""
    get = body.get
    specversion, event_id, source, event_type = get("specversion"), get("id"), get("source"), get("type")
    time, subject, content_type, data = get("time"), get("subject"), get("datacontenttype", CONTENT_TYPE), get("data")
    sequence = get("sequence")
    if (
        type(specversion) is str and specversion == SPECVERSION
        and type(event_id) is str and event_id
        and type(source) is str and source
        and type(event_type) is str and event_type
        and type(time) is str
        and (subject is None or type(subject) is str)
        and (sequence is None or type(sequence) is int)
        and type(content_type) is str
        and type(data) is dict
    ):
        try:
            when = _instance(EnvelopeSchema).fields["time"].deserialize(time, "time", body)
        except ValidationError:
            pass  # the schema says how
        else:
            return {"specversion": specversion, "id": event_id, "source": source, "type": event_type, "time": when,
                    "subject": subject, "sequence": sequence, "datacontenttype": content_type, "data": dict(data)}
    return _instance(EnvelopeSchema).load(body)
