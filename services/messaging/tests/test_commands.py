"""messaging's entrypoints hand the application typed commands (issue #16): every request body they load is a
``CommandSchema`` of shared/contracts/api/messaging.py whose command is a frozen dataclass, and no entrypoint
passes a body on as a dict. Read from the service's source (no nameko needed) and the contract module."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import uuid
from pathlib import Path

import pytest
from marshmallow import Schema, ValidationError

from shared.contracts.api import messaging as schemas
from shared.contracts.api.commands import UNSET, CommandSchema, given

pytestmark = pytest.mark.unit

SERVICE = Path(__file__).resolve().parents[1] / "messaging" / "service.py"


def _entrypoints() -> list[ast.FunctionDef]:
    tree = ast.parse(SERVICE.read_text())
    (service,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "MessagingService"]
    return [f for f in service.body if isinstance(f, ast.FunctionDef)
            and any(ast.unparse(d).startswith("rpc") for d in f.decorator_list)]


def _schema_loads(node: ast.AST) -> list[tuple[str, str, ast.Call]]:
    """(schema, method, call) of each ``schemas.X(...).load(...)`` / ``.load_command(...)`` under ``node``."""
    found = []
    for call in ast.walk(node):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr in ("load", "load_command") and isinstance(call.func.value, ast.Call)
                and isinstance(call.func.value.func, ast.Attribute)
                and ast.unparse(call.func.value.func.value) == "schemas"):
            found.append((call.func.value.func.attr, call.func.attr, call))
    return found


def _loaded_schemas() -> set[str]:
    return {name for f in _entrypoints() for name, _, _ in _schema_loads(f)}


def test_every_body_an_entrypoint_loads_becomes_a_frozen_command():
    loaded = _loaded_schemas()
    assert {"ChatInput", "ChatUpdateInput", "MessageInput", "SystemChatInput", "SystemChatSpec"} <= loaded
    for name in sorted(loaded):
        schema = getattr(schemas, name)
        assert issubclass(schema, CommandSchema), f"{name} is not a CommandSchema"
        assert dataclasses.is_dataclass(schema.command), f"{name}.command is not a dataclass"
        assert schema.command.__dataclass_params__.frozen, f"{name}.command is not frozen"
    plain = [(f.name, name) for f in _entrypoints() for name, method, _ in _schema_loads(f) if method == "load"]
    assert plain == [], f"entrypoints loading a body as a dict, not its command: {plain}"


def test_no_entrypoint_passes_a_body_on_as_a_dict():
    """A parameter that is a body (any dict-typed one: ``dict``, ``dict | None``, ``list[dict]``) goes through its
    schema's ``load_command``."""
    for function in _entrypoints():
        bodies = {a.arg for a in function.args.args if a.annotation is not None
                  and any(isinstance(t, ast.Name) and t.id == "dict" for t in ast.walk(a.annotation))}
        commanded = {ast.unparse(call.args[0]) for _, method, call in _schema_loads(function)
                     if method == "load_command" and call.args}
        assert bodies <= commanded, f"{function.name}: {sorted(bodies - commanded)} not loaded as a command"


def test_every_command_schema_of_the_contract_builds_its_command_from_its_loaded_fields():
    """Each CommandSchema in the module (loaded by the service or not yet): a frozen dataclass with a field for
    every field the schema loads, and no required field the body cannot give but an id of the request's path."""
    found = [c for _, c in inspect.getmembers(schemas, inspect.isclass)
             if issubclass(c, Schema) and issubclass(c, CommandSchema) and c is not CommandSchema]
    assert {c.__name__ for c in found} >= _loaded_schemas()
    for schema in found:
        command = schema.command
        assert dataclasses.is_dataclass(command) and command.__dataclass_params__.frozen, schema.__name__
        names = {f.name for f in dataclasses.fields(command)}
        loads = {field.attribute or key for key, field in schema().fields.items() if not field.dump_only}
        assert loads <= names, f"{schema.__name__}: {sorted(loads - names)} missing from {command.__name__}"


def test_a_message_body_and_its_chat_make_one_post_command_CH_4():
    chat, photo, key = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    command = schemas.MessageInput().load_command(
        {"text": "Контрольная", "attachment_ids": [str(photo)], "client_message_id": str(key),
         "poll": {"question": "Когда?", "options": ["пт", "сб"]}}, chat_id=chat)
    assert command == schemas.PostMessage(chat, "Контрольная", attachment_ids=(photo,), client_message_id=key,
                                          poll={"question": "Когда?", "options": ["пт", "сб"], "multiple": False})
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.text = "другое"
    assert schemas.MessageInput().load_command({}, chat_id=chat) == schemas.PostMessage(chat)
    with pytest.raises(ValidationError):
        schemas.MessageInput().load_command({"text": "x" * (schemas.MAX_TEXT + 1)}, chat_id=chat)


def test_a_chat_update_names_only_what_it_changes_CH_3():
    chat = uuid.uuid4()
    assert given(schemas.UpdateChat(chat, closed=True)) == {"chat_id": chat, "closed": True}
    loaded = schemas.ChatUpdateInput().load_command({"name": "Кружок"}, chat_id=chat)
    assert (loaded.name, loaded.closed) == ("Кружок", None)  # the schema loads what is left out as null
    assert schemas.UpdateChat(chat).name is UNSET


def test_the_bridges_chats_load_as_a_list_of_commands_CH_2():
    org, klass, teacher, pupil = (uuid.uuid4() for _ in range(4))
    specs = schemas.SystemChatSpec(many=True).load_command([
        {"key": "k1", "kind": "subject", "organization_id": str(org), "class_id": str(klass),
         "teacher_id": str(teacher), "subject": "Математика", "member_ids": [str(pupil)]},
        {"key": "k2", "retire": True}])
    assert specs == [schemas.DefineSystemChat("k1", kind="subject", organization_id=org, class_id=klass,
                                              teacher_id=teacher, subject="Математика", member_ids=(pupil,)),
                     schemas.DefineSystemChat("k2", retire=True)]
    with pytest.raises(ValidationError) as refused:
        schemas.SystemChatSpec(many=True).load_command([{"key": "k1"}, {"key": "k2", "kind": "party"}])
    assert set(refused.value.messages) == {1}


def test_a_system_chat_request_makes_its_ensure_command_CH_2():
    org, klass, teacher = (uuid.uuid4() for _ in range(3))
    body = {"kind": "class_parents", "organization_id": str(org), "class_id": str(klass), "teacher_id": str(teacher)}
    assert schemas.SystemChatInput().load_command(body) == schemas.EnsureSystemChat("class_parents", org, klass,
                                                                                     teacher)
    with pytest.raises(ValidationError) as refused:
        schemas.SystemChatInput().load_command({**body, "kind": "party"})
    assert set(refused.value.messages) == {"kind"}
