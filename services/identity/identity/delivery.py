"""Delivery of codes and messages: each channel goes through an adapter chosen
by the environment.

- ``devinbox`` (default): every message is a JSON file under
  ``var/outbox/<channel>/`` so anyone can finish a sign-in by hand.
- ``http``: a generic HTTP SMS gateway: ``POST <url>/sms`` and
  ``POST <url>/flash-call`` with a JSON body and a bearer token.
- ``smtp``: e-mail through an SMTP server (STARTTLS when offered).

A flash call is a call from a number whose last digits are the code (ID-1).
"""

from __future__ import annotations

import json
import os
import secrets
import smtplib
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import requests

from shared.config import env_int, env_str, settings


class DeliveryError(RuntimeError):
    """The channel did not take the message."""


class Sender(Protocol):
    def send_sms(self, phone: str, text: str, *, code: str) -> None: ...

    def flash_call(self, phone: str, caller: str, *, code: str) -> None: ...


class Mailer(Protocol):
    def send_email(self, to: str, subject: str, text: str, *, code: str | None = None) -> None: ...


def flash_call_number(code: str) -> str:
    """A calling number whose last digits are the code."""
    return "+7800" + "".join(secrets.choice("0123456789") for _ in range(7 - len(code))) + code


class DevInbox:
    def __init__(self, root: Path):
        self.root = root

    def send_sms(self, phone: str, text: str, *, code: str) -> None:
        self._write("sms", {"to": phone, "text": text, "code": code})

    def flash_call(self, phone: str, caller: str, *, code: str) -> None:
        self._write("flash_call", {"to": phone, "caller": caller, "code": code})

    def send_email(self, to: str, subject: str, text: str, *, code: str | None = None) -> None:
        self._write("email", {"to": to, "subject": subject, "text": text, "code": code})

    def _write(self, channel: str, message: dict) -> Path:
        folder = self.root / channel
        folder.mkdir(parents=True, exist_ok=True)
        message = {"sent_at": time.time(), **message}
        safe_to = "".join(ch for ch in message["to"] if ch.isalnum() or ch in "@.")
        name = f"{time.time_ns()}-{safe_to}-{uuid.uuid4().hex[:6]}.json"
        tmp = folder / f".{name}"
        tmp.write_text(json.dumps(message, ensure_ascii=False))
        os.replace(tmp, folder / name)  # readers never see half a file
        return folder / name


class HttpSmsGateway:
    def __init__(self, url: str, token: str, sender_name: str = "Sfera", timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.token = token
        self.sender_name = sender_name
        self.timeout = timeout

    def _post(self, path: str, body: dict) -> None:
        try:
            response = requests.post(f"{self.url}{path}", json=body, timeout=self.timeout,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Idempotency-Key": uuid.uuid4().hex})
        except requests.RequestException as exc:
            raise DeliveryError(f"SMS gateway unreachable: {exc}") from exc
        if response.status_code >= 300:
            raise DeliveryError(f"SMS gateway answered {response.status_code}: {response.text[:200]}")

    def send_sms(self, phone: str, text: str, *, code: str) -> None:
        self._post("/sms", {"to": phone, "from": self.sender_name, "text": text})

    def flash_call(self, phone: str, caller: str, *, code: str) -> None:
        self._post("/flash-call", {"to": phone, "caller": caller})


class SmtpMailer:
    def __init__(self, host: str, port: int, sender: str, user: str | None = None, password: str | None = None,
                 timeout: float = 10.0):
        self.host, self.port, self.sender = host, port, sender
        self.user, self.password = user, password
        self.timeout = timeout

    def send_email(self, to: str, subject: str, text: str, *, code: str | None = None) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls()
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP delivery failed: {exc}") from exc


def sender_from_env() -> Sender:
    kind = env_str("SFERA_SMS_ADAPTER", "devinbox")
    if kind == "http":
        return HttpSmsGateway(env_str("SFERA_SMS_GATEWAY_URL", "http://127.0.0.1:9900"),
                              env_str("SFERA_SMS_GATEWAY_TOKEN", ""))
    if kind == "devinbox":
        return DevInbox(settings().outbox_dir)
    raise ValueError(f"SFERA_SMS_ADAPTER={kind!r}: expected devinbox or http")


def mailer_from_env() -> Mailer:
    kind = env_str("SFERA_MAIL_ADAPTER", "devinbox")
    if kind == "smtp":
        return SmtpMailer(env_str("SFERA_SMTP_HOST", "127.0.0.1"), env_int("SFERA_SMTP_PORT", 25),
                          env_str("SFERA_MAIL_FROM", "Sfera <no-reply@sfera.local>"),
                          os.environ.get("SFERA_SMTP_USER"), os.environ.get("SFERA_SMTP_PASSWORD"))
    if kind == "devinbox":
        return DevInbox(settings().outbox_dir)
    raise ValueError(f"SFERA_MAIL_ADAPTER={kind!r}: expected devinbox or smtp")
