"""Messaging end to end through the gateway: chats built from school's events,
messages, history, read state, dialogs and the organization inbox."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

import pika
import pytest

from shared.bus.naming import consumer_queue
from shared.contracts import get_contract, make_event
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def chat_of(api, session, kind):
    found = [c["chat"] for c in api.ok("GET", "/chats", session["access_token"]) if c["chat"]["kind"] == kind]
    return found[0] if found else None


def pupils_class_chat(api, klass) -> dict:
    """The class chat of ``klass``'s two pupils, once messaging has built it from school's events with both in it."""
    a, b = klass["pupils"]
    chat = eventually(lambda: chat_of(api, a, "class"), what="messaging to build the class chat from school's events")
    eventually(lambda: b["user_id"] in api.ok("GET", f"/chats/{chat['chat_id']}", a["access_token"])["member_ids"],
               what="both pupils in the class chat")
    return chat


def test_the_class_chat_exists_with_its_students_and_carries_messages_CH_1_CH_4(api, klass):
    a, b = klass["pupils"]
    chat = pupils_class_chat(api, klass)
    first = api.ok("POST", f"/chats/{chat['chat_id']}/messages", a["access_token"], status=201,
                   json={"text": "Кто решил задачу 5?"})
    api.ok("POST", f"/chats/{chat['chat_id']}/messages", b["access_token"], status=201,
           json={"text": "Я!", "reply_to": first["seq"]})
    history = api.ok("GET", f"/chats/{chat['chat_id']}/messages", b["access_token"])
    assert [m["text"] for m in history["items"]] == ["Я!", "Кто решил задачу 5?"]
    unread = [c["unread"] for c in api.ok("GET", "/chats", a["access_token"]) if c["chat"]["chat_id"] ==
              chat["chat_id"]]
    assert unread == [1]  # b's answer; a's own question is not unread to a
    api.ok("PUT", f"/chats/{chat['chat_id']}/read", a["access_token"], json={"seq": history["last_seq"]})
    assert [c["unread"] for c in api.ok("GET", "/chats", a["access_token"])
            if c["chat"]["chat_id"] == chat["chat_id"]] == [0]
    caught_up = api.ok("GET", f"/chats/{chat['chat_id']}/messages?after={first['seq']}", a["access_token"])
    assert [m["text"] for m in caught_up["items"]] == ["Я!"]
    stranger = api.sign_in()
    assert error(api.call("GET", f"/chats/{chat['chat_id']}/messages", stranger["access_token"])) == (
        403, "chat.members_only")
    assert error(api.call("POST", f"/chats/{chat['chat_id']}/members", a["access_token"],
                          json={"member_ids": [stranger["user_id"]]})) == (403, "chat.system_managed")


def test_a_post_retried_with_its_client_message_id_is_one_message_CH_4(api, klass):
    """The answer to a POST was lost and the client sends it again: with its key, the chat gets it once."""
    a, b = klass["pupils"]
    chat = eventually(lambda: chat_of(api, a, "class"), what="messaging to build the class chat from school's events")
    path, key = f"/chats/{chat['chat_id']}/messages", str(uuid.uuid4())
    first = api.ok("POST", path, a["access_token"], status=201, json={"text": "Один раз", "client_message_id": key})
    again = api.ok("POST", path, a["access_token"], status=201, json={"text": "Один раз", "client_message_id": key})
    assert again == first
    # The same key in the Idempotency-Key header is the same message; another author's key is their own.
    by_header = api.ok("POST", path, a["access_token"], status=201, json={"text": "Один раз"},
                       headers={"Idempotency-Key": key})
    assert by_header["seq"] == first["seq"]
    theirs = api.ok("POST", path, b["access_token"], status=201, json={"text": "И я", "client_message_id": key})
    assert theirs["seq"] == first["seq"] + 1
    history = api.ok("GET", path, a["access_token"])
    assert [m["text"] for m in history["items"] if m["seq"] >= first["seq"]] == ["И я", "Один раз"]
    assert history["last_seq"] == theirs["seq"]
    assert error(api.call("POST", path, a["access_token"], json={"text": "?", "client_message_id": "nope"})) == (
        400, "request.invalid")
    assert error(api.call("POST", path, a["access_token"], json={"text": "?"}, headers={"Idempotency-Key": "x"})) == (
        400, "request.invalid")


def test_dialogs_and_the_inbox_CH_1_CH_5(api, klass):
    a, b = klass["pupils"]
    eventually(lambda: chat_of(api, a, "class") and b["user_id"] in chat_of(api, a, "class")["member_ids"],
               what="the class chat")
    dialog = api.ok("POST", "/direct-chats", a["access_token"], json={"user_id": b["user_id"]})
    assert dialog["kind"] == "direct" and set(dialog["member_ids"]) == {a["user_id"], b["user_id"]}
    stranger = api.sign_in()
    assert error(api.call("POST", "/direct-chats", a["access_token"], json={"user_id": stranger["user_id"]})) == (
        403, "direct.no_shared_chat")
    thread = eventually(lambda: api.call("POST", "/inbox-threads", a["access_token"],
                                         json={"organization_id": klass["org"]}).json().get("chat_id"),
                        what="messaging to know the pupil is a member")
    api.ok("POST", f"/chats/{thread}/messages", a["access_token"], status=201, json={"text": "Вопрос к директору"})
    inbox = api.ok("GET", f"/organizations/{klass['org']}/inbox", klass["admin"]["access_token"])
    assert thread in [c["chat_id"] for c in inbox]
    api.ok("POST", f"/chats/{thread}/messages", klass["admin"]["access_token"], status=201, json={"text": "Ответ"})
    answer = api.ok("GET", f"/chats/{thread}/messages?limit=1", a["access_token"])["items"][0]
    assert answer["author_id"] is None and answer["on_behalf_of"] == klass["org"]


def test_an_admin_appointed_after_a_pupil_wrote_reads_and_answers_the_demoted_one_is_refused_CH_5(api):
    """CH-5: the inbox's audience is the school's admins as they are now, for threads already open too."""
    org, founder = api.organization("Школа обращений", "Пермь")
    five = api.ok("POST", f"/organizations/{org}/classes", founder["access_token"], status=201,
                  json={"name": "7В", "start_year": 2025, "end_year": 2032})["class_id"]
    pupil, teacher = api.member(org, founder, "student", five), api.member(org, founder, "teacher")
    founder_id, teacher_id = (api.ok("GET", "/me", s["access_token"])["user_id"] for s in (founder, teacher))
    thread = eventually(lambda: api.call("POST", "/inbox-threads", pupil["access_token"],
                                         json={"organization_id": org}).json().get("chat_id"),
                        what="messaging to know the pupil is a member")
    api.ok("POST", f"/chats/{thread}/messages", pupil["access_token"], status=201, json={"text": "Где расписание?"})
    assert error(api.call("GET", f"/chats/{thread}/messages", teacher["access_token"])) == (403, "chat.members_only")
    api.ok("POST", f"/organizations/{org}/admins", founder["access_token"], status=201, json={"user_id": teacher_id})

    def in_new_admins_inbox() -> bool:
        inbox = api.call("GET", f"/organizations/{org}/inbox", teacher["access_token"])
        return inbox.status_code == 200 and thread in [c["chat_id"] for c in inbox.json()]

    eventually(in_new_admins_inbox, what="the thread in the new admin's inbox")
    assert [m["text"] for m in api.ok("GET", f"/chats/{thread}/messages", teacher["access_token"])["items"]] == [
        "Где расписание?"]
    assert thread in [c["chat"]["chat_id"] for c in api.ok("GET", "/chats", teacher["access_token"])]
    api.ok("POST", f"/chats/{thread}/messages", teacher["access_token"], status=201, json={"text": "На сайте."})
    answer = api.ok("GET", f"/chats/{thread}/messages?limit=1", pupil["access_token"])["items"][0]
    assert (answer["text"], answer["author_id"], answer["on_behalf_of"]) == ("На сайте.", None, org)
    api.ok("PUT", f"/organizations/{org}/members/{founder_id}", teacher["access_token"], json={"roles": ["teacher"]})
    eventually(lambda: api.call("GET", f"/chats/{thread}/messages", founder["access_token"]).status_code == 403,
               what="the demoted admin to leave the inbox")
    assert error(api.call("GET", f"/chats/{thread}/messages", founder["access_token"])) == (403, "chat.members_only")
    assert error(api.call("POST", f"/chats/{thread}/messages", founder["access_token"], json={"text": "?"})) == (
        403, "chat.members_only")
    assert thread not in [c["chat"]["chat_id"] for c in api.ok("GET", "/chats", founder["access_token"])]


@contextmanager
def messaging_misses_joins(api):
    """School's MemberJoined events do not reach messaging inside the block (its queue is unbound from school's
    exchange); on leaving, each one messaging missed is delivered to its queue alone, as the relay would have."""
    contract = get_contract("school.MemberJoined.v1")
    queue = consumer_queue("school", contract.routing_key, "messaging", "on_member_joined")
    connection = pika.BlockingConnection(pika.URLParameters(api.stack.amqp_uri))
    channel = connection.channel()
    channel.queue_unbind(queue, contract.exchange, contract.routing_key)
    missed: list[dict] = []
    try:
        yield missed
    finally:
        channel.queue_bind(queue, contract.exchange, contract.routing_key)
        channel.confirm_delivery()
        for data in missed:
            event = make_event(contract.type,
                               {**data, "joined_at": datetime.now(timezone.utc)},
                               event_id=f"school:{uuid.uuid4()}:MemberJoined.v1")
            channel.basic_publish("", queue, event.to_json(), pika.BasicProperties(
                content_type="application/json", message_id=event.id, delivery_mode=2, type=event.type))
        connection.close()


def test_the_class_chat_opens_right_after_joining_before_messaging_learnt_it_CH_1(api):
    """The join answered; messaging has not applied school's MemberJoined yet (held back here, so this is not
    left to timing): opening the class chat asks school before refusing, and lets in no further than school says."""
    org, admin = api.organization("Школа новичков", "Тула")
    five, six = (api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                        json={"name": name, "start_year": 2025, "end_year": 2032})["class_id"] for name in ("5А", "6Б"))
    first, other = api.member(org, admin, "student", five), api.member(org, admin, "student", six)
    chat = eventually(lambda: chat_of(api, first, "class"), what="the class chat")["chat_id"]
    six_chat = eventually(lambda: chat_of(api, other, "class"), what="the other class's chat")["chat_id"]
    api.ok("POST", f"/chats/{chat}/messages", first["access_token"], status=201, json={"text": "Добро пожаловать!"})
    with messaging_misses_joins(api) as missed:
        newcomer = api.member(org, admin, "student", five)
        newcomer_id = api.ok("GET", "/me", newcomer["access_token"])["user_id"]
        missed.append({"organization_id": org, "user_id": newcomer_id, "role": "student", "roles": ["student"],
                       "class_id": five})
        history = api.ok("GET", f"/chats/{chat}/messages", newcomer["access_token"])
        assert [m["text"] for m in history["items"]] == ["Добро пожаловать!"]
        assert api.ok("GET", f"/chats/{chat}", newcomer["access_token"])["chat_id"] == chat
        api.ok("POST", f"/chats/{chat}/messages", newcomer["access_token"], status=201, json={"text": "Привет!"})
        assert error(api.call("GET", f"/chats/{six_chat}/messages", newcomer["access_token"])) == (
            403, "chat.members_only")
        assert newcomer_id not in api.ok("GET", f"/chats/{chat}", first["access_token"])["member_ids"]
    eventually(lambda: newcomer_id in api.ok("GET", f"/chats/{chat}", first["access_token"])["member_ids"],
               what="messaging to apply the join it missed")


def test_dialogs_follow_who_shares_a_chat_now_a_person_removed_from_the_school_is_a_stranger_again_CH_1(api):
    """CH-1's check reads messaging's read model and confirms on the chats: a pupil taken out of the school
    (out of every chat of it) can no longer be written to, whatever the read model still held."""
    org, admin = api.organization("Школа диалогов", "Казань")
    five = api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                  json={"name": "5Д", "start_year": 2025, "end_year": 2032})["class_id"]
    a, b, c = (api.member(org, admin, "student", five) for _ in range(3))
    eventually(lambda: (chat := chat_of(api, a, "class")) and {b["user_id"], c["user_id"]} <= set(
        chat["member_ids"]), what="the class chat with the three pupils")
    dialog = api.ok("POST", "/direct-chats", a["access_token"], json={"user_id": b["user_id"]})
    assert set(dialog["member_ids"]) == {a["user_id"], b["user_id"]}
    old = api.ok("POST", "/direct-chats", c["access_token"], json={"user_id": a["user_id"]})
    api.ok("POST", f"/chats/{old['chat_id']}/messages", c["access_token"], status=201, json={"text": "Привет"})
    assert api.ok("GET", f"/chats/{old['chat_id']}", a["access_token"])["read_only_reason"] is None
    api.ok("DELETE", f"/organizations/{org}/members/{c['user_id']}", admin["access_token"], status=204)
    eventually(lambda: all(c["user_id"] not in (chat_of(api, a, kind) or {"member_ids": []})["member_ids"]
                           for kind in ("class", "organization")),
               what="messaging to take the pupil out of the school's chats")
    for _ in range(3):  # refused, and stays refused
        assert error(api.call("POST", "/direct-chats", a["access_token"], json={"user_id": c["user_id"]})) == (
            403, "direct.no_shared_chat")
    assert error(api.call("POST", "/direct-chats", a["access_token"], json={"user_id": api.sign_in()["user_id"]})) == (
        403, "direct.no_shared_chat")
    assert api.ok("POST", "/direct-chats", b["access_token"], json={"user_id": a["user_id"]})["chat_id"] == dialog[
        "chat_id"]
    # The dialog they had before: its history stays theirs, but neither writes in it, nor calls from it, any more.
    for who in (a, c):
        chat = old["chat_id"]
        assert api.ok("GET", f"/chats/{chat}", who["access_token"])["read_only_reason"] == "direct.no_shared_chat"
        assert [m["text"] for m in api.ok("GET", f"/chats/{chat}/messages", who["access_token"])["items"]] == [
            "Привет"]
        assert error(api.call("POST", f"/chats/{chat}/messages", who["access_token"], json={"text": "Ещё"})) == (
            403, "direct.no_shared_chat")
        assert error(api.call("POST", "/calls", who["access_token"], json={"chat_id": chat})) == (
            403, "direct.no_shared_chat")


def test_a_removed_persons_late_join_never_brings_them_back_and_school_says_its_version_CH_1_CH_6(api, platform):
    """An outside review: messaging applied whatever came last, so a removed stranger's MemberJoined applied after
    his MemberLeft (a retry, a replay of the dead letters) put him back in the school's chats with its children.
    Events carry their membership's version now (the relay's ``sequence``); here a late copy of his join comes
    after his removal, as a replay would, and changes nothing. school answers messaging's "as stored now"."""
    from nameko.standalone.rpc import ClusterRpcProxy

    org, admin = api.organization("Школа порядка", "Тула")
    five = api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                  json={"name": "5П", "start_year": 2025, "end_year": 2032})["class_id"]
    pupil = api.member(org, admin, "student", five)
    stranger = api.member(org, admin, "teacher")
    eventually(lambda: chat_of(api, stranger, "organization"), what="the stranger in the school's chat")
    api.ok("DELETE", f"/organizations/{org}/members/{stranger['user_id']}", admin["access_token"], status=204)
    eventually(lambda: chat_of(api, stranger, "organization") is None, what="the stranger out of the school's chat")
    with ClusterRpcProxy({"AMQP_URI": platform.amqp_uri}, timeout=30) as rpc:
        state = rpc.school.membership_state(organization_id=org, user_id=stranger["user_id"])
        assert state == {"version": 2, "active": False, "roles": [], "class_id": None, "parent_classes": [],
                         "subjects": {}, "left_version": 2}
        assert rpc.school.membership_state(organization_id=org, user_id=pupil["user_id"])["active"] is True
    api.publish(make_event("school.MemberJoined.v1", {
        "organization_id": org, "user_id": stranger["user_id"], "role": "teacher", "roles": ["teacher"],
        "class_id": None, "subjects": {}, "via": "invite", "joined_at": datetime.now(timezone.utc)},
        event_id=f"school:replayed-{uuid.uuid4()}:MemberJoined.v1", sequence=1))
    later = api.member(org, admin, "student", five)  # joins after the late copy, through the same queue
    eventually(lambda: chat_of(api, later, "class"), what="messaging to apply the join after the late copy")
    assert chat_of(api, stranger, "organization") is None and chat_of(api, stranger, "class") is None
    assert stranger["user_id"] not in chat_of(api, pupil, "class")["member_ids"]


