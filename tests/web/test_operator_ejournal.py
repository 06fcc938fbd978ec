"""The operator's console shows each e-journal's bound schools with their resync's progress (issue #17): the bind
answers at once and the resync runs in the background, so the console follows it until it is done."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.test_ejournal import journal  # noqa: F401  (the simulator and its registered providers)
from tests.helpers import eventually
from tests.web.conftest import operator_in_browser

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

    _, operator = operator_in_browser(people, api, "operator-ejournal")
    page = operator.page
    provider = page.locator(f"[data-provider-id='{provider_id}']")  # region 16 has other tests' journals too
    expect(provider).to_contain_text("Привязанные школы")
    binding = provider.locator(f"[data-binding='{org}']")
    expect(binding).to_contain_text(f"{school.org['name']} → организация платформы")
    # Pending or running at first (the console asks again every 2 s), then done, with what it did.
    expect(binding).to_have_attribute("data-resync-state", "done", timeout=120_000)
    expect(binding.get_by_role("status")).to_contain_text("Синхронизировано. Классы:")
    operator.screen("operator-ejournal-bound")


def test_the_console_registers_a_journal_under_a_region_chosen_by_name_EJ_1_SC_2(people, api):
    """The provider form offers the federal subjects by name (the select the school forms use), in the language
    shown; none chosen is refused with region.unknown's message; the journal registered is named by its region."""
    console, operator = operator_in_browser(people, api, "operator-ejournal-region")
    page = operator.page
    region = page.get_by_label("Регион", exact=True)
    expect(region).to_have_value("")
    expect(region.locator("option", has_text="Республика Татарстан")).to_have_attribute("value", "16")
    name = f"Журнал области {uuid.uuid4().hex[:6]}"
    page.get_by_label("Название", exact=True).fill(name)
    page.get_by_label("Адрес журнала").fill("https://journal.example.org")
    page.get_by_label("Идентификатор клиента (client_id)").fill("sfera")
    page.get_by_label("Секрет клиента (client_secret)").fill("secret-of-the-client")
    page.get_by_role("button", name="Подключить", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="Такого региона нет в списке")).to_be_visible()  # none chosen
    region.select_option(label="Смоленская область")
    operator.screen("operator-provider-region")
    page.get_by_role("button", name="Подключить", exact=True).click()
    expect(page.get_by_text("Секрет показывается только сейчас")).to_be_visible()
    created = next(p for p in api.ok("GET", "/ejournal/providers?region=67", console["access_token"])
                   if p["name"] == name)
    expect(page.locator(f"[data-provider-id='{created['provider_id']}']")).to_contain_text(
        "Смоленская область (код 67)")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_label("Region", exact=True).locator("option").first).to_have_text("Choose a region")
    expect(page.get_by_label("Region", exact=True).locator("option", has_text="Smolensk Oblast")).to_have_count(1)
    operator.screen("operator-provider-region-en")
