"""Registering a region's e-journal (EJ-1): its region is one of Russia's federal subjects, checked by the same
function as an organization's (shared.regions.region_code, SC-2): an unknown code is refused, "7" is "07"."""

from __future__ import annotations

import pytest

from ejournal_bridge.application import BridgeApplication
from shared.contracts.api.ejournal_bridge import RegisterProvider
from shared.errors import Invalid
from shared.store import make_application

pytestmark = pytest.mark.integration


def register(app: BridgeApplication, region: str, name: str = "Электронная школа"):
    return app.register_provider(RegisterProvider(region, name, "https://journal.test", "client", "secret"))[0]


def test_a_providers_region_is_a_federal_subjects_code_as_an_organizations_is_EJ_1_SC_2(store_settings):
    app = make_application(BridgeApplication, "ejournal_bridge", create_table=True, config=store_settings)
    for made_up in ("98", "99", "Татарстан", "016", "x-1", " "):
        with pytest.raises(Invalid) as refused:
            register(app, made_up)
        assert refused.value.code == "region.unknown" and "region" in refused.value.details["fields"], made_up
    assert app.providers() == []
    provider = register(app, " 7 ")
    assert provider.region == "07"  # stored as the regions' table keys it
    with pytest.raises(Invalid) as same:
        register(app, "07", "ЭЛЕКТРОННАЯ ШКОЛА")
    assert same.value.code == "provider.exists"
    assert [p.id for p in app.providers("7")] == [provider.id] == [p.id for p in app.providers("07")]
    assert app.providers("16") == []
    with pytest.raises(Invalid) as unknown:
        app.providers("98")
    assert unknown.value.code == "region.unknown"
