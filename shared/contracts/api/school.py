"""school's RPC contract: payloads and results of its entrypoints (RO-*, SC-*), as marshmallow schemas.
The service validates with them and the gateway documents and validates its requests with the same ones.
A body the service loads is a ``CommandSchema``: the service builds its typed command (a frozen dataclass named
as a verb, the body's fields plus the ids of the request's path) and the application method takes that."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from marshmallow import Schema, fields, validate

from shared.contracts.api.commands import UNSET, CommandSchema

ROLES = ("admin", "teacher", "student", "parent")  # RO-1
INVITE_ROLES = ("teacher", "student")  # SC-5
VALIDITY_PRESETS = {"30m": timedelta(minutes=30), "1h": timedelta(hours=1), "1d": timedelta(days=1),
                    "7d": timedelta(days=7), "unlimited": None}  # SC-5


class PersonView(Schema):
    user_id = fields.UUID(required=True)
    registered_via = fields.String(required=True)
    registered_at = fields.AwareDateTime(required=True)
    version = fields.Integer(required=True, metadata={"description": "Event-store version of the record."})


@dataclass(frozen=True)
class SubmitApplication:
    """SC-1: a school or college applies to be registered, naming its first admin's phone."""

    name: str
    kind: str
    country: str
    city: str
    admin_phone: str
    note: str | None = None
    region: str | None = None


class ApplicationInput(CommandSchema):
    command = SubmitApplication
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(["school", "college"]))
    country = fields.String(required=True, validate=validate.Length(equal=2), metadata={"example": "RU"})
    city = fields.String(required=True, validate=validate.Length(min=1, max=100))
    admin_phone = fields.String(required=True, validate=validate.Length(min=3, max=32))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    region = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=10),
                           metadata={"description": "The region's code (Russia: a federal subject's, e.g. 16; "
                                                    "region.unknown otherwise)", "example": "16"})


