"""The blob store: files (documents, images, attachments, recordings) kept by
content hash. Local directory by default (``var/blobs``); the interface is what an
S3-compatible store will implement in production.

A key is only ever read through a reference its owner gave (a document, an image,
an attachment of a service's store), never taken from a client. An upload is
*staged* first: its bytes wait outside the store until the owning service has
recorded it, and only then are *committed* under their key; a refused upload is
discarded and never reaches the store (a blob already there may be someone
else's, so nothing refused deletes a stored blob)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from shared.config import env_int, settings
from shared.errors import DomainError, Invalid

CHUNK = 1 << 16
STAGING = ".staging"
HEAD_BYTES = 8192


def document_max_bytes() -> int:
    """The largest document (SC-10): school refuses past it, the gateway stops reading past it."""
    return env_int("SFERA_DOCUMENT_MAX_BYTES", 50 * 1024 * 1024)


class BlobTooLarge(Invalid):
    pass


def too_large(max_bytes: int) -> DomainError:
    return BlobTooLarge("file.too_large", f"A file here is at most {max_bytes} bytes.", {"max_bytes": max_bytes})


class StagedBlob:
    """Bytes read and hashed, waiting in the staging area: ``commit`` stores them under
    their key, ``discard`` removes them. Used as a context manager, whatever was not
    committed is discarded on the way out."""

    def __init__(self, store: LocalBlobStore, path: Path, key: str, size: int, head: bytes):
        self.store, self.path, self.key, self.size, self.head = store, path, key, size, head

    def commit(self) -> str:
        target = self.store.path(self.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, target)  # same content, same key: a second upload costs nothing
        return self.key

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> StagedBlob:
        return self

    def __exit__(self, *_: object) -> None:
        self.discard()


class LocalBlobStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root or settings().var_dir / "blobs")

    def path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise Invalid("blob.invalid_key", "Not a blob key.")
        return self.root / key[:2] / key

    def stage(self, stream: BinaryIO, max_bytes: int, refusal: DomainError | None = None) -> StagedBlob:
        """Read a stream into the staging area, refusing (with ``refusal``, or
        ``file.too_large``) as soon as it passes ``max_bytes``; nothing is left of a refused stream."""
        staging = self.root / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        head = b""
        with tempfile.NamedTemporaryFile(dir=staging, delete=False) as tmp:
            try:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise refusal or too_large(max_bytes)
                    if len(head) < HEAD_BYTES:
                        head += chunk[:HEAD_BYTES - len(head)]
                    digest.update(chunk)
                    tmp.write(chunk)
            except BaseException:
                os.unlink(tmp.name)
                raise
        return StagedBlob(self, Path(tmp.name), digest.hexdigest(), size, head)

    def put(self, stream: BinaryIO, max_bytes: int) -> tuple[str, int]:
        """Store a stream the platform produced itself (a recording); returns (key, size)."""
        staged = self.stage(stream, max_bytes)
        return staged.commit(), staged.size

    def exists(self, key: str) -> bool:
        return self.path(key).exists()
