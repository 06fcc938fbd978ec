"""School's read model (issue #17): the tables its lists are paged from, kept by a projection of school's
notification log (``shared.projection``) in school's own database.

- ``members``: one row per membership (organization, person, roles, class, subjects, active) with the person's
  name, the list's sort key (``casefold(last name)|user id``, the members list's order and cursor since
  before the read model) and the rosters they are in (``groups``); ``rosters`` and ``roster_members``: who
  is in which roster (a class, ``staff``, ``unplaced``) as the ``Roster`` aggregates say, so the list shows
  exactly whom it showed before;
  ``people``: names, for memberships recorded before or after the person.
- ``organizations``: each organization's name, country and city (``city_key``), region (its code), address and
  sort key (``casefold(name)|id``), searched in full text by name, city, address and the region's names in Russian
  and English (``shared.regions``: "татарстан", "Tatarstan" find region 16): PostgreSQL a ``tsvector``
  (Russian stems and plain words, GIN index) matched word by word as prefixes; SQLite an FTS5 table
  (``unicode61``, diacritics removed: ё is е) of the words and their Snowball stems (``snowballstemmer``, the
  algorithm of PostgreSQL's ``russian``) matched the same way.
Sort keys are compared as code points: Python's order, SQLite's BINARY, PostgreSQL's ``COLLATE "C"``.
``python -m school.readmodel rebuild`` (or ``python -m shared.projection rebuild school``) rebuilds it.
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

from school.domain import UNPLACED, Membership, Organization, Person, Roster, city_key
from shared.projection import Db, Projection, handles, text_or_none
from shared.regions import region_names
from shared.textsearch import (
    DOCUMENT_SQL,
    FTS5_TOKENIZE,
    document,
    document_params,
    fts_match,
    kept_terms,
    tsquery_match,
    words,
)


def member_sort_key(last_name: str | None, user_id: Any) -> str:
    return f"{(last_name or '').casefold()}|{user_id}"


def organization_sort_key(name: str, organization_id: Any) -> str:
    return f"{name.casefold()}|{organization_id}"


class SchoolProjection(Projection):
    name = "school"
    version = 7  # 5: the search column holds our words as lexemes (shared.textsearch); 6: regions (SC-2); 7: the
    # same terms on every store (shared.textsearch: our stems and stop words, FTS5 splitting nothing of its own)
    tables = ("people", "members", "rosters", "roster_members", "organizations", "organization_words")

    def create_tables(self, db: Db) -> None:
        ordered = ' COLLATE "C"' if db.postgres else ""
        db.execute("CREATE TABLE {people} (user_id TEXT PRIMARY KEY, last_name TEXT, first_name TEXT, "
                   "sort_name TEXT NOT NULL)")
        db.execute("CREATE TABLE {members} (organization_id TEXT NOT NULL, user_id TEXT NOT NULL, "
                   "roles TEXT NOT NULL, class_id TEXT, subjects TEXT NOT NULL, active INTEGER NOT NULL, "
                   f"last_name TEXT, first_name TEXT, sort_key TEXT{ordered} NOT NULL, groups TEXT NOT NULL, "
                   "PRIMARY KEY (organization_id, user_id))")
        db.execute("CREATE INDEX rm_members_order ON {members} (organization_id, sort_key)")
        db.execute("CREATE INDEX rm_members_person ON {members} (user_id)")
        db.execute("CREATE TABLE {rosters} (roster_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, "
                   "grp TEXT NOT NULL)")
        db.execute("CREATE TABLE {roster_members} (organization_id TEXT NOT NULL, user_id TEXT NOT NULL, "
                   "grp TEXT NOT NULL, PRIMARY KEY (organization_id, user_id, grp))")
        search = ", search tsvector" if db.postgres else ""
        db.execute("CREATE TABLE {organizations} (organization_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                   "country TEXT NOT NULL, city TEXT NOT NULL, city_key TEXT NOT NULL, region TEXT, address TEXT, "
                   f"sort_key TEXT{ordered} NOT NULL{search})")
        db.execute("CREATE INDEX rm_organizations_city ON {organizations} (country, city_key, sort_key)")
        db.execute("CREATE INDEX rm_organizations_region ON {organizations} (country, region, sort_key)")
        db.execute("CREATE INDEX rm_organizations_country ON {organizations} (country, sort_key)")
        if db.postgres:
            db.execute("CREATE INDEX rm_organizations_search ON {organizations} USING GIN (search)")
        else:
            db.execute("CREATE VIRTUAL TABLE {organization_words} USING fts5(organization_id UNINDEXED, body, "
                       f"{FTS5_TOKENIZE})")

    # -- people ------------------------------------------------------------------------------------------

    @handles(Person.Recorded, Person.Renamed)
    def named(self, db: Db, event: Any) -> None:
        user_id = str(event.originator_id)
        db.execute("INSERT INTO {people} (user_id, last_name, first_name, sort_name) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (user_id) DO UPDATE SET last_name = excluded.last_name, "
                   "first_name = excluded.first_name, sort_name = excluded.sort_name",
                   (user_id, event.last_name, event.first_name, (event.last_name or "").casefold()))
        db.execute("UPDATE {members} SET last_name = ?, first_name = ?, sort_key = ? WHERE user_id = ?",
                   (event.last_name, event.first_name, member_sort_key(event.last_name, user_id), user_id))

    # -- memberships -------------------------------------------------------------------------------------

    # The events most often applied (a person recorded, joining, added to a roster) only write: on PostgreSQL
    # a catch-up's statements then go out in one pipeline instead of a round trip each.

    @handles(Membership.Joined)
    def joined(self, db: Db, event: Any) -> None:
        user_id = str(event.user_id)
        db.execute("INSERT INTO {members} (organization_id, user_id, roles, class_id, subjects, active, last_name, "
                   "first_name, sort_key, groups) SELECT ?, ?, ?, ?, '{{}}', 1, p.last_name, p.first_name, "
                   "COALESCE(p.sort_name, '') || '|' || ?, '|' FROM (SELECT 1 AS one) x "
                   "LEFT JOIN {people} p ON p.user_id = ? WHERE 1 = 1 "
                   "ON CONFLICT (organization_id, user_id) DO UPDATE SET roles = excluded.roles, "
                   "class_id = excluded.class_id, subjects = excluded.subjects, active = 1",
                   (str(event.organization_id), user_id, json.dumps([event.role]), text_or_none(event.class_id),
                    user_id, user_id))
        self._regroup(db, user_id, "?", str(event.organization_id))

    def _regroup(self, db: Db, user_id: str, organization: str, *params: str) -> None:
        """The member row's ``groups`` (``|staff|<class id>|``): the rosters they are in, so that a page is one
        scan of the organization's members in order, filtered row by row (no join to plan). ``organization``
        is the SQL that gives the organization's id, with its ``params``."""
        listed = ("string_agg(r.grp, '|' ORDER BY r.grp)" if db.postgres
                  else "group_concat(r.grp, '|')")  # SQLite: in the primary key's order, grp last
        db.execute(f"UPDATE {{members}} AS m SET groups = COALESCE('|' || (SELECT {listed} FROM {{roster_members}} r "
                   "WHERE r.organization_id = m.organization_id AND r.user_id = m.user_id) || '|', '|') "
                   f"WHERE m.user_id = ? AND m.organization_id = {organization}", (user_id, *params))

    def _member(self, db: Db, event: Any, **columns: Any) -> None:
        assigned = ", ".join(f"{c} = ?" for c in columns)
        db.execute(f"UPDATE {{members}} SET {assigned} WHERE organization_id = ? AND user_id = ?",
                   (*columns.values(), str(event.organization_id), str(event.user_id)))

    @handles(Membership.Rejoined)
    def rejoined(self, db: Db, event: Any) -> None:
        self._member(db, event, roles=json.dumps(event.roles), class_id=text_or_none(event.class_id), subjects="{}",
                     active=1)

    @handles(Membership.RoleAdded)
    def role_added(self, db: Db, event: Any) -> None:
        self._member(db, event, roles=json.dumps(event.roles), class_id=text_or_none(event.class_id))

    @handles(Membership.Changed)
    def changed(self, db: Db, event: Any) -> None:
        self._member(db, event, roles=json.dumps(event.roles), class_id=text_or_none(event.class_id),
                     subjects=json.dumps(event.subjects))

    @handles(Membership.TeacherAssigned)
    def teacher_assigned(self, db: Db, event: Any) -> None:
        row = db.one("SELECT subjects FROM {members} WHERE organization_id = ? AND user_id = ?",
                     (str(event.organization_id), str(event.user_id)))
        subjects = {**(json.loads(row["subjects"]) if row else {}), str(event.class_id): event.subjects}
        self._member(db, event, subjects=json.dumps(subjects))

    @handles(Membership.Left)
    def left(self, db: Db, event: Any) -> None:
        self._member(db, event, active=0)

    # -- rosters ---------------------------------------------------------------------------------------------

    @handles(Roster.Opened)
    def roster_opened(self, db: Db, event: Any) -> None:
        db.execute("INSERT INTO {rosters} (roster_id, organization_id, grp) VALUES (?, ?, ?) "
                   "ON CONFLICT (roster_id) DO NOTHING", (str(event.originator_id), str(event.organization_id),
                                                          event.group))

    @handles(Roster.Added)
    def roster_added(self, db: Db, event: Any) -> None:
        user_id, roster_id = str(event.user_id), str(event.originator_id)
        db.execute("INSERT INTO {roster_members} (organization_id, user_id, grp) "
                   "SELECT organization_id, ?, grp FROM {rosters} WHERE roster_id = ? "
                   "ON CONFLICT (organization_id, user_id, grp) DO NOTHING", (user_id, roster_id))
        self._regroup(db, user_id, "(SELECT organization_id FROM {rosters} WHERE roster_id = ?)", roster_id)

    @handles(Roster.Removed)
    def roster_removed(self, db: Db, event: Any) -> None:
        roster = db.one("SELECT organization_id, grp FROM {rosters} WHERE roster_id = ?", (str(event.originator_id),))
        if roster is not None:
            db.execute("DELETE FROM {roster_members} WHERE organization_id = ? AND user_id = ? AND grp = ?",
                       (roster["organization_id"], str(event.user_id), roster["grp"]))
            self._regroup(db, str(event.user_id), "?", roster["organization_id"])

    # -- organizations ---------------------------------------------------------------------------------------

    @handles(Organization.Registered, Organization.Updated)
    def organization(self, db: Db, event: Any) -> None:
        organization_id = str(event.originator_id)
        address = getattr(event, "address", None)  # Registered has none
        country, key = city_key(event.country, event.city)
        db.execute("INSERT INTO {organizations} (organization_id, name, country, city, city_key, region, address, "
                   "sort_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (organization_id) DO UPDATE SET "
                   "name = excluded.name, country = excluded.country, city = excluded.city, "
                   "city_key = excluded.city_key, region = excluded.region, address = excluded.address, "
                   "sort_key = excluded.sort_key",
                   (organization_id, event.name, country, event.city, key, event.region, address,
                    organization_sort_key(event.name, organization_id)))
        text = " ".join(filter(None, [event.name, event.city, address, *region_names(country, event.region)]))
        if db.postgres:
            db.execute(f"UPDATE {{organizations}} SET search = {DOCUMENT_SQL} WHERE organization_id = ?",
                       (*document_params(text), organization_id))
        else:  # FTS5 has no Russian: each word's Snowball stem is indexed beside it (shared.textsearch)
            db.execute("DELETE FROM {organization_words} WHERE organization_id = ?", (organization_id,))
            db.execute("INSERT INTO {organization_words} (organization_id, body) VALUES (?, ?)",
                       (organization_id, document(text)))


