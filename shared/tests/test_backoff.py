"""Exponential back-off of failed tries beside each kind of store (password sign-in, issue #12)."""

import threading
from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import TooManyRequests
from shared.ratelimit import Backoff, RateLimiter
from shared.store import ensure_postgres_schema, store_env
from shared.store.testing import run_together

pytestmark = pytest.mark.integration

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
POLICY = Backoff(free=3, base=timedelta(seconds=10), cap=timedelta(seconds=60), forget_after=timedelta(hours=1),
                 code="x.backoff", message="Wait {wait} s.")


def limiter(settings, create=True) -> RateLimiter:
    if settings.persistence == "postgres":
        ensure_postgres_schema("limits", settings)
    return RateLimiter.for_store(store_env("limits", create_table=create, config=settings), "limits")


def test_free_tries_then_doubling_waits_up_to_the_cap_then_forgotten(store_settings):
    rl = limiter(store_settings)
    for _ in range(3):
        rl.reserve("k", POLICY, NOW)
    waits = []
    at = NOW
    for _ in range(5):
        with pytest.raises(TooManyRequests) as refused:
            rl.reserve("k", POLICY, at)
        waits.append(refused.value.details["retry_after"])
        at += timedelta(seconds=refused.value.details["retry_after"])
        rl.reserve("k", POLICY, at)
    assert waits == [10, 20, 40, 60, 60]
    assert rl.wait("k", POLICY, at + timedelta(hours=1, seconds=1)) == 0


def test_forgiven_and_cleared_tries_do_not_count(store_settings):
    rl = limiter(store_settings)
    for _ in range(3):
        rl.reserve("k", POLICY, NOW)
        rl.forgive("k")
    rl.reserve("k", POLICY, NOW)
    rl.clear("k")
    assert rl.wait("k", POLICY, NOW) == 0
    assert not rl.marked("known") and (rl.mark("known", NOW) or rl.marked("known"))


def test_a_free_try_stamped_a_moment_later_by_another_replica_does_not_make_one_wait(store_settings):
    rl = limiter(store_settings)
    rl.reserve("k", POLICY, NOW + timedelta(milliseconds=5))
    rl.reserve("k", POLICY, NOW)


def test_concurrent_tries_never_pass_the_free_ones(durable_store_settings):
    limiter(durable_store_settings)
    barrier = threading.Barrier(8)

    def hammer() -> list[str]:
        rl = limiter(durable_store_settings, create=False)
        barrier.wait()
        outcomes = []
        for _ in range(2):
            try:
                rl.reserve("hot", POLICY, NOW)
                outcomes.append("ok")
            except TooManyRequests:
                outcomes.append("refused")
        return outcomes

    outcomes = sum(run_together(*[hammer] * 8), [])
    assert outcomes.count("ok") == 3 and outcomes.count("refused") == 13
