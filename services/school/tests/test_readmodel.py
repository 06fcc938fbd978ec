"""School's read model (issue #17): the members list and organization search page in SQL from tables a
projection keeps from school's notification log (school.readmodel, shared.projection), against memory,
SQLite and PostgreSQL. The aggregates stay the reference: the lists show what the rosters and memberships say."""

from __future__ import annotations

import uuid

import pytest

from school.application import SchoolApplication
from school.domain import Person, Roster
from school.readmodel import SchoolProjection
from shared.contracts.api.school import ChangeMember, CreateInvite, UpdateOrganization
from shared.errors import Invalid
from shared.paging import decode_cursor
from shared.projection import ReadModel
from shared.projection import main as projection_main
from shared.store import make_application
from shared.store.testing import all_pages as paged
from shared.store.testing import resumes_after_a_failure_mid_batch, use_store_settings

from .conftest import School


def dump(model: ReadModel) -> dict[str, list]:
    """Every row of every table of the read model, in a stable order."""
    with model.reading() as db:
        tables = {t: db.rows(f"SELECT * FROM {{{t}}}") for t in model.projection.tables
                  if not (db.postgres and t == "organization_words")}
    return {t: sorted(repr(sorted(r.items())) for r in rows) for t, rows in tables.items()}


def from_aggregates(app: SchoolApplication, organization_id: uuid.UUID, groups: list[str]) -> list[str]:
    """The members list as it was computed before the read model: the rosters' active members by last name."""
    user_ids: set[str] = set()
    for group in groups:
        roster = app.find(Roster, Roster.create_id(organization_id, group))
        user_ids.update(roster.user_ids if roster else [])
    found = []
    for user_id in user_ids:
        if app.membership(organization_id, uuid.UUID(user_id)) is not None:
            person = app.find(Person, uuid.UUID(user_id))
            found.append(f"{(getattr(person, 'last_name', None) or '').casefold()}|{user_id}")
    return [key.split("|")[1] for key in sorted(found)]


def cursor_ends_with_the_last_item(cursor: str, page: list[dict]) -> None:
    last = page[-1]
    assert decode_cursor(cursor).endswith(last["user_id"] if "user_id" in last else last["organization_id"])


def all_pages(list_page, limit: int) -> list[dict]:
    return paged(list_page, limit, cursor_ends_with_the_last_item)


def rename(school: School, user_id: uuid.UUID, last_name: str) -> None:
    school.app.rename_person(event_id=f"identity:{uuid.uuid4()}:ProfileChanged.v1", user_id=user_id,
                             last_name=last_name, first_name="Имя")


def a_school_year(school: School) -> dict:
    """Organizations, classes and members who join, are renamed, change class and role, teach, leave; the
    read model caught up (by the queries in between) at several points on the way."""
    app = school.app
    org, admin = school.organization(name="Гимназия №5", city="Казань")
    five, six = school.klass(org, admin, "5А"), school.klass(org, admin, "6А", 2023, 2030)
    teacher = school.member(org, admin, "teacher", last_name="Учителева")
    app.assign_self(teacher, org, five, ["Математика"])
    pupils = [school.member(org, admin, "student", five, last_name=name)
              for name in ("аксенов", "Борисова", "Ёлкина", "Борисова")]
    app.members(admin, org)  # a catch-up half-way
    other = school.member(org, admin, "student", six, last_name="Вишнев")
    parent = school.user(last_name="Вишнева")
    app.link_parent(event_id=f"identity:{uuid.uuid4()}:ParentLinked.v1", parent_id=parent, child_id=other)
    rename(school, pupils[0], "Яковлев")
    app.change_member(admin, ChangeMember(org, pupils[1], ("student",), six))
    app.appoint_admin(admin, org, teacher)
    app.search("RU", "Казань", None, 10)
    app.remove_member(admin, org, pupils[2])
    lyceum, lyceum_admin = school.organization(name="Лицей имени Лобачевского", city="Казань")
    app.update_organization(lyceum_admin, UpdateOrganization(lyceum, address="ул. Пушкина, 1"))
    samara, _ = school.organization(name="Гимназия №2", city="Самара")
    app.update_organization(admin, UpdateOrganization(org, name="Гимназия №5 имени Тукая"))
    return {"org": org, "admin": admin, "five": five, "six": six, "teacher": teacher, "pupils": pupils,
            "other": other, "parent": parent, "lyceum": lyceum, "samara": samara}


