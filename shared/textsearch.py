"""Full-text search in a read model (``shared.projection``), one way on both engines (issue #17).

- PostgreSQL: a ``tsvector`` column of the text's Russian stems and its words as they are (``DOCUMENT_SQL`` with
  ``document_params``, a GIN index on it); a query's words are matched as prefixes of a word or of its stem
  (``to_tsquery('russian', 'уроки:*')`` is ``'урок':*``), every word required. Both sides are *our* words (letters
  and digits, ``words``), never PostgreSQL's parser's alone: it reads "Тестоград-123456" as a word and the number
  "-123456", "3-14" as 3 and -14, and a query "1e5a00" as the phrase "1e5" "a00", so such words were never found
  as typed. The words go in as lexemes (``array_to_tsvector``) and each query word as a quoted prefix lexeme.
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
DOCUMENT_SQL = "to_tsvector('russian', ?) || array_to_tsvector(?::text[])"  # takes document_params(text)


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


def document_params(text: str) -> tuple[str, list[str]]:
    """PostgreSQL: what ``DOCUMENT_SQL`` takes for ``text``: its words for the Russian stems, and the words
    themselves as lexemes."""
    every = words(text, None)
    return " ".join(every), sorted(set(every))


def _lexeme_prefix(term: str) -> str:
    """A query word as a ``tsquery`` of one quoted lexeme matched as a prefix (no parser in between)."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "':*"


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


def tsquery(terms: list[str]) -> tuple[str, list[str]]:
    """PostgreSQL: the ``tsquery`` of every term as a prefix of a word or stem (an expression and its parameters)."""
    params: list[str] = []
    for term in terms:
        params += [f"{term}:*", _lexeme_prefix(term)]
    return "(" + " && ".join("(to_tsquery('russian', ?) || ?::tsquery)" for _ in terms) + ")", params


def tsquery_match(column: str, terms: list[str]) -> tuple[str, list[str]]:
    """PostgreSQL: the condition that ``column`` (a ``tsvector``) has every term as a prefix of a word or stem."""
    query, params = tsquery(terms)
    return f"{column} @@ {query}", params


def fts_match(terms: list[str]) -> str:
    """SQLite FTS5: the MATCH expression of every term as a prefix of a word or of its stem."""
    return " AND ".join(f'("{t}"* OR "{stem(t)}"*)' for t in terms)
