"""Uploads and blob references end to end (issue #12): files are read only through
references their owner gave; an upload is checked (who, what it really is, what it
is called, how much) before its bytes reach the blob store, and what was refused
leaves nothing behind; downloads carry the sniffed type, ``nosniff`` and a
download disposition for anything that is not a plain image."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from tests.e2e.test_messaging_media import png
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def pdf(size: int = 2_000) -> bytes:
    """A PDF-looking file of ``size`` bytes, different every time (so blobs never coincide)."""
    head = b"%PDF-1.4\n%" + uuid.uuid4().hex.encode() + b"\n"
    return head + os.urandom(max(0, size - len(head)))


def blob_files(platform) -> set[str]:
    """Every file under the blob store's directory, staging areas included."""
    root = platform.var_dir / "blobs"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def stored(platform, content: bytes) -> bool:
    key = hashlib.sha256(content).hexdigest()
    return (platform.var_dir / "blobs" / key[:2] / key).exists()


@pytest.fixture(scope="module")
def schools(api):
    """Two schools, each with its admin and a teacher; school A has a class with a pupil and its chat."""
    org_a, admin_a = api.organization("Школа А", "Тверь")
    org_b, admin_b = api.organization("Школа Б", "Тверь")
    klass = api.ok("POST", f"/organizations/{org_a}/classes", admin_a["access_token"], status=201,
                   json={"name": "7В", "start_year": 2024, "end_year": 2029})["class_id"]
    teacher_a = api.member(org_a, admin_a, "teacher")
    pupil = api.member(org_a, admin_a, "student", klass)
    pupil_id = api.ok("GET", "/me", pupil["access_token"])["user_id"]
    created = eventually(lambda: (r := api.call("POST", "/chats", admin_a["access_token"], json={
        "organization_id": org_a, "name": "Загрузки", "member_ids": [pupil_id]})).status_code == 201 and r,
        what="messaging to learn the pupil's membership")
    chat = created.json()["chat_id"]
    return {"a": org_a, "b": org_b, "admin_a": admin_a["access_token"], "admin_b": admin_b["access_token"],
            "teacher_a": teacher_a["access_token"], "pupil": pupil["access_token"], "chat": chat}


def upload_image(api, token: str, organization_id: str, content: bytes, label: str = "image/png",
                 name: str = "cover.png"):
    return api.call("POST", "/images", token, data={"organization_id": organization_id},
                    files={"file": (name, content, label)})


def test_a_cover_is_an_image_its_own_school_issued_never_a_raw_blob_key_SC_11(api, schools):
    """B's admin set a cover to the content hash of A's PDF and downloaded it through the cover (issue #12)."""
    secret = pdf()
    api.ok("POST", f"/organizations/{schools['a']}/documents", schools["admin_a"], status=201,
           data={"title": "Приказ"}, files={"file": ("order.pdf", secret, "application/pdf")})
    raw = api.call("POST", f"/organizations/{schools['b']}/articles", schools["admin_b"],
                   json={"title": "Чужая обложка", "html": "<p>x</p>",
                         "cover_blob_key": hashlib.sha256(secret).hexdigest()})
    assert error(raw) == (400, "request.invalid")            # a raw blob key is not an input at all

    image = png(8, 8)
    issued = upload_image(api, schools["admin_a"], schools["a"], image)
    assert issued.status_code == 201, issued.text
    cover = issued.json()
    assert set(cover) >= {"image_id", "media_type", "size"} and "blob_key" not in cover
    assert (cover["media_type"], cover["size"]) == ("image/png", len(image))

    # B's admin names A's image, or an image that does not exist: the same answer, nothing learned.
    foreign = api.call("POST", f"/organizations/{schools['b']}/articles", schools["admin_b"],
                       json={"title": "Чужая обложка", "html": "<p>x</p>", "cover_image_id": cover["image_id"]})
    unknown = api.call("POST", f"/organizations/{schools['b']}/articles", schools["admin_b"],
                       json={"title": "Чужая обложка", "html": "<p>x</p>", "cover_image_id": str(uuid.uuid4())})
    assert error(foreign) == (404, "image.not_found")
    assert foreign.json()["error"]["message"] == unknown.json()["error"]["message"]
    assert foreign.json()["error"]["details"] == unknown.json()["error"]["details"] == {}
    assert error(unknown) == (404, "image.not_found")
    own = api.ok("POST", f"/organizations/{schools['b']}/articles", schools["admin_b"], status=201,
                 json={"title": "Своя статья", "html": "<p>x</p>"})
    edited = api.call("PUT", f"/articles/{own['article_id']}", schools["admin_b"],
                      json={"title": "Своя статья", "html": "<p>x</p>", "cover_image_id": cover["image_id"]})
    assert error(edited) == (404, "image.not_found")
    assert error(api.call("GET", f"/articles/{own['article_id']}/cover", schools["admin_b"])) == (
        404, "article.no_cover")

    # A's teacher uses A's image: the cover is served by asking school for it, as the image it was sniffed to be.
    article = api.ok("POST", f"/organizations/{schools['a']}/articles", schools["teacher_a"], status=201,
                     json={"title": "Экскурсия", "html": "<p>Фото</p>", "cover_image_id": cover["image_id"]})
    assert article["cover_image_id"] == cover["image_id"] and "cover_blob_key" not in article
    api.ok("POST", f"/articles/{article['article_id']}/publication", schools["teacher_a"])
    served = api.call("GET", f"/articles/{article['article_id']}/cover", schools["pupil"])
    assert served.status_code == 200 and served.content == image
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert not served.headers.get("Content-Disposition", "").startswith("attachment")
    assert error(api.call("GET", f"/articles/{article['article_id']}/cover", schools["admin_b"])) == (
        403, "organization.members_only")


