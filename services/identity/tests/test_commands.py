"""Examples of identity's typed commands at its RPC edge (issue #16): particular bodies load into their frozen
commands. That every body an entrypoint loads becomes its command is checked for every service at once in
shared/tests/test_edge_commands.py."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date

import marshmallow
import pytest

from shared.contracts.api import identity as schemas

pytestmark = pytest.mark.unit


def test_ones_profile_and_a_childs_at_the_parents_confirmation_load_as_commands_ID_5_PL_3():
    user = uuid.uuid4()
    body = {"last_name": "Иванова", "first_name": "Мария", "birth_date": "2014-05-17", "sex": "female"}
    update = schemas.ProfileInput().load_command(body, user_id=user)
    assert update == schemas.UpdateProfile("Иванова", "Мария", date(2014, 5, 17), "female", user_id=user)
    assert update.patronymic is None
    child = schemas.ChildProfileInput().load_command({**body, "patronymic": "Ивановна"})
    assert child == schemas.Profile("Иванова", "Мария", date(2014, 5, 17), "female", "Ивановна")
    assert isinstance(update, schemas.Profile) and not isinstance(child, schemas.UpdateProfile)
    with pytest.raises(dataclasses.FrozenInstanceError):
        update.last_name = "Петрова"
    with pytest.raises(TypeError):  # the person whose profile it is comes from the path, never from the body
        schemas.ProfileInput().load_command(body)
    with pytest.raises(marshmallow.ValidationError) as refused:
        schemas.ProfileInput().load_command({**body, "sex": "other", "birth_date": "soon"}, user_id=user)
    assert set(refused.value.messages) == {"sex", "birth_date"}
