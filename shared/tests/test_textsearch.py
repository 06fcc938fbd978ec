"""shared.textsearch decides in Python what every store indexes and asks (issue #17): its stems and stop words are
PostgreSQL's 'russian' configuration's, so a store without PostgreSQL finds what PostgreSQL would."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from shared.textsearch import STOP_WORDS, document, kept_terms, stem, words
from tools.devstack.infra import postgres_bin

pytestmark = pytest.mark.integration

SAMPLE = ("уроки", "контрольной", "математика", "ёлка", "йодом", "пятницу", "lessons", "sciences", "running",
          "naïve", "aбв", "тест123", "1e5a00", "3", "б", "x")


def test_the_stems_and_stop_words_are_postgresqls_russian_configurations(postgres):
    with psycopg.connect(host="127.0.0.1", port=postgres.port, user=postgres.user, password=postgres.password,
                         dbname=postgres.database) as db:
        def lexemes(word: str) -> list[str]:
            return db.execute("SELECT array(SELECT unnest(tsvector_to_array(to_tsvector('russian', %s))))",
                              (word,)).fetchone()[0]

        for word in (w for w in words(" ".join(SAMPLE), None) if w.isalpha()):
            assert lexemes(word) == [stem(word)], word
        assert [w for w in sorted(STOP_WORDS) if lexemes(w)] == []
    data = Path("/usr/share/postgresql") / postgres_bin().parent.name / "tsearch_data"  # Debian's layout
    listed = {w for name in ("russian", "english") for w in (data / f"{name}.stop").read_text().split()}
    assert listed == STOP_WORDS


def test_a_query_leaves_out_its_stop_words_unless_it_has_nothing_else():
    assert kept_terms(words("контрольная по физике для 9 б")) == ["контрольная", "физике", "9", "б"]
    assert kept_terms(words("the lesson of Tuesday")) == ["lesson", "tuesday"]
    assert kept_terms(words("для")) == ["для"]
    assert document("Уроки, lessons: 1e5a00 Ёлка") == "уроки lessons 1e5a00 елка lesson елк урок"
