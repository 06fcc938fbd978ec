"""The relay's process (shared.bus.relay.main): /healthz is ok only once its loop runs, and a stop signal that
comes after its port answers but before the loop runs ends it cleanly (exit 0) as soon as the loop starts. The
process's parts that need a store or a broker are stand-ins: the order of things is what is tested."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from shared.bus import relay as relay_module


class FakeRelay:
    def __init__(self):
        self.stopping = asyncio.Event()
        self.states: list[str] = []
        self.connected = False
        self.standby = True  # no lease yet: the broker check passes
        self.signal_after: float | None = None  # SIGTERM to the process that long after the loop began

    async def run(self) -> None:
        self.states.append(served["readiness"].state)
        if self.signal_after is not None:
            asyncio.get_running_loop().call_later(self.signal_after, os.kill, os.getpid(), signal.SIGTERM)
        while not self.stopping.is_set():
            await asyncio.sleep(0.01)
        self.states.append(served["readiness"].state)


served: dict = {}


@pytest.fixture
def relay_process(monkeypatch):
    """main() with a stand-in relay and server; the test process's signal handlers restored after."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    fake = FakeRelay()
    monkeypatch.setattr(relay_module, "build_relay", lambda service: fake)
    monkeypatch.setattr(relay_module, "configure_logging", lambda name: None)
    monkeypatch.setattr(relay_module, "exit_within", lambda: None)  # its alarm would end pytest

    def serve(process, port, checks, readiness=None, host="127.0.0.1"):
        served.update(process=process, checks=checks, readiness=readiness, at_serve=readiness.state)
        if served.get("signal_at_serve"):
            os.kill(os.getpid(), signal.SIGTERM)  # the port answers from here: a supervisor may stop it now

    monkeypatch.setattr(relay_module, "serve", serve)
    served.clear()
    yield fake
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_the_relay_is_ready_once_its_loop_runs(relay_process):
    relay_process.signal_after = 0.05
    assert relay_module.main(["identity"]) == 0
    assert served["process"] == "identity-relay"
    assert served["at_serve"] == "starting"  # before: no readiness at all, ok whenever the checks passed
    assert relay_process.states == ["ok", "stopping"]


def test_a_sigterm_before_the_loop_runs_ends_the_relay_cleanly(relay_process):
    served["signal_at_serve"] = True
    assert relay_module.main(["identity"]) == 0  # before: no handler yet, the signal's default end (-15)
    assert relay_process.states == ["stopping", "stopping"]
