"""Phone numbers parsed and normalised to E.164 with ``phonenumbers`` (identity's
sign-in and school's applications name phones the same way)."""

from __future__ import annotations

import phonenumbers

from shared.config import env_str
from shared.errors import Invalid


def invalid_phone(raw: str) -> Invalid:
    return Invalid("phone.invalid", "This is not a valid phone number.", {"phone": raw})


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    region = default_region or env_str("SFERA_DEFAULT_PHONE_REGION", "RU")
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise invalid_phone(raw) from None
    if not phonenumbers.is_valid_number(number):
        raise invalid_phone(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
