"""Examples of messaging's typed commands at its RPC edge (issue #16): particular bodies load into their frozen
commands. That every body an entrypoint loads becomes its command is checked for every service at once in
shared/tests/test_edge_commands.py."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from marshmallow import ValidationError

from shared.contracts.api import messaging as schemas
from shared.contracts.api.commands import UNSET, given

pytestmark = pytest.mark.unit


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
