"""What the gateway accepts at its door: JSON of bounded depth and text that is
Unicode a store can keep (no lone surrogates, no NUL), in bodies of bounded size.

Services and their stores never see anything else, so no input reaches them that
makes them fail (a lone surrogate cannot be encoded as UTF-8; PostgreSQL refuses
NUL in text).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask.json.provider import DefaultJSONProvider

from shared.errors import DomainError, Invalid

JSON_MAX_DEPTH = 32  # the deepest document any endpoint takes (a webhook's records) is under 8
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class TooLarge(DomainError):
    status = 413
    default_code = "request.too_large"


def content_too_large(limit: int) -> TooLarge:
    return TooLarge("request.too_large", f"The body is larger than this endpoint takes ({limit} bytes).",
                    {"max_bytes": limit})


def _bad_text(where: str, text: str) -> Invalid:
    found = _BAD_TEXT.search(text)
    reason = "a NUL character" if found and found.group() == "\x00" else "a lone surrogate (not valid Unicode)"
    return Invalid("request.invalid_text", f"Text in the {where} contains {reason}.",
                   {"where": where, "position": found.start() if found else None})


def check_text(value: Any, where: str, max_depth: int = JSON_MAX_DEPTH) -> None:
    """Refuse (400) documents nested deeper than ``max_depth`` and strings, keys included,
    that are not storable Unicode. Iterative: a hostile document cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _BAD_TEXT.search(item):
                raise _bad_text(where, item)
        elif isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                raise Invalid("request.too_deep", f"The {where} is nested deeper than {max_depth} levels.",
                              {"max_depth": max_depth})
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and _BAD_TEXT.search(key):
                        raise _bad_text(where, key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def parse_json(data: str | bytes, where: str = "body") -> Any:
    """JSON text to Python, or a 400 with a code: malformed, too deep, or not storable text."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise Invalid("request.too_deep", f"The {where} is nested deeper than {JSON_MAX_DEPTH} levels.",
                      {"max_depth": JSON_MAX_DEPTH}) from None
    except ValueError as exc:  # JSONDecodeError, and bytes that are not UTF-8
        raise Invalid("request.invalid_json", f"The {where} is not valid JSON: {exc}") from None
    check_text(value, where)
    return value


class GatewayJSONProvider(DefaultJSONProvider):
    """``request.get_json`` goes through ``parse_json``; dumping stays Flask's."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json(s)


def check_raw_json(data: bytes, where: str = "body") -> None:
    """For a body passed on as it is (a signed webhook): refuse what ``parse_json`` refuses for
    depth and text, and leave malformed JSON to the service, which has its own code for it."""
    try:
        parse_json(data, where)
    except Invalid as exc:
        if exc.code != "request.invalid_json":
            raise
