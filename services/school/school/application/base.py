"""School's application, the part every use case shares: the aggregates' getters, the rights checks
(``_require``: authorization lives here, where the data lives; every command names its actor and checks the
actor's membership and roles in the organization concerned), a person joining, the clock and paging."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from eventsourcing.utils import strtobool

from school import lists
from school.application.console import CONSOLE, Actor
from school.domain import (
    UNPLACED,
    JournalGrants,
    Membership,
    Organization,
    Person,
    PersonOrganizations,
    Relatives,
    Roster,
    SchoolClass,
)
from school.lists import ListsProjection
from school.readmodel import SchoolProjection
from shared.clock import utcnow
from shared.errors import Conflict, Forbidden, NotFound
from shared.paging import decode_cursor, encode_cursor
from shared.projection import ReadModel
from shared.store import ServiceApplication

T = TypeVar("T")
__all__ = ["CONSOLE", "Actor", "SchoolBase", "page"]  # the console's actor, kept importable from here


def page(items: list[T], key: Callable[[T], str], cursor: str | None, limit: int) -> tuple[list[T], str | None]:
    """Cursor paging over items sorted by ``key``: the cursor stands for the last key seen (shared.paging)."""
    ordered = sorted(items, key=key)
    after = decode_cursor(cursor)
    if after is not None:
        ordered = [i for i in ordered if key(i) > after]
    chunk = ordered[:limit]
    return chunk, (encode_cursor(key(chunk[-1])) if len(ordered) > limit else None)


class SchoolBase(ServiceApplication):
    """What the use cases (``organizations``, ``members``, ...) stand on; ``app.SchoolApplication`` composes them."""

    clock: Callable[[], datetime] = staticmethod(utcnow)  # "now", replaceable: tests set the date

    def __init__(self, env: Any = None):
        super().__init__(env)
        # The lists' tables (school.readmodel), kept from this store's log; a query catches them up first.
        self.read_model = ReadModel(self, SchoolProjection())
        self.lists = ReadModel(self, ListsProjection())  # invites, join requests, materials, channels, posts...
        self.read_models = (self.read_model, self.lists)
        if strtobool(self.env.get("CREATE_TABLE", "n")):  # the migration step (and memory stores) make them,
            for model in self.read_models:  # and apply the log (all of it after a version bump), so that the
                model.ensure()  # first query of a release does not
                model.catch_up()

    def close(self) -> None:
        for model in self.read_models:
            model.close()
        super().close()

    def _entries(self, kind: str, list_id: Any, cursor: str | None, limit: int | None, build: Callable[[dict], T],
                 **query: Any) -> tuple[list[T], str | None]:
        """A page of one of the other lists (``school.lists``), read after every write committed before."""
        with self.lists.reading() as db:
            rows, next_cursor = lists.entries(db, kind, list_id, cursor, limit, **query)
        return [build(row) for row in rows], next_cursor

    def organization(self, organization_id: uuid.UUID) -> Organization:
        return self.get_as(Organization, organization_id, "organization.not_found", "No such organization.")

    def membership(self, organization_id: uuid.UUID, user_id: uuid.UUID,
                   pending: dict[uuid.UUID, Any] | None = None) -> Membership | None:
        """The active membership, as the running command has left it so far (``pending``), else as stored."""
        membership_id = Membership.create_id(organization_id, user_id)
        found = (pending or {}).get(membership_id) or self.find(Membership, membership_id)
        return found if found is not None and found.active else None

    def _member(self, organization_id: uuid.UUID, actor_id: uuid.UUID) -> Membership:
        """The actor's membership; others may not even learn what is inside (404)."""
        self.organization(organization_id)
        member = self.membership(organization_id, actor_id)
        if member is None:
            raise Forbidden("organization.members_only", "Only members of this organization can do this.")
        return member

    def _require(self, organization_id: uuid.UUID, actor_id: uuid.UUID, *roles: str) -> Membership:
        member = self._member(organization_id, actor_id)
        if not any(member.has(r) for r in roles):
            raise Forbidden("organization.role_required", f"Only {' or '.join(roles)}s of this organization "
                                                          "can do this.", {"roles": list(roles)})
        return member

    def today(self) -> date:
        return self.clock().date()

    def class_graduated(self, school_class: SchoolClass) -> bool:
        """SC-4: true from 1 July of the end year on, whether or not the graduation job has run."""
        return school_class.graduated_on(self.today())

    def _open_class(self, school_class: SchoolClass) -> SchoolClass:
        """The class, unless it has graduated: nobody is invited or admitted into it any more (SC-4)."""
        if self.class_graduated(school_class):
            raise Conflict("class.graduated", "This class has graduated.", {"class_id": str(school_class.id)})
        return school_class

    def _school_class(self, organization_id: uuid.UUID, class_id: uuid.UUID) -> SchoolClass:
        school_class = self.get_as(SchoolClass, class_id, "class.not_found", "No such class.")
        if school_class.organization_id != organization_id:
            raise NotFound("class.not_found", "No such class.")
        return school_class

    def person_name(self, user_id: str) -> dict[str, Any]:
        person = self.find(Person, uuid.UUID(user_id))
        return {"last_name": getattr(person, "last_name", None), "first_name": getattr(person, "first_name", None)}

    def _join(self, organization_id: uuid.UUID, user_id: uuid.UUID, role: str, class_id: uuid.UUID | None,
              via: str, pending: dict[uuid.UUID, Any] | None = None) -> list[Any]:
        """The aggregates to save for a person joining (or gaining a role). ``pending``
        holds what this command already changed, so a roster created for a child
        is the same object when their parent joins it a moment later."""
        pending = {} if pending is None else pending

        def load(cls: type[T], aggregate_id: uuid.UUID, make: Callable[[], T]) -> T:
            if aggregate_id not in pending:
                pending[aggregate_id] = self.find(cls, aggregate_id) or make()
            return pending[aggregate_id]

        membership_id = Membership.create_id(organization_id, user_id)
        membership = pending.get(membership_id) or self.find(Membership, membership_id)
        before = membership.groups if membership is not None else set()
        if membership is None:
            membership = Membership(organization_id=organization_id, user_id=user_id, role=role, class_id=class_id,
                                    via=via)
        elif not membership.active:
            membership.rejoin(role, class_id, via)
        elif role in membership.roles and (class_id is None or class_id == membership.class_id):
            raise Conflict("membership.already_member", "You are already a member with this role.")
        else:
            membership.add_role(role, class_id, via)
        pending[membership_id] = membership
        if via not in ("ejournal", "parent_link"):  # the school's own grant: no journal takes it back (EJ-2)
            self._school_keeps(organization_id, user_id, role, pending)
        through_children = role != "parent" and not membership.has("parent") and bool(
            self._children_studying(organization_id, user_id, pending))
        if through_children:  # a parent here through children too (PL-8, RO-5)
            membership.add_role("parent", None, "parent_link")
        self._regroup(membership, before, pending)
        if through_children:  # in every class a child of theirs studies in (PL-7)
            self._follow_children(organization_id, user_id, user_id, pending)
        orgs = load(PersonOrganizations, PersonOrganizations.create_id(user_id),
                    lambda: PersonOrganizations(user_id=user_id))
        orgs.add(organization_id)
        if role == "student":
            parents = self.find(Relatives, Relatives.create_id(user_id, "parents"))
            for parent_id in (parents.ids if parents else []):
                parent = self.membership(organization_id, uuid.UUID(parent_id))
                if parent is None or not parent.has("parent"):
                    self._join(organization_id, uuid.UUID(parent_id), "parent", class_id, "parent_link", pending)
                # placed in a class now (EJ-2 brought them in unplaced), or back: in every child's class (PL-7)
                self._follow_children(organization_id, uuid.UUID(parent_id), user_id, pending)
        return list(pending.values())

    def _school_keeps(self, organization_id: uuid.UUID, user_id: uuid.UUID, role: str,
                      pending: dict[uuid.UUID, Any]) -> None:
        """The school gave ``role`` itself: a journal that gave it before no longer takes it back (EJ-2)."""
        grants_id = JournalGrants.create_id(user_id)
        grants = pending.get(grants_id) or self.find(JournalGrants, grants_id)
        if grants is not None and grants.holds(organization_id, role):
            grants.kept_by_school(organization_id, role)
            pending[grants_id] = grants

    def _children_studying(self, organization_id: uuid.UUID, parent_id: uuid.UUID,
                           pending: dict[uuid.UUID, Any]) -> list[Membership]:
        """The memberships of the parent's linked children who study in the organization (PL-4)."""
        children_id = Relatives.create_id(parent_id, "children")
        children = pending.get(children_id) or self.find(Relatives, children_id)
        return [kid for c in (children.ids if children else [])
                if (kid := self.membership(organization_id, uuid.UUID(c), pending)) is not None and kid.has("student")]

    def _parents_follow(self, organization_id: uuid.UUID, child_id: uuid.UUID, changed_by: uuid.UUID,
                        pending: dict[uuid.UUID, Any]) -> None:
        """The child's class or role there changed (or they left): each parent's class follows (RO-5)."""
        parents = self.find(Relatives, Relatives.create_id(child_id, "parents"))
        for parent_id in parents.ids if parents else []:
            self._follow_children(organization_id, uuid.UUID(parent_id), changed_by, pending)

    def _follow_children(self, organization_id: uuid.UUID, parent_id: uuid.UUID, changed_by: uuid.UUID,
                         pending: dict[uuid.UUID, Any], keep_role: bool = False) -> None:
        """RO-5, PL-4, PL-7: a parent belongs to an organization through their linked children who study there: a
        parent in each of their classes (siblings in two classes: both, in the order ``link_parent`` goes by).
        Their ``class_id`` stays while a child of theirs is in it, else it is the first such class; a pupil who is
        a parent too keeps their own. With no child studying there they stop being a parent (and leave if that
        was their only role), unless ``keep_role`` (a command that does not undo a link: a parent an admin or a
        journal made one stays one). ``pending`` holds what the command changed (memberships, rosters, the parent's
        ``Relatives``); what this changes joins it. ``changed_by`` goes into the event."""
        parent = self.membership(organization_id, parent_id, pending)
        if parent is None or not parent.has("parent"):
            return
        own = parent.has("student")
        kids = self._children_studying(organization_id, parent_id, pending)
        if not kids and keep_role:
            return
        classes = list(dict.fromkeys(str(kid.class_id) for kid in kids if kid.class_id is not None))
        roles, class_id = parent.roles, parent.class_id
        if not kids:
            roles = [r for r in parent.roles if r != "parent"]
            class_id = class_id if own else None
        elif not own and (class_id is None or str(class_id) not in classes):
            class_id = uuid.UUID(classes[0]) if classes else None
        if (roles, class_id, classes) == (parent.roles, parent.class_id, parent.parent_classes):
            return
        before = parent.groups
        if roles:
            parent.change(roles, class_id, changed_by, classes)
        else:
            parent.leave(changed_by)
        pending[parent.id] = parent
        self._regroup(parent, before, pending)

    def _regroup(self, member: Membership, before: set[str], pending: dict[uuid.UUID, Any],
                 tidy: bool = False) -> None:
        """The member out of the rosters of ``before`` (their ``groups`` before the change, or the rosters they are
        listed in) that they are no longer in, and into each of their ``groups`` now that they were not in, each
        only if not already so. ``tidy`` (an admin's change or removal): out of the staff's and the unplaced
        rosters too unless they belong there, which code before ``Membership.groups`` could leave them in."""
        after = member.groups
        for group in sorted((before ^ after) | ({"staff", UNPLACED} - after if tidy else set())):
            roster_id = Roster.create_id(member.organization_id, group)
            roster = pending.get(roster_id) or self.find(Roster, roster_id) or Roster(
                organization_id=member.organization_id, group=group)
            joining = group in after
            if joining == (str(member.user_id) in roster.user_ids):
                continue
            if joining:
                roster.add(member.user_id)
            else:
                roster.remove(member.user_id)
            pending[roster_id] = roster
