"""Each event the relay publishes says which version of its aggregate it is (CloudEvents' sequence extension):
consumers that get one aggregate's events through separate queues, retries and replays tell older from newer by
it (messaging's rosters: an outside review found a removed stranger's late MemberJoined putting him back among a
school's children). The relay's mapping alone, on SQLite: no broker is reached."""

from __future__ import annotations

from eventsourcing.domain import event

from shared.bus.relay import OutboxRelay
from shared.config import settings
from shared.contracts import parse_event
from shared.lease import Lease
from shared.store import make_application
from shared.tests.test_relay_wake import Note, NotesApplication, as_registered


class Edited(Note):
    @event("Edited")
    def edit(self, text: str) -> None:
        self.text = text


def test_every_published_event_carries_its_aggregates_version(tmp_path):
    config = settings({"SFERA_VAR_DIR": str(tmp_path / "var"), "PERSISTENCE": "sqlite"})
    make_application(NotesApplication, "identity", create_table=True, config=config).close()
    app = make_application(NotesApplication, "identity", config=config)
    try:
        first, second = Edited(text="a"), Edited(text="b")
        app.save(first)
        first.edit("c")
        first.edit("d")
        app.save(first, second)
        relay = OutboxRelay("identity", app, as_registered, "amqp://guest:guest@127.0.0.1:1/%2F",
                            lease=Lease("outbox:identity", config))
        published = [(n.originator_id, parse_event(message.body).sequence)
                     for n in app.process_recorder.select_notifications(start=1, limit=10)
                     for message in relay.to_messages(n)]
    finally:
        app.close()
    assert published == [(first.id, 1), (first.id, 2), (first.id, 3), (second.id, 1)]
