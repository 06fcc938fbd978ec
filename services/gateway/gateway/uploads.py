"""Receiving and serving files (issue #12). An upload is checked before its bytes are
kept: the owning service says first who may upload there, how large and how much is
left today; the bytes are staged, their real type sniffed and their name cleaned; the
owning service records them (checking again); only then do they enter the blob store.
A refusal at any step discards what was staged. A download is served only through a
reference the owning service resolved, with the stored (sniffed) type, ``nosniff``,
and as an attachment unless it is a plain image."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.utils import send_file

from shared.blobs import BlobStore, blob_store
from shared.errors import DomainError, Invalid
from shared.uploads import INLINE_TYPES, clean_file_name, quota_exceeded, sniff


def blobs() -> BlobStore:
    return blob_store()


def uploaded_file():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise Invalid("file.missing", "Send the file as the multipart field 'file'.")
    return upload


def receive_upload(allowance: dict[str, Any], record: Callable[..., dict]) -> dict:
    """Stage the request's file within ``allowance`` (the owning service's answer to
    "may this person upload here, and how much?"), then have ``record(file_name=,
    media_type=, size=, blob_key=)`` record it in the owning service. The bytes are
    committed to the store only once recorded. When the service's answer is unknown
    (it did not answer in time), they are kept: a blob nobody references is better
    than a record whose file is gone."""
    upload = uploaded_file()
    file_name = clean_file_name(upload.filename)
    max_bytes, left = allowance["max_bytes"], allowance["bytes_left"]
    if left < max_bytes:
        staged = blobs().stage(upload.stream, left, quota_exceeded(allowance["scope"], left))
    else:
        staged = blobs().stage(upload.stream, max_bytes)
    with staged:
        media_type = sniff(staged.head, file_name, upload.mimetype)
        try:
            recorded = record(file_name=file_name, media_type=media_type, size=staged.size, blob_key=staged.key)
        except DomainError:
            raise  # refused: what was staged is discarded on the way out
        except Exception:
            staged.commit()
            raise
        staged.commit()
        return recorded


def send_blob(found: dict[str, Any], download_name: str | None = None) -> Response:
    """A stored file the owning service resolved for this reader (``blob_key``,
    ``media_type``, ``file_name``), streamed from the blob store (local or S3) in chunks,
    never read whole; a ``Range`` seeks the store's stream (S3: a ranged GET from there)."""
    blob = blobs().open(found["blob_key"])  # file.not_found when it is not stored
    inline = found["media_type"] in INLINE_TYPES
    # werkzeug's own file wrapper, not the server's: it lets a Range seek the stream instead of reading up to it
    environ = {k: v for k, v in request.environ.items() if k != "wsgi.file_wrapper"}
    response = send_file(blob, environ, mimetype=found["media_type"], as_attachment=not inline,
                         download_name=download_name or found.get("file_name") or "file",
                         etag=found["blob_key"], conditional=False, response_class=current_app.response_class)
    response.content_length = blob.size
    try:
        response = response.make_conditional(request.environ, accept_ranges=True, complete_length=blob.size)
    except RequestedRangeNotSatisfiable:
        blob.close()
        raise
    if response.status_code == 304:
        blob.close()
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
