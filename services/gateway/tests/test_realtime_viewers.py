"""The realtime fan-out shapes each event per viewer in one place (CH-5)."""

from __future__ import annotations

import json

import pytest

from gateway.realtime import Hub, conceal

pytestmark = pytest.mark.unit

PUPIL, ADMIN, OTHER_ADMIN = "p" * 8, "a" * 8, "b" * 8


class FakeRpc:
    def call(self, service, method, **kwargs):
        assert (service, method) == ("messaging", "audience")
        return {"members": [PUPIL, ADMIN, OTHER_ADMIN], "concealed": [ADMIN, OTHER_ADMIN]}


class Socket:
    def __init__(self):
        self.sent = []

    def send(self, payload):
        self.sent.append(json.loads(payload))


def test_the_writer_of_an_inbox_thread_never_receives_an_admins_id_CH_5():
    hub = Hub(FakeRpc())
    pupil, admin = Socket(), Socket()
    hub.connect(PUPIL, pupil)
    hub.connect(ADMIN, admin)
    hub.deliver("MessagesRead.v1", {"chat_id": "c", "user_id": ADMIN, "read_until": 3})
    assert pupil.sent == [{"type": "MessagesRead", "data": {"chat_id": "c", "user_id": None, "read_until": 3}}]
    assert admin.sent[0]["data"]["user_id"] == ADMIN
    # an admin joining the thread is not news to the pupil; the admins learn it
    hub.deliver("ChatMembersChanged.v1", {"chat_id": "c", "added": [OTHER_ADMIN], "removed": []})
    assert len(pupil.sent) == 1 and admin.sent[-1]["data"]["added"] == [OTHER_ADMIN]


def test_nothing_is_hidden_in_chats_that_conceal_nobody():
    data = {"chat_id": "c", "user_id": ADMIN, "member_ids": [PUPIL, ADMIN]}
    assert conceal("ChatCreated", data, set()) is data
    assert conceal("ChatCreated", data, {ADMIN}) == {"chat_id": "c", "user_id": None, "member_ids": [PUPIL]}
