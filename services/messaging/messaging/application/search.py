"""Message search (issue #17): by words, in one chat or across one's chats, from the search read model
(``messaging.search``), newest first, a page at a time."""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.utils import strtobool

from messaging.application.base import Base
from messaging.search import SearchProjection, search_page
from shared.contracts.api.messaging import SearchMessages
from shared.projection import ReadModel


class Search(Base):
    def __init__(self, env: Any = None):
        super().__init__(env)
        # The search tables (messaging.search), kept from this store's log; a search catches them up first.
        self.search_model = ReadModel(self, SearchProjection())
        self.read_models = (*getattr(self, "read_models", ()), self.search_model)
        if strtobool(self.env.get("CREATE_TABLE", "n")):  # the migration step (and memory stores) make them
            self.search_model.ensure()
            self.search_model.catch_up()

    def close(self) -> None:
        self.search_model.close()
        super().close()

    def search_messages(self, actor_id: uuid.UUID, command: SearchMessages) -> tuple[list[dict], str | None]:
        """Messages with every word of ``command.q`` that ``actor_id`` may read: in ``command.chat_id`` (a member,
        exactly as for its history) or in every chat they are a member of now. Who answered on behalf of an
        organization stays hidden from all but its admins (CH-5), as in the history."""
        if command.chat_id is not None:
            self.check_member(self.chat(command.chat_id), actor_id)
        with self.search_model.reading() as db:
            items, next_cursor = search_page(db, actor_id, command.q, command.chat_id, command.cursor,
                                             command.limit)
        admin_of: dict[str, bool] = {}
        for item in items:
            organization = item["organization_id"]
            if item["on_behalf_of"]:
                if organization not in admin_of:
                    admin_of[organization] = bool(organization) and self._admin_of(actor_id, uuid.UUID(organization))
                if not admin_of[organization]:
                    item["author_id"] = None
        return items, next_cursor
