"""Secrets a service must keep and use again (an e-journal's webhook and OAuth client
secrets) are sealed with the platform's keys before they enter an event.

``SFERA_SECRETS_KEYS`` lists Fernet keys, newest first (``MultiFernet``): a value
is sealed with the first and opened with any, so a new key goes in front, a
re-seal (``reseal``) moves every stored value to it, and then the old key can
be removed. A sealed value is ``fernet:<token>``; a value without the prefix
was stored before sealing existed and is read as it is until re-sealed.

Why fields, not eventsourcing's whole-store ``CIPHER_TOPIC``: that cipher takes
one key (AES-GCM), so a new key makes every stored event unreadable and the
append-only store offers no way to re-encrypt; it also pays for every event of
the roster and timetable, which hold nothing secret. Sealing the few secret
fields keeps the rest of the store readable by the relay and by operators,
and rotation is one more event per provider.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.config import settings

PREFIX = "fernet:"


class SecretUnreadable(RuntimeError):
    """None of the configured keys opens a stored secret (a key was removed before re-sealing)."""


class SecretBox:
    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("SFERA_SECRETS_KEYS is empty")
        self.newest = Fernet(keys[0])
        self.keys = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def from_settings(cls) -> SecretBox:
        return cls(settings().secrets_keys)

    def seal(self, clear: str) -> str:
        return PREFIX + self.keys.encrypt(clear.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # stored before sealing existed
        try:
            return self.keys.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("a stored secret opens with none of SFERA_SECRETS_KEYS: was a key removed "
                                   "before `python -m ejournal_bridge.sealing reseal` ran with the new one?") from None

    def reseal(self, stored: str) -> str:
        """The value sealed with the newest key (itself when it already is)."""
        if not stored.startswith(PREFIX):
            return self.seal(stored)
        token = stored.removeprefix(PREFIX).encode()
        try:
            self.newest.decrypt(token)
            return stored
        except InvalidToken:
            pass
        try:
            return PREFIX + self.keys.rotate(token).decode()
        except InvalidToken:
            raise SecretUnreadable("a stored secret opens with none of SFERA_SECRETS_KEYS") from None
