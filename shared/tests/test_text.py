"""Names people show each other hold no hidden characters (shared/text.py)."""

import pytest

from shared.text import hidden_characters

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["Иванова", "Мария-Анна", "5А", "Лицей №3 им. А. С. Пушкина", "O'Brien", "Zoë",
                                  "Школа (корпус 2)", "学校", "مدرسة"])
def test_names_in_any_script_pass(name):
    assert not hidden_characters(name)


@pytest.mark.parametrize("name", ["\u202eавонавИ", "Ма\u200bрия", "Пет\u2066ровна", "Иван\u00adов", "a\nb",
                                  "a\u2028b", "\ue000", "\x07"])
def test_a_name_that_reads_other_than_it_is_written_is_found(name):
    assert hidden_characters(name)
