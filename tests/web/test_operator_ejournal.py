"""The operator's console shows each e-journal's bound schools with their resync's progress (issue #17): the bind
answers at once and the resync runs in the background, so the console follows it until it is done."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_ejournal import journal  # noqa: F401  (the simulator and its registered providers)
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def test_the_console_shows_a_bound_schools_resync_until_it_is_done(people, api, journal):  # noqa: F811
    school = journal["school"]
    provider_id = journal["providers"]["16"]["provider_id"]
    org = school.org["sourcedId"]
    journal["sender"].send("orgs.upserted", [school.org])
    provider_url = f"/operator/ejournal-providers/{provider_id}"
    eventually(lambda: api.ok("GET", provider_url, journal["operator"])["orgs"], what="the journal's school seen")
    organization_id, _ = api.organization("Школа из журнала (консоль)", region="16")
    bound = api.ok("PUT", f"{provider_url}/schools/{org}", journal["operator"], status=202,
                   json={"organization_id": organization_id})
    assert bound["resync"]["state"] == "pending"

    console = api.operator()
    api.ok("PUT", "/me/profile", console["access_token"], json={
        "last_name": "Операторова", "first_name": "Ирина", "birth_date": "1990-01-01", "sex": "female"})
    operator = people("operator-ejournal")
    operator.sign_in_as(console, "/operator")
    page = operator.page
    provider = page.locator(f"[data-provider-id='{provider_id}']")  # region 16 has other tests' journals too
    expect(provider).to_contain_text("Привязанные школы")
    binding = provider.locator(f"[data-binding='{org}']")
    expect(binding).to_contain_text(f"{school.org['name']} → организация платформы")
    # Pending or running at first (the console asks again every 2 s), then done, with what it did.
    expect(binding).to_have_attribute("data-resync-state", "done", timeout=120_000)
    expect(binding.get_by_role("status")).to_contain_text("Синхронизировано. Классы:")
    operator.screen("operator-ejournal-bound")
