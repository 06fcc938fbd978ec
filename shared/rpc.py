"""RPC over RabbitMQ without persistence or publisher confirms (issue #17, live chat delivery).

nameko publishes every RPC request and reply as a persistent message and waits for the broker's confirm of each.
An RPC needs neither: its caller waits for the answer and gives up after a timeout (``RpcTimeout``: the gateway
answers 503 ``service.unavailable``; a client retries with its idempotency key / ``client_message_id``), so a
request or reply the broker loses is a timeout, not a lost fact. What must not be lost (an aggregate's events)
goes through the outbox relay, persistent and confirmed (``shared.bus.publisher``); nothing here touches it.

What the confirm cost: a persistent request in a service's durable queue is confirmed once the broker has written
it to disk or the service has acked it, and the service acks only after it has answered. The caller's
``publish`` therefore returned after the whole call (or a disk flush), and only then read the reply: the answer
came after the WebSocket delivery of the same message, and every RPC cost the broker a disk write and both ends a
confirm round trip.

``mandatory`` goes with the confirm: nameko asks for it to raise ``UnknownService`` when no queue is bound, which
only a confirm can tell in time (without one, the broker's return would surface on some later read of the
producer's connection). A service's queue is durable and outlives the service, so a request to a service that
is down waits in its queue until the service is back or the caller's timeout ends the wait.

- ``TransientPublisher``: the publisher of requests and replies (non-persistent, unconfirmed, not mandatory).
- ``rpc_entrypoint``: nameko's ``@rpc`` whose replies go out through it (``shared.service.rpc`` uses it).
- ``TransientRpcProxy``: nameko's ``RpcProxy`` dependency (a service calling another) whose requests do.
- ``TransientClusterRpcProxy``: nameko's standalone ``ClusterRpcProxy`` (the gateway) whose requests do, and whose
  replies are read without acks (its own exclusive queue, one reader).
"""

from __future__ import annotations

from typing import Any

from kombu import Connection, Consumer
from kombu.common import maybe_declare
from kombu.pools import producers
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
    SERIALIZER_CONFIG_KEY,
)
from nameko.rpc import MethodProxy, Responder, Rpc, RpcConsumer, RpcProxy, ServiceProxy, get_rpc_exchange
from nameko.standalone.rpc import ClusterProxy, ClusterRpcProxy, PollingQueueConsumer, SingleThreadedReplyListener

from shared.bus.delivery import DeliveryQueueConsumer

__all__ = ["TransientClusterRpcProxy", "TransientPublisher", "TransientRpcProxy", "rpc_entrypoint"]


_POOL_KEYS: dict[tuple, Connection] = {}


def _pool_key(amqp_uri: str, ssl: Any, login_method: Any) -> Connection:
    """The kombu ``Connection`` that names a broker's producer pool (``kombu.pools.producers[key]``); the pool
    clones it for the connections it opens, the key itself never connects. nameko builds a new one for every
    publish only to find the pool (parsing the URI, trying to import librabbitmq: a third of an RPC's publish)."""
    key = (amqp_uri, repr(ssl), login_method)
    found = _POOL_KEYS.get(key)
    if found is None:
        options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False}
        found = _POOL_KEYS[key] = Connection(amqp_uri, transport_options=options, ssl=ssl, login_method=login_method)
    return found


