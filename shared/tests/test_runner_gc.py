"""A service's start freezes what starting made out of the cyclic collector's full passes (shared.runner,
``SFERA_SERVICE_GC_FREEZE``): in messaging a full pass held the event loop 60-65 ms, frozen 5-6 ms (issue #17,
closed loop over 5 chats). Run in a process of its own: importing shared.runner patches the process for eventlet."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import gc, json
import shared.runner as runner
from shared.contracts import get_contract  # a service's start imports its contracts, its domain, nameko
objects = [{"n": n, "self": None} for n in range(20_000)]
for o in objects:
    o["self"] = o  # long-lived cycles, made while starting
frozen = runner.freeze_startup_objects()
print(json.dumps({"frozen": frozen, "count": gc.get_freeze_count()}))
"""


def run(setting: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SFERA_SERVICE_GC_FREEZE"}
    if setting is not None:
        env["SFERA_SERVICE_GC_FREEZE"] = setting
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("setting", [None, "yes"])
def test_a_service_start_freezes_what_starting_made(setting):
    found = run(setting)
    assert found["frozen"] == found["count"] > 20_000  # the startup's objects, the long-lived cycles among them


def test_the_freeze_can_be_turned_off():
    found = run("no")
    assert (found["frozen"], found["count"]) == (0, 0)
