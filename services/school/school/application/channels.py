"""Channels (SC-12): an organization's announcement channels; admins post, members read."""

from __future__ import annotations

import uuid

from school import lists
from school.application.base import SchoolBase
from school.domain import Channel
from shared.clock import utcnow
from shared.errors import Invalid
from shared.store import command


class Channels(SchoolBase):
    def create_channel(self, actor_id: uuid.UUID, organization_id: uuid.UUID, name: str) -> Channel:
        self._require(organization_id, actor_id, "admin")
        if not name.strip() or len(name) > 80:
            raise Invalid("channel.invalid_name", "A name of 1 to 80 characters.")

        def create() -> Channel:
            organization = self.organization(organization_id)
            channel = Channel(organization_id=organization_id, name=name.strip(), created_by=actor_id)
            organization.add_channel(channel.id)
            self.save(channel, organization)
            return channel

        return self.retrying(create)

    def channels(self, actor_id: uuid.UUID, organization_id: uuid.UUID) -> list[Channel]:
        return self.channels_page(actor_id, organization_id, None, None)[0]

    def channels_page(self, actor_id: uuid.UUID, organization_id: uuid.UUID, cursor: str | None, limit: int | None
                      ) -> tuple[list[Channel], str | None]:
        """The organization's channels in the order they were made, from the read model (``school.lists``)."""
        self._member(organization_id, actor_id)
        return self._entries("channel", organization_id, cursor, limit, lists.channel)

    def channel(self, actor_id: uuid.UUID, channel_id: uuid.UUID) -> Channel:
        """One channel for its organization's members (SC-12): the same rule as the list; an id alone grants
        nothing (another school's member is refused as by the list)."""
        channel = self.get_as(Channel, channel_id, "channel.not_found", "No such channel.")
        self._member(channel.organization_id, actor_id)
        return channel

    @command
    def post(self, actor_id: uuid.UUID, channel_id: uuid.UUID, text: str) -> dict:
        """SC-12: admins post; members read."""
        channel = self.get_as(Channel, channel_id, "channel.not_found", "No such channel.")
        self._require(channel.organization_id, actor_id, "admin")
        if not text.strip() or len(text) > 10_000:
            raise Invalid("channel.invalid_post", "A post of 1 to 10000 characters.")
        post_id = uuid.uuid4()
        channel.post(post_id, actor_id, text.strip(), utcnow())
        self.save(channel)
        return channel.posts[-1]

    def posts(self, actor_id: uuid.UUID, channel_id: uuid.UUID, cursor: str | None, limit: int
              ) -> tuple[list[dict], str | None]:
        channel = self.get_as(Channel, channel_id, "channel.not_found", "No such channel.")
        self._member(channel.organization_id, actor_id)
        # Newest first, from the read model (school.lists): the cursor is the last post's place in the channel,
        # so posts made while a reader pages show on their first page, never again on the next.
        return self._entries("post", channel_id, cursor, limit, lists.post, newest_first=True)
