"""Typed commands at school's RPC edge (issue #16): every request body school's entrypoints load is a
``CommandSchema`` building a frozen dataclass the application takes. Found by reading ``school.service``, so an
entrypoint that loads a new schema as a plain dict, or a schema without its command, fails here."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
import uuid

import marshmallow
import pytest

from school import service
from shared.contracts.api import school as schemas
from shared.contracts.api.commands import UNSET, CommandSchema, given

pytestmark = pytest.mark.unit


def loads_in_service() -> dict[str, set[str]]:
    """``schemas.X().load(...)`` / ``.load_command(...)`` in school.service: X -> the methods called."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(inspect.getsource(service))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("load"):
            schema = node.func.value
            if (isinstance(schema, ast.Call) and isinstance(schema.func, ast.Attribute)
                    and isinstance(schema.func.value, ast.Name) and schema.func.value.id == "schemas"):
                found.setdefault(schema.func.attr, set()).add(node.func.attr)
    return found


LOADED = sorted(loads_in_service())


def test_the_service_builds_a_command_from_every_body_it_loads():
    loads = loads_in_service()
    assert {"ApplicationInput", "OrganizationInput", "ClassInput", "MemberChange", "InviteInput",
            "JoinRequestDecision", "ArticleInput", "ArticleEdit"} <= loads.keys()  # the finder finds them
    assert {name: methods for name, methods in loads.items() if methods != {"load_command"}} == {}


@pytest.mark.parametrize("name", LOADED)
def test_a_loaded_schema_is_a_command_schema_with_a_frozen_typed_command(name):
    schema_class = getattr(schemas, name)
    assert issubclass(schema_class, CommandSchema)
    command = schema_class.command
    assert dataclasses.is_dataclass(command) and command.__dataclass_params__.frozen
    hints = typing.get_type_hints(command)
    by_name = {f.name: f for f in dataclasses.fields(command)}
    body = {n: f for n, f in schema_class().load_fields.items()}
    assert body.keys() <= by_name.keys(), f"{command.__name__} lacks {sorted(body.keys() - by_name.keys())}"
    for edge_given in by_name.keys() - body.keys():  # the ids of the request's path
        assert hints[edge_given] is uuid.UUID and by_name[edge_given].default is dataclasses.MISSING
    for field_name, field in body.items():
        if not field.required and field.load_default is marshmallow.missing:  # a body may leave it out
            assert by_name[field_name].default is UNSET, f"{command.__name__}.{field_name} defaults to UNSET"


def test_every_command_schema_of_the_module_has_its_command():
    for name, value in vars(schemas).items():
        if isinstance(value, type) and issubclass(value, CommandSchema) and value is not CommandSchema:
            assert dataclasses.is_dataclass(getattr(value, "command", None)), name


def test_a_members_roles_come_as_a_tuple_and_a_partial_update_names_only_what_it_changes_SC_8_RO_2():
    org, user = uuid.uuid4(), uuid.uuid4()
    change = schemas.MemberChange().load_command({"roles": ["student"]}, organization_id=org, user_id=user)
    assert change == schemas.ChangeMember(org, user, ("student",), None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.roles = ("admin",)
    update = schemas.OrganizationInput().load_command({"address": None}, organization_id=org)
    assert given(update) == {"organization_id": org, "address": None}
    edit = schemas.ArticleEdit().load_command({"title": "t", "html": "<p>x</p>"}, article_id=user)
    assert edit == schemas.EditArticle(user, "t", "<p>x</p>", None)
