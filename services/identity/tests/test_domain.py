"""Sign-in challenges and phone numbers (ID-1, ID-9)."""

from datetime import datetime, timedelta, timezone

import pytest

from identity.domain import MAX_ATTEMPTS, SignInChallenge, hash_code
from identity.phones import normalise_phone
from shared.errors import Gone, Invalid, TooManyRequests

pytestmark = pytest.mark.unit

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
SECRET = "s3cret"


def challenge(code: str = "123456") -> SignInChallenge:
    return SignInChallenge(phone="+79001234567", channel="sms", salt="salt", code_hash=hash_code(SECRET, "salt", code),
                           expires_at=NOW + timedelta(minutes=5), resend_at=NOW + timedelta(minutes=1))


@pytest.mark.parametrize("raw", ["+7 900 123-45-67", "8 (900) 123 45 67", "9001234567", "+79001234567"])
def test_phone_numbers_are_normalised_to_e164_ID_1(raw):
    assert normalise_phone(raw) == "+79001234567"


@pytest.mark.parametrize("raw", ["12", "+7 900", "not a phone", "+999 123"])
def test_a_bad_phone_number_gets_a_clear_error_ID_1(raw):
    with pytest.raises(Invalid) as info:
        normalise_phone(raw)
    assert info.value.code == "phone.invalid"


def test_the_code_is_stored_hashed_never_in_clear_ID_9():
    c = challenge("654321")
    assert "654321" not in repr(vars(c))
    assert c.check(SECRET, "654321", NOW)


def test_a_wrong_code_counts_and_the_challenge_dies_after_a_few_ID_1():
    c = challenge()
    for _ in range(MAX_ATTEMPTS):
        assert c.check(SECRET, "000000", NOW) is False
    with pytest.raises(TooManyRequests) as info:
        c.check(SECRET, "123456", NOW)
    assert info.value.code == "sign_in.too_many_attempts"


def test_an_expired_code_is_refused_ID_1():
    with pytest.raises(Gone) as info:
        challenge().check(SECRET, "123456", NOW + timedelta(minutes=5))
    assert info.value.code == "sign_in.code_expired"


def test_a_used_code_cannot_sign_in_twice():
    import uuid

    c = challenge()
    c.confirm(uuid.uuid4())
    with pytest.raises(Gone) as info:
        c.check(SECRET, "123456", NOW)
    assert info.value.code == "sign_in.already_used"
