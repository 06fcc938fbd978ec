"""Read-your-writes across services: a person reads their own change at once.

A service learns other services' facts from their events, a moment after the
owner saved them (school's ``MemberJoined`` reaches identity ~0.1 s after the
join was answered). A query that would *refuse* because its projection has not
caught up yet asks the owner of the fact instead (``confirmed``): a yes from the
projection is trusted as it is, a no is confirmed with the owner before it
becomes a refusal. The owner is asked only on that path (rare, and then right
after the person's own write), so queries stay local; the projection stays the
one that answers everyone else.

Use it wherever a refusal depends on another service's fact that the person
may just have changed themselves (e.g. identity's "only a student invites
parents", PL-1, right after joining a school by an invite link).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

AskOwner = Callable[[], bool]

# The owners a request may ask, by name, for the request being served (a nameko worker sets them up per
# entrypoint; its greenlet has its own context): deep inside an application a refusal finds its owner here
# without every use case passing it down.
_owners: ContextVar[dict[str, Callable[..., Any]] | None] = ContextVar("sfera_owners", default=None)


def confirmed(projected: bool, ask_owner: AskOwner | None) -> bool:
    """The projection's answer, or when it says no, the owner's (None: no owner to ask)."""
    if projected:
        return True
    return bool(ask_owner and ask_owner())


@contextmanager
def asking(**owners: Callable[..., Any]) -> Iterator[None]:
    """Within the block, ``owner(name)`` is the callable given by that name (e.g. ``school_membership``)."""
    token = _owners.set({**(_owners.get() or {}), **owners})
    try:
        yield
    finally:
        _owners.reset(token)


def owner(name: str) -> Callable[..., Any] | None:
    """The owner of that name this request may ask, or None (no request, or nobody to ask)."""
    return (_owners.get() or {}).get(name)
