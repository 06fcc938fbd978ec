"""Delivery of codes: the channel is an adapter (the identity issue adds the HTTP
SMS gateway, flash calls and SMTP). The default, the dev inbox, writes each
message as a JSON file under ``var/outbox/<channel>/`` so anyone can finish a
sign-in by hand."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Protocol

from shared.config import settings


class Delivery(Protocol):
    def send_sms(self, phone: str, text: str, *, code: str) -> None: ...


class DevInbox:
    def __init__(self, root: Path):
        self.root = root

    def send_sms(self, phone: str, text: str, *, code: str) -> None:
        self._write("sms", {"to": phone, "text": text, "code": code})

    def _write(self, channel: str, message: dict) -> Path:
        folder = self.root / channel
        folder.mkdir(parents=True, exist_ok=True)
        message = {"sent_at": time.time(), **message}
        name = f"{time.time_ns()}-{message['to'].lstrip('+')}-{uuid.uuid4().hex[:6]}.json"
        tmp = folder / f".{name}"
        tmp.write_text(json.dumps(message, ensure_ascii=False))
        os.replace(tmp, folder / name)  # readers never see half a file
        return folder / name


def delivery_from_env() -> Delivery:
    return DevInbox(settings().outbox_dir)
