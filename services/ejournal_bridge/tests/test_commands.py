"""Typed commands at ejournal_bridge's RPC edge (issue #16): every request body its entrypoints load is a
``CommandSchema`` of shared/contracts/api/ejournal_bridge.py whose command is a frozen dataclass the application
takes, and no entrypoint passes a body on as a dict. Found by reading ejournal_bridge/service.py, so an entrypoint
that loads a new schema as a plain dict, or a schema without its command, fails here."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
import uuid
from pathlib import Path

import marshmallow
import pytest

from shared.contracts.api import ejournal_bridge as schemas
from shared.contracts.api.commands import UNSET, CommandSchema

pytestmark = pytest.mark.unit

SERVICE = Path(__file__).resolve().parents[1] / "ejournal_bridge" / "service.py"


def entrypoints() -> list[ast.FunctionDef]:
    tree = ast.parse(SERVICE.read_text())
    (service,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "BridgeService"]
    return [f for f in service.body if isinstance(f, ast.FunctionDef)
            and any(ast.unparse(d).startswith("rpc") for d in f.decorator_list)]


def schema_loads(node: ast.AST) -> list[tuple[str, str, ast.Call]]:
    """(schema, method, call) of each ``schemas.X(...).load(...)`` / ``.load_command(...)`` under ``node``."""
    return [(call.func.value.func.attr, call.func.attr, call) for call in ast.walk(node)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr in ("load", "load_command") and isinstance(call.func.value, ast.Call)
            and isinstance(call.func.value.func, ast.Attribute)
            and ast.unparse(call.func.value.func.value) == "schemas"]


def loaded_schemas() -> set[str]:
    return {name for f in entrypoints() for name, _, _ in schema_loads(f)}


def test_every_body_an_entrypoint_loads_becomes_its_command():
    assert {"ProviderInput"} <= loaded_schemas()
    plain = [(f.name, name) for f in entrypoints() for name, method, _ in schema_loads(f) if method == "load"]
    assert plain == [], f"entrypoints loading a body as a dict, not its command: {plain}"


def test_no_entrypoint_passes_a_body_on_as_a_dict():
    """A parameter that is a body (``dict``, ``dict | None``, ``list[dict]``) goes through ``load_command``."""
    for function in entrypoints():
        bodies = {a.arg for a in function.args.args
                  if a.annotation is not None and ast.unparse(a.annotation).startswith(("dict", "list[dict"))}
        commanded = {ast.unparse(call.args[0]) for _, method, call in schema_loads(function)
                     if method == "load_command" and call.args}
        assert bodies <= commanded, f"{function.name}: {sorted(bodies - commanded)} not loaded as a command"


@pytest.mark.parametrize("name", sorted(loaded_schemas()))
def test_a_loaded_schema_is_a_command_schema_with_a_frozen_typed_command(name):
    schema_class = getattr(schemas, name)
    assert issubclass(schema_class, CommandSchema), f"{name} is not a CommandSchema"
    command = schema_class.command
    assert dataclasses.is_dataclass(command) and command.__dataclass_params__.frozen, f"{name}.command"
    hints = typing.get_type_hints(command)
    by_name = {f.name: f for f in dataclasses.fields(command)}
    body = {field.attribute or key: field for key, field in schema_class().load_fields.items()}
    assert body.keys() <= by_name.keys(), f"{command.__name__} lacks {sorted(body.keys() - by_name.keys())}"
    for edge_given in by_name.keys() - body.keys():  # the ids of the request's path
        assert hints[edge_given] is uuid.UUID and by_name[edge_given].default is dataclasses.MISSING
    for field_name, field in body.items():
        if not field.required and field.load_default is marshmallow.missing:  # a body may leave it out
            assert by_name[field_name].default is UNSET, f"{command.__name__}.{field_name} defaults to UNSET"


def test_every_command_schema_of_the_contract_has_its_command_and_no_view_is_one():
    found = [c for _, c in inspect.getmembers(schemas, inspect.isclass)
             if issubclass(c, CommandSchema) and c is not CommandSchema]
    assert {c.__name__ for c in found} >= loaded_schemas()
    for schema in found:
        assert dataclasses.is_dataclass(getattr(schema, "command", None)), schema.__name__
        assert not schema.__name__.endswith("View"), f"{schema.__name__}: a view is no request"



def test_a_providers_registration_is_one_command_that_never_shows_its_secret_EJ_1():
    body = {"region": "16", "name": "Электронная школа", "base_url": "https://journal.test",
            "client_id": "client", "client_secret": "s3cr3t-value"}
    command = schemas.ProviderInput().load_command(body)
    assert command == schemas.RegisterProvider("16", "Электронная школа", "https://journal.test", "client",
                                               "s3cr3t-value")
    assert "s3cr3t-value" not in repr(command)  # a command in a log line or a traceback keeps the secret
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.base_url = "https://elsewhere.test"
    with pytest.raises(marshmallow.ValidationError) as refused:
        schemas.ProviderInput().load_command({**body, "region": "16/77", "base_url": "ftp://journal.test"})
    assert set(refused.value.messages) == {"region", "base_url"}
