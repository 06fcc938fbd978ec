"""Events published by school (docs/rules.md: RO-*, SC-*).

Messaging and the e-journal bridge build rosters from them: every membership
event carries organization, person, role, class and subjects as they are
*after* the change, so a consumer can apply any one of them without the others.
"""

from marshmallow import fields, validate

from shared.contracts.envelope import DataSchema, contract

ROLES = ("admin", "teacher", "student", "parent")
ORG_KINDS = ("school", "college")


PARENT_CLASSES = ("The classes a parent is a parent in (RO-5, PL-7): each class a child of theirs studies in (siblings "
                  "in two classes: both), or the one an admin admitted them to; empty for someone who is no parent. "
                  "Absent from events published before it was said: then a parent's is their class_id.")


class MembershipState(DataSchema):
    organization_id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), load_default=list,
                        metadata={"description": "All the person's roles here after the change (RO-6)."})
    class_id = fields.UUID(load_default=None, allow_none=True,
                           metadata={"description": "A student's class; a parent's child's class."})
    parent_classes = fields.List(fields.UUID(), load_default=None, allow_none=True,
                                 metadata={"description": PARENT_CLASSES})
    subjects = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), load_default=dict,
                           metadata={"description": "The classes a teacher teaches, by class id, each with its "
                                                    "subjects (SC-7); the class a teacher's invite named is among "
                                                    "them, with none stated yet."})


@contract("school", "OrganizationRegistered", 1)
class OrganizationRegisteredV1(DataSchema):
    """An application was approved (SC-1); ``admin_phone`` becomes the first admin."""

    organization_id = fields.UUID(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(ORG_KINDS))
    country = fields.String(required=True)
    city = fields.String(required=True)
    region = fields.String(load_default=None, allow_none=True,
                           metadata={"description": "The region's code (shared.regions; Russia: 16, 77, ...), SC-2"})
    approved_by = fields.UUID(load_default=None, allow_none=True)
    registered_at = fields.AwareDateTime(required=True)


@contract("school", "OrganizationUpdated", 1)
class OrganizationUpdatedV1(DataSchema):
    """The admin filled in or changed the organization's details (SC-1, RO-2)."""

    organization_id = fields.UUID(required=True)
    name = fields.String(required=True)
    country = fields.String(required=True)
    city = fields.String(required=True)
    region = fields.String(load_default=None, allow_none=True,
                           metadata={"description": "The region's code (shared.regions; Russia: 16, 77, ...), SC-2"})
    address = fields.String(load_default=None, allow_none=True)
    website = fields.String(load_default=None, allow_none=True)
    settings = fields.Dict(load_default=dict, metadata={"description": "e.g. student_dialogs_allowed (CH-1)"})
    updated_at = fields.AwareDateTime(required=True)


@contract("school", "ClassCreated", 1)
class ClassCreatedV1(DataSchema):
    """SC-4: a class or group with its years."""

    organization_id = fields.UUID(required=True)
    class_id = fields.UUID(required=True)
    name = fields.String(required=True)
    start_year = fields.Integer(required=True)
    end_year = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)


@contract("school", "ClassGraduated", 1)
class ClassGraduatedV1(DataSchema):
    """SC-4: the class reached its end year and is no longer active."""

    organization_id = fields.UUID(required=True)
    class_id = fields.UUID(required=True)
    graduated_at = fields.AwareDateTime(required=True)


@contract("school", "MemberJoined", 1)
class MemberJoinedV1(DataSchema):
    """A person became a member of an organization (SC-6), with a role (RO-1).
    ``role`` is the role they joined with; ``roles`` all they hold now."""

    organization_id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), load_default=list)
    class_id = fields.UUID(load_default=None, allow_none=True)
    parent_classes = fields.List(fields.UUID(), load_default=None, allow_none=True,
                                 metadata={"description": PARENT_CLASSES})
    subjects = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), load_default=dict,
                           metadata={"description": "The classes a teacher teaches, by class id, each with its "
                                                    "subjects (SC-7); the class a teacher's invite named is among "
                                                    "them, with none stated yet."})
    via = fields.String(load_default="invite", metadata={"description": "invite, join_request, parent_link, "
                                                                        "application"})
    joined_at = fields.AwareDateTime(required=True)


@contract("school", "MemberLeft", 1)
class MemberLeftV1(DataSchema):
    """The person is no longer a member (removed by an admin, SC-9)."""

    organization_id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    removed_by = fields.UUID(load_default=None, allow_none=True)
    left_at = fields.AwareDateTime(required=True)


@contract("school", "MemberRoleChanged", 1)
class MemberRoleChangedV1(MembershipState):
    """An admin changed a member's role or class (SC-8, SC-9)."""

    changed_by = fields.UUID(required=True)
    changed_at = fields.AwareDateTime(required=True)


@contract("school", "TeacherAssigned", 1)
class TeacherAssignedV1(DataSchema):
    """A teacher teaches ``subjects`` in a class (SC-7): subject chats key on it."""

    organization_id = fields.UUID(required=True)
    class_id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    subjects = fields.List(fields.String(), required=True)
    assigned_at = fields.AwareDateTime(required=True)


@contract("school", "AdminAppointed", 1)
class AdminAppointedV1(DataSchema):
    """RO-7: an admin made another member an admin (unlimited)."""

    organization_id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    appointed_by = fields.UUID(load_default=None, allow_none=True)
    appointed_at = fields.AwareDateTime(required=True)


@contract("school", "DocumentPublished", 1)
class DocumentPublishedV1(DataSchema):
    """SC-10: a document for all members of the organization."""

    organization_id = fields.UUID(required=True)
    document_id = fields.UUID(required=True)
    title = fields.String(required=True)
    media_type = fields.String(required=True)
    size = fields.Integer(required=True)
    published_by = fields.UUID(required=True)
    published_at = fields.AwareDateTime(required=True)


@contract("school", "ArticlePublished", 1)
class ArticlePublishedV1(DataSchema):
    """SC-11: an article left its draft."""

    organization_id = fields.UUID(required=True)
    article_id = fields.UUID(required=True)
    title = fields.String(required=True)
    author_id = fields.UUID(required=True)
    published_at = fields.AwareDateTime(required=True)


@contract("school", "ChannelPostPublished", 1)
class ChannelPostPublishedV1(DataSchema):
    """SC-12: an admin posted in a channel; members read it."""

    organization_id = fields.UUID(required=True)
    channel_id = fields.UUID(required=True)
    post_id = fields.UUID(required=True)
    author_id = fields.UUID(required=True)
    text = fields.String(required=True)
    published_at = fields.AwareDateTime(required=True)