class ApplicationView(Schema):
    application_id = fields.UUID(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    country = fields.String(required=True)
    city = fields.String(required=True)
    region = fields.String(allow_none=True, metadata={"description": "The region's code (SC-2)"})
    status = fields.String(required=True)
    organization_id = fields.UUID(allow_none=True)
    reason = fields.String(allow_none=True)


class RejectionInput(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class OrganizationView(Schema):
    organization_id = fields.UUID(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    country = fields.String(required=True)
    city = fields.String(required=True)
    region = fields.String(allow_none=True, metadata={"description": "The region's code (SC-2)"})
    address = fields.String(allow_none=True)
    website = fields.String(allow_none=True)
    settings = fields.Dict()


@dataclass(frozen=True)
class UpdateOrganization:
    """RO-2: an admin edits the organization's details; what the request leaves out stays (``given``)."""

    organization_id: uuid.UUID
    name: str = UNSET
    country: str = UNSET
    city: str = UNSET
    address: str | None = UNSET
    website: str | None = UNSET
    settings: dict[str, bool] = UNSET
    region: str | None = UNSET


class OrganizationInput(CommandSchema):
    command = UpdateOrganization
    name = fields.String(validate=validate.Length(min=1, max=200))
    country = fields.String(validate=validate.Length(equal=2))
    city = fields.String(validate=validate.Length(min=1, max=100))
    address = fields.String(allow_none=True, validate=validate.Length(max=300))
    website = fields.Url(allow_none=True)
    settings = fields.Dict(keys=fields.String(validate=validate.OneOf(["student_dialogs_allowed"])),
                           values=fields.Boolean())
    region = fields.String(allow_none=True, validate=validate.Length(max=10),
                           metadata={"description": "The region's code (Russia: a federal subject's, e.g. 16; "
                                                    "null: none; region.unknown otherwise); a new country without "
                                                    "one drops it", "example": "16"})


class SearchHit(Schema):
    organization_id = fields.UUID(required=True)
    name = fields.String(required=True)
    city = fields.String(required=True, metadata={"description": "Told apart: many cities have a 'Школа №1'"})
    region = fields.String(allow_none=True, metadata={"description": "The region's code (SC-2), e.g. 16"})


class SearchPage(Schema):
    items = fields.List(fields.Nested(SearchHit), required=True)
    next_cursor = fields.String(allow_none=True, metadata={"description": "Pass as ?cursor= for the next page"})


@dataclass(frozen=True)
class CreateClass:
    """SC-4: an admin creates a class of the organization."""

    organization_id: uuid.UUID
    name: str
    start_year: int
    end_year: int


class ClassInput(CommandSchema):
    command = CreateClass
    name = fields.String(required=True, validate=validate.Length(min=1, max=32), metadata={"example": "5А"})
    start_year = fields.Integer(required=True, metadata={"example": 2024})
    end_year = fields.Integer(required=True, metadata={"example": 2031})


class ClassView(Schema):
    class_id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)
    name = fields.String(required=True)
    start_year = fields.Integer(required=True)
    end_year = fields.Integer(required=True)
    graduated = fields.Boolean(required=True)


class MemberView(Schema):
    user_id = fields.UUID(required=True)
    last_name = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    roles = fields.List(fields.String(), required=True)
    class_id = fields.UUID(allow_none=True, metadata={"description": "Shown to admins and teachers"})
    parent_classes = fields.List(fields.UUID(), metadata={"description": "The classes a parent is a parent in, one "
                                                                        "for each class their children study in "
                                                                        "(PL-7); to admins and teachers"})
    subjects = fields.Dict(metadata={"description": "A teacher's subjects per class; to admins and teachers"})


class MembersPage(Schema):
    items = fields.List(fields.Nested(MemberView), required=True)
    next_cursor = fields.String(allow_none=True)


class MembershipView(Schema):
    organization_id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    roles = fields.List(fields.String(), required=True)
    class_id = fields.UUID(allow_none=True)
    parent_classes = fields.List(fields.UUID(), metadata={"description": "The classes a parent is a parent in, one "
                                                                        "for each class their children study in "
                                                                        "(PL-7)"})
    subjects = fields.Dict()


class MyOrganization(Schema):
    organization = fields.Nested(OrganizationView, required=True)
    membership = fields.Nested(MembershipView, required=True)


@dataclass(frozen=True)
class ChangeMember:
    """SC-8, SC-9: an admin corrects a member's role(s) and class."""

    organization_id: uuid.UUID
    user_id: uuid.UUID
    roles: tuple[str, ...]
    class_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", tuple(self.roles))  # the body's list, kept unchangeable


class MemberChange(CommandSchema):
    command = ChangeMember
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True,
                        validate=validate.Length(min=1))
    class_id = fields.UUID(load_default=None, allow_none=True)


class TeacherAssignment(Schema):
    subjects = fields.List(fields.String(validate=validate.Length(min=1, max=64)), required=True,
                           validate=validate.Length(min=1, max=10))


@dataclass(frozen=True)
class CreateInvite:
    """SC-5: an admin or teacher makes an invite link into the organization (and a class)."""

    organization_id: uuid.UUID
    role: str
    class_id: uuid.UUID | None = None
    validity: str = "7d"
    max_uses: int | None = None
    email_registration_allowed: bool = False


class InviteInput(CommandSchema):
    command = CreateInvite
    role = fields.String(required=True, validate=validate.OneOf(INVITE_ROLES))
    class_id = fields.UUID(load_default=None, allow_none=True)
    validity = fields.String(load_default="7d", validate=validate.OneOf(list(VALIDITY_PRESETS)),
                             metadata={"description": "30m, 1h, 1d, 7d or unlimited"})
    max_uses = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=10_000))
    email_registration_allowed = fields.Boolean(load_default=False,
                                                metadata={"description": "Juniors (grades 1-4) may register by "
                                                                         "e-mail (ID-4)"})


class InviteView(Schema):
    invite_id = fields.UUID(required=True)
    token = fields.String(required=True)
    url = fields.String()
    organization_id = fields.UUID(required=True)
    class_id = fields.UUID(allow_none=True)
    role = fields.String(required=True)
    expires_at = fields.AwareDateTime(allow_none=True)
    max_uses = fields.Integer(allow_none=True)
    uses = fields.Integer(required=True)
    revoked = fields.Boolean(required=True)
    email_registration_allowed = fields.Boolean(required=True)


