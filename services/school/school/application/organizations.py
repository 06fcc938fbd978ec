"""Organizations (SC-1, SC-2, RO-2): a school applies, a platform operator approves or rejects it, its admins
edit its details, anyone finds it by city. Operators are people whose phone is in SFERA_OPERATOR_PHONES, or the
console on the machine itself (``CONSOLE``, ``school.operator``)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from school import lists
from school.application.base import CONSOLE, Actor, SchoolBase
from school.domain import ApplicationQueue, Organization, OrganizationApplication, PhoneOwner
from school.readmodel import organizations_page
from shared.config import env_str
from shared.contracts.api.commands import given
from shared.contracts.api.school import SubmitApplication, UpdateOrganization
from shared.errors import Forbidden, Invalid
from shared.paging import decode_cursor, encode_cursor
from shared.phones import normalise_phone
from shared.regions import region_code
from shared.store import command
from shared.text import hidden_characters


def operator_phones() -> set[str]:
    return {normalise_phone(p) for p in env_str("SFERA_OPERATOR_PHONES", "").split(",") if p.strip()}


class Organizations(SchoolBase):
    def is_operator(self, actor_id: uuid.UUID | None) -> bool:
        if actor_id is None:
            return False
        phones = operator_phones()
        return any(self._phone_owned_by(p, actor_id) for p in phones)

    def _phone_owned_by(self, phone: str, user_id: uuid.UUID) -> bool:
        owner = self.find(PhoneOwner, PhoneOwner.create_id(phone))
        return owner is not None and owner.user_id == user_id

    def require_operator(self, actor: Actor) -> uuid.UUID | None:
        """Refuses (operator.required) anyone but a platform operator (a signed-in person
        whose phone is in SFERA_OPERATOR_PHONES, or the console); returns the id to record
        as the one who decided (none for the console)."""
        if actor is CONSOLE:
            return None
        if not isinstance(actor, uuid.UUID) or not self.is_operator(actor):
            raise Forbidden("operator.required", "Only a platform operator can do this.")
        return actor

    def submit_application(self, actor_id: uuid.UUID | None, command: SubmitApplication) -> OrganizationApplication:
        name, kind, country, city = command.name, command.kind, command.country, command.city
        problems = {}
        if not name.strip():
            problems["name"] = "Required."
        elif hidden_characters(name):
            problems["name"] = "Letters, digits and punctuation only: no hidden characters."
        if kind not in ("school", "college"):
            problems["kind"] = "school or college."
        if not re.fullmatch(r"[A-Za-z]{2}", country.strip()):
            problems["country"] = "An ISO 3166 two-letter code, e.g. RU."
        if not city.strip():
            problems["city"] = "Required."
        if problems:
            raise Invalid("application.invalid", "The application is not valid.", {"fields": problems})
        region = region_code(country, command.region)  # SC-2: one of the country's regions, or none
        admin_phone = normalise_phone(command.admin_phone)

        def submit() -> OrganizationApplication:
            application = OrganizationApplication(name=name.strip(), kind=kind, country=country.strip().upper(),
                                                  city=" ".join(city.split()), admin_phone=admin_phone,
                                                  submitted_by=actor_id, note=command.note, region=region)
            queue = self.find(ApplicationQueue, ApplicationQueue.create_id()) or ApplicationQueue()
            queue.add(application.id)
            self.save(application, queue)
            return application

        return self.retrying(submit)

    def pending_applications(self, actor: Actor) -> list[OrganizationApplication]:
        return self.pending_applications_page(actor, None, None)[0]

    def pending_applications_page(self, actor: Actor, cursor: str | None, limit: int | None
                                  ) -> tuple[list[OrganizationApplication], str | None]:
        """Applications waiting for a decision, oldest first, from the read model (``school.lists``)."""
        self.require_operator(actor)
        return self._entries("application", lists.APPLICATIONS, cursor, limit, lists.application)

    def approve_application(self, actor: Actor, application_id: uuid.UUID) -> Organization:
        """SC-1: the organization exists; the person with the named phone is its first
        admin now, or as soon as they register."""
        actor_id = self.require_operator(actor)

        def approve() -> Organization:
            application = self.get_as(OrganizationApplication, application_id, "application.not_found",
                                    "No such application.")
            organization_id = application.approve(actor_id)
            organization = Organization(organization_id=organization_id, name=application.name,
                                        kind=application.kind, country=application.country, city=application.city,
                                        approved_by=actor_id, region=application.region)
            queue = self.get_as(ApplicationQueue, ApplicationQueue.create_id(), "application.not_found", "")
            queue.remove(application_id)
            owner = self.find(PhoneOwner, PhoneOwner.create_id(application.admin_phone)) or PhoneOwner(
                phone=application.admin_phone)
            changed: list[Any] = [application, organization, queue, owner]
            if owner.user_id is not None:
                changed += self._join(organization_id, owner.user_id, "admin", None, "application")
            else:
                owner.await_admin(organization_id)
            self.save(*changed)
            return organization

        return self.retrying(approve)

    @command
    def reject_application(self, actor: Actor, application_id: uuid.UUID, reason: str) -> None:
        """The applicant is told why (``reason``): the console's and any caller's, not only the API's, is checked."""
        actor_id = self.require_operator(actor)
        if not reason.strip() or len(reason) > 2000:
            raise Invalid("application.invalid_reason", "Say why the application is rejected, in up to 2000 "
                                                        "characters.")
        application = self.get_as(OrganizationApplication, application_id, "application.not_found",
                                "No such application.")
        application.reject(actor_id, reason)
        queue = self.get_as(ApplicationQueue, ApplicationQueue.create_id(), "application.not_found", "")
        queue.remove(application_id)
        self.save(application, queue)

    @command
    def update_organization(self, actor_id: uuid.UUID, command: UpdateOrganization) -> Organization:
        """RO-2: admins fill in and edit the organization's details (those the command gives)."""
        organization_id, details = command.organization_id, given(command)
        self._require(organization_id, actor_id, "admin")
        organization = self.organization(organization_id)
        name = details.get("name", organization.name).strip()
        country = details.get("country", organization.country).strip().upper()
        city = " ".join(details.get("city", organization.city).split())
        if not name or not city or not re.fullmatch(r"[A-Z]{2}", country) or hidden_characters(name):
            raise Invalid("organization.invalid", "Name, city and a two-letter country code are required.")
        # SC-2: the region given, else the one it has while the country stays (another country's is dropped)
        kept = organization.region if country == organization.country else None
        region = region_code(country, details.get("region", kept))
        settings = {**organization.settings, **details.get("settings", {})}
        organization.update(name, country, city, details.get("address", organization.address),
                            details.get("website", organization.website), settings, region)
        self.save(organization)
        return organization

    def search(self, country: str, city: str | None, cursor: str | None, limit: int, q: str | None = None,
               region: str | None = None) -> tuple[list[dict], str | None]:
        """SC-2: organizations of a country (and city, and region), ordered by name, a page at a time; with
        ``q``, those whose name, city, address or region's name (Russian or English) has each of its words (as
        the start of a word or of its Russian stem: "гимназии" finds "Гимназия"). Paged in the read model
        (school.readmodel). A region not of the country is refused (``region.unknown``)."""
        after = decode_cursor(cursor)
        region = region_code(country, region)
        with self.read_model.reading() as db:
            items, last = organizations_page(db, country, city, q, after, limit, region)
        return items, (encode_cursor(last) if last is not None else None)
