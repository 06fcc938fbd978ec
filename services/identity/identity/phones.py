"""Phone numbers (normalised in shared.phones) and e-mail addresses, checked and lower-cased."""

from __future__ import annotations

from marshmallow import ValidationError
from marshmallow.validate import Email

from shared.errors import Invalid
from shared.phones import normalise_phone

__all__ = ["normalise_email", "normalise_phone"]


def normalise_email(raw: str) -> str:
    address = raw.strip().lower()
    try:
        Email()(address)
    except ValidationError:
        raise Invalid("email.invalid", "This is not a valid e-mail address.", {"email": raw}) from None
    return address
