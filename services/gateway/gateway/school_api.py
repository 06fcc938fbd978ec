"""The public API v1 for schools: organizations, classes, members, invite links,
join requests, materials. Routes only; school decides who may do what."""

from __future__ import annotations

import uuid

from marshmallow import Schema, fields, validate

from gateway.api import (
    QR_FORMATS,
    QR_MEDIA_TYPES,
    api,
    call,
    me,
    optional_me,
    public_url,
    qr_format,
    qr_response,
)
from gateway.endpoint import endpoint
from gateway.listing import PAGED, PAGING_ERRORS, ListQuery, listed
from gateway.uploads import receive_upload, send_blob
from shared.blobs import document_max_bytes
from shared.contracts.api import school
from shared.paging import Cursor, Limit
from shared.uploads import IMAGE_MAX_BYTES

ORG_ERRORS = ("organization.not_found", "organization.members_only", "organization.role_required")


class SearchQuery(Schema):
    country = fields.String(required=True, validate=validate.Length(equal=2))
    city = fields.String(load_default=None, validate=validate.Length(min=1, max=100),
                         metadata={"description": "The city (any spacing or case); none: the whole country"})
    q = fields.String(load_default=None, validate=validate.Length(max=200),
                      metadata={"description": "Words of the name, city, address or region's name (Russian or "
                                               "English), each the start of a word or of its Russian stem "
                                               "('гимназии' finds 'Гимназия', 'tatarstan' region 16)",
                                "example": "гимназия казань"})
    region = fields.String(load_default=None, validate=validate.Length(min=1, max=10),
                           metadata={"description": "Only the region of this code (SC-2; Russia: a federal "
                                                    "subject's, e.g. 16)", "example": "16"})
    cursor = Cursor()
    limit = Limit(20, 100)


class MembersQuery(Schema):
    class_id = fields.UUID(load_default=None)
    cursor = Cursor()
    limit = Limit(50, 200)


class PostsQuery(Schema):
    cursor = Cursor()
    limit = Limit(20, 100)


class AdminInput(Schema):
    user_id = fields.UUID(required=True)


