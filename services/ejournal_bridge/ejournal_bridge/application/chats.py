"""The process manager: chats from the mirror and the links (EJ-3, EJ-4, CH-2) through messaging's idempotent
command, and the organizations linked people belong to (EJ-2)."""

from __future__ import annotations

import uuid

from ejournal_bridge.application.base import BridgeBase, ChatSink, digest
from ejournal_bridge.domain import (
    SCHOOL_ROLES,
    AccountLink,
    JournalClass,
    JournalPerson,
    LinkedPeople,
    Provider,
    class_id_of,
)
from ejournal_bridge.readmodel import classes_of
from shared.contracts.ejournal import subject_chat_key

ANNOUNCE_BATCH = 50  # linked people told to school per command (and save)


class Chats(BridgeBase):
    def chat_specs(self, provider: Provider, klass: JournalClass, people: LinkedPeople) -> list[dict]:
        """What the chats of a class should be now; only linked people are members (``people``: the
        provider's index of them, so nobody else of the class is read)."""
        linked = people.linked

        if klass.deleted:
            return []
        class_id = class_id_of(provider.id, klass.external_id)
        base = {"organization_id": str(provider.organization_of(klass.org) or "") or None,
                "class_id": str(class_id)}
        students = linked(klass.students)
        specs = []
        teacher = klass.class_teacher()
        teacher_user = linked([teacher]) if teacher else []
        if teacher_user:
            parents = people.linked_parents_of(klass.students)
            colleagues = [t for t in klass.all_teachers() if t != teacher]
            for kind, label, members in (("class_students", "ученики", students),
                                         ("class_parents", "родители", linked(parents)),
                                         ("class_colleagues", "учителя", linked(colleagues))):
                specs.append({**base, "key": f"ej:{provider.id}:{klass.external_id}:{kind}:{teacher}", "kind": kind,
                              "subject": None, "teacher_id": teacher_user[0], "name": f"{klass.title} — {label}",
                              "member_ids": teacher_user + [m for m in members if m != teacher_user[0]]})
        # EJ-4: a subject chat exists from the timetable on; linked pupils are in it at once and its
        # teacher enters when they link (nobody waits for anybody).
        for subject, subject_teacher in klass.subject_teachers():
            owner = linked([subject_teacher])
            specs.append({**base, "key": subject_chat_key(provider.id, klass.external_id, subject, subject_teacher),
                          "kind": "subject", "subject": subject, "teacher_id": owner[0] if owner else None,
                          "name": f"{klass.title} · {subject}",
                          "member_ids": owner + [m for m in students if m not in owner]})
        return specs

    def sync_chats(self, provider_id: uuid.UUID, class_ids: set[str] | list[str],
                   chats: ChatSink | None = None, force: bool = False) -> int:
        """Tell messaging what changed in these classes' chats; returns how many chats were sent."""
        chats = chats or self.chats
        if not class_ids or chats is None:
            return 0
        provider = self.provider(provider_id)
        # where the log stands before anything is read: every list below holds at least what was stored up to here,
        # so messaging can set aside a list of an earlier sync of the class that reaches it after this one
        as_of = self.process_recorder.max_notification_id() or 0
        people = self.linked_people(provider_id)
        sent = 0
        recorded: dict[uuid.UUID, dict[str, str]] = {}  # what messaging accepted, by class: saved once at the end
        try:
            for external_id in sorted(class_ids):
                klass = self.find(JournalClass, JournalClass.create_id(provider_id, external_id))
                if klass is None:
                    continue
                specs = self.chat_specs(provider, klass, people)
                wanted = {s["key"]: s for s in specs}
                # Chats that no longer have an owner here are emptied, not deleted: their history stays.
                for key in set(klass.chats) - set(wanted):
                    if klass.chats[key] != "retired":
                        wanted[key] = {"key": key, "retire": True}
                digests = {k: ("retired" if s.get("retire") else digest(s)) for k, s in wanted.items()}
                changed = [{**wanted[k], "as_of": as_of} for k, d in digests.items()
                           if force or klass.chats.get(k) != d]
                if not changed:
                    continue
                answers = chats(changed) or []
                sent += len(changed)
                # a list messaging set aside (a newer one of the chat was applied: syncs of a class run at once)
                # is not what it holds: recorded, it would make a later sync that needs that list send nothing
                set_aside = {a.get("key") for a in answers if isinstance(a, dict) and a.get("set_aside")}
                if kept := {c["key"]: digests[c["key"]] for c in changed if c["key"] not in set_aside}:
                    recorded[klass.id] = kept
        finally:
            # Even when a later class failed: what was sent is not sent again (and if this save is lost, messaging's
            # command is idempotent: the chats come out the same).
            if recorded:
                self._record_sent(provider_id, recorded)
        return sent

    def _record_sent(self, provider_id: uuid.UUID, digests: dict[uuid.UUID, dict[str, str]]) -> None:
        """One save for every class of a sync (not one command per class)."""
        def command() -> None:
            fresh = [self.find(JournalClass, klass_id) for klass_id in digests]
            for klass in fresh:
                klass.chats_sent(digests[klass.id])
            self.save(*fresh)

        self.retrying(command, ("provider", provider_id))

    def resync(self, provider_id: uuid.UUID, chats: ChatSink | None = None, force: bool = False) -> int:
        """Every class of a provider (an operator's repair tool; after binding a school), and every
        linked person's organizations."""
        with self.read_model.reading() as db:  # not the whole log (issue #17)
            classes = classes_of(db, provider_id)
        self.announce_memberships(provider_id, self.linked_external_ids(provider_id))
        return self.sync_chats(provider_id, classes, chats, force)

    def _links_another(self, user_id: uuid.UUID, provider_id: uuid.UUID, external_id: str) -> bool:
        """Whether the account is linked, in this journal, to a person other than ``external_id`` now."""
        link = self.find(AccountLink, AccountLink.create_id(user_id, provider_id))
        return link is not None and link.active and link.external_person_id != external_id

    def _moved_here(self, person: JournalPerson) -> bool:
        """Whether the person's account was linked to another person of the journal before (a relink)."""
        link = self.find(AccountLink, AccountLink.create_id(person.user_id, person.provider_id))
        return link is not None and link.version > 1

    def announce_memberships(self, provider_id: uuid.UUID, external_ids: list[str]) -> int:
        """Tell school, for each of these people who is linked, the platform organizations their journal
        schools are bound to and their role there (when that changed); returns how many were told. A batch of
        ``ANNOUNCE_BATCH`` people per command and save (a bind's resync tells hundreds: issue #17)."""
        told = 0
        wanted_ids = sorted(set(external_ids))
        for start in range(0, len(wanted_ids), ANNOUNCE_BATCH):
            def command(batch: list[str] = wanted_ids[start:start + ANNOUNCE_BATCH]) -> int:
                provider = None
                changed = []
                for external_id in batch:
                    person = self.find(JournalPerson, JournalPerson.create_id(provider_id, external_id))
                    role = SCHOOL_ROLES.get(person.role or "") if person is not None else None
                    if person is None or role is None:
                        continue
                    announced = person.memberships_announced()
                    if announced and announced["organization_ids"] and announced["user_id"] != str(person.user_id) \
                            and not self._links_another(uuid.UUID(announced["user_id"]), provider_id, external_id):
                        # the account told before is not this person any more (unlinked, or the person linked
                        # another): it is in none of the journal's schools now. An account that is another person
                        # of this journal now is told by that person's whole set instead (a set is per journal).
                        person.announce_memberships(uuid.UUID(announced["user_id"]), announced["role"], [])
                        changed.append(person)
                    if person.user_id is None:
                        continue  # most of a roster has not linked: nothing to tell, nothing more to read
                    provider = provider or self.provider(provider_id)
                    orgs = [] if person.deleted else sorted(
                        {str(o) for o in map(provider.organization_of, person.orgs) if o is not None})
                    announced = person.memberships_announced()
                    told = announced if announced and announced["user_id"] == str(person.user_id) else None
                    wanted = {"user_id": str(person.user_id), "role": role, "organization_ids": orgs}
                    # nothing told yet and nothing to tell skips, unless the account came from another person of
                    # this journal: then even an empty set replaces what that one told of it
                    if told == wanted or (told is None and not orgs and not self._moved_here(person)):
                        continue
                    person.announce_memberships(person.user_id, role, orgs)
                    if not changed or changed[-1] is not person:
                        changed.append(person)
                if changed:
                    self.save(*changed)
                return len(changed)

            told += self.retrying(command, ("provider", provider_id))
        return told
