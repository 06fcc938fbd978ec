"""Examples of school's typed commands at its RPC edge (issue #16): particular bodies load into their frozen
commands. That every body an entrypoint loads becomes its command is checked for every service at once in
shared/tests/test_edge_commands.py."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from shared.contracts.api import school as schemas
from shared.contracts.api.commands import given

pytestmark = pytest.mark.unit


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
