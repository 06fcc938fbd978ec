"""Parents and children as identity links them (``school.handlers`` reads its ParentLinked / ParentUnlinked): a
parent is a member through their children (RO-5, PL-4, PL-7). Each method applies one event once
(``@once_per_event``, ``process_once`` with the event's id), and is one command (``@command``): two links of one
child applied at once on two replicas both write the child's ``Relatives``, and the loser runs again here rather
than going back through the consumer's delay queue.

The two events come through two queues, so in any order; each carries ``sequence``, the version of the child's
``ParentLinks`` in identity, so for one (child, parent) an older event is told from a newer one
(``Relatives.versions``): a late unlink never undoes a relink, and an unlink that overtakes its link is kept as a
tombstone that the late link does not pass (RO-5: an unlinked person must not see the child's class). Events without
a sequence (published before events had one) apply as they come, as before."""

from __future__ import annotations

import uuid
from typing import Any

from school.application.base import SchoolBase
from school.domain import PersonOrganizations, Relatives
from shared.errors import NotYet
from shared.store import command, once_per_event


class Parents(SchoolBase):
    @once_per_event
    @command
    def link_parent(self, *, event_id: str, parent_id: uuid.UUID, child_id: uuid.UUID,
                    sequence: int | None = None) -> bool:
        """Parents become members through their children (RO-5, PL-4): in every
        organization where the child studies, in the child's class (a parent there
        already keeps theirs while a child of theirs is in it: ``_follow_children``);
        a school the child joins later brings them too. A link older than the last link
        or unlink applied for the pair changes nothing."""
        parents, children = self._relatives(child_id, "parents"), self._relatives(parent_id, "children")
        if parents.outdated(parent_id, sequence):
            return self.process_once(event_id)
        parents.link(parent_id, sequence)
        children.link(child_id, sequence)
        child_orgs = self.find(PersonOrganizations, PersonOrganizations.create_id(child_id))
        pending: dict[uuid.UUID, Any] = {parents.id: parents, children.id: children}
        for organization_id in (child_orgs.organization_ids if child_orgs else []):
            child = self.membership(uuid.UUID(organization_id), child_id)
            parent = self.membership(uuid.UUID(organization_id), parent_id)
            if child is None or not child.has("student"):
                continue
            if parent is None or not parent.has("parent"):
                self._join(uuid.UUID(organization_id), parent_id, "parent", child.class_id, "parent_link", pending)
            # a parent here already (maybe unplaced, EJ-2), or back: in every class a child of theirs is (PL-7)
            self._follow_children(uuid.UUID(organization_id), parent_id, parent_id, pending)
        return self.process_once(event_id, *pending.values())

    @once_per_event
    @command
    def unlink_parent(self, *, event_id: str, parent_id: uuid.UUID, child_id: uuid.UUID,
                      unlinked_by: uuid.UUID, sequence: int | None = None) -> bool:
        """Where the child studies, the parent's class follows the children still linked to them there
        (``_follow_children``): another child's class, or no longer a parent there at all (RO-5, PL-4). An unlink
        older than the last link or unlink applied for the pair changes nothing; one whose link has not come is
        kept (the versions only: no membership came of the link, so none changes), and without a sequence it
        waits for its link (NotYet), as before."""
        parents, children = self._relatives(child_id, "parents"), self._relatives(parent_id, "children")
        if parents.outdated(parent_id, sequence):
            return self.process_once(event_id)
        was_linked = str(parent_id) in parents.ids
        if not was_linked and sequence is None:
            raise NotYet("the ParentLinked this undoes has not arrived yet")
        parents.unlink(parent_id, sequence)
        children.unlink(child_id, sequence)
        pending: dict[uuid.UUID, Any] = {parents.id: parents, children.id: children}
        child_orgs = self.find(PersonOrganizations, PersonOrganizations.create_id(child_id)) if was_linked else None
        for organization_id in (child_orgs.organization_ids if child_orgs else []):
            self._follow_children(uuid.UUID(organization_id), parent_id, unlinked_by, pending)
        return self.process_once(event_id, *pending.values())

    def _relatives(self, user_id: uuid.UUID, side: str) -> Relatives:
        return self.find(Relatives, Relatives.create_id(user_id, side)) or Relatives(user_id=user_id, side=side)
