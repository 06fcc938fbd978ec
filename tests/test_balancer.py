"""The stack's replicas (issue #17): the round-robin balancer in front of gateway replicas, and the names and
ports a stack gives the replicas of a process."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tools.devstack.infra import free_port, wait_for
from tools.devstack.stack import Stack, StackConfig, replica_name

pytestmark = pytest.mark.unit


def upstream(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return response.read().decode()


def test_the_balancer_takes_turns_and_skips_a_gateway_that_is_down():
    a, b = upstream("a"), upstream("b")
    down = free_port()  # nothing listens there
    port = free_port()
    balancer = subprocess.Popen([sys.executable, "-m", "tools.devstack.balancer", "--port", str(port),
                                 "--upstream", f"127.0.0.1:{a.server_port}", "--upstream", f"127.0.0.1:{down}",
                                 "--upstream", f"127.0.0.1:{b.server_port}"])
    try:
        def answers() -> bool:
            try:
                return bool(get(port))
            except OSError:
                return False

        wait_for(answers, 20, "the balancer to answer")
        seen = [get(port) for _ in range(8)]
        assert set(seen) == {"a", "b"} and abs(seen.count("a") - seen.count("b")) <= 2, seen
        b.shutdown()
        b.server_close()
        assert [get(port) for _ in range(4)] == ["a"] * 4  # the one left carries on
    finally:
        balancer.terminate()
        assert balancer.wait(10) == 0
        a.shutdown()


def test_a_stack_names_its_replicas_and_gives_each_a_port_of_its_own(tmp_path):
    assert [replica_name("identity", r) for r in (1, 2, 3)] == ["identity", "identity-2", "identity-3"]
    with pytest.raises(ValueError):
        replica_name("identity", 0)
    stack = Stack(StackConfig(var_dir=tmp_path, replicas=2, gateway_port=free_port(), metrics_base_port=20000,
                              realtime_server="gthread"))
    spawned = []
    stack._spawn = lambda managed: spawned.append(managed) or stack.processes.setdefault(managed.name, managed)
    stack.start_service("identity")
    stack.start_service("identity", replica=2)
    stack.start_relay("identity", replica=2)
    gateways = [stack.start_gateway(replica=r).name for r in (1, 2)]
    stack.start_balancer(gateways)
    ports = {m.name: m.health_url.rsplit(":", 1)[1].split("/")[0] for m in spawned}
    assert ports["identity"] == "20000" and ports["identity-2"] not in ("20000", "20010")
    assert stack.metrics_port("identity-2") == int(ports["identity-2"])  # the same after a restart
    assert len({ports[g] for g in gateways} | {str(stack.config.gateway_port)}) == 3  # the balancer fronts both
    assert ports["balancer"] == str(stack.config.gateway_port)
    assert stack.replicas_of("identity") == ["identity", "identity-2"]
    assert stack.replicas_of("identity-relay") == ["identity-relay-2"]
    assert stack.replicas_of("gateway") == ["gateway", "gateway-2"]
