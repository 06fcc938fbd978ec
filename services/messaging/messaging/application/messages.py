"""Messages (CH-4): posted, edited, deleted with a trace, read back page by page; a call's recording (CA-6)."""

from __future__ import annotations

import itertools
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

from messaging.application.dialogs import Dialogs
from messaging.domain import PAGE_SIZE, Attachment, Chat, MessagePage, ReadMark, SentMessage, check_poll, check_text
from shared.clock import utcnow
from shared.contracts.api.messaging import MAX_ATTACHMENTS, PostMessage
from shared.errors import Conflict, DomainError, Forbidden, Invalid
from shared.group_commit import GroupCommit
from shared.store import once_per_event, query

_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="messaging-reads")  # green threads in a service

class Messages(Dialogs):  # what they add to a chat: its writers only (Dialogs.check_writer)
    def post(self, actor_id: uuid.UUID, m: PostMessage) -> dict:
        """A message: text, attachments uploaded to this chat, a poll, or several of these (CH-4).

        ``client_message_id`` (the client's idempotency key, per author and chat) posts it once: a retry with
        the same key answers the first message as it is now, whatever the retry carries (the first wins).

        Posts into one chat take turns (the chat's lock); those that arrive while a turn runs are posted together
        in the next one (``shared.group_commit``: one read of the chat and its last page, one save, one commit),
        each decided as if alone, in the order they arrived: a chat accepts as many posts a second as arrive,
        not one per turn."""
        attachment_ids = list(dict.fromkeys(m.attachment_ids))
        text = check_text(m.text, required=not (attachment_ids or m.poll))
        poll = check_poll(m.poll) if m.poll else None
        if len(attachment_ids) > MAX_ATTACHMENTS:
            raise Invalid("message.too_many_attachments", f"A message has at most {MAX_ATTACHMENTS} attachments.")
        key = ("chat", m.chat_id)
        attempts = itertools.count()  # the batch's attempts: client ids are looked up from the second on
        return self._post_batches.submit(key, (actor_id, m, text, poll, attachment_ids),
                                         lambda command: self.retrying(command, key),
                                         lambda posts: self._post_together(m.chat_id, posts,
                                                                           look_up_keys=next(attempts) > 0))

    @cached_property
    def _post_batches(self) -> GroupCommit:
        return GroupCommit()

    def _post_together(self, chat_id: uuid.UUID, posts: list[tuple], look_up_keys: bool = True) -> list:
        """One turn of a chat's posts: each decided in order (a refusal is that post's alone), one save.

        Without ``look_up_keys`` (a batch's first attempt) a ``client_message_id`` is not looked up first (a round
        trip a post inside the chat's turn, issue #17): its record (``SentMessage``) is created with the message,
        and a key already used fails that save (IntegrityError), so the batch runs again, looking the keys up; a
        post that would be refused looks its key up first (a repeat whose attachments went with the first)."""
        self._read_turn_ahead(chat_id, [actor_id for actor_id, *_ in posts])  # one round trip for what follows
        chat = self.chat(chat_id)
        page, changed = self._last_page(chat)
        saved: dict[int, object] = {id(a): a for a in (*changed, page)}
        attachments: dict[uuid.UUID, Attachment] = {}
        sent_here: dict[uuid.UUID, tuple] = {}  # a client_message_id's aggregate id -> (page, seq) posted in this turn
        outcomes: list = []
        # One's own message is never unread: writing reads the chat up to it (as messengers do); the members'
        # marks are read at once, side by side. The post says so (``read_by_author``): no MessagesRead of its own.
        marks = self._read_marks(chat_id, list(dict.fromkeys(a for a, *_ in posts if chat.is_member(a))))
        for actor_id, m, text, poll, attachment_ids in posts:
            sent_id = None
            try:
                self.check_writer(chat, actor_id)
                sent_id = SentMessage.create_id(chat_id, actor_id, m.client_message_id) if m.client_message_id \
                    else None
                if sent_id in sent_here:  # the same retried post twice in one turn: the first one's answer
                    outcomes.append(sent_here[sent_id])
                    continue
                sent = self.find(SentMessage, sent_id) if sent_id and look_up_keys else None
                if sent is not None:  # a retry: read inside the turn, so the loser of a race finds the winner
                    outcomes.append((self._page_of(chat_id, sent.seq), sent.seq, actor_id))
                    continue
                on_behalf = None
                if m.on_behalf_of_organization or chat.kind == "inbox" and actor_id != chat.created_by:
                    # CH-5: admins answer the inbox and post in common chats as the organization.
                    if not self._is_admin(chat, actor_id):
                        raise Forbidden("organization.role_required",
                                        "Only admins post on behalf of the organization.")
                    on_behalf = chat.organization_id
                files = []
                for attachment_id in attachment_ids:
                    if attachment_id in attachments and attachments[attachment_id].seq is not None:
                        raise Conflict("attachment.already_sent", "This file was already sent.",
                                       {"attachment_id": str(attachment_id)})
                    files.append(attachments.get(attachment_id)
                                 or self._unsent_attachment(actor_id, chat_id, attachment_id))
                if m.reply_to is not None and not 0 <= m.reply_to < page.next_seq:
                    raise Invalid("message.reply_not_found", "The message replied to does not exist.")
                if page.full:  # this turn filled the page (unsaved yet): the next one opens
                    chat.open_page()
                    page = MessagePage(chat_id=chat.id, number=chat.pages - 1)
                    saved.update({id(chat): chat, id(page): page})
                if actor_id not in marks:  # a member school has just let in (check_member asked it)
                    marks[actor_id] = self._read_mark(chat_id, actor_id)
                seq = page.post(uuid.uuid4(), actor_id, on_behalf, text, m.reply_to, utcnow(),
                                [a.view() for a in files], poll, read_by_author=True,
                                author_read_from=marks[actor_id].read_until)
            except DomainError as refused:  # a key not looked up yet is, before refusing: its first message answers
                sent = self.find(SentMessage, sent_id) if sent_id and not look_up_keys else None
                outcomes.append(refused if sent is None else (self._page_of(chat_id, sent.seq), sent.seq, actor_id))
                continue
            for attachment in files:
                attachment.sent(seq)
                attachments[attachment.id] = attachment
                saved[id(attachment)] = attachment
            saved[id(marks[actor_id])] = marks[actor_id]
            marks[actor_id].read(seq, by_post=True)  # not published: the post's MessagePosted implies it
            if sent_id:
                record = SentMessage(chat_id=chat_id, author_id=actor_id, client_message_id=m.client_message_id,
                                     seq=seq)
                saved[id(record)] = record
                sent_here[sent_id] = (page, seq, actor_id)
            outcomes.append((page, seq, actor_id))
        self.save(*saved.values())
        return [outcome if isinstance(outcome, DomainError) else self._shown(chat, outcome[0].message(outcome[1]),
                                                                             outcome[2])
                for outcome in outcomes]

    @once_per_event
    def post_call_recording(self, chat_id: uuid.UUID, admin_id: uuid.UUID, duration: float, file_name: str,
                            media_type: str, size: int, blob_key: str, *, event_id: str) -> bool:
        """CA-6: a call's recording lands in the call's chat, posted by the call's admin, for its members."""
        minutes, seconds = divmod(int(duration), 60)

        def command() -> bool:
            chat = self.find(Chat, chat_id)
            if chat is None:
                return self.process_once(event_id)
            attachment = Attachment(chat_id=chat_id, uploaded_by=admin_id, kind="video", file_name=file_name,
                                    media_type=media_type, size=size, blob_key=blob_key)
            page, changed = self._last_page(chat)
            seq = page.post(uuid.uuid4(), admin_id, None, f"Запись звонка ({minutes}:{seconds:02d})", None, utcnow(),
                            [attachment.view()], None)
            attachment.sent(seq)
            return self.process_once(event_id, *changed, page, attachment)

        return self.retrying(command, ("chat", chat_id))

    def edit(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int, text: str) -> dict:
        text = check_text(text)

        def command() -> dict:
            self.check_writer(self.chat(chat_id), actor_id)
            page = self._page_of(chat_id, seq)
            if page.message(seq)["author_id"] != str(actor_id):
                raise Forbidden("message.not_yours", "You can edit only your own messages.")
            page.edit(seq, text, utcnow())
            self.save(page)
            return self._shown(self.chat(chat_id), page.message(seq), actor_id)

        return self.retrying(command, ("chat", chat_id))

    def delete(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int) -> dict:
        """The author, the creator of a manual chat, or an admin of the chat's
        organization (moderation); a trace stays in the history."""
        def command() -> dict:
            chat = self.chat(chat_id)
            self.check_member(chat, actor_id)
            page = self._page_of(chat_id, seq)
            author = page.message(seq)["author_id"]
            if author != str(actor_id) and not self._moderates(chat, actor_id):
                raise Forbidden("message.not_yours", "You can delete only your own messages.")
            page.delete(seq, actor_id, utcnow())
            self.save(page)
            return self._shown(chat, page.message(seq), actor_id)

        return self.retrying(command, ("chat", chat_id))

    @query
    def history(self, actor_id: uuid.UUID, chat_id: uuid.UUID, before: int | None, after: int | None,
                limit: int) -> tuple[list[dict], int]:
        """A page of messages, newest first before ``before`` or oldest first after
        ``after`` (a reconnecting client catches up from its last seq); reads at most
        two pages of history however long the chat is. A query: the cached chat and pages themselves, not a copy
        each (what it answers are new dicts, ``_shown``)."""
        chat = self.chat(chat_id)
        self.check_member(chat, actor_id)
        last = self.last_seq(chat)
        if after is not None:
            wanted = range(after + 1, min(last, after + limit) + 1)
        else:
            top = last if before is None else min(before - 1, last)
            wanted = range(top, max(-1, top - limit), -1)
        pages: dict[int, MessagePage] = {}
        found = []
        for seq in wanted:
            number = seq // PAGE_SIZE
            if number not in pages:
                pages[number] = self._page_of(chat_id, seq)
            found.append(self._shown(chat, pages[number].message(seq), actor_id))
        return found, last

    def _read_turn_ahead(self, chat_id: uuid.UUID, author_ids: list[uuid.UUID]) -> None:
        """A turn of a chat's posts reads the chat, its last page and its authors' read marks: those cached, in one
        select of what was stored since (``ServiceApplication.prefetch``; a round trip each before, issue #17). The
        last page is the one the cached chat names: when another replica opened a page since, ``_last_page``
        reads the new one as always."""
        cache = self.repository.cache
        try:
            cached = cache.get(chat_id) if cache is not None else None
        except KeyError:
            return
        if isinstance(cached, Chat):
            self.prefetch(chat_id, MessagePage.create_id(chat_id, cached.pages - 1),
                          *(ReadMark.create_id(chat_id, a) for a in dict.fromkeys(author_ids)))

    def _read_marks(self, chat_id: uuid.UUID, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, ReadMark]:
        """Several people's read marks of a chat, read side by side (a turn of a chat's posts advances each
        author's: a round trip each, no longer one after another inside the turn, issue #17), each as read in the
        retried command's attempt under way (so that it may be saved). Those the turn read ahead are at hand: only
        the others go to the readers (a future and a green thread's hand-over each, ~4 % of messaging's CPU a post
        under load when all went)."""
        ahead = {user_id: self._read_mark(chat_id, user_id) for user_id in user_ids
                 if self.has_read_ahead(ReadMark.create_id(chat_id, user_id))}
        others = [user_id for user_id in user_ids if user_id not in ahead]
        if len(others) < 2:
            return {user_id: ahead.get(user_id) or self._read_mark(chat_id, user_id) for user_id in user_ids}
        attempt = getattr(self._attempts, "current", None)

        def read(user_id: uuid.UUID) -> ReadMark:
            self._attempts.current = attempt
            try:
                return self._read_mark(chat_id, user_id)
            finally:
                self._attempts.current = None

        ahead.update(zip(others, _READERS.map(read, others), strict=True))
        return {user_id: ahead[user_id] for user_id in user_ids}