def test_the_read_model_rebuilt_from_scratch_equals_the_incremental_one(school):
    a_school_year(school)
    model = school.app.read_model
    incremental = dump(model)
    assert incremental["members"] and incremental["organizations"]
    assert model.rebuild() == model.head()
    assert dump(model) == incremental


def test_the_members_list_shows_what_the_rosters_say_in_the_same_order(school):
    world = a_school_year(school)
    app, org, admin = school.app, world["org"], world["admin"]
    classes = [str(world["five"]), str(world["six"])]
    listed = [m["user_id"] for m in all_pages(lambda c, n: app.members(admin, org, None, c, n), 2)]
    assert listed == from_aggregates(app, org, ["staff", "unplaced", *classes])
    assert str(world["pupils"][2]) not in listed  # left
    assert listed[-1] == str(world["pupils"][0])  # renamed Яковлев: last
    six = [m["user_id"] for m in app.members(admin, org, world["six"])[0]]
    assert six == from_aggregates(app, org, [str(world["six"])])
    assert str(world["pupils"][1]) in six  # moved from 5А
    pupil_view = app.members(world["other"], org)[0]
    assert [m["user_id"] for m in pupil_view] == from_aggregates(app, org, ["staff", str(world["six"])])
    assert all(set(m) == {"user_id", "last_name", "first_name", "roles"} for m in pupil_view)
    teacher = next(m for m in app.members(admin, org)[0] if m["user_id"] == str(world["teacher"]))
    assert teacher["roles"] == ["teacher", "admin"]
    assert teacher["subjects"] == {str(world["five"]): ["Математика"]}


def test_a_large_school_pages_in_order_without_duplicates_or_gaps(school):
    app = school.app
    org, admin = school.organization()
    five = school.klass(org, admin)
    token = app.create_invite(admin, CreateInvite(org, "student", five, "7d", None, False))[1]
    names = ["Иванов", "иванов", "Ёлкин", "Абрамов", "Zimin", "", "Щукин"]
    pupils = []
    for n in range(120):
        pupils.append(school.user(last_name=names[n % len(names)]))
        app.join_by_invite(token, pupils[-1])
    listed = all_pages(lambda c, n: app.members(admin, org, five, c, n), 7)
    ids = [m["user_id"] for m in listed]
    assert len(ids) == len(set(ids)) == 120
    assert ids == from_aggregates(app, org, [str(five)])
    keys = [f"{(m['last_name'] or '').casefold()}|{m['user_id']}" for m in listed]
    assert keys == sorted(keys)


def test_a_projection_failing_mid_batch_resumes_without_double_rows(school, monkeypatch):
    a_school_year(school)
    expected = resumes_after_a_failure_mid_batch(school.app.read_model, "joined", dump, monkeypatch)
    members = expected["members"]
    assert len(members) == len(set(members))


def test_a_query_sees_a_write_made_just_before_it_by_another_replica(durable_store_settings, monkeypatch):
    monkeypatch.setenv("SFERA_OPERATOR_PHONES", "+79990000001")
    one = School(make_application(SchoolApplication, "school", create_table=True, config=durable_store_settings))
    other = School(make_application(SchoolApplication, "school", config=durable_store_settings))
    org, admin = one.organization(name="Школа №7", city="Уфа")
    assert other.app.search("RU", "Уфа", None, 10)[0] == [{"organization_id": str(org), "name": "Школа №7",
                                                                 "city": "Уфа", "region": None}]
    pupil = one.member(org, admin, "student", one.klass(org, admin), last_name="Новикова")
    assert str(pupil) in [m["user_id"] for m in other.app.members(admin, org)[0]]
    writes = []
    transaction = other.app.read_model.transaction

    def counted(write=False):
        writes.append(write)
        return transaction(write)

    monkeypatch.setattr(other.app.read_model, "transaction", counted)
    other.app.members(admin, org)
    assert writes == [False]  # nothing new: one look at the log's head, then the read itself


