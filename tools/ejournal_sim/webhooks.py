"""The simulated e-journal's webhook sender: signs each delivery as the
contract says (docs/ejournal/webhook.schema.json) and pushes a whole school in
batches: orgs, classes, users, enrollments, then the week's timetable."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime, timezone

import requests

from tools.ejournal_sim.fixture import School

ORDER = ("orgs", "classes", "users", "enrollments", "lessons")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(self, url: str, secret: str, session: requests.Session | None = None):
        self.url = url
        self.secret = secret
        self.session = session or requests.Session()
        self.sent: list[dict] = []

    def body(self, type_: str, records: list[dict], event_id: str | None = None) -> bytes:
        return json.dumps({"event_id": event_id or str(uuid.uuid4()), "type": type_,
                           "occurred_at": datetime.now(timezone.utc).isoformat(), "records": records},
                          ensure_ascii=False).encode()

    def post(self, body: bytes, timestamp: int | None = None, secret: str | None = None,
             signature: str | None = None) -> requests.Response:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {"Content-Type": "application/json", "X-Sfera-Timestamp": ts,
                   "X-Sfera-Signature": signature or sign(secret or self.secret, ts, body)}
        for attempt in range(5):  # a real sender retries what did not arrive
            try:
                response = self.session.post(self.url, data=body, headers=headers, timeout=30)
            except requests.ConnectionError:
                time.sleep(0.2 * (attempt + 1))
                continue
            if response.status_code < 500:
                return response
            time.sleep(0.2 * (attempt + 1))
        return response

    def send(self, type_: str, records: list[dict], event_id: str | None = None) -> requests.Response:
        response = self.post(self.body(type_, records, event_id))
        self.sent.append({"type": type_, "records": len(records), "status": response.status_code})
        return response

    def push_school(self, school: School, batch: int = 250) -> list[requests.Response]:
        """The whole school, roster first, in deliveries of at most ``batch`` records."""
        collections = {"orgs": [school.org], "classes": school.classes, "users": school.users,
                       "enrollments": school.enrollments, "lessons": school.lessons}
        responses = []
        for name in ORDER:
            records = collections[name]
            for start in range(0, len(records), batch):
                responses.append(self.send(f"{name}.upserted", records[start:start + batch]))
        return responses
