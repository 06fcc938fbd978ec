"""Typed commands at every service's RPC edge (issue #16): each request body a service's entrypoints load is a
``CommandSchema`` of its contract module (shared/contracts/api/<service>.py) building a frozen, typed dataclass the
application takes, and no entrypoint passes a body on as a dict. Found by reading each ``service.py`` (not
importing it: shared imports no service), so a new entrypoint that loads a plain dict, or a schema without its
command, fails here. Examples of particular commands are in each service's tests/test_commands.py."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import typing
import uuid
from pathlib import Path

import marshmallow
import pytest

from shared.contracts.api.commands import UNSET, CommandSchema

pytestmark = pytest.mark.unit

SERVICES = Path(__file__).resolve().parents[2] / "services"
# The bodies each service loads today: the finder must find at least these (a finder that finds nothing passes
# every other check).
EXPECTED = {
    "calls": {"StartCallInput", "PermissionsInput", "BreakoutsInput", "MoveInput", "StrokeInput"},
    "ejournal_bridge": {"ProviderInput"},
    "identity": {"ProfileInput", "ChildProfileInput"},
    "messaging": {"ChatInput", "ChatUpdateInput", "MessageInput", "SystemChatInput", "SystemChatSpec"},
    "school": {"ApplicationInput", "OrganizationInput", "ClassInput", "MemberChange", "InviteInput",
               "JoinRequestDecision", "ArticleInput", "ArticleEdit"},
}


def contracts(service: str):
    return importlib.import_module(f"shared.contracts.api.{service}")


def entrypoints(service: str) -> list[ast.FunctionDef]:
    """The ``@rpc`` methods of the service's nameko class."""
    tree = ast.parse((SERVICES / service / service / "service.py").read_text())
    return [f for cls in tree.body if isinstance(cls, ast.ClassDef) for f in cls.body
            if isinstance(f, ast.FunctionDef) and any(ast.unparse(d).startswith("rpc") for d in f.decorator_list)]


def loaded_class(made: ast.Call) -> str | None:
    """X of ``schemas.X(...)`` (a schema made) or of ``schema(schemas.X, ...)`` (its one instance a process,
    ``shared.contracts.api.one`` imported as ``schema``)."""
    if isinstance(made.func, ast.Attribute) and ast.unparse(made.func.value) == "schemas":
        return made.func.attr
    if (ast.unparse(made.func) in ("schema", "one") and made.args and isinstance(made.args[0], ast.Attribute)
            and ast.unparse(made.args[0].value) == "schemas"):
        return made.args[0].attr
    return None


def schema_loads(node: ast.AST) -> list[tuple[str, str, ast.Call]]:
    """(schema, method, call) of each ``schemas.X(...).load(...)`` / ``.load_command(...)`` under ``node`` (or
    ``schema(schemas.X).load…``)."""
    return [(loaded_class(call.func.value), call.func.attr, call) for call in ast.walk(node)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr in ("load", "load_command") and isinstance(call.func.value, ast.Call)
            and loaded_class(call.func.value) is not None]


def loaded(service: str) -> set[str]:
    return {name for f in entrypoints(service) for name, _, _ in schema_loads(f)}


LOADED = [(service, name) for service in sorted(EXPECTED) for name in sorted(loaded(service))]


def test_every_service_with_entrypoints_is_checked():
    with_rpc = {p.parent.name for p in SERVICES.glob("*/*/service.py") if p.parent.name == p.parent.parent.name
                and entrypoints(p.parent.name)}
    assert with_rpc == EXPECTED.keys()


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_every_body_an_entrypoint_loads_becomes_its_command(service):
    assert EXPECTED[service] <= loaded(service)
    plain = [(f.name, name) for f in entrypoints(service) for name, method, _ in schema_loads(f) if method == "load"]
    assert plain == [], f"entrypoints loading a body as a dict, not its command: {plain}"


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_no_entrypoint_passes_a_body_on_as_a_dict(service):
    """A parameter that is a body (``dict``, ``dict | None``, ``list[dict]``) goes through ``load_command``."""
    for function in entrypoints(service):
        bodies = {a.arg for a in function.args.args
                  if a.annotation is not None and ast.unparse(a.annotation).startswith(("dict", "list[dict"))}
        commanded = {ast.unparse(call.args[0]) for _, method, call in schema_loads(function)
                     if method == "load_command" and call.args}
        assert bodies <= commanded, f"{function.name}: {sorted(bodies - commanded)} not loaded as a command"


@pytest.mark.parametrize(("service", "name"), LOADED)
def test_a_loaded_schema_is_a_command_schema_with_a_frozen_typed_command(service, name):
    schema_class = getattr(contracts(service), name)
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


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_every_command_schema_of_a_contract_has_its_command_and_no_view_is_one(service):
    module = contracts(service)
    found = [c for c in vars(module).values()
             if isinstance(c, type) and issubclass(c, CommandSchema) and c is not CommandSchema]
    assert {c.__name__ for c in found} >= loaded(service)
    for schema in found:
        assert dataclasses.is_dataclass(getattr(schema, "command", None)), schema.__name__
        assert not schema.__name__.endswith("View"), f"{schema.__name__}: a view is no request"
