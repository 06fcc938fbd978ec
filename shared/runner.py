"""Runs a nameko service the Sfera way: eventlet patched first, psycopg told
about it, JSON logs, /metrics and /healthz on SFERA_METRICS_PORT (ok once nameko's runner has started every
entry point; a SIGTERM before that stops the service once its start is over).

``python -m shared.runner identity.service:IdentityService``
"""

from __future__ import annotations

import warnings

# eventlet announces its own deprecation on import; nameko 2.14 depends on it.
warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()  # must precede every other import

import gc  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from functools import partialmethod  # noqa: E402

from shared.store import prepare_for_eventlet  # noqa: E402

prepare_for_eventlet()

from eventlet.event import Event  # noqa: E402
from kombu.mixins import ConsumerMixin  # noqa: E402
from nameko.messaging import QueueConsumer  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

from shared.bus.lag import export_queue_depths  # noqa: E402
from shared.bus.topology import consumer_bindings  # noqa: E402
from shared.config import env_str, settings  # noqa: E402
from shared.observability.http import Readiness, serve  # noqa: E402
from shared.observability.logging import configure_logging, get_logger  # noqa: E402
from shared.observability.profiling import profiled  # noqa: E402
from shared.platform import SERVICES, load  # noqa: E402
from shared.production import refuse_unsafe_start  # noqa: E402
from shared.service import broker_check, health_checks, service_workers  # noqa: E402
from shared.shutdown import exit_within  # noqa: E402

log = get_logger("shared.runner")

# nameko's queue consumer (kombu's ConsumerMixin) looks at its pending cancels and its stop flag between two waits
# for the broker, each up to kombu's safety interval of 1 s: a stop took two such waits (the consumers' cancel, then
# the loop's end), 2 s and more for every service in every deploy and every test's teardown. An idle wake-up a fifth
# of a second costs next to nothing (the heartbeat check it also runs is rate-limited by itself).
CONSUMER_WAKE_INTERVAL = 0.2
QueueConsumer.consume = partialmethod(ConsumerMixin.consume, safety_interval=CONSUMER_WAKE_INTERVAL)


def freeze_startup_objects() -> int:
    """What starting made (modules, classes, the contracts' schemas, nameko's extensions: objects that live as long
    as the process) moves out of the cyclic collector's reach (``gc.freeze``), so that its full passes walk only what
    came after: in messaging at 200 posts/s over 5 chats a full pass held the one event loop 60-65 ms (every post
    under way waited behind it), frozen 5-6 ms (bench.messaging_trace --steps closed, SFERA_SERVICE_GC_FREEZE=no
    the baseline). Returns how many objects were frozen (0: turned off)."""
    if env_str("SFERA_SERVICE_GC_FREEZE", "yes") == "no":
        return 0
    gc.collect()  # the garbage of starting goes first: frozen, it would never be freed
    gc.freeze()
    return gc.get_freeze_count()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m shared.runner <service name | module:ServiceClass>", file=sys.stderr)
        return 2
    service_cls = load(SERVICES[argv[0]].service if argv[0] in SERVICES else argv[0])
    refuse_unsafe_start(service_cls.name)
    config = settings()
    configure_logging(service_cls.name)
    nameko_config = {"AMQP_URI": config.amqp_uri, "max_workers": service_workers(service_cls),
                     "parent_calls_tracked": 10}
    health_checks["broker"] = broker_check(config.amqp_uri)
    # consumer lag: the depth of each of its consumer queues, asked of the broker when /metrics is scraped
    export_queue_depths(service_cls.name, [b.queue for b in consumer_bindings(service_cls)], config.amqp_uri)
    runner = ServiceRunner(nameko_config)
    runner.add_service(service_cls)
    readiness = Readiness()
    started = Event()

    def stop_once_started() -> None:
        # nameko's stop before its queue consumer is ready (nameko/messaging.py, unregister_provider) sends the
        # consumer's "last provider unregistered" event once for each provider: the second (an RPC entry point
        # beside an event handler) fails with "re-send() an already-triggered event", the stop never ends and the
        # exit_within alarm ended the process (exit -14). So a stop waits for the start to be over, then stops.
        started.wait()
        runner.stop()

    def shutdown(signum, frame):
        exit_within()  # runner.stop waits for a broker that may be gone
        if readiness.state != "stopping":  # one stop: a second signal finds it under way
            readiness.stopping()
            eventlet.spawn_n(stop_once_started)

    # before the port answers: a supervisor that stops the process as soon as it sees it gets a clean stop
    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    serve(service_cls.name, config.metrics_port, health_checks, readiness, host=config.metrics_host)
    runner.start()  # returns once every extension (consumers, RPC entry points) has started
    frozen = freeze_startup_objects()
    log.info("service started", extra={"service": service_cls.name, "metrics_port": config.metrics_port,
                                       "gc_frozen": frozen})
    readiness.ready()  # /healthz: ok from now on (after the log line: a test that sees ok finds it logged)
    started.send()
    with profiled(service_cls.name):  # SFERA_PROFILE_DIR only (bench.pipeline --profile)
        runner.wait()
    log.info("service stopped", extra={"service": service_cls.name})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
