"""A schema's ``load`` and ``dump`` for the data producers write, without marshmallow's per-field machinery (#17).

Loading an event's data with its contract schema cost a relay and every consumer more than anything else they did
with the event. ``load`` does what the schema's load does for data that plainly fits it: field by field, marshmallow's
own rules (a missing field's ``load_default``, None only where allowed, the field's validators, unknown fields
excluded or refused as the schema says), the common kinds (a string, a UUID, an integer, a boolean, a float, an aware
time, a nested schema, a list) checked inline and every other kind by the field's own ``deserialize``. At the first
doubt (a value of another type than producers write, a validator that refuses, a missing required field) it stops and
the schema loads the data itself: what is refused, and the error, are the schema's own. ``dump`` calls each field's
own ``_serialize``. A schema with hooks (``validates_schema``, ``pre_load``..., e.g. ejournal's lessons), renamed
fields or options this does not follow is always loaded and dumped by marshmallow.

It leans on marshmallow's internals (``Schema._hooks``, ``Field._serialize``, ``DESERIALIZATION_FUNCS``):
shared/tests/test_contracts_errors.py compares both with the schema's own, on every contract and many odd values;
run it after upgrading marshmallow.
"""

from __future__ import annotations

import functools
import math
import uuid
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, missing, validate

__all__ = ["dump", "load"]


class _Doubt(Exception):
    """The data may not fit: the schema decides."""


_STRING, _UUID, _INTEGER, _FLOAT, _BOOLEAN, _NESTED, _LIST, _FIELD, _AWARE = range(9)


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """``schema.load(data)``: the same result, and for data that does not fit, the same ValidationError."""
    plan = _plan(schema)
    if plan is not None and type(data) is dict:
        try:
            return _load(plan, data)
        except _Doubt:
            pass
    return schema.load(data)


def _load(plan: tuple, data: dict[str, Any]) -> dict[str, Any]:
    steps, known, refuse_unknown = plan
    if refuse_unknown and not known.issuperset(data):
        raise _Doubt
    out = {}
    for name, kind, f, required, default, allow_none, validators, inner in steps:
        value = data.get(name, missing)
        if value is missing:
            if required:
                raise _Doubt
            if default is not missing:
                out[name] = default() if callable(default) else default
            continue
        if value is None:
            if not allow_none:
                raise _Doubt
            out[name] = None
            continue
        out[name] = _value(kind, f, inner, value, name, data)
        for validator in validators:
            try:
                validator(out[name])
            except ValidationError:
                raise _Doubt from None
    return out


def _value(kind: int, f: fields.Field, inner: Any, value: Any, name: str, data: dict[str, Any]) -> Any:
    value_type = type(value)
    if kind == _STRING:
        if value_type is not str:
            raise _Doubt
        return value
    if kind == _UUID:
        if value_type is uuid.UUID:
            return value
        if value_type is not str:
            raise _Doubt
        try:
            return uuid.UUID(value)
        except ValueError:
            raise _Doubt from None
    if kind == _INTEGER:
        if value_type is not int:
            raise _Doubt
        return value
    if kind == _FLOAT:
        if value_type is not float or not math.isfinite(value):
            raise _Doubt
        return value
    if kind == _BOOLEAN:
        if value_type is not bool:
            raise _Doubt
        return value
    if kind == _AWARE:  # the field's own parsing, then its check that the time has an offset
        if value_type is not str:
            raise _Doubt
        try:
            parsed = inner(value)
        except (TypeError, AttributeError, ValueError):
            raise _Doubt from None
        if type(parsed) is not datetime or parsed.tzinfo is None or parsed.utcoffset() is None:
            raise _Doubt
        return parsed
    if kind == _NESTED:
        if value_type is not dict:
            raise _Doubt
        return _load(inner, value)
    if kind == _LIST:
        if value_type is not list:
            raise _Doubt
        item_kind, item_field, item_inner, item_allow_none, item_validators = inner
        items = []
        for item in value:
            if item is None:
                if not item_allow_none:
                    raise _Doubt
                items.append(None)
                continue
            loaded = _value(item_kind, item_field, item_inner, item, name, data)
            for validator in item_validators:
                try:
                    validator(loaded)
                except ValidationError:
                    raise _Doubt from None
            items.append(loaded)
        return items
    try:
        return f.deserialize(value, name, data)
    except ValidationError:
        raise _Doubt from None


_KINDS = {fields.String: _STRING, fields.Email: _STRING, fields.UUID: _UUID, fields.Integer: _INTEGER,
          fields.Float: _FLOAT, fields.Boolean: _BOOLEAN}


