"""shared.projection (issue #17): a read model kept from a store's notification log applies each event once,
in the same transaction as its position, however many processes catch it up at once and wherever a batch
fails; against memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

import threading

import pytest
from eventsourcing.domain import Aggregate, event

from shared.projection import Db, Projection, ReadModel, handles
from shared.store import ServiceApplication, make_application


class Note(Aggregate):
    @event("Written")
    def __init__(self, text: str):
        self.text = text

    @event("Edited")
    def edit(self, text: str) -> None:
        self.text = text


class Other(Aggregate):
    @event("Made")
    def __init__(self):
        pass


class NotesApplication(ServiceApplication):
    name = "notes"


class Notes(Projection):
    """Each note's text, and a count of the events applied: an event applied twice counts twice."""

    name = "notes"
    tables = ("notes", "applied")

    def create_tables(self, db: Db) -> None:
        db.execute("CREATE TABLE {notes} (note_id TEXT PRIMARY KEY, text TEXT NOT NULL)")
        db.execute("CREATE TABLE {applied} (one INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        db.execute("INSERT INTO {applied} (one, n) VALUES (1, 0)")

    @handles(Note.Written, Note.Edited)
    def written(self, db: Db, e) -> None:
        db.execute("INSERT INTO {notes} (note_id, text) VALUES (?, ?) ON CONFLICT (note_id) "
                   "DO UPDATE SET text = excluded.text", (str(e.originator_id), e.text))
        db.execute("UPDATE {applied} SET n = n + 1")


def applied(model: ReadModel) -> tuple[int, dict[str, str]]:
    with model.reading() as db:
        count = db.one("SELECT n FROM {applied}")["n"]
        notes = {r["note_id"]: r["text"] for r in db.rows("SELECT note_id, text FROM {notes}")}
    return count, notes


def test_each_event_is_applied_once_and_others_are_passed_over(store_settings):
    app = make_application(NotesApplication, "notes", create_table=True, config=store_settings)
    model = ReadModel(app, Notes(), batch_size=3)
    notes = [Note(f"note {n}") for n in range(10)]
    for note in notes:
        app.save(note, Other())
    notes[0].edit("edited")
    app.save(notes[0])
    assert applied(model) == (11, {str(n.id): n.text for n in notes})
    assert model.position() == model.head() == 21
    assert model.catch_up() == 0
    assert model.rebuild() == 21 and applied(model)[0] == 11


def test_a_batch_that_fails_half_way_is_applied_again_whole(store_settings, monkeypatch):
    app = make_application(NotesApplication, "notes", create_table=True, config=store_settings)
    model = ReadModel(app, Notes(), batch_size=4)
    for n in range(10):
        app.save(Note(f"note {n}"))
    written, seen = model.projection.written, []

    def fails_at_the_sixth(db, e):
        written(db, e)
        seen.append(e)
        if len(seen) == 6:
            raise RuntimeError("killed")

    monkeypatch.setattr(model.projection, "written", fails_at_the_sixth)
    with pytest.raises(RuntimeError):
        model.catch_up()
    assert model.position() == 4  # the first batch is in, the second rolled back whole
    assert applied(model)[0] == 10  # the second batch again, then the third


def test_replicas_catching_up_at_once_apply_each_event_once(durable_store_settings):
    writer = make_application(NotesApplication, "notes", create_table=True, config=durable_store_settings)
    ReadModel(writer, Notes()).ensure()
    replicas = [make_application(NotesApplication, "notes", config=durable_store_settings) for _ in range(3)]
    models = [ReadModel(app, Notes(), batch_size=5) for app in replicas]
    done = threading.Event()
    errors: list[BaseException] = []

    def read(model: ReadModel) -> None:
        try:
            while not done.is_set():
                model.catch_up()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read, args=(m,)) for m in models]
    for t in readers:
        t.start()
    for n in range(60):
        writer.save(Note(f"note {n}"))
    done.set()
    for t in readers:
        t.join(30)
    assert not errors
    for model in models:
        assert applied(model)[0] == 60


def test_the_tables_live_in_the_stores_own_database(store_settings):
    """Whatever recorder class the store uses (shared.store's own, deriving from eventsourcing's), a durable store's
    read model is in its database, never an in-process copy (each process would keep its own)."""
    app = make_application(NotesApplication, "notes", create_table=True, config=store_settings)
    model = ReadModel(app, Notes())
    assert (model.backend.dialect, type(model.backend).__name__) == {
        "memory": ("sqlite", "_Memory"), "sqlite": ("sqlite", "_SQLite"),
        "postgres": ("postgres", "_Postgres")}[store_settings.persistence]



@pytest.mark.parametrize("store_settings", ["postgres"], indirect=True)
def test_the_stores_prepared_statements_still_work_after_the_tables_are_made_again(store_settings):
    """A read model's tables are dropped and made again (another version) on a pooled connection whose
    eventsourcing statements are prepared. psycopg forgets a connection's prepared statements when it reads a DROP's
    result and deallocates them on the server at the end of the connection's next statement. Pipelined, the DROP's
    result was read at the pipeline's end when the server was slow to answer (the machine busy): the connection's
    next statement, a select of an aggregate's events, was prepared and deallocated at once, and its second use
    failed with "prepared statement _pg3_N does not exist" (the flaky test_search on PostgreSQL). Here a reader
    holding the table keeps the DROP waiting, as a busy server would."""
    import psycopg

    app = make_application(NotesApplication, "notes", create_table=True, config=store_settings)
    model = ReadModel(app, Notes())
    note = Note("one")
    app.save(note)
    model.catch_up()
    c = store_settings
    for n in range(5):
        for _ in range(12 + n):  # the pool hands its connections round (each prepares the select of events); the
            app.repository.get(note.id)  # next DROP falls to another connection, one that never ran it
        with psycopg.connect(host=c.postgres_host, port=c.postgres_port, user=c.postgres_user,
                             password=c.postgres_password, dbname=c.postgres_db) as reader:
            reader.execute(f"SELECT * FROM {model.tables['notes']}")  # holds the table until it commits
            threading.Timer(0.5, reader.commit).start()
            model = ReadModel(app, type("NotesAgain", (Notes,), {"version": model.projection.version + 1})())
            model.ensure()  # another version: its tables dropped and made again
        for _ in range(12):
            assert app.repository.get(note.id).text == "one"
    assert applied(model) == (1, {str(note.id): "one"})


def test_writes_kept_back_are_written_when_their_transaction_ends(store_settings):
    """``Db.execute_latest`` and ``insert_later`` keep writes back until the transaction's next statement; one that
    ends with writes still kept back writes them before it commits (a catch-up always ended with its position's
    UPDATE, which wrote them; any other writer ending on a kept write lost it)."""
    app = make_application(NotesApplication, "notes", create_table=True, config=store_settings)
    model = ReadModel(app, Notes())
    model.ensure()
    with model.transaction(write=True) as db:
        db.insert_later("INSERT INTO {notes} (note_id, text) VALUES ", "(?, ?)", "", ("a", "first"))
        db.execute_latest("b", 1, "UPDATE {applied} SET n = ?", (1,))
        db.execute_latest("b", 2, "UPDATE {applied} SET n = ?", (2,))
    with model.transaction() as db:
        assert db.one("SELECT n FROM {applied}")["n"] == 2
        assert [r["text"] for r in db.rows("SELECT text FROM {notes}")] == ["first"]
