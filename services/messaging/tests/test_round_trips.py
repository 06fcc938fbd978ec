"""Issue #17, "live chat delivery": the round trips to PostgreSQL of a post into a 40-member class chat, counted on
the wire (shared/tests/test_store_round_trips.py's proxy in front of the server, the chat's cluster lock's own
connection included), and what a turn reads when another replica wrote meanwhile."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from messaging import handlers
from messaging.application import MessagingApplication
from messaging.domain import Chat, MessagePage, ReadMark
from shared.config import settings
from shared.contracts import make_event
from shared.contracts.api.messaging import PostMessage
from shared.store import make_application
from shared.tests.test_store_round_trips import RoundTripCounter

pytestmark = pytest.mark.integration
NOW = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
MEMBERS = 40


def _school_event(app: MessagingApplication, handler, event_name: str, **data) -> None:
    handler(app, make_event(f"school.{event_name}.v1", data, event_id=f"school:{uuid.uuid4()}:{event_name}"))


def class_chat(app: MessagingApplication, members: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A school's class of ``members`` pupils, fed as school's events: its class chat and the pupils."""
    org, class_id = uuid.uuid4(), uuid.uuid4()
    _school_event(app, handlers.on_organization_registered, "OrganizationRegistered", organization_id=org,
                  name="Школа", kind="school", country="RU", city="Казань", registered_at=NOW)
    _school_event(app, handlers.on_class_created, "ClassCreated", organization_id=org, class_id=class_id,
                  name="5А", start_year=2025, end_year=2032, created_at=NOW)
    pupils = [uuid.uuid4() for _ in range(members)]
    for pupil in pupils:
        _school_event(app, handlers.on_member_joined, "MemberJoined", organization_id=org, user_id=pupil,
                      role="student", roles=["student"], class_id=class_id, joined_at=NOW)
    (chat,) = [c["chat"] for c in app.chats_of(pupils[0]) if c["chat"].kind == "class"]
    assert len(chat.members) == members
    return chat.id, pupils


@pytest.fixture
def counted(postgres):
    """Messaging applications (replicas of one store) reached through one round-trip counter."""
    database = f"mrt{uuid.uuid4().hex[:8]}"
    postgres.ensure_database(database)
    counter = RoundTripCounter(postgres.port)
    config = settings({"PERSISTENCE": "postgres", "SFERA_PG_PORT": str(counter.port), "SFERA_PG_DB": database})
    made: list[MessagingApplication] = []

    def make(create_table: bool = False) -> MessagingApplication:
        made.append(make_application(MessagingApplication, "messaging", create_table=create_table, config=config))
        return made[-1]

    yield make, counter
    for app in made:
        app.close()
    counter.close()


def test_a_post_into_a_40_member_chat_is_four_round_trips_CH_4(counted):
    """A post's turn: the chat's cluster lock, ONE select of what is new of the chat, its last page and the
    author's read mark (cached aggregates fast-forwarded together; was a round trip each: 6 a post), the save,
    the unlock. Each post still gets its own seq and moves its author's mark (CH-4)."""
    make, counter = counted
    app = make(create_table=True)
    chat_id, pupils = class_chat(app, MEMBERS)
    for n in range(2 * MEMBERS):  # every pooled connection has prepared the statements, every mark is cached
        app.post(pupils[n % MEMBERS], PostMessage(chat_id, f"warm {n}"))
    trips = [counter.count(lambda n=n: app.post(pupils[n], PostMessage(chat_id, f"counted {n}"))) for n in range(10)]
    assert max(trips) <= 4, trips
    history, last = app.history(pupils[0], chat_id, None, None, 10)
    assert last == 2 * MEMBERS + 9 and [m["text"] for m in reversed(history)] == [f"counted {n}" for n in range(10)]
    assert [app._read_mark(chat_id, p).read_until for p in pupils[:10]] == [2 * MEMBERS + n for n in range(10)]


