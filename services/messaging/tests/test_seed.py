"""messaging's seed command writes a history the service then serves like any other (bench.messaging runs it
instead of importing messaging's internals)."""

from __future__ import annotations

import uuid

import pytest

from messaging.application import MessagingApplication
from messaging.domain import PAGE_SIZE
from messaging.seed import write_history
from shared.errors import Forbidden
from shared.store import make_application

pytestmark = pytest.mark.integration


def test_a_seeded_history_reads_back_page_by_page(store_settings):
    app = make_application(MessagingApplication, "messaging", create_table=True, config=store_settings)
    user = uuid.uuid4()
    total = 2 * PAGE_SIZE + 7
    chat = write_history(app, user, total)

    newest, last = app.history(user, chat.id, before=None, after=None, limit=3)
    assert last == total - 1
    assert [m["seq"] for m in newest] == [total - 1, total - 2, total - 3]
    middle, _ = app.history(user, chat.id, before=PAGE_SIZE + 1, after=None, limit=2)
    assert [m["text"] for m in middle] == [f"message {PAGE_SIZE}", f"message {PAGE_SIZE - 1}"]
    with pytest.raises(Forbidden):
        app.history(uuid.uuid4(), chat.id, before=None, after=None, limit=1)  # a stranger reads nothing
