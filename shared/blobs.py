"""The blob store: files (documents, covers, later attachments and recordings)
kept by content hash. Local directory by default (``var/blobs``); the interface
is what an S3-compatible store will implement in production."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from shared.config import env_int, settings
from shared.errors import Invalid

CHUNK = 1 << 16


def document_max_bytes() -> int:
    """The largest document (SC-10): school refuses past it, the gateway stops reading past it."""
    return env_int("SFERA_DOCUMENT_MAX_BYTES", 50 * 1024 * 1024)


class BlobTooLarge(Invalid):
    pass


class LocalBlobStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root or settings().var_dir / "blobs")

    def path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise Invalid("blob.invalid_key", "Not a blob key.")
        return self.root / key[:2] / key

    def put(self, stream: BinaryIO, max_bytes: int) -> tuple[str, int]:
        """Store a stream (refusing past ``max_bytes`` before it is all read); returns (key, size)."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with tempfile.NamedTemporaryFile(dir=self.root, delete=False) as tmp:
            try:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge("file.too_large", f"A file here is at most {max_bytes} bytes.",
                                           {"max_bytes": max_bytes})
                    digest.update(chunk)
                    tmp.write(chunk)
            except BaseException:
                os.unlink(tmp.name)
                raise
        key = digest.hexdigest()
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp.name, target)  # same content, same key: a second upload costs nothing
        return key, size

    def exists(self, key: str) -> bool:
        return self.path(key).exists()
