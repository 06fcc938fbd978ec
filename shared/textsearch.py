"""Full-text search in a read model (``shared.projection``), one way on every store (issue #17).

Every store indexes the same terms and matches a query by the same rule, all decided here in Python:

- a text's words: letters and digits, case and ё folded (``words``); each word's stem beside it (``stem``: the
  Snowball algorithm PostgreSQL's ``russian`` configuration runs, English for a word of ASCII letters as it does,
  none for a word with digits);
- a query's words, less the stop words (``STOP_WORDS``: PostgreSQL's russian.stop and english.stop) unless nothing
  else is asked (``kept_terms``); every word kept must be the start of a word or of a stem of the text.

PostgreSQL holds the terms as lexemes of a ``tsvector`` (``DOCUMENT_SQL`` with ``document_params``, a GIN index)
and asks each query word as quoted prefix lexemes (``tsquery``): no parser of its own in between, which read
"Тестоград-123456" as a word and the number "-123456", "3-14" as 3 and -14 and a query "1e5a00" as the phrase
"1e5" "a00". SQLite (and memory stores) hold them in an FTS5 table (``FTS5_TOKENIZE``: splits at spaces only what
``document`` wrote, nothing folded; it read й as и and "naïve" as "naive" when it tokenized the text itself) and
ask them with ``fts_match``. So "уроки" finds "урок", "контрольной" finds "контрольная", "матем" finds
"математика", "lessons" finds "lesson", and "для", "the" are no filter, on every store. Only the words of a query
(at most ``MAX_WORDS``) ever reach SQL, as parameters.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import snowballstemmer

MAX_WORDS = 8
DOCUMENT_SQL = "array_to_tsvector(?::text[])"  # takes document_params(text)
# FTS5: the words and stems ``document`` writes, split at its spaces, kept as they are (our words are letters and
# digits only: unicode61's token characters; they are folded already, diacritics are not removed).
FTS5_TOKENIZE = "tokenize = 'unicode61 remove_diacritics 0'"
# PostgreSQL's stop words of its 'russian' configuration (tsearch_data/russian.stop for words of letters,
# english.stop for words of ASCII letters): a query leaves them out (shared/tests/test_textsearch.py checks
# PostgreSQL agrees).
STOP_WORDS = frozenset("""
и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне было вот от меня еще
нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас нибудь опять уж вам ведь там потом
себя ничего ей может они тут где есть надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под
будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее сейчас были куда
зачем всех никогда можно при наконец два об другой хоть после над больше тот через эти нас про всего них какая
много разве три эту моя впрочем хорошо свою этой перед иногда лучше чуть том нельзя такой им более всегда конечно
всю между
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers herself it
its itself they them their theirs themselves what which who whom this that these those am is are was were be been
being have has had having do does did doing a an the and but if or because as until while of at by for with about
against between into through during before after above below to from up down in out on off over under again
further then once here there when where why how all any both each few more most other some such no nor not only
own same so than too very s t can will just don should now
""".split())


def plain(text: str) -> str:
    return text.casefold().replace("ё", "е")


@lru_cache(maxsize=2)
def _stemmer(language: str) -> Any:
    return snowballstemmer.stemmer(language)  # the Snowball algorithms PostgreSQL's 'russian' configuration runs


@lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """A word's stem as PostgreSQL's 'russian' configuration makes it: English Snowball for ASCII letters, Russian
    Snowball for other letters, none for a word with digits. Remembered: a language's common words recur (Python's
    Snowball takes ~0.1 ms a word: without the cache, indexing a message of 8 words spent most of its time
    stemming)."""
    if not word.isalpha():
        return word
    return _stemmer("english" if word.isascii() else "russian").stemWord(word)


def words(text: str | None, limit: int | None = MAX_WORDS) -> list[str]:
    """The words of a text (letters and digits, case and ё folded), the first ``limit`` of them."""
    found = re.findall(r"[^\W_]+", plain(text or ""))
    return found if limit is None else found[:limit]


def indexed_terms(text: str) -> list[str]:
    """What a text is indexed by on every store: its words and the stems that differ from them."""
    every = words(text, None)
    return [*every, *sorted({stem(w) for w in every} - set(every))]


def document_params(text: str) -> tuple[list[str]]:
    """PostgreSQL: what ``DOCUMENT_SQL`` takes for ``text``: its terms as lexemes."""
    return (sorted(set(indexed_terms(text))),)


def document(text: str) -> str:
    """What an FTS5 row indexes for ``text`` (``FTS5_TOKENIZE``): its terms."""
    return " ".join(indexed_terms(text))


def _lexeme_prefix(term: str) -> str:
    """A term as one quoted lexeme of a ``tsquery``, matched as a prefix (no parser in between)."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "':*"


def kept_terms(words_asked: list[str]) -> list[str]:
    """The words a query matches by: its stop words ("в", "для", "the") are left out rather than required, unless
    nothing else is asked."""
    return [t for t in words_asked if t not in STOP_WORDS] or words_asked


def tsquery(terms: list[str]) -> tuple[str, list[str]]:
    """PostgreSQL: the ``tsquery`` of every term as a prefix of a word or stem (an expression and its parameters)."""
    params = [" | ".join(dict.fromkeys([_lexeme_prefix(t), _lexeme_prefix(stem(t))])) for t in terms]
    return "(" + " && ".join("?::tsquery" for _ in terms) + ")", params


def tsquery_match(column: str, terms: list[str]) -> tuple[str, list[str]]:
    """PostgreSQL: the condition that ``column`` (a ``tsvector``) has every term as a prefix of a word or stem."""
    query, params = tsquery(terms)
    return f"{column} @@ {query}", params


def fts_match(terms: list[str]) -> str:
    """SQLite FTS5: the MATCH expression of every term as a prefix of a word or of its stem."""
    return " AND ".join(f'("{t}"* OR "{stem(t)}"*)' for t in terms)
