"""The regions' names (shared.regions): one table on the server, the same one the web client shows (SC-2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.errors import Invalid
from shared.regions import RU, region_code, region_names

LOCALES = Path(__file__).resolve().parents[2] / "web" / "src" / "i18n"


def test_the_web_clients_region_names_are_the_servers_in_both_languages_SC_2():
    """The client keeps its own copy for its locales: it must say what the server indexes and answers."""
    for index, language in enumerate(("ru", "en")):
        table = json.loads((LOCALES / f"{language}.json").read_text(encoding="utf-8"))["regions"]
        table.pop("unknown")
        assert table == {code: names[index] for code, names in RU.items()}, language


def test_a_region_is_one_of_the_countrys_codes_or_none_SC_2():
    assert region_code("RU", "16") == "16" and region_code("ru", " 7 ") == "07"
    assert region_code("RU", None) is None and region_code("RU", "  ") is None
    assert region_names("RU", "77") == ("Москва", "Moscow") and region_names("RU", None) == ()
    for country, code in (("RU", "99"), ("RU", "Татарстан"), ("RU", "016"), ("KZ", "16")):
        with pytest.raises(Invalid) as refused:
            region_code(country, code)
        assert refused.value.code == "region.unknown" and "region" in refused.value.details["fields"]
