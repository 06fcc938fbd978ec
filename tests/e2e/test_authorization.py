"""The authorization holes of issue #12, each reproduced through the gateway (or,
for the operator flag, straight on the broker) and closed where the data lives."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
from simple_websocket import ConnectionClosed

from tests.e2e.test_realtime import connect, next_event
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def created(response):
    return response.json() if response.status_code == 201 else None


@pytest.fixture(scope="module")
def schools(api):
    """School A (5А with a teacher invited to it and a pupil, 6Б) and school B with a pupil."""
    a_org, a_admin = api.organization("Гимназия доступа", "Тула")
    five = api.ok("POST", f"/organizations/{a_org}/classes", a_admin["access_token"], status=201,
                  json={"name": "5А", "start_year": 2025, "end_year": 2032})["class_id"]
    six = api.ok("POST", f"/organizations/{a_org}/classes", a_admin["access_token"], status=201,
                 json={"name": "6Б", "start_year": 2024, "end_year": 2031})["class_id"]
    teacher = api.member(a_org, a_admin, "teacher", five)
    pupil = api.member(a_org, a_admin, "student", five, last_name="Петрова", first_name="Анна",
                       birth_date="2014-03-02", sex="female")
    b_org, b_admin = api.organization("Школа соседей", "Тула")
    b_class = api.ok("POST", f"/organizations/{b_org}/classes", b_admin["access_token"], status=201,
                     json={"name": "5В", "start_year": 2025, "end_year": 2032})["class_id"]
    b_pupil = api.member(b_org, b_admin, "student", b_class)
    return {"a_org": a_org, "a_admin": a_admin, "five": five, "six": six, "teacher": teacher, "pupil": pupil,
            "b_org": b_org, "b_admin": b_admin, "b_pupil": b_pupil}


def new_chat(api, session, organization_id: str, name: str) -> dict:
    """A manual chat, once messaging has learnt that its creator is a member of the school."""
    return eventually(lambda: created(api.call("POST", "/chats", session["access_token"], json={
        "organization_id": organization_id, "name": name, "member_ids": []})), what="a chat in the school")


def test_chat_members_come_from_the_chats_own_school_and_exist_CH_6(api, schools):
    teacher, pupil, b_pupil = schools["teacher"], schools["pupil"], schools["b_pupil"]
    chat = new_chat(api, teacher, schools["a_org"], "Кружок доступа")
    members = f"/chats/{chat['chat_id']}/members"
    for outsider in (b_pupil["user_id"], str(uuid.uuid4())):                 # another school's pupil, nobody
        refused = api.call("POST", members, teacher["access_token"], json={"member_ids": [outsider]})
        assert error(refused) == (400, "chat.not_members")
        assert refused.json()["error"]["details"] == {"user_ids": [outsider]}
    assert error(api.call("GET", f"/chats/{chat['chat_id']}/messages", b_pupil["access_token"]))[0] == 403
    b_chat = new_chat(api, schools["b_admin"], schools["b_org"], "Клуб соседей")
    pulled = api.call("POST", f"/chats/{b_chat['chat_id']}/members", schools["b_admin"]["access_token"],
                      json={"member_ids": [pupil["user_id"]]})                # B's admin pulls A's pupil
    assert error(pulled) == (400, "chat.not_members")
    added = api.ok("POST", members, teacher["access_token"], json={"member_ids": [pupil["user_id"]]})
    assert pupil["user_id"] in added["member_ids"]
    assert set(api.ok("GET", f"/chats/{chat['chat_id']}", pupil["access_token"])["member_ids"]) == {
        teacher["user_id"], pupil["user_id"]}


def test_no_stranger_opens_a_chat_with_a_child_CH_6(api, schools):
    pupil, stranger = schools["pupil"], api.sign_in()
    no_school = api.call("POST", "/chats", stranger["access_token"],
                         json={"name": "Привет", "member_ids": [pupil["user_id"]]})
    assert no_school.status_code == 400 and "organization_id" in json.dumps(no_school.json()["error"]["details"])
    posing = api.call("POST", "/chats", stranger["access_token"],
                      json={"organization_id": schools["a_org"], "name": "Привет", "member_ids": [pupil["user_id"]]})
    assert error(posing) == (403, "organization.members_only")
    assert error(api.call("POST", "/direct-chats", stranger["access_token"],
                          json={"user_id": pupil["user_id"]})) == (403, "direct.no_shared_chat")
    assert [c for c in api.ok("GET", "/chats", pupil["access_token"]) if c["chat"]["name"] == "Привет"] == []


def test_teachers_invite_pupils_only_to_the_classes_they_teach_RO_3_SC_5_SC_7(api, schools):
    invites, teacher = f"/organizations/{schools['a_org']}/invites", schools["teacher"]["access_token"]
    other = api.call("POST", invites, teacher, json={"role": "student", "class_id": schools["six"], "validity": "1d"})
    assert error(other) == (403, "invite.not_your_class")
    own = api.ok("POST", invites, teacher, status=201,
                 json={"role": "student", "class_id": schools["five"], "validity": "1d"})
    assert api.ok("GET", f"/invites/{own['token']}")["class_name"] == "5А"


def test_no_flag_on_the_broker_skips_the_operator_check_SC_1(api, platform):
    """Anything that reaches the broker used to approve with ``cli=True``; now the RPCs have no
    such flag and check the operator like the API does."""
    from nameko.standalone.rpc import ClusterRpcProxy

    import shared.errors  # noqa: F401  (typed errors arrive as themselves)
    from shared.errors import DomainError

    application = api.ok("POST", "/organization-applications", status=201, json={
        "name": "Школа без флага", "kind": "school", "country": "RU", "city": "Орёл", "admin_phone": api.new_phone()})
    with ClusterRpcProxy({"AMQP_URI": platform.amqp_uri}, timeout=30) as rpc:
        with pytest.raises(Exception) as flagged:
            rpc.school.approve_application(actor_id=None, application_id=application["application_id"], cli=True)
        assert "cli" in str(flagged.value)
        for attempt in (lambda: rpc.school.approve_application(actor_id=None,
                                                               application_id=application["application_id"]),
                        lambda: rpc.school.pending_applications(actor_id=str(uuid.uuid4()))):
            with pytest.raises(DomainError) as refused:
                attempt()
            assert refused.value.code == "operator.required"
    pending = api.ok("GET", "/operator/applications", api.operator()["access_token"])
    assert application["application_id"] in [a["application_id"] for a in pending]


def test_the_bridges_operator_commands_check_their_caller_not_only_the_gateway_EJ_1(api, platform):
    """The e-journal bridge's operator commands (register a region's journal, read its secrets' details, rotate its
    webhook secret, bind a school, replay the inbox) trusted the gateway's operator check: anything on the broker
    could call them. Each now takes its caller's id and asks school; the console on the machine itself
    (``python -m ejournal_bridge.operator``, what ``make demo`` uses) registers a journal without the broker."""
    from nameko.standalone.rpc import ClusterRpcProxy

    import shared.errors  # noqa: F401  (typed errors arrive as themselves)
    from shared.errors import DomainError

    name = f"Журнал {uuid.uuid4().hex[:6]}"
    console = subprocess.run(
        [sys.executable, "-m", "ejournal_bridge.operator", "register-provider", "--region", "52", "--name", name,
         "--base-url", "https://journal.test", "--client-id", "c", "--client-secret", "s",
         "--webhook-base", "https://sfera.test/api/v1/ejournal/webhooks"],
        env=platform.env(), capture_output=True, text=True, timeout=60)
    assert console.returncode == 0, console.stderr
    created = json.loads(console.stdout)
    provider = created["provider_id"]
    assert created["webhook_secret"] and created["webhook_url"].endswith(provider)
    token = api.sign_in()["access_token"]
    listed = eventually(lambda: [p for p in api.ok("GET", "/ejournal/providers?region=52", token)
                                 if p["name"] == name], what="the registered journal listed")
    assert listed[0]["provider_id"] == provider
    someone = api.ok("GET", "/me", token)["user_id"]
    operator = api.ok("GET", "/me", api.operator()["access_token"])["user_id"]
    organization = str(uuid.uuid4())
    with ClusterRpcProxy({"AMQP_URI": platform.amqp_uri}, timeout=30) as rpc:
        bridge = rpc.ejournal_bridge
        commands = {
            "register_provider": lambda actor: bridge.register_provider(
                actor_id=actor, provider={"region": "52", "name": f"{name} 2", "base_url": "https://journal.test",
                                          "client_id": "c", "client_secret": "s"}, webhook_base="https://x.test"),
            "provider_detail": lambda actor: bridge.provider_detail(actor_id=actor, provider_id=provider,
                                                                    webhook_base="https://x.test"),
            "rotate_secret": lambda actor: bridge.rotate_secret(actor_id=actor, provider_id=provider,
                                                                grace_seconds=60),
            "bind_school": lambda actor: bridge.bind_school(actor_id=actor, provider_id=provider,
                                                            external_org_id="org-1", organization_id=organization),
            "school_binding": lambda actor: bridge.school_binding(actor_id=actor, provider_id=provider,
                                                                  external_org_id="org-1"),
            "request_replay": lambda actor: bridge.request_replay(actor_id=actor, provider_id=provider),
        }
        for command, attempt in commands.items():
            for actor in (None, someone, str(uuid.uuid4())):
                with pytest.raises(DomainError) as refused:
                    attempt(actor)
                assert refused.value.code == "operator.required", (command, actor)
        assert bridge.provider_detail(actor_id=operator, provider_id=provider, webhook_base="https://x.test")[
            "provider_id"] == provider
    again = subprocess.run(
        [sys.executable, "-m", "ejournal_bridge.operator", "register-provider", "--region", "52", "--name", name,
         "--base-url", "https://journal.test", "--client-id", "c", "--client-secret", "s", "--webhook-base", "x"],
        env=platform.env(), capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "provider.exists" in again.stderr


def test_a_signed_out_sessions_socket_is_closed_and_receives_nothing_ID_8(api, platform, schools):
    pupil, teacher = schools["pupil"], schools["teacher"]
    leaving = api.member(schools["a_org"], schools["a_admin"], "student", schools["five"])
    chat = new_chat(api, teacher, schools["a_org"], "Сессии")
    eventually(lambda: api.call("POST", f"/chats/{chat['chat_id']}/members", teacher["access_token"], json={
        "member_ids": [pupil["user_id"], leaving["user_id"]]}).status_code == 200, what="messaging to know them")
    ws = connect(platform, leaving)
    api.ok("POST", f"/chats/{chat['chat_id']}/messages", pupil["access_token"], status=201, json={"text": "до"})
    assert next_event(ws, "MessagePosted")["text"] == "до"                 # the socket is live
    current = [s for s in api.ok("GET", "/me/sessions", leaving["access_token"]) if s["current"]][0]
    signed_out_at = time.monotonic()
    api.ok("DELETE", f"/me/sessions/{current['session_id']}", leaving["access_token"], status=204)
    assert closing_error(ws)["code"] == "auth.session_ended"
    assert time.monotonic() - signed_out_at < 5
    api.ok("POST", f"/chats/{chat['chat_id']}/messages", pupil["access_token"], status=201, json={"text": "после"})
    with pytest.raises(ConnectionClosed):  # nothing more arrives: the socket is closed
        ws.receive(timeout=2)
    again = connect_refused(platform, leaving)                                 # its token still verifies
    assert again["error"]["code"] == "auth.session_ended"


def closing_error(ws, timeout: float = 5) -> dict:
    """The error a socket is closed with, skipping events still on their way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        if raw is not None and json.loads(raw)["type"] == "error":
            return json.loads(raw)["error"]
    raise AssertionError(f"the socket was not closed within {timeout}s")


def connect_refused(platform, session) -> dict:
    from tests.helpers import WebSocketClient

    url = platform.gateway_url.replace("http://", "ws://") + f"/api/v1/realtime?access_token={session['access_token']}"
    ws = WebSocketClient.connect(url)
    return json.loads(ws.receive(timeout=5))


def test_the_parent_link_shows_whose_it_is_before_sign_in_not_the_childs_data_PL_3(api, schools):
    token = api.ok("GET", "/me/parent-invite", schools["pupil"]["access_token"])["token"]
    preview = api.ok("GET", f"/parent-invites/{token}")                        # anonymous
    assert (preview["first_name"], preview["last_initial"]) == ("Анна", "П")
    assert [s["name"] for s in preview["schools"]] == ["Гимназия доступа"]
    assert not {"birth_date", "sex", "last_name", "user_id", "patronymic"} & set(preview)
    parent = api.person("Петров", "Павел", "1984-01-01", "male")
    opened = api.ok("GET", f"/parent-invites/{token}", parent["access_token"])  # signed in: the data to check
    assert (opened["last_name"], opened["birth_date"], opened["sex"]) == ("Петрова", "2014-03-02", "female")
    assert error(api.call("GET", "/parent-invites/forged-token")) == (404, "parent_link.not_found")