class InvitePreview(Schema):
    """SC-6: what a person sees before joining."""

    organization = fields.Nested(OrganizationView, required=True)
    class_name = fields.String(allow_none=True)
    role = fields.String(required=True)
    expires_at = fields.AwareDateTime(allow_none=True)
    email_registration_allowed = fields.Boolean(required=True, metadata={
        "description": "Juniors may register by e-mail through this link (ID-4): offer it only then"})


@dataclass(frozen=True)
class RequestToJoin:
    """SC-3: a person asks to join an organization, with a message for its admins."""

    organization_id: uuid.UUID
    user_id: uuid.UUID
    message: str | None = None


class JoinRequestInput(CommandSchema):
    command = RequestToJoin
    message = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class JoinRequestView(Schema):
    user_id = fields.UUID(required=True)
    last_name = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    message = fields.String(allow_none=True)
    status = fields.String(required=True)


@dataclass(frozen=True)
class AcceptJoinRequest:
    """SC-3 "Add": an admin admits the person who asked, with a role and class."""

    organization_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    class_id: uuid.UUID | None = None


class JoinRequestDecision(CommandSchema):
    command = AcceptJoinRequest
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    class_id = fields.UUID(load_default=None, allow_none=True)


class DocumentView(Schema):
    document_id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)
    title = fields.String(required=True)
    file_name = fields.String(required=True)
    media_type = fields.String(required=True)
    size = fields.Integer(required=True)
    published_by = fields.UUID(required=True)
    published_at = fields.AwareDateTime(required=True)


@dataclass(frozen=True)
class DraftArticle:
    """SC-11: an admin or teacher writes an article of the organization (a draft until published)."""

    organization_id: uuid.UUID
    title: str
    html: str
    cover_image_id: uuid.UUID | None = None


@dataclass(frozen=True)
class EditArticle:
    """SC-11: its author or an admin rewrites an article (the same body as a draft's)."""

    article_id: uuid.UUID
    title: str
    html: str
    cover_image_id: uuid.UUID | None = None


class ArticleInput(CommandSchema):
    command = DraftArticle
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    html = fields.String(required=True, validate=validate.Length(max=200_000),
                         metadata={"description": "Sanitised: formatting, links, images and video stay"})
    cover_image_id = fields.UUID(load_default=None, allow_none=True,
                                 metadata={"description": "An image uploaded to this organization (POST /images)"})


class ArticleEdit(ArticleInput):
    """An article's new text: ``ArticleInput``'s body, for an article that exists."""

    command = EditArticle


class ArticleView(Schema):
    article_id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)
    author_id = fields.UUID(required=True)
    title = fields.String(required=True)
    html = fields.String(required=True)
    cover_image_id = fields.UUID(allow_none=True)
    published_at = fields.AwareDateTime(allow_none=True)


class ImageView(Schema):
    image_id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)
    media_type = fields.String(required=True, metadata={"description": "As sniffed from the content"})
    size = fields.Integer(required=True)


class ChannelInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))


class ChannelView(Schema):
    channel_id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)
    name = fields.String(required=True)


class PostInput(Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=10_000))


class PostView(Schema):
    post_id = fields.UUID(required=True)
    author_id = fields.UUID(required=True)
    text = fields.String(required=True)
    published_at = fields.String(required=True)


class PostsPage(Schema):
    items = fields.List(fields.Nested(PostView), required=True)
    next_cursor = fields.String(allow_none=True)


class DashboardClass(Schema):
    organization_id = fields.UUID(required=True)
    organization_name = fields.String(required=True)
    class_id = fields.UUID(required=True)
    class_name = fields.String(required=True)
    subjects = fields.List(fields.String(), required=True)
    graduated = fields.Boolean(required=True)


class TaughtClasses(Schema):  # school's answer to `dashboard`: its part of the teacher's desktop
    classes = fields.List(fields.Nested(DashboardClass), required=True)


class Dashboard(TaughtClasses):  # the desktop as the gateway joins it from the services that own each part
    lessons_under_way = fields.List(fields.Dict(), required=True, metadata={"description": "Filled by calls"})
    recent_chats = fields.List(fields.Dict(), required=True, metadata={"description": "Filled by messaging"})
