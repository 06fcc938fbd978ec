"""The platform on S3 (issue #17): with ``SFERA_BLOB_STORE=s3`` an upload through the
gateway lands in the bucket (an S3 API server the test starts: moto's server mode on
loopback), nothing in the local blob folder but its staging, and downloads stream back
from the bucket, ranges included."""

from __future__ import annotations

import hashlib
import os

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.e2e.api import Api
from tests.e2e.conftest import OPERATOR_PHONE
from tools.devstack.infra import free_port

pytestmark = pytest.mark.e2e

CREDENTIALS = {"SFERA_S3_ACCESS_KEY": "test", "SFERA_S3_SECRET_KEY": "test", "SFERA_S3_REGION": "eu-central-1"}


@pytest.fixture
def s3():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="eu-central-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    client.create_bucket(Bucket="sfera-blobs", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    yield endpoint, client
    server.stop()


def test_documents_go_to_the_bucket_and_stream_back_from_it(make_stack, s3):
    endpoint, client = s3
    stack = make_stack("postgres", SFERA_BLOB_STORE="s3", SFERA_S3_ENDPOINT=endpoint, SFERA_S3_BUCKET="sfera-blobs",
                       SFERA_OPERATOR_PHONES=OPERATOR_PHONE, SFERA_CODE_RESEND_SECONDS="2", **CREDENTIALS)
    stack.prepare()
    for name in ("identity", "school"):
        stack.start_service(name)
        stack.start_relay(name)
    stack.start_gateway()
    stack.wait_healthy()
    api = Api(stack)
    org, admin = api.organization("Школа в облаке", "Казань")

    content = b"%PDF-1.4\n" + os.urandom(300_000)
    key = hashlib.sha256(content).hexdigest()
    document = api.ok("POST", f"/organizations/{org}/documents", admin["access_token"], status=201,
                      data={"title": "Расписание"}, files={"file": ("plan.pdf", content, "application/pdf")})
    stored = client.get_object(Bucket="sfera-blobs", Key=key)["Body"].read()
    assert stored == content
    local = stack.var_dir / "blobs"
    assert not [p for p in local.rglob("*") if p.is_file()] if local.exists() else True  # staging emptied

    path = f"/documents/{document['document_id']}/content"
    download = api.call("GET", path, admin["access_token"], stream=True)
    assert download.status_code == 200 and download.headers["Content-Length"] == str(len(content))
    assert download.headers["Content-Type"] == "application/pdf" and download.headers["ETag"] == f'"{key}"'
    assert b"".join(download.iter_content(65536)) == content
    part = api.call("GET", path, admin["access_token"], headers={"Range": "bytes=250000-250099"})
    assert part.status_code == 206 and part.content == content[250_000:250_100]
    assert part.headers["Content-Range"] == f"bytes 250000-250099/{len(content)}"
    again = api.call("GET", path, admin["access_token"], headers={"If-None-Match": f'"{key}"'})
    assert again.status_code == 304 and again.content == b""
