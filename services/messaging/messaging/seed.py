"""``python -m messaging.seed history --user <id> --messages N [--chats K] [--sentences]``: write long chat
histories straight into messaging's own store (a page per transaction) and print the chats' ids. ``--sentences``
writes school-like Russian sentences (``sentence``: words in many forms, for bench.message_search) instead of
``message <seq>``.

The service owns this because only it may write its store: benchmarks and load
tests run it as a command (with the stack's environment) instead of importing
messaging's internals. Posting a hundred thousand messages through the API would
take longer than the read benchmark it prepares."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections.abc import Callable

from messaging.application import MessagingApplication
from messaging.domain import PAGE_SIZE, Chat, MessagePage
from shared.store import ServiceApplication, make_application

SUBJECTS = ("урок", "уроки", "урока", "контрольная", "контрольной", "домашнее задание", "сочинение", "диктант",
            "экскурсия", "экскурсии", "олимпиада", "олимпиаду", "собрание", "родительское собрание", "каникулы")
TOPICS = ("математике", "математики", "физике", "химии", "литературе", "истории", "географии", "биологии",
          "русскому языку", "английскому", "информатике", "музыке")
WHEN = ("завтра", "в понедельник", "во вторник", "в среду", "в четверг", "в пятницу", "в субботу",
        "на следующей неделе", "сегодня после обеда", "утром")


def sentence(seq: int) -> str:
    """A school-like message (the same one for the same seq): subject, topic, when, and a number."""
    pick = random.Random(seq)
    return (f"{pick.choice(SUBJECTS).capitalize()} по {pick.choice(TOPICS)} {pick.choice(WHEN)}, "
            f"кабинет {pick.randrange(1, 400)}")


def write_history(app: ServiceApplication, user_id: uuid.UUID, total: int, name: str = "archive",
                  text: Callable[[int], str] = lambda seq: f"message {seq}") -> Chat:
    """A manual chat of ``user_id`` alone holding ``total`` messages (``text(seq)`` each); the chat is saved on its
    first and last page and every 50th (a page per transaction), as a long-lived chat would have grown."""
    chat = Chat(kind="manual", organization_id=None, name=name, created_by=user_id, member_ids=[str(user_id)])
    pages = -(-total // PAGE_SIZE)
    for number in range(pages):
        page = MessagePage(chat_id=chat.id, number=number)
        for _ in range(min(PAGE_SIZE, total - number * PAGE_SIZE)):
            page.post(uuid.uuid4(), user_id, None, text(page.next_seq), None, chat.created_on)
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
    history.add_argument("--messages", type=int, required=True, help="in each chat")
    history.add_argument("--chats", type=int, default=1, help="chats of that many messages (default 1)")
    history.add_argument("--sentences", action="store_true", help="school-like Russian sentences as the texts")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    app = make_application(MessagingApplication, "messaging")
    texts = {"text": lambda seq: sentence(seq + n * args.messages)} if args.sentences else {}
    chats = []
    for n in range(args.chats):
        chats.append(write_history(app, args.user, args.messages, f"archive {n}" if n else "archive", **texts))
    print(json.dumps({"chat_id": str(chats[0].id), "chat_ids": [str(c.id) for c in chats],
                      "messages": args.messages * args.chats, "seconds": round(time.perf_counter() - started, 2)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
