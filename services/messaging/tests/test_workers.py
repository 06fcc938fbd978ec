"""Messaging's nameko workers (issue #17): a post waits for its chat's turn in a worker of its own, so posts into
several chats at once need more than the default ten (bench.messaging_trace, 200 posts/s over 5 chats)."""

from __future__ import annotations

from messaging.service import MessagingService
from shared.service import WORKERS, service_workers


class Plain:
    name = "plain"


def test_messaging_runs_more_workers_than_a_service_that_says_none(monkeypatch):
    monkeypatch.delenv("SFERA_SERVICE_WORKERS", raising=False)
    assert service_workers(Plain) == WORKERS == 10
    assert service_workers(MessagingService) == 40


def test_the_environment_overrides_the_class_for_a_benchmark_baseline(monkeypatch):
    monkeypatch.setenv("SFERA_SERVICE_WORKERS", "10")
    assert service_workers(MessagingService) == 10
