"""Link tokens (shared/links.py): a token that is not one of ours is "not a link", whatever text it is; before,
one with a character outside ASCII made hmac.compare_digest raise, and every invite, parent-invite and chat-invite
endpoint answered an anonymous request with a 5xx."""

from __future__ import annotations

import uuid

import pytest

from shared.compare import same_secret
from shared.links import link_id_from_token, link_token


def test_a_token_made_here_names_its_link_and_one_for_another_kind_does_not():
    link_id = uuid.uuid4()
    token = link_token("invite", link_id)
    assert link_id_from_token("invite", token) == link_id
    assert link_id_from_token("parent", token) is None


@pytest.mark.parametrize("tail", ["é" * 32, "\u0436" * 32, "\ud800" * 32, "0" * 31 + "é", "\x00" * 32])
def test_a_token_whose_secret_half_is_any_other_text_is_not_a_link(tail):
    link_id = uuid.uuid4()
    assert link_id_from_token("invite", link_id.hex + tail) is None


def test_a_token_with_one_character_changed_or_of_another_length_is_not_a_link():
    token = link_token("invite", uuid.uuid4())
    changed = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad in (changed, token[:-1], token + "0", "", "é" * 64):
        assert link_id_from_token("invite", bad) is None


def test_secrets_compare_as_text_of_any_kind():
    assert same_secret("v1=abc", "v1=abc")
    assert not same_secret("v1=abc", "v1=é")
    assert not same_secret("v1=abc", "\ud800")
    assert same_secret("é", "é")
