"""Messaging end to end, the rest of CH-3..CH-5: attachments through the blob
store, polls, reports to the school's admins, invite links to manual chats,
read marks and poll results pushed live, and two gateway processes at once."""

from __future__ import annotations

import struct
import zlib

import pytest

from tests.e2e.test_messaging import error, pupils_class_chat
from tests.e2e.test_realtime import connect, next_event
from tools.devstack.infra import free_port

pytestmark = pytest.mark.e2e


def png(width: int = 4, height: int = 4) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def class_chat(api, klass):
    return pupils_class_chat(api, klass)["chat_id"]


def test_attachments_go_through_the_blob_store_to_members_only_CH_4(api, klass, class_chat):
    a, b = klass["pupils"]
    image = png()
    photo = api.ok("POST", f"/chats/{class_chat}/attachments", a["access_token"], status=201, data={"kind": "photo"},
                   files={"file": ("board.png", image, "image/png")})
    voice = api.ok("POST", f"/chats/{class_chat}/attachments", a["access_token"], status=201, data={"kind": "voice"},
                   files={"file": ("voice.ogg", b"OggS" + b"\x00" * 500, "audio/ogg")})
    assert (photo["kind"], photo["size"], voice["media_type"]) == ("photo", len(image), "audio/ogg")
    posted = api.ok("POST", f"/chats/{class_chat}/messages", a["access_token"], status=201,
                    json={"text": "Доска после урока", "attachment_ids": [photo["attachment_id"],
                                                                          voice["attachment_id"]]})
    assert [x["attachment_id"] for x in posted["attachments"]] == [photo["attachment_id"], voice["attachment_id"]]
    download = api.call("GET", f"/chats/{class_chat}/attachments/{photo['attachment_id']}", b["access_token"])
    assert download.status_code == 200 and download.content == image
    assert download.headers["Content-Type"] == "image/png"
    stranger = api.sign_in()
    assert error(api.call("GET", f"/chats/{class_chat}/attachments/{photo['attachment_id']}",
                          stranger["access_token"])) == (403, "chat.members_only")
    assert error(api.call("POST", f"/chats/{class_chat}/attachments", stranger["access_token"],
                          data={"kind": "photo"}, files={"file": ("x.png", image, "image/png")})) == (
        403, "chat.members_only")
    assert error(api.call("POST", f"/chats/{class_chat}/messages", a["access_token"],
                          json={"attachment_ids": [photo["attachment_id"]]})) == (409, "attachment.already_sent")
    for kind, file, code in (("photo", ("a.pdf", b"%PDF-1.4", "application/pdf"), "attachment.type_not_allowed"),
                             ("file", ("setup.exe", b"MZ", "application/octet-stream"), "attachment.type_not_allowed"),
                             ("photo", ("big.png", b"0" * 300_001, "image/png"), "file.too_large"),
                             ("sticker", ("s.png", image, "image/png"), "request.invalid")):
        response = api.call("POST", f"/chats/{class_chat}/attachments", a["access_token"], data={"kind": kind},
                            files={"file": file})
        assert error(response) == (400, code), response.text
    assert error(api.call("POST", f"/chats/{class_chat}/attachments", a["access_token"], data={"kind": "file"})) == (
        400, "file.missing")


def test_poll_results_and_read_marks_are_pushed_live_CH_4(api, platform, klass, class_chat):
    a, b = klass["pupils"]
    author_ws, voter_ws = connect(platform, a), connect(platform, b)
    poll = api.ok("POST", f"/chats/{class_chat}/messages", a["access_token"], status=201, json={
        "poll": {"question": "Когда встречаемся?", "options": ["В 15:00", "В 16:00", "В 17:00"], "multiple": True}})
    live = next_event(voter_ws, "MessagePosted")
    assert live["poll"]["options"] == ["В 15:00", "В 16:00", "В 17:00"] and live["seq"] == poll["seq"]
    voted = api.ok("PUT", f"/chats/{class_chat}/messages/{poll['seq']}/vote", b["access_token"],
                   json={"options": [0, 2]})
    assert voted["poll"]["counts"] == [1, 0, 1] and voted["poll"]["my_choice"] == [0, 2]
    results = next_event(author_ws, "PollVoted")
    assert (results["counts"], results["voters"]) == ([1, 0, 1], 1) and "user_id" not in results
    api.ok("PUT", f"/chats/{class_chat}/read", b["access_token"], json={"seq": poll["seq"]})
    read = next_event(author_ws, "MessagesRead")
    assert (read["user_id"], read["read_until"]) == (b["user_id"], poll["seq"])
    api.ok("POST", f"/chats/{class_chat}/messages/{poll['seq']}/poll-closure", a["access_token"])
    assert next_event(voter_ws, "PollClosed")["seq"] == poll["seq"]
    assert error(api.call("PUT", f"/chats/{class_chat}/messages/{poll['seq']}/vote", b["access_token"],
                          json={"options": [1]})) == (410, "poll.closed")
    author_ws.close()
    voter_ws.close()