def test_a_new_version_of_the_projection_rebuilds_its_tables(school):
    a_school_year(school)
    expected = dump(school.app.read_model)

    class Next(SchoolProjection):
        version = SchoolProjection.version + 1

    model = school.app.read_model  # as a process of the next release finds it
    model.projection, model._ready = Next(), False
    with model.transaction(write=True) as db:
        db.execute("DELETE FROM {members}")
    model.ensure()
    model.catch_up()
    assert dump(model) == expected


def test_the_rebuild_command_makes_the_read_model_again(durable_store_settings, monkeypatch, capsys):
    monkeypatch.setenv("SFERA_OPERATOR_PHONES", "+79990000001")
    config = durable_store_settings
    use_store_settings(monkeypatch, config)
    school = School(make_application(SchoolApplication, "school", create_table=True, config=config))
    world = a_school_year(school)
    expected = dump(school.app.read_model)
    with school.app.read_model.transaction(write=True) as db:
        db.execute("DELETE FROM {members}")
        db.execute("UPDATE {organizations} SET name = 'stale'")
    assert projection_main(["rebuild", "school"]) == 0
    assert "rebuilt up to notification" in capsys.readouterr().out
    assert dump(school.app.read_model) == expected
    assert school.app.members(world["admin"], world["org"])[0]


# -- organization search (SC-2) ---------------------------------------------------------------------------------


def names(hits: list[dict]) -> list[str]:
    return [h["name"] for h in hits]


def test_organizations_are_found_by_words_of_their_name_city_and_address_SC_2(school):
    a_school_year(school)
    search = school.app.search
    assert names(search("RU", None, None, 10, q="гимназия")[0]) == ["Гимназия №2", "Гимназия №5 имени Тукая"]
    assert names(search("RU", None, None, 10, q="ГИМН")[0]) == ["Гимназия №2", "Гимназия №5 имени Тукая"]
    assert names(search("RU", None, None, 10, q="лобач")[0]) == ["Лицей имени Лобачевского"]
    assert names(search("RU", None, None, 10, q="казань")[0]) == ["Гимназия №5 имени Тукая",
                                                                   "Лицей имени Лобачевского"]
    assert names(search("RU", None, None, 10, q="пушкина")[0]) == ["Лицей имени Лобачевского"]
    assert names(search("RU", None, None, 10, q="гимназия самара")[0]) == ["Гимназия №2"]
    assert names(search("RU", "казань", None, 10, q="гимназия")[0]) == ["Гимназия №5 имени Тукая"]
    assert names(search("RU", None, None, 10, q="имени")[0]) == ["Гимназия №5 имени Тукая",
                                                                  "Лицей имени Лобачевского"]
    assert search("RU", None, None, 10, q="университет") == ([], None)
    assert search("KZ", None, None, 10, q="гимназия") == ([], None)
    assert names(search("RU", None, None, 10, q="'\"*:&|!(")[0]) == names(search("RU", None, None, 10)[0])
    first, cursor = search("RU", None, None, 1, q="имени")
    second, end = search("RU", None, cursor, 1, q="имени")
    assert names(first + second) == ["Гимназия №5 имени Тукая", "Лицей имени Лобачевского"] and end is None


def test_organizations_keep_their_place_in_search_after_a_rename_and_a_move_SC_2(school):
    world = a_school_year(school)
    app = school.app
    assert names(app.search("RU", "Казань", None, 10)[0]) == ["Гимназия №5 имени Тукая", "Лицей имени Лобачевского"]
    app.update_organization(world["admin"], UpdateOrganization(world["org"], city="Самара"))
    assert names(app.search("RU", "Казань", None, 10)[0]) == ["Лицей имени Лобачевского"]
    assert names(app.search("RU", "самара", None, 10)[0]) == ["Гимназия №2", "Гимназия №5 имени Тукая"]
    assert names(app.search("RU", None, None, 10, q="тукая самара")[0]) == ["Гимназия №5 имени Тукая"]


def test_search_knows_russian_word_forms_SC_2(school):
    a_school_year(school)
    search = school.app.search
    assert names(search("RU", None, None, 10, q="гимназии")[0]) == ["Гимназия №2", "Гимназия №5 имени Тукая"]
    assert names(search("RU", None, None, 10, q="лицеи")[0]) == ["Лицей имени Лобачевского"]
    assert names(search("RU", None, None, 10, q="в казани гимназию")[0]) == ["Гимназия №5 имени Тукая"]


