"""``python -m messaging.seed history --user <id> --messages N``: write a long chat history
straight into messaging's own store (a page per transaction) and print the chat's id.

The service owns this because only it may write its store: benchmarks and load
tests run it as a command (with the stack's environment) instead of importing
messaging's internals. Posting a hundred thousand messages through the API would
take longer than the read benchmark it prepares."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

from messaging.application import MessagingApplication
from messaging.domain import PAGE_SIZE, Chat, MessagePage
from shared.store import ServiceApplication, make_application


def write_history(app: ServiceApplication, user_id: uuid.UUID, total: int, name: str = "archive") -> Chat:
    """A manual chat of ``user_id`` alone holding ``total`` messages; the chat is saved on its first and last page
    and every 50th (a page per transaction), as a long-lived chat would have grown."""
    chat = Chat(kind="manual", organization_id=None, name=name, created_by=user_id, member_ids=[str(user_id)])
    pages = -(-total // PAGE_SIZE)
    for number in range(pages):
        page = MessagePage(chat_id=chat.id, number=number)
        for _ in range(min(PAGE_SIZE, total - number * PAGE_SIZE)):
            page.post(uuid.uuid4(), user_id, None, f"message {page.next_seq}", None, chat.created_on)
        if number:
            chat.open_page()
        app.save(page, *([chat] if number in (0, pages - 1) or number % 50 == 0 else []))
    app.save(chat)
    return chat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m messaging.seed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    history = sub.add_parser("history", help="one chat with a long history")
    history.add_argument("--user", type=uuid.UUID, required=True, help="the chat's only member")
    history.add_argument("--messages", type=int, required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    app = make_application(MessagingApplication, "messaging")
    chat = write_history(app, args.user, args.messages)
    print(json.dumps({"chat_id": str(chat.id), "messages": args.messages,
                      "seconds": round(time.perf_counter() - started, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
