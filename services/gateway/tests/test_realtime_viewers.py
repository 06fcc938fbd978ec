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
    hub.deliver("MessagesRead.v1", {"chat_id": "c", "user_id": ADMIN, "read_until": 3, "read_from": 1})
    # nor where that admin's own mark was (the organization's is not one admin's: issue #17's read_from)
    assert pupil.sent == [{"type": "MessagesRead", "data": {"chat_id": "c", "user_id": None, "read_until": 3,
                                                            "read_from": None}}]
    assert admin.sent[0]["data"]["user_id"] == ADMIN
    # an admin joining the thread is not news to the pupil; the admins learn it
    hub.deliver("ChatMembersChanged.v1", {"chat_id": "c", "added": [OTHER_ADMIN], "removed": []})
    assert len(pupil.sent) == 1 and admin.sent[-1]["data"]["added"] == [OTHER_ADMIN]


def test_a_post_implies_its_authors_read_mark_concealed_as_the_reads_were_CH_4_CH_5():
    """MessagePosted with ``read_by_author`` is the author's read mark too (no MessagesRead comes for it): whom it
    names is whom a viewer may see, so the writer of an inbox thread reads it as the organization's, as it read
    the admin's MessagesRead."""
    hub = Hub(FakeRpc())
    pupil, admin = Socket(), Socket()
    hub.connect(PUPIL, pupil)
    hub.connect(ADMIN, admin)
    answered = {"chat_id": "c", "seq": 4, "author_id": None, "on_behalf_of": "org", "read_by_author": True}
    asked = {"chat_id": "c", "seq": 5, "author_id": PUPIL, "on_behalf_of": None, "read_by_author": True}
    by_hand = {"chat_id": "c", "seq": 6, "author_id": ADMIN, "on_behalf_of": None, "read_by_author": True,
               "author_read_from": 2}
    for posted in (answered, asked, by_hand):
        assert hub.deliver("MessagePosted.v1", posted) == 2
    assert [f["data"] for f in pupil.sent] == [answered, asked, {**by_hand, "author_id": None,
                                                                 "author_read_from": None}]
    assert [f["data"] for f in admin.sent] == [answered, asked, by_hand]
    assert all(f["type"] == "MessagePosted" for f in pupil.sent + admin.sent)


def test_nothing_is_hidden_in_chats_that_conceal_nobody():
    data = {"chat_id": "c", "user_id": ADMIN, "member_ids": [PUPIL, ADMIN]}
    assert conceal("ChatCreated", data, set()) is data
    assert conceal("ChatCreated", data, {ADMIN}) == {"chat_id": "c", "user_id": None, "member_ids": [PUPIL]}
