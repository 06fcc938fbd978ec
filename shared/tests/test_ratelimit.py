"""Rate limits beside each kind of store: windows, countdowns, and atomicity."""

import threading
from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import TooManyRequests
from shared.ratelimit import Limit, RateLimiter
from shared.store import ensure_postgres_schema, store_env
from shared.store.testing import run_together

pytestmark = pytest.mark.integration

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
FIVE_AN_HOUR = Limit(timedelta(hours=1), 5, "x.too_many", "Too many; wait {wait} s.",
                     min_interval=timedelta(seconds=60), countdown_code="x.too_early",
                     countdown_message="Wait {wait} s.")


def limiter(settings, create=True) -> RateLimiter:
    if settings.persistence == "postgres":
        ensure_postgres_schema("limits", settings)
    return RateLimiter.for_store(store_env("limits", create_table=create, config=settings), "limits")


def test_countdown_then_window_then_a_fresh_window(store_settings):
    rl = limiter(store_settings)
    assert rl.hit("k", FIVE_AN_HOUR, NOW) == 60  # the countdown until the next hit
    with pytest.raises(TooManyRequests) as info:
        rl.hit("k", FIVE_AN_HOUR, NOW + timedelta(seconds=20))
    assert info.value.code == "x.too_early" and info.value.details["retry_after"] == 40
    waits = [rl.hit("k", FIVE_AN_HOUR, NOW + timedelta(minutes=2 * i)) for i in range(1, 5)]
    # the fifth hit spends the hour: the next one is allowed when the window ends, not after the countdown
    assert waits == [60, 60, 60, 3600 - 8 * 60]
    with pytest.raises(TooManyRequests) as info:
        rl.check("k", FIVE_AN_HOUR, NOW + timedelta(minutes=8, seconds=30))
    assert info.value.code == "x.too_many" and info.value.details["retry_after"] == 3600 - 8 * 60 - 30
    with pytest.raises(TooManyRequests) as info:
        rl.check("k", FIVE_AN_HOUR, NOW + timedelta(minutes=30))
    assert info.value.code == "x.too_many" and info.value.details["retry_after"] == 1800
    rl.hit("k", FIVE_AN_HOUR, NOW + timedelta(hours=1, minutes=1))
    rl.hit("other", FIVE_AN_HOUR, NOW)


def test_concurrent_hits_never_pass_the_limit(durable_store_settings):
    limiter(durable_store_settings)
    ten = Limit(timedelta(hours=1), 10, "x.too_many", "Too many.")
    barrier = threading.Barrier(8)

    def hammer() -> list[str]:
        rl = limiter(durable_store_settings, create=False)
        barrier.wait()
        outcomes = []
        for _ in range(5):
            try:
                rl.hit("hot", ten, NOW)
                outcomes.append("ok")
            except TooManyRequests:
                outcomes.append("refused")
        return outcomes

    outcomes = sum(run_together(*[hammer] * 8), [])
    assert outcomes.count("ok") == 10 and outcomes.count("refused") == 30
