"""Delivery adapters against real local servers: an HTTP SMS gateway and an SMTP
server started by the test (no mocks), and the dev inbox."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from identity.delivery import DeliveryError, DevInbox, HttpSmsGateway, SmtpMailer, flash_call_number
from tests.helpers import Mailbox
from tools.devstack.infra import free_port

pytestmark = pytest.mark.integration


class SmsGatewayServer:
    """A tiny SMS gateway: records what it is sent, answers like a real one."""

    def __init__(self, status: int = 202):
        self.received: list[tuple[str, dict, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.received.append((self.path, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"id": "msg-1"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def sms_gateway():
    server = SmsGatewayServer()
    yield server
    server.close()


def test_http_sms_gateway_sends_the_code_with_its_token_ID_1(sms_gateway):
    HttpSmsGateway(sms_gateway.url, "secret-token").send_sms("+79001234567", "Sfera: your code is 123456",
                                                             code="123456")
    ((path, headers, body),) = sms_gateway.received
    assert path == "/sms"
    assert headers["Authorization"] == "Bearer secret-token"
    assert body == {"to": "+79001234567", "from": "Sfera", "text": "Sfera: your code is 123456"}


def test_http_flash_call_comes_from_a_number_ending_in_the_code_ID_1(sms_gateway):
    caller = flash_call_number("4821")
    HttpSmsGateway(sms_gateway.url, "t").flash_call("+79001234567", caller, code="4821")
    ((path, _, body),) = sms_gateway.received
    assert path == "/flash-call" and body["caller"].endswith("4821") and len(body["caller"]) == 12


def test_http_gateway_refusal_and_absence_are_delivery_errors():
    refusing = SmsGatewayServer(status=503)
    try:
        with pytest.raises(DeliveryError, match="503"):
            HttpSmsGateway(refusing.url, "t").send_sms("+79001234567", "x", code="1")
    finally:
        refusing.close()
    with pytest.raises(DeliveryError, match="unreachable"):
        HttpSmsGateway(f"http://127.0.0.1:{free_port()}", "t", timeout=1).send_sms("+79001234567", "x", code="1")


def test_smtp_mailer_delivers_to_a_real_smtp_server_ID_4():
    recorder = Mailbox()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        SmtpMailer("127.0.0.1", controller.port, "Sfera <no-reply@sfera.local>").send_email(
            "kid@example.org", "Sfera: your sign-in code", "Your code is 654321.", code="654321")
    finally:
        controller.stop()
    (envelope,) = recorder.messages
    assert envelope.rcpt_tos == ["kid@example.org"]
    content = envelope.content.decode()
    assert "Subject: Sfera: your sign-in code" in content and "654321" in content


def test_smtp_mailer_reports_an_absent_server():
    with pytest.raises(DeliveryError):
        SmtpMailer("127.0.0.1", free_port(), "a@b.c", timeout=2).send_email("kid@example.org", "s", "t")


def test_the_dev_inbox_writes_whole_files_per_channel(tmp_path):
    inbox = DevInbox(tmp_path)
    inbox.send_sms("+79001234567", "code 1", code="1")
    inbox.flash_call("+79001234567", "+78001234821", code="4821")
    inbox.send_email("kid@example.org", "s", "t", code="2")
    assert [json.loads(p.read_text())["code"] for c in ("sms", "flash_call", "email")
            for p in (tmp_path / c).glob("*.json")] == ["1", "4821", "2"]
    assert not list(tmp_path.rglob(".*.json"))