class _Unfit(Exception):
    """A schema or field this does not follow: the schema loads everything itself."""


def _validators(f: fields.Field) -> tuple:
    """The field's validators, each of which raises when it refuses (marshmallow's own)."""
    if not all(isinstance(v, validate.Validator) for v in f.validators):
        raise _Unfit
    return tuple(f.validators)


def _kind(f: fields.Field) -> tuple[int, Any]:
    """How ``_value`` reads the field and what it needs for that (marshmallow's own kinds only)."""
    if (type(f).__module__ != fields.__name__ or f.pre_load or f.post_load or f.data_key is not None
            or f.attribute is not None or type(f).deserialize is not fields.Field.deserialize):
        raise _Unfit
    kind = _KINDS.get(type(f))
    if kind == _FLOAT and f.allow_nan:
        kind = _FIELD
    elif kind == _BOOLEAN and (f.truthy != fields.Boolean.truthy or f.falsy != fields.Boolean.falsy):
        kind = _FIELD
    if kind is not None:
        return kind, None
    if type(f) is fields.AwareDateTime and f.default_timezone is None:
        parse = f.DESERIALIZATION_FUNCS.get(f.format or f.DEFAULT_FORMAT)
        if parse is not None:
            return _AWARE, parse
        return _FIELD, None
    if type(f) is fields.Nested and not f.many and f.unknown is None and not f.only and not f.exclude:
        inner = _plan(f.schema)
        if inner is None:
            raise _Unfit
        return _NESTED, inner
    if type(f) is fields.List:
        item_kind, item_inner = _kind(f.inner)
        if item_kind == _FIELD:
            return _FIELD, None
        return _LIST, (item_kind, f.inner, item_inner, f.inner.allow_none, _validators(f.inner))
    return _FIELD, None


@functools.cache
def _plan(schema: Schema) -> tuple | None:
    """What ``_load`` does with each field of a (cached) schema; None: the schema loads everything itself."""
    if any(schema._hooks.values()) or schema.many or schema.partial or schema.unknown not in (EXCLUDE, RAISE):
        return None
    steps = []
    try:
        for name, f in schema.load_fields.items():
            if "." in name:
                raise _Unfit
            kind, inner = _kind(f)
            validators = () if kind == _FIELD else _validators(f)  # the field's own deserialize runs them
            steps.append((name, kind, f, f.required, f.load_default, f.allow_none, validators, inner))
    except _Unfit:
        return None
    return tuple(steps), frozenset(schema.load_fields), schema.unknown == RAISE


def dump(schema: Schema, data: Any) -> dict[str, Any]:
    """``schema.dump(data)`` for a dict of values: each field's own ``_serialize`` of its value (a string, a UUID, an
    integer or None inline), past the schema's and the fields' machinery around it; anything else (an exception on
    the way, a schema or field this does not follow) is the schema's own dump."""
    plan = _dump_plan(schema)
    if plan is None or type(data) is not dict:
        return schema.dump(data)
    out = {}
    try:
        for name, kind, f in plan:
            if name not in data:
                continue
            value = data[name]
            value_type = type(value)
            if value is None and kind != _FIELD:
                out[name] = None
            elif kind == _STRING and value_type is str:
                out[name] = value
            elif kind == _UUID and value_type is uuid.UUID:
                out[name] = str(value)
            elif kind == _INTEGER and value_type is int:
                out[name] = value
            else:
                out[name] = f._serialize(value, name, data)
    except Exception:  # noqa: BLE001 - the schema's dump raises it again, as it would have
        return schema.dump(data)
    return out


@functools.cache
def _dump_plan(schema: Schema) -> tuple | None:
    """Per dumped field of a (cached) schema: its name, how ``dump`` serialises it, the field; None: the schema
    dumps everything itself (hooks, renamed fields, a default for dumping, another way of getting values)."""
    if any(schema._hooks.values()) or schema.many or type(schema).get_attribute is not Schema.get_attribute:
        return None
    plan = []
    for name, f in schema.dump_fields.items():
        if ("." in name or hasattr(dict, name) or type(f).__module__ != fields.__name__ or f.data_key is not None
                or f.attribute is not None or f.dump_default is not missing or not f._CHECK_ATTRIBUTE
                or type(f).get_value is not fields.Field.get_value or type(f).serialize is not fields.Field.serialize):
            return None
        kind = {fields.String: _STRING, fields.UUID: _UUID, fields.Integer: _INTEGER}.get(type(f), _FIELD)
        if kind == _INTEGER and f.as_string:
            kind = _FIELD
        plan.append((name, kind, f))
    return tuple(plan)

