"""Full-text search in a read model (``shared.projection``), one way on both engines (issue #17).

- PostgreSQL: a ``tsvector`` column of the text's Russian stems and plain words (``document_sql``, a GIN index on
  it); a query's words are matched as prefixes of a word or of its stem (``to_tsquery('russian', 'уроки:*')`` is
  ``'урок':*``), every word required.
- SQLite (and memory stores): an FTS5 table (``unicode61``, diacritics removed: ё is е) of the text's words and each
  word's Snowball stem beside it (``document``; ``snowballstemmer`` runs the algorithm of PostgreSQL's ``russian``),
  matched the same way (``fts_match``).

So "уроки" finds "урок", "контрольной" finds "контрольная", "матем" finds "математика" on every store. Only the
words of a query (letters and digits, at most ``MAX_WORDS``) ever reach SQL, as parameters.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import snowballstemmer

MAX_WORDS = 8
DOCUMENT_SQL = "to_tsvector('russian', ?) || to_tsvector('simple', ?)"  # takes the text twice


def plain(text: str) -> str:
    return text.casefold().replace("ё", "е")


@lru_cache(maxsize=1)
def _russian() -> Any:
    return snowballstemmer.stemmer("russian")  # the Snowball algorithm PostgreSQL's 'russian' configuration runs


@lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """A word's Snowball stem, remembered: a language's common words recur (Python's Snowball takes ~0.1 ms a word:
    without the cache, indexing a message of 8 words spent most of its time stemming)."""
    return _russian().stemWord(word)


def words(text: str | None, limit: int | None = MAX_WORDS) -> list[str]:
    """The words of a text (letters and digits, case and ё folded), the first ``limit`` of them."""
    found = re.findall(r"[^\W_]+", plain(text or ""))
    return found if limit is None else found[:limit]


def document(text: str) -> str:
    """What an FTS5 row indexes for ``text``: its words, then the stems that differ from them."""
    body = plain(text)
    every = words(body, None)
    return " ".join([body, *sorted({stem(w) for w in every} - set(every))])


_LEXEMES: dict[str, bool] = {}  # PostgreSQL: whether a word has a lexeme in 'russian' (False: a stop word)


def kept_terms(db: Any, terms: list[str]) -> list[str]:
    """The words a query matches by: on PostgreSQL the stop words ("в", "и": no lexeme) are left out rather than
    required, on SQLite lone letters, unless nothing else is asked."""
    if db.postgres:
        unknown = [t for t in dict.fromkeys(terms) if t not in _LEXEMES]
        if unknown:  # asked once per word and process: a search's words are mostly ones asked before
            if len(_LEXEMES) > 100_000:
                _LEXEMES.clear()
            kept = {row["t"] for row in db.rows("SELECT t FROM unnest(?::text[]) AS w(t) "
                                                "WHERE numnode(to_tsquery('russian', t || ':*')) > 0", (unknown,))}
            _LEXEMES.update({t: t in kept for t in unknown})
        return [t for t in terms if _LEXEMES[t]] or terms
    return [t for t in terms if len(t) > 1 or t.isdigit()] or terms


def tsquery_match(column: str, terms: list[str]) -> tuple[str, list[str]]:
    """PostgreSQL: the condition that ``column`` (a ``tsvector``) has every term as a prefix of a word or stem."""
    condition = column + " @@ (" + " && ".join(
        "(to_tsquery('russian', ?) || to_tsquery('simple', ?))" for _ in terms) + ")"
    params: list[str] = []
    for term in terms:
        params += [f"{term}:*", f"{term}:*"]
    return condition, params


def fts_match(terms: list[str]) -> str:
    """SQLite FTS5: the MATCH expression of every term as a prefix of a word or of its stem."""
    return " AND ".join(f'("{t}"* OR "{stem(t)}"*)' for t in terms)