def test_with_the_read_ahead_off_each_aggregate_is_its_own_round_trip(counted, monkeypatch):
    """``SFERA_STORE_READ_AHEAD=off`` (bench.messaging_post's baseline of the same run): the chat, the page and the
    mark read one by one, posting the same."""
    monkeypatch.setenv("SFERA_STORE_READ_AHEAD", "off")
    make, counter = counted
    app = make(create_table=True)
    chat_id, pupils = class_chat(app, 4)
    for n in range(8):
        app.post(pupils[n % 4], PostMessage(chat_id, f"warm {n}"))
    trips = [counter.count(lambda n=n: app.post(pupils[n], PostMessage(chat_id, f"counted {n}"))) for n in range(4)]
    assert min(trips) >= 6, trips
    assert app.history(pupils[0], chat_id, None, None, 1)[1] == 11


def test_aggregates_read_ahead_together_see_what_another_replica_wrote_CH_4(counted):
    """The read ahead of a turn (one select for the cached chat, page and marks) is as fresh as reading each: the
    other replica's posts, its opened page and its members' marks are in what the next post decides on."""
    make, _ = counted
    one = make(create_table=True)
    two = make()
    chat_id, pupils = class_chat(one, 3)
    a, b, c = pupils
    texts = ["one", "two", "three", "four"]
    for n, text in enumerate(texts):  # one's cache: the chat, page 0, a's and b's marks (read again: cached)
        one.post((a, b)[n % 2], PostMessage(chat_id, text))
    two.post(b, PostMessage(chat_id, "five"))
    two.post(c, PostMessage(chat_id, "six"))
    ids = [chat_id, MessagePage.create_id(chat_id, 0), ReadMark.create_id(chat_id, a), ReadMark.create_id(chat_id, b),
           ReadMark.create_id(chat_id, c)]
    ahead = one.retrying(lambda: (one.prefetch(*ids), dict(one._attempts.current.prefetched))[1])
    assert set(ahead) == set(ids[:4])  # c's mark was never cached here: read as always
    assert ahead[ids[1]].next_seq == 6 and ahead[ids[3]].read_until == 4 and ahead[ids[2]].read_until == 2
    assert isinstance(ahead[chat_id], Chat)
    # each a copy of its own: changing one leaves the cache as stored
    ahead[ids[1]].messages[0]["text"] = "changed"
    assert one.find(MessagePage, ids[1]).messages[0]["text"] == "one"
    assert one.post(a, PostMessage(chat_id, "seven"))["seq"] == 6
    assert one._read_mark(chat_id, a).read_until == 6 and one._read_mark(chat_id, b).read_until == 4
    history, last = two.history(c, chat_id, None, None, 10)
    assert last == 6 and [m["text"] for m in reversed(history)] == [*texts, "five", "six", "seven"]


def test_read_marks_read_ahead_are_taken_as_they_are_and_only_the_others_read_side_by_side_CH_4(counted,
                                                                                                monkeypatch):
    """A turn of several authors' posts reads their marks: those its read ahead brought are at hand, no reader
    thread is handed them (a future and a green thread's hand-over each); the others are still read side by side."""
    from messaging.application import messages

    make, _ = counted
    app = make(create_table=True)
    chat_id, pupils = class_chat(app, 5)
    for n in range(6):  # the first three authors' marks cached
        app.post(pupils[n % 3], PostMessage(chat_id, f"warm {n}"))
    handed: list[list] = []
    map_ = messages._READERS.map
    monkeypatch.setattr(messages._READERS, "map", lambda fn, items: handed.append(list(items)) or map_(fn, items))
    ids = [chat_id, *(ReadMark.create_id(chat_id, p) for p in pupils[:3])]
    marks = app.retrying(lambda: (app.prefetch(*ids), app._read_marks(chat_id, pupils))[1])
    assert handed == [pupils[3:]]  # the two never cached, side by side; none of the three read ahead
    assert list(marks) == pupils and [marks[p].read_until for p in pupils[:3]] == [3, 4, 5]
    assert [marks[p].read_until for p in pupils[3:]] == [ReadMark(chat_id=chat_id, user_id=p).read_until
                                                        for p in pupils[3:]]  # never posted: new marks
