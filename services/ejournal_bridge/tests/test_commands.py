"""Examples of ejournal_bridge's typed commands at its RPC edge (issue #16): particular bodies load into their frozen
commands. That every body an entrypoint loads becomes its command is checked for every service at once in
shared/tests/test_edge_commands.py."""

from __future__ import annotations

import dataclasses

import marshmallow
import pytest

from shared.contracts.api import ejournal_bridge as schemas

pytestmark = pytest.mark.unit


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
        schemas.ProviderInput().load_command({**body, "region": "16" * 6, "base_url": "ftp://journal.test"})
    assert set(refused.value.messages) == {"region", "base_url"}
