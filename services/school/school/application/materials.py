"""Materials (SC-10, SC-11): documents and articles of an organization, by its admins and teachers, read by its
members; images for the articles' covers. Every upload is asked for first (``upload_allowance``), then charged to
today's quotas."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import nh3

from school import lists
from school.application.base import SchoolBase
from school.domain import Article, Document, Image, MaterialsIndex
from shared.blobs import document_max_bytes
from shared.clock import utcnow
from shared.contracts.api.school import DraftArticle, EditArticle
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.store import command
from shared.uploads import IMAGE_MAX_BYTES, IMAGE_TYPES, Quotas, clean_file_name, is_executable, quota_exceeded

DOCUMENT_TYPES = {
    "application/pdf", "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation", "text/plain", "image/jpeg", "image/png", "video/mp4",
    "audio/mpeg",
}
# The largest file of each kind an upload here may be (asked before its bytes are read).
UPLOAD_LIMITS: dict[str, Callable[[], int]] = {"document": document_max_bytes, "image": lambda: IMAGE_MAX_BYTES}
ARTICLE_TAGS = {"p", "br", "b", "strong", "i", "em", "u", "s", "h2", "h3", "h4", "ul", "ol", "li", "blockquote",
                "a", "img", "figure", "figcaption", "video", "source", "hr", "table", "thead", "tbody", "tr",
                "th", "td"}
ARTICLE_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt"}, "video": {"src", "controls", "poster"},
                      "source": {"src", "type"}, "th": {"colspan", "rowspan"}, "td": {"colspan", "rowspan"}}


def sanitize_html(html: str) -> str:
    """Articles keep formatting, images and video, never scripts or handlers (SC-11)."""
    return nh3.clean(html, tags=ARTICLE_TAGS, attributes=ARTICLE_ATTRIBUTES, url_schemes={"http", "https"},
                     link_rel="noopener noreferrer")


def material_title(kind: str, title: str) -> str:
    """A document's or an article's title as stored (trimmed), the same rule when it is given and when it is
    edited: an edit once stored a blank title that the draft refused."""
    title = title.strip()
    if not title or len(title) > 200:
        raise Invalid(f"{kind}.invalid_title", "A title of 1 to 200 characters.")
    return title


class Materials(SchoolBase):
    def upload_allowance(self, actor_id: uuid.UUID, organization_id: uuid.UUID, purpose: str) -> dict[str, Any]:
        """Asked before a file's bytes are read (issue #12): refuses whoever may not upload
        a document or an image here, and says how large a file may be and what today's
        quotas leave (``bytes_left``, the ``scope`` that leaves the fewest)."""
        if purpose not in UPLOAD_LIMITS:
            raise Invalid("upload.invalid_purpose", f"Uploads here are one of: {', '.join(UPLOAD_LIMITS)}.")
        self._require(organization_id, actor_id, "admin", "teacher")
        left, scope = Quotas(self.find, actor_id, organization_id, self.today()).left()
        if left <= 0:
            raise quota_exceeded(scope, left)
        return {"max_bytes": UPLOAD_LIMITS[purpose](), "bytes_left": left, "scope": scope}

    def publish_document(self, actor_id: uuid.UUID, organization_id: uuid.UUID, title: str, file_name: str,
                         media_type: str, size: int, blob_key: str) -> Document:
        """SC-10: admins add school-wide materials, teachers upload theirs (RO-2, RO-3).
        ``media_type`` is what the content was sniffed to be; the name is cleaned before it is checked."""
        self._require(organization_id, actor_id, "admin", "teacher")
        file_name = clean_file_name(file_name)
        if media_type not in DOCUMENT_TYPES or is_executable(file_name, media_type):
            raise Invalid("document.type_not_allowed", "This kind of file cannot be published.",
                          {"media_type": media_type, "allowed": sorted(DOCUMENT_TYPES)})
        if not 0 < size <= document_max_bytes():
            raise Invalid("document.too_large", f"A document is at most {document_max_bytes()} bytes.",
                          {"size": size, "max_bytes": document_max_bytes()})
        title = material_title("document", title)

        def publish() -> Document:
            ledgers = Quotas(self.find, actor_id, organization_id, self.today()).charge(size)
            document = Document(organization_id=organization_id, title=title, file_name=file_name,
                                media_type=media_type, size=size, blob_key=blob_key, published_by=actor_id)
            self._save_listed(document, organization_id, "documents", *ledgers)
            return document

        return self.retrying(publish)

    def documents(self, actor_id: uuid.UUID, organization_id: uuid.UUID) -> list[Document]:
        return self.documents_page(actor_id, organization_id, None, None)[0]

    def documents_page(self, actor_id: uuid.UUID, organization_id: uuid.UUID, cursor: str | None, limit: int | None
                       ) -> tuple[list[Document], str | None]:
        """Members read the organization's documents, newest first, from the read model (``school.lists``)."""
        self._member(organization_id, actor_id)
        return self._entries("document", organization_id, cursor, limit, lists.document, newest_first=True,
                             where="i.status <> 'deleted'")

    def document(self, actor_id: uuid.UUID, document_id: uuid.UUID) -> Document:
        """A document for download: members of its organization only."""
        document = self.get_as(Document, document_id, "document.not_found", "No such document.")
        if document.deleted:
            raise NotFound("document.not_found", "No such document.")
        self._member(document.organization_id, actor_id)
        return document

    def upload_image(self, actor_id: uuid.UUID, organization_id: uuid.UUID, file_name: str, media_type: str,
                     size: int, blob_key: str) -> Image:
        """An image for the organization's articles (a cover), by its teachers and admins:
        a PNG, JPEG, GIF or WebP by its content, within the size and today's quotas."""
        self._require(organization_id, actor_id, "admin", "teacher")
        if media_type not in IMAGE_TYPES:
            raise Invalid("image.type_not_allowed", "Images are PNG, JPEG, GIF or WebP.",
                          {"media_type": media_type, "allowed": sorted(IMAGE_TYPES)})
        if not 0 < size <= IMAGE_MAX_BYTES:
            raise Invalid("image.too_large", f"An image is at most {IMAGE_MAX_BYTES} bytes.",
                          {"size": size, "max_bytes": IMAGE_MAX_BYTES})

        def upload() -> Image:
            ledgers = Quotas(self.find, actor_id, organization_id, self.today()).charge(size)
            image = Image(organization_id=organization_id, uploaded_by=actor_id, file_name=clean_file_name(file_name),
                          media_type=media_type, size=size, blob_key=blob_key)
            self.save(image, *ledgers)
            return image

        return self.retrying(upload)

    def _image(self, organization_id: uuid.UUID, image_id: uuid.UUID | None) -> Image | None:
        """An image this organization was issued; any other id, another school's image
        included, is "no such image" (nothing is learned about it)."""
        if image_id is None:
            return None
        image = self.find(Image, image_id)
        if image is None or image.organization_id != organization_id:
            raise NotFound("image.not_found", "No such image in this organization: upload it here first.")
        return image

    def draft_article(self, actor_id: uuid.UUID, command: DraftArticle) -> Article:
        organization_id, title, cover_image_id = command.organization_id, command.title, command.cover_image_id
        self._require(organization_id, actor_id, "admin", "teacher")
        title = material_title("article", title)
        html = sanitize_html(command.html)
        self._image(organization_id, cover_image_id)

        def draft() -> Article:
            article = Article(organization_id=organization_id, author_id=actor_id, title=title,
                              html=html, cover_image_id=cover_image_id)
            self._save_listed(article, organization_id, "articles")
            return article

        return self.retrying(draft)

    def _save_listed(self, material: Document | Article, organization_id: uuid.UUID, kind: str,
                     *others: Any) -> None:
        """Save a new document or article with its organization's list of them (one transaction)."""
        index = self.find(MaterialsIndex, MaterialsIndex.create_id(organization_id, kind)) or MaterialsIndex(
            organization_id=organization_id, kind=kind)
        index.add(material.id)
        self.save(material, index, *others)

    def _own_article(self, actor_id: uuid.UUID, article_id: uuid.UUID) -> Article:
        article = self.get_as(Article, article_id, "article.not_found", "No such article.")
        actor = self._member(article.organization_id, actor_id)
        if article.author_id != actor_id and not actor.has("admin"):
            raise Forbidden("article.not_yours", "Only its author or an admin can change this article.")
        return article

    @command
    def edit_article(self, actor_id: uuid.UUID, command: EditArticle) -> Article:
        article = self._own_article(actor_id, command.article_id)
        title = material_title("article", command.title)
        self._image(article.organization_id, command.cover_image_id)
        article.edit(title, sanitize_html(command.html), command.cover_image_id)
        self.save(article)
        return article

    @command
    def publish_article(self, actor_id: uuid.UUID, article_id: uuid.UUID) -> Article:
        article = self._own_article(actor_id, article_id)
        if article.published_at is not None:
            raise Conflict("article.already_published", "This article is already published.")
        article.publish(utcnow())
        self.save(article)
        return article

    def articles(self, actor_id: uuid.UUID, organization_id: uuid.UUID) -> list[Article]:
        """Members read published articles; authors and admins also see drafts."""
        return self.articles_page(actor_id, organization_id, None, None)[0]

    def articles_page(self, actor_id: uuid.UUID, organization_id: uuid.UUID, cursor: str | None, limit: int | None
                      ) -> tuple[list[Article], str | None]:
        """The organization's articles, newest first, from the read model (``school.lists``): members read the
        published ones; authors see their drafts too, admins every draft."""
        actor = self._member(organization_id, actor_id)
        drafts = {} if actor.has("admin") else {"where": "i.published_at IS NOT NULL OR i.owner = ?",
                                                "params": (str(actor_id),)}
        return self._entries("article", organization_id, cursor, limit, lists.article, newest_first=True, **drafts)

    def article(self, actor_id: uuid.UUID, article_id: uuid.UUID) -> Article:
        article = self.get_as(Article, article_id, "article.not_found", "No such article.")
        actor = self._member(article.organization_id, actor_id)
        if article.published_at is None and article.author_id != actor_id and not actor.has("admin"):
            raise NotFound("article.not_found", "No such article.")
        return article

    def article_cover(self, actor_id: uuid.UUID, article_id: uuid.UUID) -> Image:
        """The cover of an article the actor may read: the image school issued for it."""
        article = self.article(actor_id, article_id)
        if article.cover_image_id is None:
            raise NotFound("article.no_cover", "This article has no cover.")
        return self._image(article.organization_id, article.cover_image_id)
