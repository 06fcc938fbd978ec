"""A secret someone offers (a link's token, a webhook's signature) against the expected one, in constant time.

``hmac.compare_digest`` refuses two ``str`` with a character outside ASCII (``TypeError``): a caller who sent
``é`` where a token goes made the service fail (a 5xx to an anonymous request) instead of being told "not
found". Both sides are compared as UTF-8 bytes here, so any text is an answer, never an error; a lone surrogate
(which a direct RPC could carry past the gateway's check) is encoded as it is."""

from __future__ import annotations

import hmac


def same_secret(expected: str, offered: str) -> bool:
    """Whether ``offered`` is ``expected``, taking as long whatever text ``offered`` is."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), offered.encode("utf-8", "surrogatepass"))
