"""Lists that page by ``?limit=&cursor=`` with the next page's cursor in the ``X-Next-Cursor`` header, the body
keeping the list's shape (a JSON array): the one helper of every such list route (chats, the organization's inbox,
school's classes, invites, join requests, documents, articles, channels, the applications waiting for an operator).

Without ``limit`` and ``cursor`` the route answers the whole list, as it did before it paged: clients in the field
read the array whole, and a default page size would cut their lists short without a word (nothing tells an old
client to follow ``X-Next-Cursor``). The services answer the whole list from their database too, not from memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import jsonify
from marshmallow import Schema, fields, validate

from gateway.api import call
from shared.paging import Cursor

PAGE_MAX = 200  # the services' largest page of these lists
NEXT_CURSOR = "X-Next-Cursor"
PAGING_ERRORS = ("paging.invalid_cursor",)
PAGED = "; with ?limit= a page, the next page's cursor in the X-Next-Cursor header"  # for summaries


class ListQuery(Schema):
    """A list answered whole without ``limit`` and ``cursor`` (as before paging), else a page of it."""

    # The OpenAPI document describes the X-Next-Cursor header of the routes that take this query.
    next_cursor_header = NEXT_CURSOR

    cursor = Cursor()
    limit = fields.Integer(load_default=None, strict=False, validate=validate.Range(min=1, max=PAGE_MAX),
                           metadata={"description": f"Page size, 1..{PAGE_MAX}; without it (and a cursor) the "
                                                    "whole list"})


def listed(service: str, method: str, query: dict, view: Callable[[Any], Any] | None = None, *,
           default_limit: int = 50, **kwargs: Any):
    """A service's list: whole without ``limit`` and ``cursor``; else a page (``{items, next_cursor}`` from the
    service), the next one's cursor in the ``X-Next-Cursor`` header. ``view`` shapes each item (both ways)."""
    shape = view or (lambda item: item)
    if query["cursor"] is None and query["limit"] is None:
        return [shape(item) for item in call(service, method, **kwargs)]
    page = call(service, method, **kwargs, cursor=query["cursor"], limit=query["limit"] or default_limit)
    response = jsonify([shape(item) for item in page["items"]])
    if page["next_cursor"]:
        response.headers[NEXT_CURSOR] = page["next_cursor"]
    return response
