"""A process's CPU by layer (shared/observability/profiling.py, bench.pipeline --stages --profile, issue #17): what
is profiled is the thread's CPU, not time spent waiting, and each function's own time lands in its layer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from shared.observability.profiling import PROFILE_DIR, by_package, package_of, profiled

REPO = Path(__file__).resolve().parents[2]


def burn(iterations: int) -> None:
    """Own time only: no call inside the loop."""
    n = 0
    while n < iterations:
        n += 1


def test_nothing_is_profiled_unless_a_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv(PROFILE_DIR, raising=False)
    with profiled("ledger"):
        burn(1000)
    assert list(tmp_path.iterdir()) == []


def test_the_profile_counts_cpu_not_waits_and_sorts_own_time_into_layers(tmp_path, monkeypatch):
    monkeypatch.setenv(PROFILE_DIR, str(tmp_path / "profiles"))
    with profiled("ledger"):
        burn(2_000_000)
        time.sleep(0.5)  # waiting: no CPU, so next to nothing in a CPU profile (a wall-clock one: 0.5 s)
        json.dumps([{"n": i} for i in range(20_000)])
    (path,) = (tmp_path / "profiles").glob("ledger-*.prof")
    total, layers = by_package(path)
    shares = dict(layers)
    assert layers[0][0] == "shared/tests"  # burn's loop: this file's own time, the most
    assert shares.get("<built-in method time.sleep>", 1) < 0.05 < shares["shared/tests"]
    assert shares["stdlib:json"] > 0
    assert total == pytest.approx(sum(shares.values()))
    assert [seconds for _, seconds in layers] == sorted(shares.values(), reverse=True)


def test_layers_are_packages_the_standard_library_the_repositorys_folders_or_built_ins():
    assert package_of("/x/.venv/lib/python3.11/site-packages/eventlet/hubs/hub.py", "run") == "eventlet"
    assert package_of("/x/.venv/lib/python3.11/site-packages/six.py", "f") == "six"
    assert package_of("/usr/lib/python3.11/asyncio/base_events.py", "_run_once") == "stdlib:asyncio"
    assert package_of("/usr/lib/python3.11/typing.py", "_get_protocol_attrs") == "stdlib:typing"
    assert package_of(str(REPO / "shared/bus/relay.py"), "publish_once") == "shared/bus"
    assert package_of(str(REPO / "services/messaging/messaging/domain.py"), "f") == "services/messaging"
    assert package_of("~", "<method 'poll' of 'select.epoll' objects>") == "<method 'poll' of 'select.epoll' objects>"