class TransientPublisher(Publisher):
    """An RPC message: not written to disk, not confirmed, not mandatory (see the module's docstring), published
    by a producer of the broker's pool found through one kept key (``_pool_key``)."""

    use_confirms = False
    delivery_mode = NON_PERSISTENT
    mandatory = False

    def publish(self, payload: Any, **kwargs: Any) -> None:
        """nameko's ``Publisher.publish`` without its per-publish ``Connection``, confirm and ``mandatory`` (which
        nameko's MethodProxy asks for on every call: only a confirm could tell it in time)."""
        options = self.publish_kwargs.copy()
        headers = options.pop("headers", {}).copy()
        headers.update(kwargs.pop("headers", {}))
        headers.update(kwargs.pop("extra_headers", {}))
        for ignored in ("use_confirms", "transport_options", "mandatory", "delivery_mode"):
            kwargs.pop(ignored, None)
        settings = {name: kwargs.pop(name, getattr(self, name)) for name in (
            "priority", "expiration", "serializer", "compression", "retry", "retry_policy")}
        declare = [*self.declare, *kwargs.pop("declare", ())]
        options.update(kwargs)
        with producers[_pool_key(self.amqp_uri, self.ssl, self.login_method)].acquire(block=True) as producer:
            producer.publish(payload, headers=headers, delivery_mode=NON_PERSISTENT, mandatory=False,
                             declare=declare, **settings, **options)


class _Responder(Responder):
    publisher_cls = TransientPublisher


class _RpcConsumer(RpcConsumer):
    queue_consumer = DeliveryQueueConsumer()  # the event handlers' (shared/bus/consumer.py): one connection

    def handle_result(self, message, result, exc_info):
        """nameko's, with the reply published by ``TransientPublisher`` (then the request is acked, as there)."""
        config = self.container.config
        responder = _Responder(config[AMQP_URI_CONFIG_KEY], get_rpc_exchange(config),
                               config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER), message,
                               ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class _Rpc(Rpc):
    rpc_consumer = _RpcConsumer()


rpc_entrypoint = _Rpc.decorator


class _MethodProxy(MethodProxy):
    publisher_cls = TransientPublisher


class _ServiceProxy(ServiceProxy):
    def __getattr__(self, name: str) -> _MethodProxy:
        return _MethodProxy(self.worker_ctx, self.service_name, name, self.reply_listener, **self.options)


class TransientRpcProxy(RpcProxy):
    """``RpcProxy(service)`` whose requests are transient and unconfirmed."""

    def get_dependency(self, worker_ctx) -> _ServiceProxy:
        return _ServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener, **self.options)


class _ClusterProxy(ClusterProxy):
    def __getattr__(self, name: str) -> _ServiceProxy:
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._proxies:
            self._proxies[name] = _ServiceProxy(self._worker_ctx, name, self._reply_listener)
        return self._proxies[name]


class _NoAckRepliesConsumer(PollingQueueConsumer):
    """nameko's polling consumer of a standalone proxy's replies, its queue consumed without acks: the queue is
    the proxy's own (exclusive, deleted with its connection) and a reply is read once by the one caller waiting for
    it, so an ack per reply was a frame written by the caller and handled by the broker for nothing (a tenth of
    the caller's CPU a call). ``ack_message`` of a no-ack delivery does nothing (kombu)."""

    def _setup_consumer(self) -> None:
        """nameko's, with ``no_ack=True``."""
        if self.consumer is not None:
            try:
                self.consumer.cancel()
            except OSError:  # the connection is gone already (nameko ignores this too)
                pass
        channel = self.connection.channel()
        self.queue = self.queue.bind(channel)
        maybe_declare(self.queue, channel)
        consumer = Consumer(channel, queues=[self.queue], accept=self.accept, no_ack=True)
        consumer.callbacks = [self.on_message]
        consumer.consume()
        self.consumer = consumer


class _ReplyListener(SingleThreadedReplyListener):
    def __init__(self, timeout: float | None = None):
        super().__init__(timeout)
        self.queue_consumer = _NoAckRepliesConsumer(timeout=timeout)


class TransientClusterRpcProxy(ClusterRpcProxy):
    """nameko's standalone ``ClusterRpcProxy`` whose requests are transient and unconfirmed, its replies read
    without acks (``_NoAckRepliesConsumer``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("reply_listener_cls", _ReplyListener)
        super().__init__(*args, **kwargs)
        self._proxy = _ClusterProxy(self._worker_ctx, self._reply_listener)
