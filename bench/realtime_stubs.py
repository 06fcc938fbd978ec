"""identity and messaging as ``bench.realtime`` needs them, over real nameko RPC: every session is active, and
chat number ``i`` (``chat_id(i)``) has the 40 members ``user_id(40 i) .. user_id(40 i + 39)``. Run by
``shared.runner bench.realtime_stubs:Identity`` / ``:Messaging``."""

from __future__ import annotations

import uuid

from nameko.rpc import rpc

CHAT_SIZE = 40
CHAT_BASE = 1 << 64


def user_id(n: int) -> str:
    return str(uuid.UUID(int=n + 1))


def chat_id(i: int) -> str:
    return str(uuid.UUID(int=CHAT_BASE + i))


class Identity:
    name = "identity"

    @rpc
    def session_is_active(self, session_id):
        return True


class Messaging:
    name = "messaging"

    @rpc
    def audience(self, chat_id):
        i = uuid.UUID(chat_id).int - CHAT_BASE
        return {"members": [user_id(CHAT_SIZE * i + k) for k in range(CHAT_SIZE)], "concealed": []}
