"""Attachments (CH-4): asked for before the bytes are read, uploaded within today's quotas, downloaded by members."""

from __future__ import annotations

import uuid
from typing import Any

from messaging.application.dialogs import Dialogs
from messaging.domain import Attachment, check_attachment
from shared.clock import utcnow
from shared.contracts.api.messaging import ATTACHMENT_KINDS, attachment_max_bytes
from shared.errors import Gone, Invalid, NotFound
from shared.uploads import Quotas, clean_file_name, quota_exceeded


class Attachments(Dialogs):  # what they add to a chat: its writers only (Dialogs.check_writer)
    def upload_allowance(self, actor_id: uuid.UUID, chat_id: uuid.UUID, kind: str) -> dict[str, Any]:
        """Asked before a file's bytes are read (issue #12): members of the chat only, a
        known kind; how large it may be and what today's quotas leave (``bytes_left``,
        the ``scope`` that leaves the fewest: the person, or the chat's school)."""
        chat = self.chat(chat_id)
        self.check_writer(chat, actor_id)
        if kind not in ATTACHMENT_KINDS:
            raise Invalid("attachment.invalid_kind", f"An attachment is one of: {', '.join(ATTACHMENT_KINDS)}.")
        left, scope = Quotas(self.find, actor_id, chat.organization_id, utcnow().date()).left()
        if left <= 0:
            raise quota_exceeded(scope, left)
        return {"max_bytes": attachment_max_bytes(kind), "bytes_left": left, "scope": scope}

    def upload_attachment(self, actor_id: uuid.UUID, chat_id: uuid.UUID, kind: str, file_name: str,
                          media_type: str, size: int, blob_key: str) -> Attachment:
        """A file the gateway received becomes an attachment of this chat, to be sent with
        a message: ``media_type`` is what its content was sniffed to be, the name is
        cleaned before it is checked, and its bytes count against today's quotas."""
        file_name = clean_file_name(file_name)
        media_type = media_type.split(";")[0].strip().lower()

        def upload() -> Attachment:
            chat = self.chat(chat_id)
            self.check_writer(chat, actor_id)
            check_attachment(kind, file_name, media_type, size)
            ledgers = Quotas(self.find, actor_id, chat.organization_id, utcnow().date()).charge(size)
            attachment = Attachment(chat_id=chat_id, uploaded_by=actor_id, kind=kind, file_name=file_name,
                                    media_type=media_type, size=size, blob_key=blob_key)
            self.save(attachment, *ledgers)
            return attachment

        return self.retrying(upload)

    def attachment(self, actor_id: uuid.UUID, chat_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment:
        """For download: members of the chat, once sent (the uploader before, too); not after the message's deletion."""
        self.check_member(self.chat(chat_id), actor_id)
        attachment = self.find(Attachment, attachment_id)
        if attachment is None or attachment.chat_id != chat_id or (
                attachment.seq is None and attachment.uploaded_by != actor_id):
            raise NotFound("attachment.not_found", "No such file in this chat.")
        if attachment.seq is not None and self._page_of(chat_id, attachment.seq).message(attachment.seq)["deleted"]:
            raise Gone("message.deleted", "The message with this file was deleted.")
        return attachment
