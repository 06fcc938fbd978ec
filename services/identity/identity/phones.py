"""Phone numbers parsed and normalised to E.164 with ``phonenumbers``; e-mail
addresses checked and lower-cased."""

from __future__ import annotations

import phonenumbers
from marshmallow import ValidationError
from marshmallow.validate import Email

from identity.domain import invalid_phone
from shared.config import env_str
from shared.errors import Invalid


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    region = default_region or env_str("SFERA_DEFAULT_PHONE_REGION", "RU")
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise invalid_phone(raw) from None
    if not phonenumbers.is_valid_number(number):
        raise invalid_phone(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    address = raw.strip().lower()
    try:
        Email()(address)
    except ValidationError:
        raise Invalid("email.invalid", "This is not a valid e-mail address.", {"email": raw}) from None
    return address
