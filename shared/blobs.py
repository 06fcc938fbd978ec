"""The blob store: files (documents, images, attachments, recordings) kept by
content hash. Local directory by default (``var/blobs``); an S3-compatible bucket for
several machines (``SFERA_BLOB_STORE=s3``): both behind one interface (``blob_store()``).

A key is only ever read through a reference its owner gave (a document, an image,
an attachment of a service's store), never taken from a client. An upload is
*staged* first: its bytes wait outside the store (a local staging folder, whatever
the store) until the owning service has recorded it, and only then are *committed*
under their key; a refused upload is discarded and never reaches the store (a blob
already there may be someone else's, so nothing refused deletes a stored blob).
A stored blob is read as a seekable stream (``open``), never whole."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO

from shared.config import env_int, env_str, settings
from shared.errors import DomainError, Invalid, NotFound

CHUNK = 1 << 16
STAGING = ".staging"
HEAD_BYTES = 8192
BLOB_STORES = ("local", "s3")


def document_max_bytes() -> int:
    """The largest document (SC-10): school refuses past it, the gateway stops reading past it."""
    return env_int("SFERA_DOCUMENT_MAX_BYTES", 50 * 1024 * 1024)


class BlobTooLarge(Invalid):
    pass


def too_large(max_bytes: int) -> DomainError:
    return BlobTooLarge("file.too_large", f"A file here is at most {max_bytes} bytes.", {"max_bytes": max_bytes})


def check_key(key: str) -> str:
    if not isinstance(key, str) or len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise Invalid("blob.invalid_key", "Not a blob key.")
    return key


def not_stored() -> NotFound:
    return NotFound("file.not_found", "This file is not stored.")


class StagedBlob:
    """Bytes read and hashed, waiting in the staging area: ``commit`` stores them under
    their key, ``discard`` removes them. Used as a context manager, whatever was not
    committed is discarded on the way out."""

    def __init__(self, store: BlobStore, path: Path, key: str, size: int, head: bytes):
        self.store, self.path, self.key, self.size, self.head = store, path, key, size, head

    def commit(self) -> str:
        self.store.commit_staged(self.path, self.key)  # same content, same key: a second upload costs nothing
        return self.key

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> StagedBlob:
        return self

    def __exit__(self, *_: object) -> None:
        self.discard()


class BlobStore:
    """What every store does: stage (here), commit a staged file, tell whether a key is
    stored, open a stored blob as a seekable binary stream with its ``size``."""

    staging: Path

    def stage(self, stream: BinaryIO, max_bytes: int, refusal: DomainError | None = None) -> StagedBlob:
        """Read a stream into the staging area, refusing (with ``refusal``, or
        ``file.too_large``) as soon as it passes ``max_bytes``; nothing is left of a refused stream."""
        self.staging.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        head = b""
        with tempfile.NamedTemporaryFile(dir=self.staging, delete=False) as tmp:
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
        with self.stage(stream, max_bytes) as staged:
            return staged.commit(), staged.size

    def commit_staged(self, path: Path, key: str) -> None:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def open(self, key: str) -> BinaryIO:
        """The stored blob as a seekable binary stream with a ``size`` attribute; ``file.not_found`` if absent."""
        raise NotImplementedError


class _LocalFile(io.FileIO):
    size: int


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path | None = None):
        self.root = Path(root or settings().var_dir / "blobs")
        self.staging = self.root / STAGING

    def path(self, key: str) -> Path:
        return self.root / check_key(key)[:2] / key

    def commit_staged(self, path: Path, key: str) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def open(self, key: str) -> BinaryIO:
        try:
            file = _LocalFile(self.path(key), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise not_stored() from None
        file.size = os.fstat(file.fileno()).st_size
        return file  # type: ignore[return-value]


class S3Reader(io.RawIOBase):
    """A stored object read in order from one GET, and from a new ranged GET after a seek
    (a download's ``Range``); nothing is read before the first ``read``."""

    def __init__(self, client: Any, bucket: str, key: str, size: int):
        super().__init__()
        self.client, self.bucket, self.key, self.size = client, bucket, key, size
        self.position = 0
        self.body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        position = max(0, base + offset)
        if position != self.position:
            self._drop_body()
            self.position = position
        return self.position

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.size or not len(buffer):
            return 0
        if self.body is None:
            found = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={self.position}-")
            self.body = found["Body"]
        data = self.body.read(len(buffer))
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)

    def _drop_body(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class S3BlobStore(BlobStore):
    """Blobs as objects ``<key>`` of one bucket of an S3-compatible store (AWS S3, MinIO,
    Ceph RGW, ...). Uploads are staged on local disk and sent on commit (multipart when
    large); a key already stored is not sent again."""

    def __init__(self, client: Any, bucket: str, staging: Path | None = None):
        self.client, self.bucket = client, bucket
        self.staging = Path(staging or settings().var_dir / "blobs" / STAGING)

    @classmethod
    def from_environment(cls) -> S3BlobStore:
        import boto3  # only a process configured for S3 needs it
        from botocore.config import Config

        bucket = env_str("SFERA_S3_BUCKET", "")
        if not bucket:
            raise ValueError("SFERA_BLOB_STORE=s3 needs SFERA_S3_BUCKET")
        endpoint = env_str("SFERA_S3_ENDPOINT", "") or None
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=env_str("SFERA_S3_REGION", "us-east-1"),
            aws_access_key_id=env_str("SFERA_S3_ACCESS_KEY", "") or None,  # none: boto3's own chain (IAM role, ...)
            aws_secret_access_key=env_str("SFERA_S3_SECRET_KEY", "") or None,
            config=Config(s3={"addressing_style": "path" if endpoint else "auto"},
                          retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30),
        )
        return cls(client, bucket)

    def _head(self, key: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def commit_staged(self, path: Path, key: str) -> None:
        if self._head(key) is None:
            self.client.upload_file(str(path), self.bucket, key)
        path.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def open(self, key: str) -> BinaryIO:
        found = self._head(key)
        if found is None:
            raise not_stored()
        return S3Reader(self.client, self.bucket, key, found["ContentLength"])  # type: ignore[return-value]


_stores: dict[tuple, BlobStore] = {}
_stores_lock = threading.Lock()


def blob_store() -> BlobStore:
    """This process's blob store as configured (``SFERA_BLOB_STORE``: ``local``, the default, or ``s3``);
    one per configuration, so an S3 client (thread-safe) is built once, not per request."""
    kind = env_str("SFERA_BLOB_STORE", "local")
    if kind not in BLOB_STORES:
        raise ValueError(f"SFERA_BLOB_STORE={kind!r}: expected one of {', '.join(BLOB_STORES)}")
    if kind == "local":
        return LocalBlobStore()
    config = (kind, str(settings().var_dir), *(env_str(f"SFERA_S3_{name}", "") for name in
                                               ("ENDPOINT", "BUCKET", "REGION", "ACCESS_KEY", "SECRET_KEY")))
    with _stores_lock:
        if config not in _stores:
            _stores[config] = S3BlobStore.from_environment()
        return _stores[config]
