"""Production mode's refusals, one rule at a time (the processes themselves: tests/e2e/test_production.py)."""

import base64
import secrets

import pytest

from shared.config import DEV_SECRETS_KEY
from shared.production import UnsafeConfiguration, check_production

pytestmark = pytest.mark.unit


def proper(**changes: str) -> dict[str, str]:
    env = {
        "SFERA_ENV": "production",
        "SFERA_AMQP_URI": "amqp://sfera:a-long-broker-password@rabbit:5672/",
        "SFERA_JWT_SECRET": secrets.token_urlsafe(48),
        "SFERA_CODE_SECRET": secrets.token_urlsafe(48),
        "SFERA_SFU_TOKEN_SECRET": secrets.token_urlsafe(48),
        "SFERA_SECRETS_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "SFERA_SMS_ADAPTER": "http",
        "SFERA_MAIL_ADAPTER": "smtp",
        "SFERA_PUBLIC_URL": "https://sfera.example.org",
        "SFERA_SFU_URL": "wss://sfu.example.org/ws",
        "PERSISTENCE": "postgres",
        "SFERA_PG_PASSWORD": "a-proper-database-password",
    }
    return {k: v for k, v in {**env, **changes}.items() if v is not None}


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(UnsafeConfiguration) as info:
        check_production("test", env)
    return str(info.value)


def test_proper_values_start():
    check_production("test", proper())


def test_development_checks_nothing():
    check_production("test", {})
    check_production("test", {"SFERA_ENV": "development"})


def test_an_unknown_mode_is_refused_rather_than_taken_for_development():
    assert "SFERA_ENV='prod'" in refusal({"SFERA_ENV": "prod"})


@pytest.mark.parametrize("name", ["SFERA_JWT_SECRET", "SFERA_CODE_SECRET", "SFERA_SFU_TOKEN_SECRET",
                                  "SFERA_SECRETS_KEYS", "SFERA_SMS_ADAPTER", "SFERA_MAIL_ADAPTER",
                                  "SFERA_PUBLIC_URL", "SFERA_SFU_URL", "SFERA_AMQP_URI", "SFERA_PG_PASSWORD"])
def test_each_repository_default_is_refused(name):
    message = refusal(proper(**{name: None}))
    assert name in message and "SFERA_ENV=production" in message


@pytest.mark.parametrize("name,value", [
    ("SFERA_JWT_SECRET", "short"),
    ("SFERA_LINK_SECRET", "dev-only-code-secret-change-me"),
    ("SFERA_SECRETS_KEYS", "not-a-fernet-key"),
    # a fixed key (it names the test: the same on every pytest-xdist worker) beside the development one
    ("SFERA_SECRETS_KEYS", f"{base64.urlsafe_b64encode(bytes(range(32))).decode()},{DEV_SECRETS_KEY}"),
    ("SFERA_SMS_ADAPTER", "devinbox"),
    ("SFERA_PUBLIC_URL", "http://sfera.example.org"),
    ("SFERA_SFU_URL", "ws://sfu.example.org/ws"),
    ("SFERA_SFU_PUBLIC_URL", "ws://sfu-2.example.org/ws"),
    ("SFERA_AMQP_URI", "amqp://guest:guest@rabbit:5672/"),
    ("PERSISTENCE", "memory"),
])
def test_unsafe_values_are_refused(name, value):
    assert name in refusal(proper(**{name: value}))


def test_sqlite_needs_no_database_password():
    check_production("test", proper(PERSISTENCE="sqlite", SFERA_PG_PASSWORD=None))


@pytest.mark.parametrize("name", ["SFERA_FAULT_RELAY_KILL_AFTER_PUBLISH", "SFERA_FAULT_CONSUMER_KILL_AFTER_COMMIT",
                                  "SFERA_FAULT_ANY_FUTURE_SWITCH"])
@pytest.mark.parametrize("value", ["1", "0", ""])
def test_a_fault_injection_switch_is_refused_whatever_its_value(name, value):
    message = refusal(proper(**{name: value}))
    assert name in message and "fault injection" in message and "SFERA_ENV=production" in message
    assert "SFERA_JWT_SECRET" not in message


def test_fault_injection_switches_stay_allowed_in_development():
    check_production("test", {"SFERA_ENV": "development", "SFERA_FAULT_RELAY_KILL_AFTER_PUBLISH": "1"})


def test_the_fault_switches_the_code_reads_are_all_caught_by_the_prefix():
    from shared.bus import consumer, relay
    from shared.production import FAULT_PREFIX

    for name in (relay.FAULT_KILL_AFTER_PUBLISH, consumer.FAULT_KILL_AFTER_COMMIT):
        assert name.startswith(FAULT_PREFIX)
