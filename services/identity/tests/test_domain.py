"""Sign-in challenges, phone numbers, profiles, passwords and privacy (unit)."""

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from identity.domain import MAX_ATTEMPTS, Account, SignInChallenge, hash_code, validate_profile
from identity.passwords import hash_password, verify_password
from identity.phones import normalise_email, normalise_phone
from identity.privacy import Relation, view
from shared.errors import Gone, Invalid, TooManyRequests

pytestmark = pytest.mark.unit

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
SECRET = "s3cret"


def challenge(code: str = "123456") -> SignInChallenge:
    return SignInChallenge(address="+79001234567", channel="sms", salt="salt",
                           code_hash=hash_code(SECRET, "salt", code), expires_at=NOW + timedelta(minutes=5),
                           resend_at=NOW + timedelta(minutes=1))


@pytest.mark.parametrize("raw", ["+7 900 123-45-67", "8 (900) 123 45 67", "9001234567", "+79001234567"])
def test_phone_numbers_are_normalised_to_e164_ID_1(raw):
    assert normalise_phone(raw) == "+79001234567"


@pytest.mark.parametrize("raw", ["12", "+7 900", "not a phone", "+999 123"])
def test_a_bad_phone_number_gets_a_clear_error_ID_1(raw):
    with pytest.raises(Invalid) as info:
        normalise_phone(raw)
    assert info.value.code == "phone.invalid"


def test_email_addresses_are_checked_and_lower_cased_ID_4():
    assert normalise_email(" Kid@Example.ORG ") == "kid@example.org"
    with pytest.raises(Invalid) as info:
        normalise_email("kid@")
    assert info.value.code == "email.invalid"


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
    c = challenge()
    c.confirm(uuid.uuid4(), NOW)
    with pytest.raises(Gone) as info:
        c.check(SECRET, "123456", NOW)
    assert info.value.code == "sign_in.already_used"


@pytest.mark.parametrize("profile, bad", [
    (("", "Мария", None, date(2014, 1, 1), "female"), "last_name"),
    (("Иванова", "M4ria", None, date(2014, 1, 1), "female"), "first_name"),
    (("Иванова", "Мария", None, date(1800, 1, 1), "female"), "birth_date"),
    (("Иванова", "Мария", None, date(2014, 1, 1), "other"), "sex"),
    # an outside audit: names that read other than they are written (a direction override, a zero-width space)
    (("\u202eавонавИ", "Мария", None, date(2014, 1, 1), "female"), "last_name"),
    (("Иванова", "Ма\u200bрия", None, date(2014, 1, 1), "female"), "first_name"),
    (("Иванова", "Мария", "Пет\u2066ровна", date(2014, 1, 1), "female"), "patronymic"),
])
def test_a_profile_needs_real_names_a_plausible_birth_date_and_a_sex_ID_5(profile, bad):
    with pytest.raises(Invalid) as info:
        validate_profile(*profile, today=NOW.date())
    assert list(info.value.details["fields"]) == [bad]


def test_the_patronymic_is_optional_ID_5():
    validate_profile("Иванова", "Мария", None, date(2014, 1, 1), "female", NOW.date())


def test_passwords_are_hashed_with_argon2id_and_never_kept_in_clear_ID_2():
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "Correct horse battery")
    assert not verify_password(None, "anything at all")


def account() -> Account:
    a = Account(phone="+79001234567", email=None, registered_via="phone")
    a.update_profile("Иванова", "Мария", "Петровна", date(2014, 5, 17), "female", a.id)
    return a


def test_nobody_but_the_person_sees_their_phone_or_email_ID_9():
    a = account()
    assert view(a, Relation.SELF)["phone"] == "+79001234567"
    for rel in (Relation.PARENT, Relation.CHILD, Relation.OTHER):
        shown = view(a, rel)
        assert "phone" not in shown and "email" not in shown


def test_a_parent_sees_the_childs_profile_PL_4():
    shown = view(account(), Relation.PARENT)
    assert shown["birth_date"] == date(2014, 5, 17) and shown["sex"] == "female"


def test_classmates_and_everyone_else_see_only_the_name_ID_7():
    # The name, and whether an e-journal confirmed them as a teacher (EJ-2): learning profile only.
    assert set(view(account(), Relation.OTHER)) == {"user_id", "last_name", "first_name", "patronymic", "relation",
                                                    "teacher_confirmed"}