class DocumentForm(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ImageForm(Schema):
    organization_id = fields.UUID(required=True, metadata={"description": "The organization whose articles use it"})


UPLOAD_ERRORS = ("file.missing", "file.too_large", "upload.quota_exceeded")


def invite_url(token: str) -> str:
    return public_url(f"/invite/{token}")


def with_url(invite: dict) -> dict:
    return {**invite, "url": invite_url(invite["token"])}


# -- organizations (SC-1, SC-2) --------------------------------------------------------------------

@api.post("/organization-applications")
@endpoint(summary="Apply to register a school or college, naming its admin's phone (SC-1)", tag="organizations",
          body=school.ApplicationInput, response=school.ApplicationView, status=201, auth=False,
          errors=("application.invalid", "phone.invalid", "region.unknown"))
def submit_application(body: dict):
    return call("school", "submit_application", actor_id=optional_me(),
                application=school.ApplicationInput().dump(body))


@api.get("/operator/applications")
@endpoint(summary="Applications waiting for an operator (SC-1)" + PAGED, tag="operators", query=ListQuery,
          response=school.ApplicationView, many=True, errors=("operator.required", *PAGING_ERRORS))
def pending_applications(query: dict):
    return listed("school", "pending_applications", query, actor_id=me())


@api.post("/operator/applications/<uuid:application_id>/approval")
@endpoint(summary="Approve: the organization exists, the named phone is its first admin (SC-1)", tag="operators",
          response=school.OrganizationView, errors=("operator.required", "application.decided"))
def approve_application(application_id: uuid.UUID):
    return call("school", "approve_application", actor_id=me(), application_id=str(application_id))


@api.post("/operator/applications/<uuid:application_id>/rejection")
@endpoint(summary="Reject an application (SC-1)", tag="operators", body=school.RejectionInput, status=204,
          errors=("operator.required", "application.decided", "application.invalid_reason"))
def reject_application(application_id: uuid.UUID, body: dict):
    call("school", "reject_application", actor_id=me(), application_id=str(application_id), reason=body["reason"])


@api.get("/organizations")
@endpoint(summary="Find organizations by country, city and words of their name, a page at a time (SC-2)",
          tag="organizations",
          query=SearchQuery, response=school.SearchPage, errors=("region.unknown",))
def search_organizations(query: dict):
    return call("school", "search", **query)


@api.get("/organizations/<uuid:organization_id>")
@endpoint(summary="An organization's public details", tag="organizations", response=school.OrganizationView,
          errors=("organization.not_found",))
def get_organization(organization_id: uuid.UUID):
    return call("school", "get_organization", organization_id=str(organization_id))


@api.patch("/organizations/<uuid:organization_id>")
@endpoint(summary="Admins fill in and edit the organization's details (SC-1, RO-2)", tag="organizations",
          body=school.OrganizationInput, response=school.OrganizationView,
          errors=(*ORG_ERRORS, "organization.invalid", "region.unknown"))
def update_organization(organization_id: uuid.UUID, body: dict):
    return call("school", "update_organization", actor_id=me(), organization_id=str(organization_id),
                details=school.OrganizationInput().dump(body))


@api.get("/me/organizations")
@endpoint(summary="One's organizations and roles in each (RO-6)", tag="organizations",
          response=school.MyOrganization, many=True)
def my_organizations():
    return call("school", "my_organizations", actor_id=me())


# -- classes (SC-4) ----------------------------------------------------------------------------------

@api.post("/organizations/<uuid:organization_id>/classes")
@endpoint(summary="Create a class: name, start and end year (SC-4)", tag="classes", body=school.ClassInput,
          response=school.ClassView, status=201, errors=(*ORG_ERRORS, "class.invalid"))
def create_class(organization_id: uuid.UUID, body: dict):
    return call("school", "create_class", actor_id=me(), organization_id=str(organization_id), school_class=body)


@api.get("/organizations/<uuid:organization_id>/classes")
@endpoint(summary="The organization's classes, graduated ones marked (SC-4)" + PAGED, tag="classes",
          query=ListQuery, response=school.ClassView, many=True, errors=(*ORG_ERRORS, *PAGING_ERRORS))
def list_classes(organization_id: uuid.UUID, query: dict):
    return listed("school", "classes", query, actor_id=me(), organization_id=str(organization_id))


# -- members (RO-*, SC-7..SC-9) -------------------------------------------------------------------------

@api.get("/organizations/<uuid:organization_id>/members")
@endpoint(summary="Members: staff see everyone; students and parents the staff and their class", tag="members",
          query=MembersQuery, response=school.MembersPage, errors=(*ORG_ERRORS, "organization.class_only"))
def list_members(organization_id: uuid.UUID, query: dict):
    return call("school", "members", actor_id=me(), organization_id=str(organization_id),
                class_id=str(query["class_id"]) if query["class_id"] else None, cursor=query["cursor"],
                limit=query["limit"])


@api.post("/organizations/<uuid:organization_id>/admins")
@endpoint(summary="Appoint a member as admin; there may be any number (RO-7)", tag="members", body=AdminInput,
          response=school.MembershipView, status=201, errors=(*ORG_ERRORS, "member.not_found",
                                                              "member.already_admin"))
def appoint_admin(organization_id: uuid.UUID, body: dict):
    return call("school", "appoint_admin", actor_id=me(), organization_id=str(organization_id),
                user_id=str(body["user_id"]))


@api.put("/organizations/<uuid:organization_id>/members/<uuid:user_id>")
@endpoint(summary="Correct a member's role(s) and class (SC-8, SC-9)", tag="members", body=school.MemberChange,
          response=school.MembershipView, errors=(*ORG_ERRORS, "member.not_found", "member.last_admin"))
def change_member(organization_id: uuid.UUID, user_id: uuid.UUID, body: dict):
    return call("school", "change_member", actor_id=me(), organization_id=str(organization_id), user_id=str(user_id),
                change=school.MemberChange().dump(body))


@api.delete("/organizations/<uuid:organization_id>/members/<uuid:user_id>")
@endpoint(summary="Remove a member (SC-9)", tag="members", status=204,
          errors=(*ORG_ERRORS, "member.not_found", "member.last_admin"))
def remove_member(organization_id: uuid.UUID, user_id: uuid.UUID):
    call("school", "remove_member", actor_id=me(), organization_id=str(organization_id), user_id=str(user_id))


@api.put("/organizations/<uuid:organization_id>/classes/<uuid:class_id>/teaching")
@endpoint(summary="A teacher adds themself to a class they teach, with subjects (SC-7)", tag="members",
          body=school.TeacherAssignment, response=school.MembershipView,
          errors=(*ORG_ERRORS, "class.not_found", "teacher.subjects_required"))
def assign_self(organization_id: uuid.UUID, class_id: uuid.UUID, body: dict):
    return call("school", "assign_self", actor_id=me(), organization_id=str(organization_id),
                class_id=str(class_id), subjects=body["subjects"])


RECENT_CHATS = 10  # chats on the dashboard (SC-13), most active first


@api.get("/me/dashboard")
@endpoint(summary="The teacher's desktop: classes taught, lessons under way, recent chats (SC-13)",
          tag="members", response=school.Dashboard)
def dashboard():
    # Each part from the service that owns it: classes taught (school), one's lessons whose call is
    # under way (the bridge's timetable joined with calls), recent chats (messaging).
    desk = call("school", "dashboard", actor_id=me())
    desk["lessons_under_way"] = call("ejournal_bridge", "lessons_under_way", actor_id=me())
    desk["recent_chats"] = [{**item["chat"], "last_seq": item["last_seq"], "unread": item["unread"]}
                            for item in call("messaging", "chats", actor_id=me(), limit=RECENT_CHATS)["items"]]
    return desk


# -- invite links (SC-5, SC-6) ------------------------------------------------------------------------------

@api.post("/organizations/<uuid:organization_id>/invites")
@endpoint(summary="Create an invite link: validity preset, uses, class, role, e-mail for juniors (SC-5, ID-4)",
          tag="invites", body=school.InviteInput, response=school.InviteView, status=201,
          errors=(*ORG_ERRORS, "invite.class_required", "invite.email_for_juniors_only", "class.graduated"))
def create_invite(organization_id: uuid.UUID, body: dict):
    return with_url(call("school", "create_invite", actor_id=me(), organization_id=str(organization_id),
                         invite=school.InviteInput().dump(body)))


@api.get("/organizations/<uuid:organization_id>/invites")
@endpoint(summary="Invite links (admins: all; teachers: their own)" + PAGED, tag="invites", query=ListQuery,
          response=school.InviteView, many=True, errors=(*ORG_ERRORS, *PAGING_ERRORS))
def list_invites(organization_id: uuid.UUID, query: dict):
    return listed("school", "invites", query, with_url, actor_id=me(), organization_id=str(organization_id))


@api.delete("/invites/<uuid:invite_id>")
@endpoint(summary="Revoke an invite link (SC-5)", tag="invites", status=204,
          errors=("invite.not_found", "invite.not_yours", *ORG_ERRORS))
def revoke_invite(invite_id: uuid.UUID):
    call("school", "revoke_invite", actor_id=me(), invite_id=str(invite_id))


@api.get("/invites/<token>")
@endpoint(summary="Open an invite link: the organization and class before joining (SC-6)", tag="invites",
          response=school.InvitePreview, auth=False,
          errors=("invite.not_found", "invite.expired", "invite.exhausted", "invite.revoked"))
def preview_invite(token: str):
    return call("school", "invite_preview", token=token)


@api.get("/invites/<token>/qr.<fmt>")
@endpoint(summary="The invite link as a QR code: qr.svg or qr.png (SC-5)", tag="invites", auth=False,
          produces=QR_MEDIA_TYPES, path_enums=QR_FORMATS, errors=("invite.not_found", "qr.unknown_format"))
def invite_qr(token: str, fmt: str):
    qr_format(fmt)
    call("school", "invite_preview", token=token)  # only live links are drawn
    return qr_response(fmt, invite_url(token))


@api.post("/invites/<token>/membership")
@endpoint(summary="Join by the link: straight into the organization and class with its role (SC-6)",
          tag="invites", response=school.MembershipView, status=201,
          errors=("invite.not_found", "invite.expired", "invite.exhausted", "invite.revoked",
                  "membership.already_member"))
def join_by_invite(token: str):
    return call("school", "join_by_invite", actor_id=me(), token=token)


# -- join requests (SC-2, SC-3) ---------------------------------------------------------------------------------

@api.post("/organizations/<uuid:organization_id>/join-requests")
@endpoint(summary="Ask to join an organization without an invite (SC-2)", tag="join requests",
          body=school.JoinRequestInput, response=school.JoinRequestView, status=201,
          errors=("organization.not_found", "membership.already_member", "join_request.hidden"))
def request_to_join(organization_id: uuid.UUID, body: dict):
    return call("school", "request_to_join", actor_id=me(), organization_id=str(organization_id),
                message=body["message"])


@api.get("/organizations/<uuid:organization_id>/join-requests")
@endpoint(summary="Pending join requests (admins, SC-3)" + PAGED, tag="join requests", query=ListQuery,
          response=school.JoinRequestView, many=True, errors=(*ORG_ERRORS, *PAGING_ERRORS))
def list_join_requests(organization_id: uuid.UUID, query: dict):
    return listed("school", "join_requests", query, actor_id=me(), organization_id=str(organization_id))


@api.post("/organizations/<uuid:organization_id>/join-requests/<uuid:user_id>/acceptance")
@endpoint(summary="\"Add\": admit the person with a role and class (SC-3)", tag="join requests",
          body=school.JoinRequestDecision, response=school.MembershipView, status=201,
          errors=(*ORG_ERRORS, "join_request.not_found", "join_request.hidden"))
def accept_join_request(organization_id: uuid.UUID, user_id: uuid.UUID, body: dict):
    return call("school", "accept_join_request", actor_id=me(), organization_id=str(organization_id),
                user_id=str(user_id), decision=school.JoinRequestDecision().dump(body))


@api.post("/organizations/<uuid:organization_id>/join-requests/<uuid:user_id>/hiding")
@endpoint(summary="\"Hide\": reject for good; a new invite link still works (SC-3)", tag="join requests",
          status=204, errors=(*ORG_ERRORS, "join_request.not_found"))
def hide_join_request(organization_id: uuid.UUID, user_id: uuid.UUID):
    call("school", "hide_join_request", actor_id=me(), organization_id=str(organization_id), user_id=str(user_id))


# -- materials (SC-10..SC-12) --------------------------------------------------------------------------------------

@api.post("/organizations/<uuid:organization_id>/documents")
@endpoint(summary="Upload a document for all members: within the size and type limits (SC-10)",
          tag="materials", body=DocumentForm, consumes="multipart/form-data", max_bytes=document_max_bytes,
          response=school.DocumentView, status=201,
          errors=(*ORG_ERRORS, *UPLOAD_ERRORS, "document.too_large", "document.type_not_allowed"))
def upload_document(organization_id: uuid.UUID, body: dict):
    org = str(organization_id)
    allowance = call("school", "upload_allowance", actor_id=me(), organization_id=org, purpose="document")
    return receive_upload(allowance, lambda **file: call("school", "publish_document", actor_id=me(),
                                                         organization_id=org, title=body["title"], **file))


@api.get("/organizations/<uuid:organization_id>/documents")
@endpoint(summary="The organization's documents (members)" + PAGED, tag="materials", query=ListQuery,
          response=school.DocumentView, many=True, errors=(*ORG_ERRORS, *PAGING_ERRORS))
def list_documents(organization_id: uuid.UUID, query: dict):
    return listed("school", "documents", query, actor_id=me(), organization_id=str(organization_id))


@api.get("/documents/<uuid:document_id>/content")
@endpoint(summary="Download a document (members of its organization)", tag="materials",
          produces="*/*", errors=("document.not_found", *ORG_ERRORS))
def download_document(document_id: uuid.UUID):
    return send_blob(call("school", "document_download", actor_id=me(), document_id=str(document_id)))


@api.post("/images")
@endpoint(summary="Upload an image for an organization's articles (a cover): PNG, JPEG, GIF or WebP by its "
                  "content, up to 5 MiB; teachers and admins", tag="materials",
          body=ImageForm, consumes="multipart/form-data", max_bytes=lambda: IMAGE_MAX_BYTES, response=school.ImageView,
          status=201, errors=(*ORG_ERRORS, *UPLOAD_ERRORS, "image.type_not_allowed"))
def upload_image(body: dict):
    org = str(body["organization_id"])
    allowance = call("school", "upload_allowance", actor_id=me(), organization_id=org, purpose="image")
    return receive_upload(allowance, lambda **file: call("school", "upload_image", actor_id=me(), organization_id=org,
                                                         **file))


@api.post("/organizations/<uuid:organization_id>/articles")
@endpoint(summary="Write an article: a draft with sanitised rich text and a cover (SC-11)", tag="materials",
          body=school.ArticleInput, response=school.ArticleView, status=201, errors=(*ORG_ERRORS, "image.not_found"))
def draft_article(organization_id: uuid.UUID, body: dict):
    return call("school", "draft_article", actor_id=me(), organization_id=str(organization_id), article=body)


@api.put("/articles/<uuid:article_id>")
@endpoint(summary="Edit an article (its author or an admin)", tag="materials", body=school.ArticleInput,
          response=school.ArticleView, errors=("article.not_found", "article.not_yours", "image.not_found"))
def edit_article(article_id: uuid.UUID, body: dict):
    return call("school", "edit_article", actor_id=me(), article_id=str(article_id), article=body)


@api.post("/articles/<uuid:article_id>/publication")
@endpoint(summary="Publish a draft (SC-11)", tag="materials", response=school.ArticleView,
          errors=("article.not_found", "article.not_yours", "article.already_published"))
def publish_article(article_id: uuid.UUID):
    return call("school", "publish_article", actor_id=me(), article_id=str(article_id))


@api.get("/organizations/<uuid:organization_id>/articles")
@endpoint(summary="Articles: published ones, and one's own drafts" + PAGED, tag="materials", query=ListQuery,
          response=school.ArticleView, many=True, errors=(*ORG_ERRORS, *PAGING_ERRORS))
def list_articles(organization_id: uuid.UUID, query: dict):
    return listed("school", "articles", query, actor_id=me(), organization_id=str(organization_id))


@api.get("/articles/<uuid:article_id>")
@endpoint(summary="One article: a published one for its organization's members, a draft for its author and admins "
                  "(SC-11)", tag="materials", response=school.ArticleView,
          errors=("article.not_found", *ORG_ERRORS))
def get_article(article_id: uuid.UUID):
    return call("school", "get_article", actor_id=me(), article_id=str(article_id))


@api.get("/articles/<uuid:article_id>/cover")
@endpoint(summary="An article's cover image (readers of the article)", tag="materials",
          produces=("image/jpeg", "image/png"),
          errors=("article.not_found", "article.no_cover", *ORG_ERRORS))
def article_cover(article_id: uuid.UUID):
    return send_blob(call("school", "article_cover", actor_id=me(), article_id=str(article_id)))


@api.post("/organizations/<uuid:organization_id>/channels")
@endpoint(summary="Create a channel (admins, SC-12)", tag="channels", body=school.ChannelInput,
          response=school.ChannelView, status=201, errors=ORG_ERRORS)
def create_channel(organization_id: uuid.UUID, body: dict):
    return call("school", "create_channel", actor_id=me(), organization_id=str(organization_id), name=body["name"])


@api.get("/organizations/<uuid:organization_id>/channels")
@endpoint(summary="The organization's channels" + PAGED, tag="channels", query=ListQuery,
          response=school.ChannelView, many=True, errors=(*ORG_ERRORS, *PAGING_ERRORS))
def list_channels(organization_id: uuid.UUID, query: dict):
    return listed("school", "channels", query, actor_id=me(), organization_id=str(organization_id))


@api.get("/channels/<uuid:channel_id>")
@endpoint(summary="One channel (its organization's members, SC-12)", tag="channels", response=school.ChannelView,
          errors=("channel.not_found", *ORG_ERRORS))
def get_channel(channel_id: uuid.UUID):
    return call("school", "get_channel", actor_id=me(), channel_id=str(channel_id))


@api.post("/channels/<uuid:channel_id>/posts")
@endpoint(summary="Post in a channel (admins, SC-12)", tag="channels", body=school.PostInput,
          response=school.PostView, status=201, errors=("channel.not_found", *ORG_ERRORS))
def post_in_channel(channel_id: uuid.UUID, body: dict):
    return call("school", "post", actor_id=me(), channel_id=str(channel_id), text=body["text"])


@api.get("/channels/<uuid:channel_id>/posts")
@endpoint(summary="Read a channel, newest first (members, SC-12)", tag="channels", query=PostsQuery,
          response=school.PostsPage, errors=("channel.not_found", *ORG_ERRORS))
def read_channel(channel_id: uuid.UUID, query: dict):
    return call("school", "posts", actor_id=me(), channel_id=str(channel_id), **query)
