"""The blob store's contract (issue #12's staging, issue #17's S3 adapter), one suite run
against the local store and against an S3 API server (moto's server mode on loopback,
a real HTTP S3 endpoint spoken to by boto3): staged bytes are not stored, a refused stream
leaves nothing, only a commit stores, a stored blob reads back as a seekable stream."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from shared.blobs import STAGING, BlobStore, LocalBlobStore, S3BlobStore, blob_store
from shared.errors import Invalid, NotFound, TooManyRequests
from shared.uploads import quota_exceeded
from tools.devstack.infra import free_port

ACCESS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def new_bucket(endpoint: str) -> str:
    bucket = f"blobs-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, **ACCESS).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path, monkeypatch) -> BlobStore:
    """The configured store (``blob_store()``) of each kind, in a fresh folder or bucket."""
    monkeypatch.setenv("SFERA_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SFERA_BLOB_STORE", request.param)
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        for name, value in {"ENDPOINT": endpoint, "BUCKET": new_bucket(endpoint), "ACCESS_KEY": "test",
                            "SECRET_KEY": "test", "REGION": "us-east-1"}.items():
            monkeypatch.setenv(f"SFERA_S3_{name}", value)
    return blob_store()


def stored_keys(store: BlobStore) -> set[str]:
    if isinstance(store, LocalBlobStore):
        return {p.name for p in store.root.rglob("*") if p.is_file() and STAGING not in p.parts}
    listed = store.client.list_objects_v2(Bucket=store.bucket)
    return {o["Key"] for o in listed.get("Contents", [])}


def staged_files(store: BlobStore) -> list[Path]:
    return [p for p in store.staging.rglob("*") if p.is_file()] if store.staging.exists() else []


def test_the_configuration_selects_the_store(store):
    assert type(store) is {"local": LocalBlobStore, "s3": S3BlobStore}[os.environ["SFERA_BLOB_STORE"]]
    if isinstance(store, S3BlobStore):
        assert blob_store() is store  # one S3 client per configuration, not one per request


def test_an_unknown_store_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("SFERA_BLOB_STORE", "ftp")
    with pytest.raises(ValueError, match="SFERA_BLOB_STORE"):
        blob_store()
    monkeypatch.setenv("SFERA_BLOB_STORE", "s3")
    monkeypatch.delenv("SFERA_S3_BUCKET", raising=False)
    with pytest.raises(ValueError, match="SFERA_S3_BUCKET"):
        blob_store()


def test_a_refused_stream_leaves_nothing_anywhere(store):
    with pytest.raises(Invalid) as refused:
        store.stage(io.BytesIO(b"x" * 5000), 4096)
    assert refused.value.code == "file.too_large"
    with pytest.raises(TooManyRequests):
        store.stage(io.BytesIO(b"x" * 5000), 100, quota_exceeded("person", 100))
    assert staged_files(store) == [] and stored_keys(store) == set()


def test_staged_bytes_are_stored_only_by_a_commit_and_discarded_otherwise(store):
    content = os.urandom(300_000)
    key = hashlib.sha256(content).hexdigest()
    with store.stage(io.BytesIO(content), 1 << 20) as staged:
        assert (staged.key, staged.size, staged.head) == (key, len(content), content[:8192])
        assert not store.exists(key) and stored_keys(store) == set()   # staged is not stored
    assert staged_files(store) == [] and stored_keys(store) == set()    # discarded on the way out

    with store.stage(io.BytesIO(content), 1 << 20) as staged:
        assert staged.commit() == key
    assert store.exists(key) and stored_keys(store) == {key} and staged_files(store) == []
    with store.stage(io.BytesIO(content), 1 << 20) as again:            # same content, same key
        again.commit()
    assert stored_keys(store) == {key} and staged_files(store) == []


def test_a_stored_blob_reads_back_as_a_seekable_stream(store):
    content = os.urandom(200_000)
    key, size = store.put(io.BytesIO(content), 1 << 20)
    assert (key, size) == (hashlib.sha256(content).hexdigest(), len(content))
    with store.open(key) as blob:
        assert blob.size == len(content) and blob.seekable()
        assert blob.read(10) == content[:10]
        blob.seek(150_000)
        assert blob.tell() == 150_000
        assert blob.read(5) == content[150_000:150_005]
        assert blob.read() == content[150_005:]
        assert blob.read(1) == b""
        blob.seek(-3, io.SEEK_END)
        assert blob.read() == content[-3:]
    with store.open(key) as blob:
        assert b"".join(iter(lambda: blob.read(65536), b"")) == content


def test_only_a_blob_key_opens_and_a_missing_blob_is_not_found(store):
    with pytest.raises(NotFound) as missing:
        store.open("0" * 64)
    assert missing.value.code == "file.not_found"
    assert not store.exists("0" * 64)
    for bad in ("../" * 20 + "etc/passwd", "A" * 64, "0" * 63):
        with pytest.raises(Invalid):
            store.open(bad)


def test_an_s3_download_reads_only_from_where_it_is_asked(s3_endpoint, tmp_path):
    """A ranged download (a video sought into) asks S3 for the rest from there, not the whole object."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, **ACCESS)
    bucket = new_bucket(s3_endpoint)
    store = S3BlobStore(client, bucket, tmp_path / "staging")
    content = os.urandom(100_000)
    key, _ = store.put(io.BytesIO(content), 1 << 20)
    asked: list[str] = []
    client.meta.events.register("before-call.s3.GetObject", lambda params, **_: asked.append(params["headers"].get(
        "Range")))
    with store.open(key) as blob:
        assert asked == []                      # opening asks for the size only
        blob.seek(90_000)
        assert blob.read() == content[90_000:]
    assert asked == ["bytes=90000-"]
