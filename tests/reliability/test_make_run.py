"""`make run` itself (python -m tools.devstack run, own RabbitMQ, SQLite): reads
SFERA_SFU_PORT, brings a kill -9'd relay back, and when the supervisor is killed
with SIGKILL no process it started (RabbitMQ included) stays alive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from shared.config import REPO_ROOT
from tests.helpers import eventually
from tools.devstack.infra import free_port, free_port_block

pytestmark = pytest.mark.reliability


def process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, start time, state) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        table[int(entry.name)] = (int(fields[1]), fields[19], fields[0], comm)
    return table


def descendants(root: int) -> dict[int, tuple]:
    table = process_table()
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, row in table.items():
            if row[0] == parent and pid not in found:
                found[pid] = row
                frontier.append(pid)
    return found


def alive(pid: int, start_time: str) -> bool:
    row = process_table().get(pid)
    return row is not None and row[1] == start_time and row[2] not in ("Z", "X")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.load(response)


def test_make_run_restarts_a_killed_relay_and_dies_with_all_its_children(tmp_path):
    gateway, sfu, metrics = free_port(), free_port(), free_port_block(40)
    env = {**os.environ, "SFERA_VAR_DIR": str(tmp_path / "var"), "PERSISTENCE": "sqlite",
           "SFERA_AMQP_PORT": str(free_port()), "SFERA_GATEWAY_PORT": str(gateway), "SFERA_SFU_PORT": str(sfu),
           "SFERA_METRICS_BASE_PORT": str(metrics), "SFERA_GATEWAY_THREADS": "8", "SFERA_RESTART_BACKOFF": "0.2",
           "HOME": str(tmp_path)}
    env.pop("SFERA_AMQP_URI", None)
    env.pop("SFERA_SFU_NODE", None)
    supervisor = subprocess.Popen([sys.executable, "-m", "tools.devstack", "run"], env=env, cwd=REPO_ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True)
    status_file = tmp_path / "var" / "log" / "supervisor.json"
    children: dict[int, tuple] = {}
    try:
        eventually(lambda: status_file.exists() or supervisor.poll() is not None, timeout=150, interval=0.5,
                   what="the platform to start")
        assert supervisor.poll() is None, supervisor.stdout.read()
        assert get_json(f"http://127.0.0.1:{gateway}/healthz")["status"] == "ok"
        assert get_json(f"http://127.0.0.1:{sfu}/healthz")["status"] == "ok", "SFERA_SFU_PORT is read"

        relay = json.loads(status_file.read_text())["identity-relay"]["pid"]
        os.kill(relay, signal.SIGKILL)

        def relay_back() -> bool:
            status = json.loads(status_file.read_text())["identity-relay"]
            if status["restarts"] != 1 or not status["up"]:
                return False
            try:
                return get_json(f"http://127.0.0.1:{metrics + 10}/healthz")["status"] == "ok"
            except OSError:
                return False

        eventually(relay_back, timeout=60, interval=0.3, what="the killed relay to be restarted and healthy")
        assert supervisor.poll() is None, "one crashed process does not stop the platform"

        children = {pid: row for pid, row in descendants(supervisor.pid).items() if row[3] != "epmd"}
        names = {row[3] for row in children.values()}
        assert len(children) >= 12 and "beam.smp" in names, names  # 5 services, 5 relays, SFU, gateway, broker
        supervisor.kill()
        supervisor.wait()
        eventually(lambda: not [p for p, row in children.items() if alive(p, row[1])], timeout=20, interval=0.2,
                   what="every child of the killed supervisor to be gone")
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        for pid, row in {**children, **descendants(supervisor.pid)}.items():
            if alive(pid, row[1]):
                os.kill(pid, signal.SIGKILL)