def test_renaming_the_school_renames_the_school_chat_its_members_see_and_find_CH_1(api):
    """CH-1: the school's chat is everyone in the school, named after it; nobody renames it by hand (a system
    chat), so when the admin renames the school the chat follows (it kept the old name before)."""
    org, admin = api.organization("Школа переименований", "Казань")
    five = api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                  json={"name": "5Л", "start_year": 2025, "end_year": 2032})["class_id"]
    pupil = api.member(org, admin, "student", five)
    school_chat = eventually(lambda: chat_of(api, pupil, "organization"), what="the school's chat")
    assert school_chat["name"] == "Школа переименований"
    assert error(api.call("PATCH", f"/chats/{school_chat['chat_id']}", admin["access_token"],
                          json={"name": "Свой"})) == (403, "chat.system_managed")
    api.ok("PATCH", f"/organizations/{org}", admin["access_token"], json={"name": "Лицей Лобачевского"})
    eventually(lambda: chat_of(api, pupil, "organization")["name"] == "Лицей Лобачевского",
               what="the school's chat renamed after the school")
    for who in (pupil, admin):
        found = api.ok("GET", "/chats", who["access_token"], params={"q": "лицей лобачевского"})
        assert [c["chat"]["chat_id"] for c in found] == [school_chat["chat_id"]]
        assert api.ok("GET", "/chats", who["access_token"], params={"q": "переименований"}) == []
