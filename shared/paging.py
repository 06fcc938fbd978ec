"""Paging input, one shape everywhere: opaque cursors (made and read by the services,
checked at the gateway's door), page sizes and message sequence numbers.

A cursor is ``base64url("p1:" + the last key seen)``; anything else is refused with
``paging.invalid_cursor`` instead of silently starting again from the first page.
"""

from __future__ import annotations

import base64
import binascii

from marshmallow import fields, validate

from shared.errors import Invalid

_PREFIX = "p1:"
CURSOR_MAX_CHARS = 600
SEQ_MAX = 2**31 - 1  # far beyond any chat's history; bigger numbers are mistakes, not pages


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode((_PREFIX + key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The key a cursor stands for (``None`` for no cursor); a cursor we did not make is ``paging.invalid_cursor``."""
    if not cursor:
        return None
    try:
        if len(cursor) > CURSOR_MAX_CHARS:
            raise ValueError("too long")
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise Invalid("paging.invalid_cursor", "This cursor is not one a page gave; start from the first page.",
                      {"cursor": cursor[:100]}) from exc
    if not text.startswith(_PREFIX):
        raise Invalid("paging.invalid_cursor", "This cursor is not one a page gave; start from the first page.",
                      {"cursor": cursor[:100]})
    return text[len(_PREFIX):]


class Cursor(fields.String):
    """``?cursor=``: the ``next_cursor`` of the previous page, passed on as it is."""

    def __init__(self, **kwargs):
        kwargs.setdefault("load_default", None)
        kwargs.setdefault("metadata", {"description": "The previous page's next_cursor (opaque)"})
        super().__init__(validate=validate.Length(max=CURSOR_MAX_CHARS), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        decode_cursor(text)  # its own code (paging.invalid_cursor), not a generic field error
        return text


def Limit(default: int, maximum: int) -> fields.Integer:  # noqa: N802  (a field factory reads like a field)
    return fields.Integer(load_default=default, strict=False, validate=validate.Range(min=1, max=maximum),
                          metadata={"description": f"Page size, 1..{maximum}"})


def Seq(description: str) -> fields.Integer:  # noqa: N802
    return fields.Integer(load_default=None, validate=validate.Range(min=0, max=SEQ_MAX),
                          metadata={"description": description})

