"""school's nameko entrypoints: RPC, integration-event handlers and the graduation
timer; each a thin call into the application. ``actor_id`` is the gateway's
verified token subject."""

from __future__ import annotations

import uuid
from typing import Any

from nameko.timer import timer

from school import handlers
from school.application import SchoolApplication
from school.domain import Article, Channel, Document, Image, InviteLink, Membership, Organization, SchoolClass
from shared.bus.consumer import consume_event
from shared.contracts import CloudEvent
from shared.contracts.api import school as schemas
from shared.lease import once_per_cluster
from shared.service import EventSourcedApp, Observability, rpc, to_id

GRADUATION_CHECK_SECONDS = 3600
GRADUATION_LEASE = "timer:school.graduation"  # the job runs in one replica of school, not in each



def _opt_id(value: Any) -> uuid.UUID | None:
    return to_id(value) if value else None


LIST_LIMIT = 200  # the largest page of the lists that answered whole before they paged (invites, documents...)


def _paged(cursor: str | None, limit: int | None) -> bool:
    return cursor is not None or limit is not None


def _limit(cursor: str | None, limit: int | None) -> int | None:
    """None (the whole list, as the call without paging always answered) or a page size of 1..LIST_LIMIT."""
    return max(1, min(int(limit or LIST_LIMIT), LIST_LIMIT)) if _paged(cursor, limit) else None


def _listing(found: tuple[list, str | None], view: Any, cursor: str | None, limit: int | None) -> list | dict:
    """The lists that had no paging answer a list when called without ``cursor`` and ``limit``, else a page
    ``{items, next_cursor}``."""
    items = [view(item) for item in found[0]]
    return {"items": items, "next_cursor": found[1]} if _paged(cursor, limit) else items


def organization_view(o: Organization) -> dict:
    return schemas.OrganizationView().dump({**vars(o), "organization_id": o.id})


def class_view(c: SchoolClass, graduated: bool) -> dict:
    return schemas.ClassView().dump({**vars(c), "class_id": c.id, "graduated": graduated})


def membership_view(m: Membership) -> dict:
    return schemas.MembershipView().dump({**vars(m), "parent_classes": m.parent_classes})


def invite_view(invite: InviteLink, token: str) -> dict:
    return schemas.InviteView().dump({**vars(invite), "invite_id": invite.id, "token": token})


def document_view(d: Document) -> dict:
    return schemas.DocumentView().dump({**vars(d), "document_id": d.id, "published_at": d.created_on})


def article_view(a: Article) -> dict:
    return schemas.ArticleView().dump({**vars(a), "article_id": a.id})


def image_view(i: Image) -> dict:
    return schemas.ImageView().dump({**vars(i), "image_id": i.id})


def blob_reference(stored: Document | Image) -> dict:
    """For the gateway only, to serve a file school decided the actor may read: never shown to clients."""
    return {"blob_key": stored.blob_key, "file_name": stored.file_name, "media_type": stored.media_type,
            "size": stored.size}


def channel_view(c: Channel) -> dict:
    return schemas.ChannelView().dump({**vars(c), "channel_id": c.id})


