"""Password hashing with argon2id (ID-2). The cost comes from the environment so
production can raise it; the defaults are RFC 9106's second recommended option
scaled to this platform's sign-in rate (see the benchmark for its cost)."""

from __future__ import annotations

import secrets
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shared.config import env_int
from shared.errors import Invalid

MIN_LENGTH = 8
MAX_LENGTH = 256


def hasher() -> PasswordHasher:
    return PasswordHasher(
        time_cost=env_int("SFERA_ARGON2_TIME_COST", 2),
        memory_cost=env_int("SFERA_ARGON2_MEMORY_KIB", 19456),
        parallelism=env_int("SFERA_ARGON2_PARALLELISM", 1),
        type=Type.ID,
    )


def check_strength(password: str) -> None:
    if not (MIN_LENGTH <= len(password) <= MAX_LENGTH):
        raise Invalid("password.too_weak", f"A password has {MIN_LENGTH} to {MAX_LENGTH} characters.")
    if password.isdigit() or len(set(password)) < 4:
        raise Invalid("password.too_weak", "Choose a password that is harder to guess.")


def _off_the_hub(fn, *args):
    """argon2 takes tens of milliseconds of CPU with the GIL released: under
    eventlet, run it in a real thread so the other green threads go on."""
    import sys

    if "eventlet" in sys.modules:
        from eventlet import patcher, tpool

        if patcher.is_monkey_patched("thread"):
            return tpool.execute(fn, *args)
    return fn(*args)


def hash_password(password: str) -> str:
    check_strength(password)
    return _off_the_hub(hasher().hash, password)


@lru_cache(maxsize=4)
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    """A hash of nobody's password with today's cost, verified when there is no real
    one: an unknown phone then takes the time of a wrong password (no account discovery)."""
    return hasher().hash(secrets.token_urlsafe(24))


def dummy_hash() -> str:
    h = hasher()
    return _off_the_hub(_dummy_hash, h.time_cost, h.memory_cost, h.parallelism)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; with no hash (no account, no password yet) the
    same argon2 work is done against a dummy hash and the answer is no."""
    try:
        matches = _off_the_hub(hasher().verify, password_hash or dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return matches and bool(password_hash)


def describe_cost() -> str:
    h = hasher()
    return f"argon2id t={h.time_cost} m={h.memory_cost} KiB p={h.parallelism}"
