"""Where each event is on its way through the pipeline, for bench.pipeline's stages (issue #17, "event pipeline").

With ``SFERA_PIPELINE_TRACE`` naming a file, the outbox relay and the consumers append one line per event and
stage: ``<stage> <key> <unix time>`` (the relay's key is the notification id, a consumer's the event id, which
holds it: ``<service>:<notification id>:<Name>.v<N>``). The wall clock, as PostgreSQL's commit timestamps, so a
bench lines both up. Unset (production): nothing is written, one attribute test per batch or delivery.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable

TRACE_FILE = "SFERA_PIPELINE_TRACE"


class StageTrace:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    def record(self, stage: str, keys: Iterable[object], at: float | None = None) -> None:
        at = time.time() if at is None else at
        lines = "".join(f"{stage} {key} {at:.6f}\n" for key in keys)
        with self._lock:
            self._file.write(lines)


_traces: dict[str, StageTrace] = {}


def stage_trace() -> StageTrace | None:
    """The trace this process writes, or None when ``SFERA_PIPELINE_TRACE`` is not set."""
    path = os.environ.get(TRACE_FILE)
    if not path:
        return None
    if path not in _traces:
        _traces[path] = StageTrace(path)
    return _traces[path]


def read_trace(path: str) -> dict[str, dict[str, float]]:
    """stage -> key -> time, the first time each key reached each stage (a redelivery's later lines are not it)."""
    stages: dict[str, dict[str, float]] = {}
    with open(path) as lines:
        for line in lines:
            stage, key, at = line.split()
            stages.setdefault(stage, {}).setdefault(key, float(at))
    return stages
