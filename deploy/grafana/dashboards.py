"""Grafana dashboards as code (grafana-foundation-sdk): writes one JSON file per dashboard into this folder.

    .venv/bin/python deploy/grafana/dashboards.py          # write every dashboard
    .venv/bin/python deploy/grafana/dashboards.py --check  # exit 1 when a committed file differs

Every panel says what it shows (its description). A panel whose description ends with QUIET is empty while
all is well (errors, retries, dead letters); tests/e2e/test_prometheus_live.py requires every other
query on our own metrics to return series from a running platform. Queries use ``$__rate_interval`` and a
``datasource`` variable, so the files import into any Grafana with a Prometheus data source (the
production overlay ships them as a ConfigMap for Grafana's sidecar).
"""

from __future__ import annotations

import sys
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

HERE = Path(__file__).resolve().parent
QUIET = "Empty while all is well."
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
SERVICES = ("identity", "school", "messaging", "calls", "ejournal_bridge")
HTTP = "sfera_http_request_duration_seconds"
RPC = "sfera_rpc_duration_seconds"
CONSUMED = "sfera_events_consumed_total"
READY = "sfera_consumer_queue_ready_messages"  # shared/bus/lag.py
LAG = "sfera_consumer_event_lag_seconds"
# consumer queues: evt-<source>-<event type>--<service>.<method>; retry and dead-letter queues end otherwise
CONSUMER_QUEUES = 'queue=~"evt-.+", queue!~".+\\\\.(dlq|retry\\\\.[0-9]+)"'
RI = "$__rate_interval"


def _targets(panel, queries):
    for i, (expr, legend) in enumerate(queries):
        panel = panel.with_target(Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i)))
    return panel


def series(title: str, description: str, unit: str, *queries: tuple[str, str], width: int = 12):
    panel = (Timeseries().title(title).description(description).unit(unit).datasource(DATASOURCE)
             .height(8).span(width))
    return _targets(panel, queries)


def stat(title: str, description: str, unit: str, *queries: tuple[str, str], width: int = 4):
    panel = Stat().title(title).description(description).unit(unit).datasource(DATASOURCE).height(4).span(width)
    return _targets(panel, queries)


