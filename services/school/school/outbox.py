"""Which of school's domain events become integration events (mapping only)."""

from __future__ import annotations

from collections.abc import Iterable

from school.domain import Article, Channel, Document, Membership, Organization, SchoolClass, taught_classes

Published = tuple[str, dict, str | None]


def _membership(e, **extra) -> dict:
    return {"organization_id": e.organization_id, "user_id": e.user_id, **extra}


def _parent_classes(e) -> list[str] | None:
    """The classes a parent is a parent in after the event (``Membership.parent_classes``): what a RoleAdded or
    Changed says (None: stored before they were kept, so not said); a join, the class joined as a parent."""
    if isinstance(e, (Membership.RoleAdded, Membership.Changed)):
        return getattr(e, "parent_classes", None)
    return [e.class_id] if e.role == "parent" and e.class_id is not None else []


def to_integration_events(e: object) -> Iterable[Published]:
    org = str(getattr(e, "organization_id", "") or getattr(e, "originator_id", ""))
    if isinstance(e, Organization.Registered):
        yield "school.OrganizationRegistered.v1", {
            "organization_id": e.originator_id, "name": e.name, "kind": e.kind, "country": e.country,
            "city": e.city, "region": e.region, "approved_by": e.approved_by, "registered_at": e.timestamp,
        }, str(e.originator_id)
    elif isinstance(e, Organization.Updated):
        yield "school.OrganizationUpdated.v1", {
            "organization_id": e.originator_id, "name": e.name, "country": e.country, "city": e.city,
            "region": e.region, "address": e.address, "website": e.website, "settings": e.settings,
            "updated_at": e.timestamp,
        }, str(e.originator_id)
    elif isinstance(e, SchoolClass.Created):
        yield "school.ClassCreated.v1", {
            "organization_id": e.organization_id, "class_id": e.originator_id, "name": e.name.strip(),
            "start_year": e.start_year, "end_year": e.end_year, "created_at": e.timestamp}, org
    elif isinstance(e, SchoolClass.Graduated):
        yield "school.ClassGraduated.v1", {
            "organization_id": e.organization_id, "class_id": e.originator_id, "graduated_at": e.graduated_at}, org
    elif isinstance(e, Membership.Joined):
        yield "school.MemberJoined.v1", _membership(e, role=e.role, roles=[e.role], class_id=e.class_id,
                                                    parent_classes=_parent_classes(e),
                                                    subjects=taught_classes([e.role], e.class_id, {}), via=e.via,
                                                    joined_at=e.timestamp), org
        if e.role == "admin":
            yield "school.AdminAppointed.v1", _membership(e, appointed_by=None, appointed_at=e.timestamp), org
    elif isinstance(e, (Membership.Rejoined, Membership.RoleAdded)):
        subjects = taught_classes(e.roles, e.class_id, getattr(e, "subjects", {}))
        yield "school.MemberJoined.v1", _membership(e, role=e.role, roles=e.roles, class_id=e.class_id,
                                                    parent_classes=_parent_classes(e), subjects=subjects,
                                                    via=e.via, joined_at=e.timestamp), org
        if e.role == "admin":
            yield "school.AdminAppointed.v1", _membership(e, appointed_by=None, appointed_at=e.timestamp), org
    elif isinstance(e, Membership.Changed):
        yield "school.MemberRoleChanged.v1", _membership(e, roles=e.roles, class_id=e.class_id,
                                                         parent_classes=_parent_classes(e),
                                                         subjects=taught_classes(e.roles, e.class_id, e.subjects),
                                                         changed_by=e.changed_by, changed_at=e.timestamp), org
    elif isinstance(e, Membership.TeacherAssigned):
        yield "school.TeacherAssigned.v1", _membership(e, class_id=e.class_id, subjects=e.subjects,
                                                       assigned_at=e.timestamp), org
    elif isinstance(e, Membership.Left):
        yield "school.MemberLeft.v1", _membership(e, removed_by=e.removed_by, left_at=e.timestamp), org
    elif isinstance(e, Document.Published):
        yield "school.DocumentPublished.v1", {
            "organization_id": e.organization_id, "document_id": e.originator_id, "title": e.title,
            "media_type": e.media_type, "size": e.size, "published_by": e.published_by,
            "published_at": e.timestamp}, org
    elif isinstance(e, Article.Published):
        yield "school.ArticlePublished.v1", {
            "organization_id": e.organization_id, "article_id": e.originator_id, "title": e.title,
            "author_id": e.author_id, "published_at": e.published_at}, org
    elif isinstance(e, Channel.Posted):
        yield "school.ChannelPostPublished.v1", {
            "organization_id": e.organization_id, "channel_id": e.originator_id, "post_id": e.post_id,
            "author_id": e.author_id, "text": e.text, "published_at": e.published_at}, org