# -- queries ----------------------------------------------------------------------------------------------------


def parent_classes(roles: list[str], class_id: str | None, groups: str) -> list[uuid.UUID]:
    """A parent's classes (``Membership.parent_classes``) from the member row: the classes among their rosters
    (``groups``), but the one a pupil who is a parent too studies in."""
    if "parent" not in roles:
        return []
    studying = class_id if "student" in roles else None
    return [uuid.UUID(g) for g in groups.strip("|").split("|") if g and g not in ("staff", UNPLACED, studying)]


def members_page(db: Db, organization_id: uuid.UUID, groups: list[str] | None, after: str | None, limit: int,
                 staff_view: bool) -> tuple[list[dict], str | None]:
    """Active members of the organization in any of ``groups`` (rosters; None: in any roster), after the
    sort key ``after``: ``limit`` rows and the last one's key when more follow."""
    if groups is not None and not groups:
        return [], None
    if groups is None:
        in_groups, params = "m.groups <> '|'", []
    else:  # roster names are "staff", "unplaced" and class ids: nothing LIKE reads as a wildcard
        in_groups, params = "(" + " OR ".join("m.groups LIKE ?" for _ in groups) + ")", [f"%|{g}|%" for g in groups]
    rows = db.rows("SELECT m.user_id, m.last_name, m.first_name, m.roles, m.class_id, m.subjects, m.sort_key, "
                   "m.groups "
                   "FROM {members} m WHERE m.organization_id = ? AND m.active = 1 AND m.sort_key > ? AND "
                   + in_groups + " ORDER BY m.sort_key LIMIT ?",
                   (str(organization_id), after or "", *params, limit + 1))
    items = []
    for row in rows[:limit]:
        item: dict[str, Any] = {"user_id": row["user_id"], "last_name": row["last_name"],
                                "first_name": row["first_name"], "roles": json.loads(row["roles"])}
        if staff_view:
            item.update(class_id=uuid.UUID(row["class_id"]) if row["class_id"] else None,
                        parent_classes=parent_classes(item["roles"], row["class_id"], row["groups"]),
                        subjects=json.loads(row["subjects"]))
        items.append(item)
    return items, (rows[limit - 1]["sort_key"] if len(rows) > limit else None)


