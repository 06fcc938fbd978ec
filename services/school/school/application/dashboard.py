"""The teacher's desktop (SC-13)."""

from __future__ import annotations

import uuid

from school.application.members import Members
from school.domain import SchoolClass


class Dashboard(Members):
    def dashboard(self, actor_id: uuid.UUID) -> dict:
        """School's part of the teacher's desktop: the classes they teach (with subjects) in every organization.
        The gateway adds the lessons under way (the bridge's) and the recent chats (messaging's)."""
        classes = []
        for organization, membership in self.my_organizations(actor_id):
            if not membership.has("teacher"):
                continue
            for class_id, subjects in membership.taught.items():  # the class an invite named too (SC-7)
                school_class: SchoolClass = self.repository.get(uuid.UUID(class_id))
                classes.append({"organization_id": organization.id, "organization_name": organization.name,
                                "class_id": school_class.id, "class_name": school_class.name, "subjects": subjects,
                                "graduated": self.class_graduated(school_class)})
        return {"classes": sorted(classes, key=lambda c: (c["organization_name"], c["class_name"]))}