def test_a_word_of_digits_and_letters_is_found_as_typed_whatever_stands_around_it_SC_2(school):
    """PostgreSQL's own parser read "Тестоград-123456" as a word and the number "-123456", and a query "1e5a00"
    as the phrase "1e5" "a00": such words were never found on PostgreSQL (a web test's random city, 1 run in
    ~10). Both sides are now our words (letters and digits), on every store."""
    for city in ("Тестоград-123456", "Тестоград-1e5a00", "Тестоград-3fa2b1"):
        school.organization(name="Лицей №2", city=city)
    search = school.app.search
    for word in ("123456", "1e5a00", "3fa2b1", "1e5a", "1234"):
        hits = search("RU", None, None, 10, q=f"лицея {word}")[0]
        assert [h["city"] for h in hits] == [c for c in ("Тестоград-123456", "Тестоград-1e5a00", "Тестоград-3fa2b1")
                                             if c.split("-")[1].startswith(word)], word
    assert names(search("RU", None, None, 10, q="тестоград 2")[0]) == ["Лицей №2"] * 3


def test_every_store_finds_the_same_organizations_for_the_same_words_SC_2(school):
    """One word splitter, stemmer and stop list (shared.textsearch) on every store, as message search: SQLite's
    FTS5 read й as и, asked stop words as words and left English words unstemmed."""
    school.organization(name="Гимназия «Майская»", city="Тестоград-майск")
    school.organization(name="Lyceum of Sciences", city="Тестоград-науки")
    search = school.app.search

    def found(q: str) -> list[str]:
        return names(search("RU", None, None, 10, q=q)[0])

    assert found("майская") == ["Гимназия «Майская»"] and found("маиская") == []
    assert found("гимназия для") == ["Гимназия «Майская»"]  # a stop word is no filter
    assert found("the science") == ["Lyceum of Sciences"]  # nor an English one; "science" is a stem of "sciences"
    assert found("гимназия б") == []  # a lone letter that is no stop word is a word to find


def test_organizations_are_found_by_their_regions_name_in_russian_and_english_and_by_its_code_SC_2(school):
    """SC-2 (issue #17): search by name, city and region: the region's names (shared.regions) are indexed beside
    the name, city and address, so a school of Tatarstan is found by "татарстан" and "Tatarstan" whatever its
    city's name, and "Москва" finds the schools of region 77 in Зеленоград; ``region`` filters by the code."""
    kazan, _ = school.organization(name="Гимназия №7", city="Казань", region="16")
    chistopol, _ = school.organization(name="Лицей №1", city="Чистополь", region="16")
    zelenograd, admin = school.organization(name="Школа №1", city="Зеленоград", region="77")
    school.organization(name="Школа №2", city="Москва")  # no region: found by its city only
    school.organization(name="Школа №3", city="Химки", region="50")  # Московская область: "москва" is no prefix
    search = school.app.search

    def found(q=None, region=None, city=None):
        return [(h["name"], h["region"]) for h in search("RU", city, None, 10, q=q, region=region)[0]]

    tatarstan = [("Гимназия №7", "16"), ("Лицей №1", "16")]
    assert found("татарстан") == found("Tatarstan") == found("республика татарстан") == tatarstan
    assert found("лицей tatarstan") == [("Лицей №1", "16")]
    assert found("москва") == [("Школа №1", "77"), ("Школа №2", None)]
    assert found("moscow") == [("Школа №1", "77"), ("Школа №3", "50")]  # Moscow, Moscow Oblast
    assert found("московская") == [("Школа №3", "50")]
    assert found(region="16") == found(region=" 16 ") == tatarstan
    assert found("лицей", region="16") == [("Лицей №1", "16")] and found("лицей", region="77") == []
    assert found(region="77", city="зеленоград") == [("Школа №1", "77")]
    first, cursor = search("RU", None, None, 1, region="16")
    second, end = search("RU", None, cursor, 1, region="16")
    assert [h["organization_id"] for h in first + second] == [str(kazan), str(chistopol)] and end is None
    for bad in ("99", "Татарстан"):
        with pytest.raises(Invalid) as refused:
            search("RU", None, None, 10, region=bad)
        assert refused.value.code == "region.unknown"
    school.app.update_organization(admin, UpdateOrganization(zelenograd, region="50"))
    assert found("москва") == [("Школа №2", None)] and found(region="77") == []
