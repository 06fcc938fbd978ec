"""The CloudEvents 1.0 envelope (structured JSON mode) and the contract registry."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared.bus.naming import event_exchange
from shared.clock import utcnow

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
    datacontenttype = fields.String(load_default=CONTENT_TYPE)
    data = fields.Dict(required=True)


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    time: datetime
    subject: str | None
    data: dict[str, Any]

    @property
    def contract(self) -> Contract:
        return get_contract(self.type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time.isoformat(),
            "subject": self.subject,
            "datacontenttype": CONTENT_TYPE,
            "data": self.contract.data_schema().dump(self.data),
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


def make_event(
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str,
    subject: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """Build an event, validating ``data`` against its contract (producer side)."""
    entry = get_contract(event_type)
    schema = entry.data_schema()
    try:
        loaded = schema.load(schema.dump(data))
    except ValidationError as exc:
        raise ContractError(f"{event_type}: data does not match the contract", exc.messages_dict) from exc
    return CloudEvent(
        id=event_id,
        source=f"/sfera/{entry.service}",
        type=event_type,
        time=time or utcnow(),
        subject=subject,
        data=loaded,
    )


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
        envelope = _instance(EnvelopeSchema).load(body)
    except ValidationError as exc:
        raise ContractError("malformed CloudEvents envelope", exc.messages_dict) from exc
    entry = get_contract(envelope["type"])
    try:
        data = entry.data_schema().load(envelope["data"])
    except ValidationError as exc:
        raise ContractError(f"{entry.type}: data does not match the contract", exc.messages_dict) from exc
    return CloudEvent(
        id=envelope["id"],
        source=envelope["source"],
        type=envelope["type"],
        time=envelope["time"],
        subject=envelope["subject"],
        data=data,
    )