class SchoolService:
    name = "school"

    app: SchoolApplication = EventSourcedApp(SchoolApplication)
    observability = Observability()

    # -- what school learns from identity ----------------------------------------------------
    @consume_event("identity.UserRegistered.v1")
    def on_user_registered(self, event: CloudEvent) -> bool:
        return handlers.on_user_registered(self.app, event)

    @consume_event("identity.ProfileUpdated.v1")
    def on_profile_updated(self, event: CloudEvent) -> bool:
        return handlers.on_profile_updated(self.app, event)

    @consume_event("identity.PhoneDetached.v1")
    def on_phone_detached(self, event: CloudEvent) -> bool:
        return handlers.on_phone_detached(self.app, event)

    @consume_event("identity.ParentLinked.v1")
    def on_parent_linked(self, event: CloudEvent) -> bool:
        return handlers.on_parent_linked(self.app, event)

    @consume_event("ejournal_bridge.JournalMembershipsChanged.v1")
    def on_journal_memberships(self, event: CloudEvent) -> bool:
        return handlers.on_journal_memberships(self.app, event)

    @consume_event("identity.ParentUnlinked.v1")
    def on_parent_unlinked(self, event: CloudEvent) -> bool:
        return handlers.on_parent_unlinked(self.app, event)

    @timer(interval=GRADUATION_CHECK_SECONDS, eager=True)
    def graduate_classes(self) -> int:
        """SC-4: classes in their end year graduate; running it again changes nothing. Only the replica
        holding the job's lease runs it (another takes over when that one dies)."""
        if not once_per_cluster(GRADUATION_LEASE):
            return 0
        return self.app.graduate_due(self.app.today())

    @rpc
    def get_person(self, user_id: str) -> dict:
        person = self.app.get_person(to_id(user_id, "person.not_found"))
        return schemas.PersonView().dump({**vars(person), "user_id": person.id, "version": person.version})

    # -- organizations (SC-1, SC-2) -------------------------------------------------------------
    @rpc
    def submit_application(self, actor_id: str | None, application: dict) -> dict:
        submitted = self.app.submit_application(_opt_id(actor_id), schemas.ApplicationInput().load_command(application))
        return self._application(submitted)

    @staticmethod
    def _application(a) -> dict:
        return schemas.ApplicationView().dump({**vars(a), "application_id": a.id})

    # Operators are people (SFERA_OPERATOR_PHONES) signed in like everyone else; the
    # console on the machine itself does not come through here (school.operator).
    @rpc
    def require_operator(self, actor_id: str) -> None:
        """Refuses (operator.required) anyone but a platform operator: other services' operator commands ask here."""
        self.app.require_operator(_opt_id(actor_id))

    @rpc
    def pending_applications(self, actor_id: str | None, cursor: str | None = None, limit: int | None = None
                             ) -> list[dict] | dict:
        return _listing(self.app.pending_applications_page(_opt_id(actor_id), cursor, _limit(cursor, limit)),
                        self._application, cursor, limit)

    @rpc
    def approve_application(self, actor_id: str | None, application_id: str) -> dict:
        return organization_view(self.app.approve_application(_opt_id(actor_id),
                                                              to_id(application_id, "application.not_found")))

    @rpc
    def reject_application(self, actor_id: str | None, application_id: str, reason: str) -> None:
        self.app.reject_application(_opt_id(actor_id), to_id(application_id, "application.not_found"), reason)

    @rpc
    def get_organization(self, organization_id: str) -> dict:
        return organization_view(self.app.organization(to_id(organization_id, "organization.not_found")))

    @rpc
    def update_organization(self, actor_id: str, organization_id: str, details: dict) -> dict:
        change = schemas.OrganizationInput().load_command(details, organization_id=to_id(organization_id))
        return organization_view(self.app.update_organization(to_id(actor_id), change))

    @rpc
    def search(self, country: str, city: str | None = None, cursor: str | None = None, limit: int = 20,
               q: str | None = None, region: str | None = None) -> dict:
        items, next_cursor = self.app.search(country, city, cursor, max(1, min(limit, 100)), q=(q or "")[:200],
                                             region=region)
        return schemas.SearchPage().dump({"items": items, "next_cursor": next_cursor})

    @rpc
    def my_organizations(self, actor_id: str) -> list[dict]:
        return [{"organization": organization_view(o), "membership": membership_view(m)}
                for o, m in self.app.my_organizations(to_id(actor_id))]

    # -- classes ---------------------------------------------------------------------------------
    @rpc
    def create_class(self, actor_id: str, organization_id: str, school_class: dict) -> dict:
        created = self.app.create_class(to_id(actor_id), schemas.ClassInput().load_command(
            school_class, organization_id=to_id(organization_id)))
        return class_view(created, self.app.class_graduated(created))

    @rpc
    def classes(self, actor_id: str, organization_id: str, cursor: str | None = None, limit: int | None = None
                ) -> list[dict] | dict:
        return _listing(self.app.classes_page(to_id(actor_id), to_id(organization_id), cursor, _limit(cursor, limit)),
                        lambda c: class_view(c, self.app.class_graduated(c)), cursor, limit)

    # -- members -----------------------------------------------------------------------------------
    @rpc
    def members(self, actor_id: str, organization_id: str, class_id: str | None = None, cursor: str | None = None,
                limit: int = 50) -> dict:
        items, next_cursor = self.app.members(to_id(actor_id), to_id(organization_id), _opt_id(class_id), cursor,
                                              max(1, min(limit, 200)))
        return schemas.MembersPage().dump({"items": items, "next_cursor": next_cursor})

    @rpc
    def membership_state(self, organization_id: str, user_id: str) -> dict:
        """Internal (messaging): a membership as stored now, with its version (Members.membership_state)."""
        return self.app.membership_state(to_id(organization_id), to_id(user_id))

    @rpc
    def appoint_admin(self, actor_id: str, organization_id: str, user_id: str) -> dict:
        return membership_view(self.app.appoint_admin(to_id(actor_id), to_id(organization_id),
                                                      to_id(user_id, "member.not_found")))

    @rpc
    def change_member(self, actor_id: str, organization_id: str, user_id: str, change: dict) -> dict:
        return membership_view(self.app.change_member(to_id(actor_id), schemas.MemberChange().load_command(
            change, organization_id=to_id(organization_id), user_id=to_id(user_id, "member.not_found"))))

    @rpc
    def remove_member(self, actor_id: str, organization_id: str, user_id: str) -> None:
        self.app.remove_member(to_id(actor_id), to_id(organization_id), to_id(user_id, "member.not_found"))

    @rpc
    def assign_self(self, actor_id: str, organization_id: str, class_id: str, subjects: list[str]) -> dict:
        return membership_view(self.app.assign_self(to_id(actor_id), to_id(organization_id),
                                                    to_id(class_id, "class.not_found"), subjects))

    # -- invites -----------------------------------------------------------------------------------
    @rpc
    def create_invite(self, actor_id: str, organization_id: str, invite: dict) -> dict:
        created, token = self.app.create_invite(to_id(actor_id), schemas.InviteInput().load_command(
            invite, organization_id=to_id(organization_id)))
        return invite_view(created, token)

    @rpc
    def invites(self, actor_id: str, organization_id: str, cursor: str | None = None, limit: int | None = None
                ) -> list[dict] | dict:
        return _listing(self.app.invites_page(to_id(actor_id), to_id(organization_id), cursor, _limit(cursor, limit)),
                        lambda found: invite_view(*found), cursor, limit)

    @rpc
    def revoke_invite(self, actor_id: str, invite_id: str) -> None:
        self.app.revoke_invite(to_id(actor_id), to_id(invite_id, "invite.not_found"))

    @rpc
    def invite_preview(self, token: str) -> dict:
        invite = self.app.usable_invite(token)
        school_class = self.app.repository.get(invite.class_id) if invite.class_id else None
        return schemas.InvitePreview().dump({
            "organization": organization_view(self.app.organization(invite.organization_id)),
            "class_name": school_class.name if school_class else None, "role": invite.role,
            "expires_at": invite.expires_at, "email_registration_allowed": invite.email_registration_allowed})

    @rpc
    def validate_invite(self, token: str) -> dict:
        """The contract identity relies on for juniors' e-mail registration (ID-4):
        ``{organization_id, class_id, role, email_registration_allowed}`` for a
        usable invite, else NotFound / Gone with an ``invite.*`` code."""
        invite = self.app.usable_invite(token)
        return {"organization_id": str(invite.organization_id),
                "class_id": str(invite.class_id) if invite.class_id else None, "role": invite.role,
                "email_registration_allowed": invite.email_registration_allowed}

    @rpc
    def join_by_invite(self, actor_id: str, token: str) -> dict:
        return membership_view(self.app.join_by_invite(token, to_id(actor_id)))

    # -- join requests -------------------------------------------------------------------------------
    @rpc
    def request_to_join(self, actor_id: str, organization_id: str, message: str | None = None) -> dict:
        asked = schemas.JoinRequestInput().load_command(  # any caller's message is checked, as the gateway's
            {"message": message}, organization_id=to_id(organization_id, "organization.not_found"),
            user_id=to_id(actor_id))
        request = self.app.request_to_join(asked.user_id, asked.organization_id, asked.message)
        return schemas.JoinRequestView().dump(vars(request))

    @rpc
    def join_requests(self, actor_id: str, organization_id: str, cursor: str | None = None, limit: int | None = None
                      ) -> list[dict] | dict:
        return _listing(self.app.join_requests_page(to_id(actor_id), to_id(organization_id), cursor,
                                                    _limit(cursor, limit)),
                        lambda r: schemas.JoinRequestView().dump(vars(r)), cursor, limit)

    @rpc
    def accept_join_request(self, actor_id: str, organization_id: str, user_id: str, decision: dict) -> dict:
        return membership_view(self.app.accept_join_request(to_id(actor_id), schemas.JoinRequestDecision().load_command(
            decision, organization_id=to_id(organization_id), user_id=to_id(user_id, "join_request.not_found"))))

    @rpc
    def hide_join_request(self, actor_id: str, organization_id: str, user_id: str) -> None:
        self.app.hide_join_request(to_id(actor_id), to_id(organization_id), to_id(user_id, "join_request.not_found"))

    # -- materials ------------------------------------------------------------------------------------
    @rpc
    def upload_allowance(self, actor_id: str, organization_id: str, purpose: str) -> dict:
        return self.app.upload_allowance(to_id(actor_id), to_id(organization_id), purpose)

    @rpc
    def publish_document(self, actor_id: str, organization_id: str, title: str, file_name: str, media_type: str,
                         size: int, blob_key: str) -> dict:
        return document_view(self.app.publish_document(to_id(actor_id), to_id(organization_id), title, file_name,
                                                       media_type, size, blob_key))

    @rpc
    def documents(self, actor_id: str, organization_id: str, cursor: str | None = None, limit: int | None = None
                  ) -> list[dict] | dict:
        return _listing(self.app.documents_page(to_id(actor_id), to_id(organization_id), cursor,
                                                _limit(cursor, limit)), document_view, cursor, limit)

    @rpc
    def document_download(self, actor_id: str, document_id: str) -> dict:
        return blob_reference(self.app.document(to_id(actor_id), to_id(document_id, "document.not_found")))

    @rpc
    def upload_image(self, actor_id: str, organization_id: str, file_name: str, media_type: str, size: int,
                     blob_key: str) -> dict:
        return image_view(self.app.upload_image(to_id(actor_id), to_id(organization_id), file_name, media_type, size,
                                                blob_key))

    @rpc
    def article_cover(self, actor_id: str, article_id: str) -> dict:
        return blob_reference(self.app.article_cover(to_id(actor_id), to_id(article_id, "article.not_found")))

    @rpc
    def draft_article(self, actor_id: str, organization_id: str, article: dict) -> dict:
        return article_view(self.app.draft_article(to_id(actor_id), schemas.ArticleInput().load_command(
            article, organization_id=to_id(organization_id))))

    @rpc
    def edit_article(self, actor_id: str, article_id: str, article: dict) -> dict:
        return article_view(self.app.edit_article(to_id(actor_id), schemas.ArticleEdit().load_command(
            article, article_id=to_id(article_id, "article.not_found"))))

    @rpc
    def publish_article(self, actor_id: str, article_id: str) -> dict:
        return article_view(self.app.publish_article(to_id(actor_id), to_id(article_id, "article.not_found")))

    @rpc
    def articles(self, actor_id: str, organization_id: str, cursor: str | None = None, limit: int | None = None
                 ) -> list[dict] | dict:
        return _listing(self.app.articles_page(to_id(actor_id), to_id(organization_id), cursor,
                                               _limit(cursor, limit)), article_view, cursor, limit)

    @rpc
    def get_article(self, actor_id: str, article_id: str) -> dict:
        return article_view(self.app.article(to_id(actor_id), to_id(article_id, "article.not_found")))

    @rpc
    def create_channel(self, actor_id: str, organization_id: str, name: str) -> dict:
        return channel_view(self.app.create_channel(to_id(actor_id), to_id(organization_id), name))

    @rpc
    def channels(self, actor_id: str, organization_id: str, cursor: str | None = None, limit: int | None = None
                 ) -> list[dict] | dict:
        return _listing(self.app.channels_page(to_id(actor_id), to_id(organization_id), cursor,
                                               _limit(cursor, limit)), channel_view, cursor, limit)

    @rpc
    def get_channel(self, actor_id: str, channel_id: str) -> dict:
        return channel_view(self.app.channel(to_id(actor_id), to_id(channel_id, "channel.not_found")))

    @rpc
    def post(self, actor_id: str, channel_id: str, text: str) -> dict:
        return schemas.PostView().dump(self.app.post(to_id(actor_id), to_id(channel_id, "channel.not_found"), text))

    @rpc
    def posts(self, actor_id: str, channel_id: str, cursor: str | None = None, limit: int = 20) -> dict:
        items, next_cursor = self.app.posts(to_id(actor_id), to_id(channel_id, "channel.not_found"), cursor,
                                            max(1, min(limit, 100)))
        return schemas.PostsPage().dump({"items": items, "next_cursor": next_cursor})

    # -- the teacher's desktop -------------------------------------------------------------------------
    @rpc
    def dashboard(self, actor_id: str) -> dict:
        return schemas.TaughtClasses().dump(self.app.dashboard(to_id(actor_id)))