def test_reports_reach_the_school_admins_who_remove_the_message(api, klass, class_chat):
    a, b = klass["pupils"]
    admin = klass["admin"]
    rude = api.ok("POST", f"/chats/{class_chat}/messages", a["access_token"], status=201, json={"text": "Грубость"})
    report = api.ok("POST", f"/chats/{class_chat}/messages/{rude['seq']}/reports", b["access_token"], status=201,
                    json={"reason": "Оскорбление"})
    listed = api.ok("GET", f"/organizations/{klass['org']}/reports", admin["access_token"])
    assert [(r["report_id"], r["text"], r["reason"]) for r in listed][0] == (report["report_id"], "Грубость",
                                                                          "Оскорбление")
    assert error(api.call("GET", f"/organizations/{klass['org']}/reports", b["access_token"])) == (
        403, "organization.role_required")
    api.ok("POST", f"/reports/{report['report_id']}/resolution", admin["access_token"],
           json={"resolution": "message_removed"})
    history = api.ok("GET", f"/chats/{class_chat}/messages?before={rude['seq'] + 1}&limit=1", b["access_token"])
    assert history["items"][0]["deleted"] and history["items"][0]["text"] == ""


def test_invite_links_and_qr_codes_to_manual_chats_CH_3(api, platform, klass):
    a, b = klass["pupils"]
    admin = klass["admin"]
    chat = api.ok("POST", "/chats", admin["access_token"], status=201,
                  json={"organization_id": klass["org"], "name": "Совет класса", "closed": True})
    assert error(api.call("POST", f"/chats/{chat['chat_id']}/invite", a["access_token"])) == (
        403, "chat.members_only")
    invite = api.ok("POST", f"/chats/{chat['chat_id']}/invite", admin["access_token"], status=201)
    assert invite["url"].endswith(invite["token"])
    qr = api.call("GET", invite["qr_url"].removeprefix("/api/v1"))
    assert qr.status_code == 200 and qr.headers["Content-Type"].startswith("image/svg+xml") and b"<svg" in qr.content
    preview = api.ok("GET", f"/chat-invites/{invite['token']}", a["access_token"])
    assert (preview["name"], preview["members"]) == ("Совет класса", 1)
    joined = api.ok("POST", f"/chat-invites/{invite['token']}/membership", a["access_token"], status=201)
    assert a["user_id"] in joined["member_ids"]
    outsider = api.sign_in()
    assert error(api.call("POST", f"/chat-invites/{invite['token']}/membership", outsider["access_token"])) == (
        403, "organization.members_only")
    assert error(api.call("PATCH", f"/chats/{chat['chat_id']}", a["access_token"], json={"name": "Наш"})) == (
        403, "chat.closed")
    member_ws = connect(platform, a)
    renamed = api.ok("PATCH", f"/chats/{chat['chat_id']}", admin["access_token"], json={"name": "Совет 5А"})
    assert renamed["name"] == "Совет 5А"
    pushed = next_event(member_ws, "ChatUpdated")  # chat changes reach members live
    assert (pushed["chat_id"], pushed["name"], pushed["closed"]) == (chat["chat_id"], "Совет 5А", True)
    member_ws.close()
    api.ok("DELETE", f"/chats/{chat['chat_id']}/invite", admin["access_token"], status=204)
    assert error(api.call("POST", f"/chat-invites/{invite['token']}/membership", b["access_token"])) == (
        404, "invite.not_found")
    assert error(api.call("GET", f"/chat-invites/{'0' * 64}", b["access_token"])) == (404, "invite.not_found")


def test_two_gateway_processes_each_push_to_their_own_clients(api, platform, klass, class_chat):
    a, b = klass["pupils"]
    second = platform.start_gateway(name="gateway-2", port=free_port())
    try:
        platform.wait_healthy(["gateway-2"])
        second_url = second.health_url.removesuffix("/healthz")
        on_first, on_second = connect(platform, a), connect(platform, b, base_url=second_url)
        posted = api.ok("POST", f"/chats/{class_chat}/messages", a["access_token"], status=201,
                        json={"text": "Всем шлюзам"})
        for ws in (on_first, on_second):
            assert next_event(ws, "MessagePosted")["seq"] == posted["seq"]
        on_first.close()
        on_second.close()
    finally:
        platform.stop_process("gateway-2")
