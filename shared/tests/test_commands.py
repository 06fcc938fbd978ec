"""Typed commands at the RPC edge (shared.contracts.api.commands): a body's schema builds its command."""

import dataclasses
import uuid

import pytest
from marshmallow import ValidationError, fields

from shared.contracts.api.commands import UNSET, CommandSchema, given

pytestmark = pytest.mark.unit


@dataclasses.dataclass(frozen=True)
class CreateThing:
    organization_id: uuid.UUID
    name: str
    size: int = 1


class ThingInput(CommandSchema):
    command = CreateThing
    name = fields.String(required=True)
    size = fields.Integer()


@dataclasses.dataclass(frozen=True)
class RenameThing:
    thing_id: uuid.UUID
    name: str = UNSET
    size: int = UNSET


class ThingChange(CommandSchema):
    command = RenameThing
    name = fields.String()
    size = fields.Integer(allow_none=True)


def test_the_body_and_the_path_make_one_frozen_command():
    org = uuid.uuid4()
    command = ThingInput().load_command({"name": "x", "size": "3"}, organization_id=org)
    assert command == CreateThing(org, "x", 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.name = "y"


def test_a_body_field_left_out_takes_the_commands_default():
    assert ThingInput().load_command({"name": "x"}, organization_id=uuid.UUID(int=1)).size == 1


def test_a_bad_body_is_refused_before_any_command_exists():
    with pytest.raises(ValidationError) as refused:
        ThingInput().load_command({"size": "many", "colour": "red"}, organization_id=uuid.UUID(int=1))
    assert set(refused.value.messages) == {"name", "size", "colour"}


def test_the_body_cannot_set_what_the_edge_gives():
    class Sneaky(CommandSchema):
        command = CreateThing
        name = fields.String(required=True)
        organization_id = fields.UUID()

    with pytest.raises(TypeError):
        Sneaky().load_command({"name": "x", "organization_id": str(uuid.uuid4())}, organization_id=uuid.uuid4())


def test_a_partial_update_lists_only_what_the_request_set():
    thing = uuid.uuid4()
    assert given(ThingChange().load_command({"size": None}, thing_id=thing)) == {"thing_id": thing, "size": None}
    assert given(ThingChange().load_command({}, thing_id=thing)) == {"thing_id": thing}
    assert not UNSET and repr(UNSET) == "UNSET"


def test_a_list_of_bodies_makes_a_list_of_commands_and_a_bad_item_is_named_by_its_index():
    org = uuid.uuid4()
    assert ThingInput(many=True).load_command([{"name": "a"}, {"name": "b", "size": 2}], organization_id=org) == [
        CreateThing(org, "a"), CreateThing(org, "b", 2)]
    assert ThingInput(many=True).load_command(None, organization_id=org) == []
    with pytest.raises(ValidationError) as refused:
        ThingInput(many=True).load_command([{"name": "a"}, {"size": 2}], organization_id=org)
    assert refused.value.messages == {1: {"name": ["Missing data for required field."]}}