def dashboard(uid: str, title: str, description: str, rows: list[tuple[str, list]]) -> Dashboard:
    board = (Dashboard(title).uid(uid).description(description).tags(["sfera", "generated"])
             .time("now-3h", "now").refresh("30s").timezone("browser")
             .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus")))
    ids = iter(range(1, 1000))
    for row_title, panels in rows:
        board = board.with_row(Row(row_title).id(next(ids)))
        for panel in panels:
            board = board.with_panel(panel.id(next(ids)))
    return board


SIGN_IN_ROUTES = ('/api/v1/auth/sign-in-codes/<uuid:challenge_id>/confirmation|'
                  '/api/v1/auth/email-codes/<uuid:challenge_id>/confirmation|/api/v1/auth/password-sign-in')
MESSAGES_ROUTE = "/api/v1/chats/<uuid:chat_id>/messages"


def overview() -> Dashboard:
    return dashboard("sfera-overview", "Sfera / Platform overview",
                     "Requests, errors and latency per route, the SLOs, people signing in and writing, live "
                     "sockets, calls. Start here; each service has its own dashboard.", [
        ("Service level objectives", [
            series("SLO error ratio (1 h)",
                   "Share of bad requests over the last hour per objective (slo, sli: availability = 5xx, "
                   "latency = slower than the objective's bucket), next to the error budget "
                   "(1 - objective). Above the budget line means the budget burns faster than it refills.",
                   "percentunit",
                   ("sfera_slo:error_ratio:rate1h", "{{slo}} {{sli}}"),
                   ("1 - sfera_slo:objective", "budget {{slo}} {{sli}}")),
            series("SLO error ratio (3 d)",
                   "The same ratio over three days: the slow burn that opens a ticket.", "percentunit",
                   ("sfera_slo:error_ratio:rate3d", "{{slo}} {{sli}}")),
        ]),
        ("Traffic", [
            series("Requests by route",
                   "API requests per second through the gateway, per Flask route (the route pattern, never "
                   "the raw path), every status.", "reqps",
                   (f'sum by (route) (rate({HTTP}_count{{route!~"/metrics|/healthz"}}[{RI}]))', "{{route}}")),
            series("Errors by route",
                   "5xx answers per second per route and status. A 4xx is a refusal by design and is not "
                   f"here. {QUIET}", "reqps",
                   (f'sum by (route, status) (rate({HTTP}_count{{status=~"5.."}}[{RI}]))',
                    "{{status}} {{route}}")),
            series("Latency p50 and p99 by route",
                   "Gateway request duration quantiles per route (from the histogram), including the RPC to "
                   "the service behind it.", "s",
                   (f'histogram_quantile(0.99, sum by (le, route) (rate({HTTP}_bucket{{route!~"/metrics|/healthz"}}'
                    f'[{RI}])))', "p99 {{route}}"),
                   (f'histogram_quantile(0.5, sum by (le, route) (rate({HTTP}_bucket{{route!~"/metrics|/healthz"}}'
                    f'[{RI}])))', "p50 {{route}}")),
            series("Answers by status class",
                   "Requests per second by status (2xx, 3xx, 4xx, 5xx) over all routes.", "reqps",
                   (f'sum by (status) (rate({HTTP}_count[{RI}]))', "{{status}}")),
        ]),
        ("People", [
            series("Sign-ins",
                   "Successful sign-ins per second: confirmed SMS/flash-call and e-mail codes and password "
                   "sign-ins (2xx of those routes).", "reqps",
                   (f'sum by (route) (rate({HTTP}_count{{route=~"{SIGN_IN_ROUTES}",status=~"2.."}}[{RI}]))',
                    "{{route}}")),
            series("Messages",
                   "Messages posted (POST, 2xx) and history pages read (GET, 2xx) per second.", "reqps",
                   (f'sum by (method) (rate({HTTP}_count{{route="{MESSAGES_ROUTE}",status=~"2.."}}[{RI}]))',
                    "{{method}}")),
            series("Live sockets",
                   "Open WebSocket connections (realtime chat updates) over all gateway processes, and events "
                   "pushed to them per second.", "short",
                   ("sum(sfera_websocket_connections)", "open sockets"),
                   (f"sum(rate(sfera_realtime_events_pushed_total[{RI}]))", "events pushed/s")),
            series("Calls",
                   "Rooms with someone in them and participants connected, over all SFU nodes.", "short",
                   ("sum(sfera_sfu_rooms)", "rooms"), ("sum(sfera_sfu_participants)", "participants")),
        ]),
        ("Processes", [
            series("Processes up",
                   "Scraped processes per job answering /metrics (gateway, services, relays, SFU).", "short",
                   ('sum by (job) (up{job=~"sfera-.+"})', "{{job}}")),
            series("CPU by job",
                   "CPU seconds per second used by our processes, per job (the client library's process "
                   "collector).", "percentunit",
                   (f'sum by (job) (rate(process_cpu_seconds_total{{job=~"sfera-.+"}}[{RI}]))', "{{job}}")),
            series("Time paused in garbage collection",
                   "Share of each process's wall time spent in Python's cyclic garbage collector, every "
                   "generation (shared/observability/gc.py): the process's event loop waits behind each "
                   "collection, requests and pushes with it.", "percentunit",
                   (f"sum by (process) (rate(sfera_gc_pause_seconds_sum[{RI}]))", "{{process}}")),
            series("Full collections' mean pause",
                   "Mean pause of each process's full (generation 2) collections, which walk every live "
                   "object: one tens of milliseconds long shows in every latency percentile. Services freeze "
                   "what starting made out of them (SFERA_SERVICE_GC_FREEZE), the realtime server its settled "
                   "sockets (SFERA_REALTIME_GC_FREEZE).", "s",
                   (f'max by (process) (rate(sfera_gc_pause_seconds_sum{{generation="2"}}[{RI}]) '
                    f'/ rate(sfera_gc_pause_seconds_count{{generation="2"}}[{RI}]))', "{{process}}")),
        ]),
    ])


def service(name: str) -> Dashboard:
    svc = f'service="{name}"'
    return dashboard(f"sfera-service-{name.replace('_', '-')}", f"Sfera / {name}",
                     f"The {name} service: its RPC and event entrypoints, the events it consumes (lag, "
                     "retries, dead letters) and the events it publishes through its outbox relay.", [
        ("Entrypoints", [
            series("RPC calls by entrypoint and outcome",
                   "Entrypoint calls per second (RPC methods and event handlers), by outcome: ok, refused "
                   "(a DomainError with a code, the caller's mistake) or error (a bug or a failing "
                   "dependency).", "ops",
                   (f"sum by (entrypoint, outcome) (rate({RPC}_count{{{svc}}}[{RI}]))",
                    "{{entrypoint}} {{outcome}}")),
            series("RPC latency p99 by entrypoint",
                   "99th percentile of the time spent inside the service per entrypoint (not the queueing "
                   "in RabbitMQ before it).", "s",
                   (f"histogram_quantile(0.99, sum by (le, entrypoint) (rate({RPC}_bucket{{{svc}}}[{RI}])))",
                    "{{entrypoint}}")),
            series("RPC errors by entrypoint",
                   f"Entrypoint calls that raised an unexpected error, per second. {QUIET}", "ops",
                   (f'sum by (entrypoint) (rate({RPC}_count{{{svc},outcome="error"}}[{RI}]))', "{{entrypoint}}")),
        ]),
        ("Consumed events", [
            series("Consumed events by outcome",
                   "Integration events this service's consumers handled per second, by outcome: applied, "
                   "duplicate (a redelivery, dropped by event id), retried, dead_lettered.", "ops",
                   (f"sum by (outcome) (rate({CONSUMED}{{{svc}}}[{RI}]))", "{{outcome}}")),
            series("Consumer lag",
                   "Events waiting in each of this service's consumer queues (messages ready), as the service "
                   "reads them from the broker when scraped (sfera_consumer_queue_ready_messages; every replica "
                   "reports the same queue, hence max).", "short",
                   (f"max by (queue) ({READY}{{{svc}}})", "{{queue}}")),
            series("Retries and dead letters by type",
                   "Events retried through the delay queues or dead-lettered, per second and type. "
                   f"List and replay dead letters with python -m shared.bus.dlq. {QUIET}", "ops",
                   (f'sum by (type, outcome) (rate({CONSUMED}{{{svc},outcome=~"retried|dead_lettered"}}[{RI}]))',
                    "{{outcome}} {{type}}")),
        ]),
        ("Published events", [
            series("Outbox lag",
                   "Events this service committed that its relay has not published yet.", "short",
                   (f"max(sfera_outbox_lag_notifications{{{svc}}})", "lag")),
            series("Published events by type",
                   "Integration events the relay published with a broker confirm, per second and type.", "ops",
                   (f"sum by (type) (rate(sfera_events_published_total{{{svc}}}[{RI}]))", "{{type}}")),
        ]),
    ])


def event_path() -> Dashboard:
    return dashboard("sfera-event-path", "Sfera / Event path",
                     "An event end to end: committed with the state (outbox), published by the relay, waiting "
                     "in RabbitMQ, applied by consumers, pushed to people's sockets.", [
        ("Outbox and relays", [
            series("Outbox lag by service",
                   "Events committed but not yet published, per service. Growing means the relay is behind or "
                   "cannot publish.", "short",
                   ("max by (service) (sfera_outbox_lag_notifications)", "{{service}}")),
            series("Published per second by service",
                   "Events published with a broker confirm per second.", "ops",
                   (f"sum by (service) (rate(sfera_events_published_total[{RI}]))", "{{service}}")),
            series("Relay position",
                   "The last notification id each service's relay has published (a flat line with lag above "
                   "zero is a stuck relay).", "short",
                   ("max by (service) (sfera_outbox_position)", "{{service}}")),
        ]),
        ("Broker", [
            series("Ready messages per consumer queue",
                   "Events waiting for their consumer (the consumer's lag), per queue; RabbitMQ per-object "
                   "metrics.", "short",
                   (f"sum by (queue) (rabbitmq_queue_messages_ready{{{CONSUMER_QUEUES}}})", "{{queue}}")),
            series("Dead letters waiting",
                   f"Messages in dead-letter queues (<queue>.dlq). {QUIET}", "short",
                   ('sum by (queue) (rabbitmq_queue_messages{queue=~"evt-.+\\\\.dlq"}) > 0', "{{queue}}")),
        ]),
        ("Consumers", [
            series("Event age when applied, p99 by service",
                   "99th percentile of the time from an event's save (its time) to a consumer applying it: "
                   "outbox, relay, broker and retries together (sfera_consumer_event_lag_seconds).", "s",
                   (f"histogram_quantile(0.99, sum by (le, service) (rate({LAG}_bucket[{RI}])))", "{{service}}")),
            series("Events waiting per consumer queue",
                   "Messages ready in each consumer queue, as the consuming service reads them from the broker "
                   "(sfera_consumer_queue_ready_messages).", "short",
                   (f"max by (queue) ({READY})", "{{queue}}")),
            series("Consumed per second by service and outcome",
                   "Events applied, dropped as duplicates, retried or dead-lettered per second.", "ops",
                   (f"sum by (service, outcome) (rate({CONSUMED}[{RI}]))", "{{service}} {{outcome}}")),
            series("Published vs applied",
                   "All events published per second next to all events applied by consumers (an event has "
                   "any number of consumers, so the lines differ by fan-out, not by loss).", "ops",
                   (f"sum(rate(sfera_events_published_total[{RI}]))", "published"),
                   (f'sum(rate({CONSUMED}{{outcome="applied"}}[{RI}]))', "applied")),
            series("Pushed to sockets",
                   "Events the gateways pushed to WebSocket clients per second, by event type.", "ops",
                   (f"sum by (type) (rate(sfera_realtime_events_pushed_total[{RI}]))", "{{type}}")),
        ]),
    ])


def rabbitmq() -> Dashboard:
    return dashboard("sfera-rabbitmq", "Sfera / RabbitMQ",
                     "The RabbitmqCluster (rabbitmq_prometheus plugin with per-object metrics).", [
        ("Nodes", [
            series("Memory per node", "Resident memory of each node and its high watermark.", "bytes",
                   ("rabbitmq_process_resident_memory_bytes", "{{instance}}"),
                   ("rabbitmq_resident_memory_limit_bytes", "limit {{instance}}")),
            series("Free disk per node", "Free disk space of each node (the disk alarm blocks publishers).",
                   "bytes", ("rabbitmq_disk_space_available_bytes", "{{instance}}")),
            series("Alarms", f"Memory and disk alarms per node (1 = publishers blocked). {QUIET}", "short",
                   ("rabbitmq_alarms_memory_used_watermark + rabbitmq_alarms_free_disk_space_watermark > 0",
                    "{{instance}}")),
        ]),
        ("Traffic", [
            series("Messages received and delivered",
                   "Messages published to and delivered by the cluster per second.", "ops",
                   (f"sum(rate(rabbitmq_global_messages_received_total[{RI}]))", "received"),
                   (f"sum(rate(rabbitmq_global_messages_delivered_total[{RI}]))", "delivered")),
            series("Connections and channels", "Open connections and channels over the cluster.", "short",
                   ("sum(rabbitmq_connections)", "connections"), ("sum(rabbitmq_channels)", "channels")),
            series("Queued messages", "Ready and unacknowledged messages over every queue.", "short",
                   ("sum(rabbitmq_queue_messages_ready)", "ready"),
                   ("sum(rabbitmq_queue_messages_unacked)", "unacked")),
            series("Consumers per consumer queue",
                   f"Consumers attached to each event queue (0 = nobody applies those events). {QUIET}",
                   "short", (f"sum by (queue) (rabbitmq_queue_consumers{{{CONSUMER_QUEUES}}}) == 0", "{{queue}}")),
        ]),
    ])


def postgresql() -> Dashboard:
    return dashboard("sfera-postgresql", "Sfera / PostgreSQL",
                     "The CloudNativePG cluster (its instance exporter on port 9187, default monitoring "
                     "queries): every service has its own schema in one database.", [
        ("Instances", [
            series("Exporter up", "1 per instance whose exporter could query PostgreSQL.", "short",
                   ("cnpg_collector_up", "{{pod}}")),
            series("Connections", "Backends per database and state, and max_connections.", "short",
                   ("sum by (datname, state) (cnpg_backends_total)", "{{datname}} {{state}}"),
                   ('max(cnpg_pg_settings_setting{name="max_connections"})', "max_connections")),
            series("Replication lag", "Seconds each replica is behind the primary.", "s",
                   ("cnpg_pg_replication_lag", "{{pod}}")),
        ]),
        ("Work", [
            series("Transactions", "Commits and rollbacks per second per database (rollbacks include "
                                   "optimistic-concurrency conflicts that commands retry).", "ops",
                   (f"sum by (datname) (rate(cnpg_pg_stat_database_xact_commit[{RI}]))", "commit {{datname}}"),
                   (f"sum by (datname) (rate(cnpg_pg_stat_database_xact_rollback[{RI}]))",
                    "rollback {{datname}}")),
            series("Cache hit ratio", "Share of block reads served from shared buffers.", "percentunit",
                   (f"sum(rate(cnpg_pg_stat_database_blks_hit[{RI}])) / (sum(rate(cnpg_pg_stat_database_blks_hit"
                    f"[{RI}])) + sum(rate(cnpg_pg_stat_database_blks_read[{RI}])))", "hit ratio")),
            series("Deadlocks", f"Deadlocks per second per database. {QUIET}", "ops",
                   (f"sum by (datname) (rate(cnpg_pg_stat_database_deadlocks[{RI}])) > 0", "{{datname}}")),
            series("Database size", "Size of each database on disk.", "bytes",
                   ("max by (datname) (cnpg_pg_database_size_bytes)", "{{datname}}")),
            series("Age of the newest backup", "Seconds since the last available base backup.", "s",
                   ("time() - max(cnpg_collector_last_available_backup_timestamp)", "age")),
        ]),
    ])


def sfu() -> Dashboard:
    return dashboard("sfera-sfu", "Sfera / SFU",
                     "The selective forwarding units: rooms, participants, packets in and out, loss reported by "
                     "subscribers, key frames and CPU. The SFU forwards; it never decodes or encodes.", [
        ("Load", [
            stat("Rooms", "Rooms with someone in them over all nodes.", "short", ("sum(sfera_sfu_rooms)", "rooms")),
            stat("Participants", "Participants connected over all nodes.", "short",
                 ("sum(sfera_sfu_participants)", "participants")),
            stat("Codecs created", f"Decoders or encoders aiortc tried to create (must stay 0). {QUIET}", "short",
                 ("sum(sfera_sfu_codec_instances_total) > 0", "codecs")),
            series("Rooms and participants per node", "Rooms and participants of each SFU node.", "short",
                   ("sfera_sfu_rooms", "rooms {{instance}}"), ("sfera_sfu_participants", "participants {{instance}}")),
            series("Published tracks by kind", "Tracks (audio, video) publishers send, over all nodes.", "short",
                   ("sum by (kind) (sfera_sfu_tracks)", "{{kind}}")),
            series("CPU per node", "CPU seconds per second of each SFU process (about one core is its ceiling).",
                   "percentunit", (f'rate(process_cpu_seconds_total{{job="sfera-sfu"}}[{RI}])', "{{instance}}")),
        ]),
        ("Packets", [
            series("Packets received and forwarded",
                   "RTP packets per second received from publishers and forwarded to subscribers, by kind.", "pps",
                   (f"sum by (kind) (rate(sfera_sfu_received_packets_total[{RI}]))", "received {{kind}}"),
                   (f"sum by (kind) (rate(sfera_sfu_forwarded_packets_total[{RI}]))", "forwarded {{kind}}")),
            series("Forwarded bitrate", "Bits per second forwarded to subscribers, by kind.", "bps",
                   (f"8 * sum by (kind) (rate(sfera_sfu_forwarded_bytes_total[{RI}]))", "{{kind}}")),
            series("Loss reported by subscribers",
                   "Loss fraction in subscribers' RTCP receiver reports, median and 90th percentile by kind.",
                   "percentunit",
                   (f"histogram_quantile(0.5, sum by (le, kind) (rate(sfera_sfu_rtcp_fraction_lost_bucket[{RI}])))",
                    "p50 {{kind}}"),
                   (f"histogram_quantile(0.9, sum by (le, kind) (rate(sfera_sfu_rtcp_fraction_lost_bucket[{RI}])))",
                    "p90 {{kind}}")),
            series("NACKs and retransmissions",
                   "Packets subscribers reported lost (NACK) and packets resent from the history, per second.",
                   "pps",
                   (f"sum(rate(sfera_sfu_nacked_packets_total[{RI}]))", "nacked"),
                   (f"sum(rate(sfera_sfu_retransmitted_packets_total[{RI}]))", "retransmitted")),
        ]),
        ("Signaling", [
            series("Key-frame requests",
                   "Key-frame requests per second: sent to publishers, or absorbed by the once-a-second limit.",
                   "ops", (f"sum by (outcome) (rate(sfera_sfu_keyframe_requests_total[{RI}]))", "{{outcome}}")),
            series("Joins by outcome", "Signaling joins per second: ok, or the join token's refusal code.", "ops",
                   (f"sum by (outcome) (rate(sfera_sfu_joins_total[{RI}]))", "{{outcome}}")),
            series("Commands from calls", "Commands from the calls service applied per second (mute, move, end…).",
                   "ops", (f"sum by (command) (rate(sfera_sfu_commands_total[{RI}]))", "{{command}}")),
            series("Speaker switches", "Audio slots that changed speaker per second.", "ops",
                   (f"sum(rate(sfera_sfu_speaker_switches_total[{RI}]))", "switches")),
        ]),
    ])


def dashboards() -> dict[str, Dashboard]:
    boards = {"overview": overview(), "event-path": event_path(), "rabbitmq": rabbitmq(),
              "postgresql": postgresql(), "sfu": sfu()}
    for name in SERVICES:
        boards[f"service-{name.replace('_', '-')}"] = service(name)
    return boards


def render() -> dict[Path, str]:
    encoder = JSONEncoder(sort_keys=True, indent=2)
    return {HERE / f"{name}.json": encoder.encode(board.build()) + "\n" for name, board in dashboards().items()}


def main(argv: list[str]) -> int:
    rendered = render()
    stale = [path for path, text in rendered.items() if not path.exists() or path.read_text() != text]
    extra = [path for path in HERE.glob("*.json") if path not in rendered]
    if "--check" in argv:
        for path in stale + extra:
            print(f"{path} is stale: run python deploy/grafana/dashboards.py", file=sys.stderr)
        return 1 if stale or extra else 0
    for path in extra:
        path.unlink()
    for path, text in rendered.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
