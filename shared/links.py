"""Tokens of links people share (parent invites, school invite links): derived
from the link's id with a keyed hash, so a live link can be shown again without
keeping a usable secret in the event store, and a forged one is refused."""

from __future__ import annotations

import hashlib
import hmac
import uuid

from shared.compare import same_secret
from shared.config import settings


def _mac(kind: str, link_id: uuid.UUID) -> str:
    secret = settings().link_secret
    return hmac.new(secret.encode(), f"{kind}:{link_id}".encode(), hashlib.sha256).hexdigest()[:32]


def link_token(kind: str, link_id: uuid.UUID) -> str:
    return f"{link_id.hex}{_mac(kind, link_id)}"


def link_id_from_token(kind: str, token: str) -> uuid.UUID | None:
    """The link's id, or None for a token that is not one of ours."""
    if len(token) != 64:
        return None
    try:
        link_id = uuid.UUID(hex=token[:32])
    except ValueError:
        return None
    return link_id if same_secret(_mac(kind, link_id), token[32:]) else None
