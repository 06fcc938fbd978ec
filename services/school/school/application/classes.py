"""Classes (SC-4): admins create them; members list them; in July of their end year they graduate."""

from __future__ import annotations

import uuid
from datetime import date

from eventsourcing.persistence import IntegrityError

from school import lists
from school.application.base import SchoolBase
from school.domain import GraduationYear, SchoolClass, validate_class
from shared.contracts.api.school import CreateClass


class Classes(SchoolBase):
    def create_class(self, actor_id: uuid.UUID, command: CreateClass) -> SchoolClass:
        organization_id, name = command.organization_id, command.name
        start_year, end_year = command.start_year, command.end_year
        self._require(organization_id, actor_id, "admin")
        validate_class(name, start_year, end_year)

        def create() -> SchoolClass:
            organization = self.organization(organization_id)
            school_class = SchoolClass(organization_id=organization_id, name=name, start_year=start_year,
                                       end_year=end_year)
            organization.add_class(school_class.id)
            year = self.find(GraduationYear, GraduationYear.create_id(end_year)) or GraduationYear(year=end_year)
            year.add(school_class.id)
            self.save(school_class, organization, year)
            return school_class

        return self.retrying(create)

    def classes(self, actor_id: uuid.UUID, organization_id: uuid.UUID) -> list[SchoolClass]:
        return self.classes_page(actor_id, organization_id, None, None)[0]

    def classes_page(self, actor_id: uuid.UUID, organization_id: uuid.UUID, cursor: str | None, limit: int | None
                     ) -> tuple[list[SchoolClass], str | None]:
        """The organization's classes in the order they were made, from the read model (``school.lists``)."""
        self._member(organization_id, actor_id)
        return self._entries("class", organization_id, cursor, limit, lists.school_class)

    def graduate_due(self, today: date, first_year: int = 1990) -> int:
        """SC-4: every class whose end year has come is graduated, once (a second
        run finds nothing to do)."""
        graduated = 0
        now = self.clock()
        for year in range(first_year, today.year + 1):
            calendar = self.find(GraduationYear, GraduationYear.create_id(year))
            for class_id in calendar.class_ids if calendar else []:
                school_class: SchoolClass = self.repository.get(uuid.UUID(class_id))
                if school_class.due(today):
                    school_class.graduate(now)
                    try:
                        self.save(school_class)
                        graduated += 1
                    except IntegrityError:
                        pass  # another run graduated it a moment ago
        return graduated