def test_refused_uploads_leave_nothing_on_disk(api, platform, schools):
    """A stranger's upload used to stay in the blob store after the 403 (issue #12)."""
    stranger = api.sign_in()["access_token"]
    before = blob_files(platform)
    payload = pdf(150_000)
    for path, data, file in (
            (f"/organizations/{schools['a']}/documents", {"title": "Чужое"}, ("x.pdf", payload, "application/pdf")),
            ("/images", {"organization_id": schools["a"]}, ("x.png", payload, "image/png")),
            (f"/chats/{schools['chat']}/attachments", {"kind": "file"}, ("x.pdf", payload, "application/pdf"))):
        refused = api.call("POST", path, stranger, data=data, files={"file": file})
        assert refused.status_code == 403, (path, refused.text)
    # A pupil may not publish documents or images of the school either.
    assert error(api.call("POST", f"/organizations/{schools['a']}/documents", schools["pupil"],
                          data={"title": "Моё"}, files={"file": ("m.pdf", payload, "application/pdf")})) == (
        403, "organization.role_required")
    assert error(upload_image(api, schools["pupil"], schools["a"], png())) == (403, "organization.role_required")
    # Members' uploads refused for what they are leave nothing either.
    assert error(upload_image(api, schools["admin_a"], schools["a"], payload)) == (400, "image.type_not_allowed")
    assert error(api.call("POST", f"/chats/{schools['chat']}/attachments", schools["pupil"], data={"kind": "photo"},
                          files={"file": ("x.png", payload, "image/png")})) == (400, "attachment.type_not_allowed")
    assert not stored(platform, payload)
    assert blob_files(platform) == before


def test_the_real_type_is_sniffed_from_the_content_not_taken_from_the_label(api, platform, schools):
    """HTML labelled image/png was stored and served inline without nosniff (issue #12)."""
    assert error(upload_image(api, schools["admin_a"], schools["a"], HTML)) == (400, "image.type_not_allowed")
    assert error(api.call("POST", f"/chats/{schools['chat']}/attachments", schools["pupil"], data={"kind": "photo"},
                          files={"file": ("cat.png", HTML, "image/png")})) == (400, "attachment.type_not_allowed")
    assert error(api.call("POST", f"/organizations/{schools['a']}/documents", schools["admin_a"],
                          data={"title": "Страница"}, files={"file": ("page.pdf", HTML, "application/pdf")})) == (
        400, "document.type_not_allowed")
    assert not stored(platform, HTML)

    # A PDF labelled as anything is a PDF: stored and served as one, as a download, never sniffed by the browser.
    content = pdf()
    document = api.ok("POST", f"/organizations/{schools['a']}/documents", schools["admin_a"], status=201,
                      data={"title": "План"}, files={"file": ("plan.pdf", content, "image/png")})
    assert document["media_type"] == "application/pdf"
    download = api.call("GET", f"/documents/{document['document_id']}/content", schools["pupil"])
    assert download.content == content and download.headers["Content-Type"] == "application/pdf"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Disposition"].startswith("attachment")

    # Any file may be sent as a file; HTML among them is a download, with its real type.
    page = api.ok("POST", f"/chats/{schools['chat']}/attachments", schools["pupil"], status=201,
                  data={"kind": "file"}, files={"file": ("notes.png", HTML, "image/png")})
    assert page["media_type"] == "text/html"
    api.ok("POST", f"/chats/{schools['chat']}/messages", schools["pupil"], status=201,
           json={"attachment_ids": [page["attachment_id"]]})
    got = api.call("GET", f"/chats/{schools['chat']}/attachments/{page['attachment_id']}", schools["admin_a"])
    assert got.content == HTML and got.headers["Content-Type"].startswith("text/html")
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Disposition"].startswith("attachment")

    # A photo stays inline, as the image type it really is.
    image = png()
    photo = api.ok("POST", f"/chats/{schools['chat']}/attachments", schools["pupil"], status=201,
                   data={"kind": "photo"}, files={"file": ("p.jpg", image, "image/jpeg")})
    assert photo["media_type"] == "image/png"
    api.ok("POST", f"/chats/{schools['chat']}/messages", schools["pupil"], status=201,
           json={"attachment_ids": [photo["attachment_id"]]})
    shown = api.call("GET", f"/chats/{schools['chat']}/attachments/{photo['attachment_id']}", schools["admin_a"])
    assert shown.headers["Content-Type"] == "image/png" and shown.headers["X-Content-Type-Options"] == "nosniff"
    assert shown.headers["Content-Disposition"].startswith("inline")


