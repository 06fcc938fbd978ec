"""What every nameko service uses: the RPC entrypoint with typed errors, the
service's event store as a dependency, and per-entrypoint observability.
Importing it patches nothing; ``shared.runner`` runs the service."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import IntegrityError
from kombu import Connection
from marshmallow import ValidationError
from nameko.extensions import DependencyProvider

from shared.config import env_float, env_int
from shared.contracts import CloudEvent
from shared.errors import Conflict, DomainError, Invalid
from shared.observability import metrics
from shared.observability.http import HealthCheck
from shared.observability.logging import event_id_var, get_logger, request_id_var
from shared.rpc import rpc_entrypoint
from shared.store import ServiceApplication, make_application

log = get_logger("shared.service")


def rpc(fn: Callable) -> Callable:
    """RPC entrypoint whose typed errors are expected outcomes, not crashes.

    A command that lost an optimistic-concurrency race outside ``retrying`` saved
    nothing; it is answered ``409 request.conflict`` (try again), never a crash. Arguments
    a service loads through their schema (every caller's, not only the gateway's, which
    checked them first) are refused as the gateway refuses a body: ``400 request.invalid``
    with the fields' messages (it was a crash that reached the caller as a 502).
    (nameko's bare ``@rpc`` ignores keyword arguments given through ``partial``.)"""

    @functools.wraps(fn)
    def entrypoint(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except IntegrityError:
            raise Conflict("request.conflict", "Someone changed this at the same moment; try again.") from None
        except ValidationError as exc:
            raise Invalid("request.invalid", "The request is not valid.", {"fields": exc.messages}) from None

    return rpc_entrypoint(expected_exceptions=(DomainError,))(entrypoint)

REQUEST_ID_KEY = "request_id"
health_checks: dict[str, HealthCheck] = {}


class EventSourcedApp(DependencyProvider):
    """Injects the service's eventsourcing application (one per process)."""

    def __init__(self, app_cls: type[ServiceApplication], **kwargs: Any):
        self.app_cls = app_cls
        self.kwargs = kwargs
        self.app: ServiceApplication | None = None

    def setup(self) -> None:
        self.app = make_application(self.app_cls, self.container.service_name, **self.kwargs)
        health_checks["store"] = lambda: self.app.process_recorder.max_notification_id()
        self.stopping = False

    def start(self) -> None:
        interval = env_float("SFERA_READ_MODEL_INTERVAL", 1.0)
        if getattr(self.app, "read_models", ()) and interval > 0:
            self.container.spawn_managed_thread(lambda: self._keep_read_models(interval))

    def _keep_read_models(self, interval: float) -> None:
        """A query catches its read model up before reading (shared.projection); this green thread also does
        every ``interval`` seconds, so that the first query after a burst of writes finds little to apply
        (bench.school: 5.9 s for 2,000 joins at once without it). Replicas take turns on the position."""
        while not self.stopping:
            time.sleep(interval)  # eventlet's, under the runner
            for model in self.app.read_models:  # type: ignore[union-attr]
                try:
                    model.catch_up()
                except Exception:  # noqa: BLE001 - the next query or tick tries again; a bug shows in every query
                    if not self.stopping:
                        log.exception("read model catch-up failed", extra={"read_model": model.name})

    def stop(self) -> None:
        self.stopping = True
        if self.app is not None:
            self.app.close()

    def get_dependency(self, worker_ctx):
        return self.app


class Observability(DependencyProvider):
    """Per entrypoint: log context (request id, event id) and a latency histogram."""

    def worker_setup(self, worker_ctx) -> None:
        worker_ctx._sfera_started = time.perf_counter()
        request_id_var.set(worker_ctx.data.get(REQUEST_ID_KEY))
        event = worker_ctx.args[0] if worker_ctx.args else None
        event_id_var.set(event.id if isinstance(event, CloudEvent) else None)

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        if exc_info is None:
            outcome = "ok"
        elif isinstance(exc_info[1], DomainError):
            outcome = "refused"
        else:
            outcome = "error"  # nameko logs the traceback itself
        entrypoint = worker_ctx.entrypoint.method_name
        started = getattr(worker_ctx, "_sfera_started", None)
        elapsed = time.perf_counter() - started if started is not None else 0.0
        metrics.rpc_duration.labels(self.container.service_name, entrypoint, outcome).observe(elapsed)
        extra = {"entrypoint": entrypoint, "outcome": outcome, "ms": round(elapsed * 1000, 2)}
        if outcome == "refused":
            extra["code"] = exc_info[1].code
        log.info("handled", extra=extra)

    def get_dependency(self, worker_ctx):
        return None


WORKERS = 10  # nameko's workers a service process unless its class says ``max_workers``


def service_workers(service_cls: type) -> int:
    """nameko's ``max_workers`` for a service process (its entry points' calls at once; also each of its event
    consumers' prefetch): the class's ``max_workers``, else WORKERS; ``SFERA_SERVICE_WORKERS`` overrides both (a
    benchmark's baseline)."""
    return env_int("SFERA_SERVICE_WORKERS", getattr(service_cls, "max_workers", WORKERS))


def to_id(value: Any, code: str = "request.invalid_id") -> uuid.UUID:
    """An id an RPC caller sent, or a typed refusal (never a 500)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Invalid(code, "Not a valid id.") from None


def broker_check(amqp_uri: str) -> HealthCheck:
    def check() -> None:
        with Connection(amqp_uri, connect_timeout=2) as conn:
            conn.connect()

    return check


