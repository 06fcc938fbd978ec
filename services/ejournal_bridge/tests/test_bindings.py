"""A school's binding and its resync's progress as the operator's API shows them (issue #17): the views of a
``SchoolResync`` at each state, alone and in the provider's detail."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from ejournal_bridge.domain import Provider, SchoolResync
from ejournal_bridge.views import binding_view, provider_detail

pytestmark = pytest.mark.unit

NOW = datetime(2026, 9, 7, 8, 0, tzinfo=timezone.utc)


def test_a_binding_shows_its_resync_from_pending_to_done_and_a_rebind_starts_again():
    provider = Provider(region="16", name="ЭШ", base_url="http://journal.test", client_id="c", client_secret="s",
                        webhook_secret="w", registered_at=NOW)
    organization = uuid.uuid4()
    provider.bind_school("org-1", organization)
    resync = SchoolResync(provider_id=provider.id, external_org_id="org-1")
    resync.request(uuid.uuid4(), organization, NOW)
    view = binding_view(resync)
    assert (view["organization_id"], view["external_org_id"], view["resync"]["state"]) == (
        str(organization), "org-1", "pending")
    resync.start(people_total=3, classes_total=30)
    resync.people_progressed("p3", 3)
    resync.classes_progressed("c05", 5, 12)
    resync.fail("RuntimeError: messaging is away", NOW)
    resync.start(people_total=99, classes_total=99)  # resumed: the totals and what was done are kept
    progress = binding_view(resync)["resync"]
    assert {k: progress[k] for k in ("state", "people_done", "people_total", "classes_done", "classes_total",
                                     "chats_sent", "error")} == {
        "state": "running", "people_done": 3, "people_total": 3, "classes_done": 5, "classes_total": 30,
        "chats_sent": 12, "error": None}
    resync.classes_progressed("c30", 25, 40)
    resync.finish(NOW)
    detail = provider_detail(provider, "http://gateway/webhooks/x", [resync])
    [bound] = detail["bindings"]
    assert bound["resync"]["state"] == "done" and bound["resync"]["finished_at"] == NOW.isoformat()
    assert (bound["resync"]["classes_done"], bound["resync"]["chats_sent"]) == (30, 52)
    first = bound["resync"]["resync_id"]
    resync.request(uuid.uuid4(), organization, NOW)
    again = binding_view(resync)["resync"]
    assert again["resync_id"] != first and (again["state"], again["classes_done"], again["chats_sent"]) == (
        "pending", 0, 0)
    assert provider_detail(provider)["bindings"] == []