@pytest.mark.parametrize("name", ["run.exe ", "run.exe.", "run.exe. . ", "run.ＥＸＥ", "run\u202eexe.txt\u202c.exe",
                                  "ru\x00n.ex\x07e"])
def test_executable_names_are_refused_however_they_end_CH_4(api, platform, schools, name):
    """``run.exe `` and ``run.exe.`` passed the extension check (issue #12): names are normalised first."""
    content = b"echo hello " + uuid.uuid4().bytes.hex().encode()
    refused = api.call("POST", f"/chats/{schools['chat']}/attachments", schools["pupil"], data={"kind": "file"},
                       files={"file": (name, content, "text/plain")})
    assert error(refused) == (400, "attachment.type_not_allowed"), refused.text
    document = api.call("POST", f"/organizations/{schools['a']}/documents", schools["admin_a"],
                        data={"title": "Программа"}, files={"file": (name, pdf(), "application/pdf")})
    assert error(document) == (400, "document.type_not_allowed"), document.text
    assert not stored(platform, content)


def test_an_executable_is_refused_by_its_content_whatever_it_is_called_CH_4(api, schools):
    for content in (b"MZ\x90\x00" + bytes(200), b"\x7fELF\x02\x01\x01" + bytes(200)):
        refused = api.call("POST", f"/chats/{schools['chat']}/attachments", schools["pupil"], data={"kind": "file"},
                           files={"file": ("homework.txt", content, "text/plain")})
        assert error(refused) == (400, "attachment.type_not_allowed"), refused.text


def test_upload_quotas_per_person_and_per_school(api, platform, schools):
    """No quota at all used to stop anyone (issue #12). The e2e stack allows 1,000,000 bytes a day
    per person and 1,500,000 per school (tests/e2e/conftest.py)."""
    org, admin = api.organization("Школа квот", "Тверь")
    teacher = api.member(org, admin, "teacher")["access_token"]
    token = admin["access_token"]
    for n in range(5):                                          # 5 x 190,000 = 950,000
        api.ok("POST", f"/organizations/{org}/documents", token, status=201, data={"title": f"Файл {n}"},
               files={"file": (f"f{n}.pdf", pdf(190_000), "application/pdf")})
    before = blob_files(platform)
    over = pdf(190_000)
    refused = api.call("POST", f"/organizations/{org}/documents", token, data={"title": "Ещё"},
                       files={"file": ("more.pdf", over, "application/pdf")})
    assert error(refused) == (429, "upload.quota_exceeded"), refused.text
    assert refused.json()["error"]["details"]["scope"] == "person"
    assert error(upload_image(api, token, org, png(64, 64) + bytes(60_000))) == (429, "upload.quota_exceeded")
    api.ok("POST", f"/organizations/{org}/documents", token, status=201, data={"title": "Маленький"},
           files={"file": ("small.pdf", pdf(40_000), "application/pdf")})   # what is left still fits
    for n in range(2):                                          # the school: 990,000 + 380,000
        api.ok("POST", f"/organizations/{org}/documents", teacher, status=201, data={"title": f"У {n}"},
               files={"file": (f"t{n}.pdf", pdf(190_000), "application/pdf")})
    school_full = api.call("POST", f"/organizations/{org}/documents", teacher, data={"title": "Ещё"},
                           files={"file": ("t.pdf", pdf(190_000), "application/pdf")})
    assert error(school_full) == (429, "upload.quota_exceeded"), school_full.text
    assert school_full.json()["error"]["details"]["scope"] == "organization"
    assert not stored(platform, over)
    assert not [f for f in blob_files(platform) - before if f.startswith(".")]   # no staged leftovers
    # Another school's people are not held back by this one.
    api.ok("POST", f"/organizations/{schools['a']}/documents", schools["teacher_a"], status=201,
           data={"title": "Своё"}, files={"file": ("own.pdf", pdf(190_000), "application/pdf")})
