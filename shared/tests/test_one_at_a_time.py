"""Issue #17: a handler whose events only wait for one another (the e-journal bridge's deliveries of a school take
its lock in turn) applies them one at a time, on a queue consumer of its own, so it never holds every worker of the
service: nameko gives each consumer ``max_workers`` messages at once, and RPCs then found no worker (503s)."""

from __future__ import annotations

from nameko.containers import ServiceContainer

from shared.bus.consumer import OneAtATimeEventHandler, ReliableEventHandler, consume_event, consume_event_one_at_a_time
from shared.contracts import CloudEvent
from shared.rpc import rpc_entrypoint as rpc


class Service:
    name = "one_at_a_time"

    @consume_event_one_at_a_time("identity.UserRegistered.v1")
    def slow(self, event: CloudEvent) -> bool:
        return True

    @consume_event("identity.UserRegistered.v1")
    def quick(self, event: CloudEvent) -> bool:
        return True

    @rpc
    def ping(self) -> str:
        return "pong"


def test_a_one_at_a_time_handler_has_one_message_in_flight_on_its_own_consumer():
    container = ServiceContainer(Service, {"AMQP_URI": "memory://", "max_workers": 10})
    by_method = {e.method_name: e for e in container.entrypoints}
    slow, quick, ping = by_method["slow"], by_method["quick"], by_method["ping"]
    assert isinstance(slow, OneAtATimeEventHandler) and isinstance(quick, ReliableEventHandler)
    assert slow.queue_consumer.prefetch_count == 1
    assert quick.queue_consumer.prefetch_count == 10
    # The RPCs' and the quick handler's consumer is another one: the slow handler's messages never fill it.
    assert slow.queue_consumer is not quick.queue_consumer
    assert ping.rpc_consumer.queue_consumer is quick.queue_consumer
