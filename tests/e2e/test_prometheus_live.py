"""A real Prometheus (Debian's package) scrapes the running e2e platform (every service, relay, the gateway and
the SFU, 1 s apart) under a little load: sign-ins, a school and a chat, messages with a realtime socket open,
a call two WebRTC peers publish to. Then every dashboard query and every recording-rule expression on our own
metrics must return series, and every metric and label an alert or panel names must exist (no typo'd name
survives). Exporter metrics (RabbitMQ, CloudNativePG, blackbox) are listed as expected absent (issue #18)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.deploy.rules import EXPORTERS, ROOT, exporter_of, rules, selectors
from tests.e2e.test_calls import LUMAS, join, start
from tests.e2e.test_realtime import connect, next_event
from tests.helpers import eventually
from tests.webrtc import Peer
from tools.devstack.infra import free_port
from tools.observe.prometheus import Prometheus, scrape_targets

pytestmark = pytest.mark.e2e
RATE_INTERVAL = "1m"
# Labelled counters are born at their first increment; these never increment on a healthy platform.
BORN_ON_FAILURE = {
    "sfera_sfu_codec_instances_total": "the SFU created a codec (it never must; SfuTranscoding alerts)",
}
QUIET = "Empty while all is well."


@pytest.fixture(scope="module")
def prometheus(platform, tmp_path_factory):
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), free_port(), scrape_targets(platform),
                        interval="1s", rule_interval="1s").start()
    yield server
    server.stop()


def load(api, room, platform) -> None:
    """A little of everything the dashboards show."""
    admin, pupil = room["people"][0], room["people"][1]
    api.sign_in()  # a brand-new account too
    socket = connect(platform, pupil)
    try:
        for i in range(3):
            api.ok("POST", f"/chats/{room['chat_id']}/messages", admin["access_token"], status=201,
                   json={"text": f"Сообщение {i}"})
        next_event(socket, "MessagePosted")
    finally:
        socket.close()
    api.ok("GET", f"/chats/{room['chat_id']}/messages", pupil["access_token"])
    # the e-journal bridge: an operator registers a journal and replays its (empty) inbox: RPC, and an event
    # the bridge publishes and consumes itself
    operator = api.operator()["access_token"]
    provider = api.ok("POST", "/operator/ejournal-providers", operator, status=201, json={
        "region": "35", "name": "Журнал наблюдения", "base_url": "http://127.0.0.1:9/r/35",
        "client_id": "sfera-35", "client_secret": "observed-client-secret"})
    api.ok("POST", f"/operator/ejournal-providers/{provider['provider_id']}/replay", operator, status=202)
    call = start(api, room, title="Наблюдаемость")

    async def media():
        peers = []
        try:
            for i in range(2):
                ticket = join(api, room["people"][i], call["call_id"])
                peers.append(await Peer(ticket["sfu_url"], ticket["token"], camera_luma=LUMAS[i],
                                        tone_hz=300 + 200 * i).connect())
            # packets forwarded, decoded (so subscribers send receiver reports), key frames asked for
            await asyncio.sleep(4)
        finally:
            for peer in peers:
                await peer.close()

    asyncio.run(media())


def panel_queries() -> list[tuple[str, str, bool]]:
    """(where, expr, quiet) of every dashboard target."""
    found = []
    for path in sorted((ROOT / "deploy" / "grafana").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                where = f"{board['title']} / {panel['title']}"
                quiet = panel.get("description", "").endswith(QUIET)
                found.append((where, target["expr"].replace("$__rate_interval", RATE_INTERVAL), quiet))
    return found


def test_every_panel_and_rule_query_returns_series_from_a_running_platform(api, room, platform, prometheus):
    started = time.monotonic()
    processes = sum(map(len, scrape_targets(platform).values()))  # 12, and the realtime front when it runs
    eventually(lambda: all(h == "up" for h in prometheus.targets_up().values())
               and len(prometheus.targets_up()) == processes, timeout=20,
               what=f"Prometheus to scrape all {processes} processes")
    load(api, room, platform)
    time.sleep(3)  # the last increments scraped and the recording rules evaluated on them

    queries = panel_queries()
    queries += [(f"rule {r['record']} {r.get('labels', {})}", r["expr"], False) for r in rules() if "record" in r]
    queries += [(f"alert {r['alert']}", r["expr"], True) for r in rules() if "alert" in r]

    # Our metrics and the labels the queries match on exist; the exporters' are absent here, as listed.
    names: dict[str, set[str]] = {}
    for _, expr, _ in queries:
        for name, labels in selectors(expr):
            names.setdefault(name, set()).update(labels)
    missing, present_exporters = [], []
    for name, labels in sorted(names.items()):
        exporter = next((what for prefix, what in EXPORTERS.items() if name.startswith(prefix)), None)
        got = prometheus.query(f'count({{__name__="{name}"}})')
        if exporter:
            if got:
                present_exporters.append(name)
            continue
        if name in BORN_ON_FAILURE:
            continue
        if not got:
            missing.append(name)
        for label in labels:
            if not prometheus.query(f'count({{__name__="{name}", {label}!=""}})'):
                missing.append(f"{name}{{{label}}}")
    assert missing == [], f"metrics or labels no process exposes (a typo, or renamed in the code): {missing}"
    assert present_exporters == [], "exporter metrics now scraped here: drop them from EXPORTERS"

    # Every query evaluates; every one that is not empty by design returns series.
    empty = []
    for where, expr, quiet in queries:
        result = prometheus.query(expr)
        if not result and not quiet and not exporter_of(expr):
            empty.append((where, expr))
    assert empty == [], "\n".join(f"{where}: {expr}" for where, expr in empty)
    assert time.monotonic() - started < 90