def organizations_page(db: Db, country: str, city: str | None, text: str | None, after: str | None,
                       limit: int, region: str | None = None) -> tuple[list[dict], str | None]:
    """Organizations of a country (and city, and region: its code as stored), whose name, city, address or
    region's names have every word of ``text`` as the beginning of a word or of its Russian stem, after the sort
    key ``after``."""
    conditions = ["o.country = ?", "o.sort_key > ?"]
    params: list[Any] = [country.strip().upper(), after or ""]
    if city is not None and city.strip():
        conditions.append("o.city_key = ?")
        params.append(city_key(country, city)[1])
    if region is not None:
        conditions.append("o.region = ?")
        params.append(region)
    terms = kept_terms(words(text))
    if terms and db.postgres:  # stop words ("в", "и") left out rather than required (shared.textsearch)
        condition, matched = tsquery_match("o.search", terms)
        conditions.append(condition)
        params += matched
    elif terms:  # a word or its stem, as a prefix; lone letters ("в", "и") only when nothing else is asked
        conditions.append("o.organization_id IN (SELECT organization_id FROM {organization_words} "
                          "WHERE {organization_words} MATCH ?)")
        params.append(fts_match(terms))
    rows = db.rows("SELECT o.organization_id, o.name, o.city, o.region, o.sort_key FROM {organizations} o WHERE "
                   + " AND ".join(conditions) + " ORDER BY o.sort_key LIMIT ?", (*params, limit + 1))
    items = [{"organization_id": row["organization_id"], "name": row["name"], "city": row["city"],
              "region": row["region"]} for row in rows[:limit]]
    return items, (rows[limit - 1]["sort_key"] if len(rows) > limit else None)


def main(argv: list[str]) -> int:
    """``python -m school.readmodel rebuild``: school's read models from scratch
    (``python -m shared.projection rebuild school``)."""
    from shared.projection import rebuild_command

    return rebuild_command(argv, "school.readmodel", "school")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
