"""Typed commands at the RPC edge.

A service's entrypoint receives a request body as a dict; the body's schema (a ``CommandSchema``) checks it
and builds the frozen dataclass the application method takes, adding what the edge knows (the ids in the
request's path). The application never sees a dict or a CloudEvent: it takes the acting person's id and a
command, and each command says in its type what it asks for.

    @dataclass(frozen=True)
    class CreateClass:
        organization_id: uuid.UUID
        name: str
        start_year: int
        end_year: int

    class ClassInput(CommandSchema):
        command = CreateClass
        name = fields.String(required=True)
        ...

    # the service's entrypoint
    self.app.create_class(actor, schemas.ClassInput().load_command(body, organization_id=org))

The gateway validates the same body with ``load`` (a dict, as before), so it needs no service's classes.
A partial update leaves out what it does not change: such a command's fields default to ``UNSET`` and
``given(command)`` lists the ones the request set."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import Schema


class _Unset:
    """A field the request did not give (a partial update leaves it as it is)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


class CommandSchema(Schema):
    """A request body's schema that also builds its command (``command``, a dataclass whose fields are the
    schema's loaded fields plus the ones given by the edge)."""

    command: ClassVar[type]

    def load_command(self, payload: Mapping[str, Any] | list[Mapping[str, Any]] | None, **given: Any) -> Any:
        """The body's command; with ``many=True`` a list of bodies makes a list of commands (each with what the
        edge gives), and a bad item is named by its index in the error."""
        if self.many:
            return [self._command(item, given) for item in self.load(payload if payload is not None else [])]
        return self._command(self.load(payload if payload is not None else {}), given)

    def _command(self, loaded: dict[str, Any], given: dict[str, Any]) -> Any:
        clash = loaded.keys() & given.keys()
        if clash:
            raise TypeError(f"{type(self).__name__}: the body may not set {sorted(clash)}")
        return self.command(**given, **loaded)


def given(command: Any) -> dict[str, Any]:
    """The fields of a command that the request set (its partial update), by name."""
    return {f.name: getattr(command, f.name) for f in dataclasses.fields(command)
            if getattr(command, f.name) is not UNSET}
