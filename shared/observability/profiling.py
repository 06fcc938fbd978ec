"""Where a process's CPU goes, for bench.pipeline's ``--profile`` (issue #17: "what stands between us and the goal
where one is missed: a profile, not a guess").

With ``SFERA_PROFILE_DIR`` naming a folder, a service (shared/runner.py) and an outbox relay (shared/bus/relay.py)
run their main thread under cProfile from their start to their stop and write ``<process>-<pid>.prof`` there.
The profiler is timed by the thread's own CPU clock (``time.thread_time``), not the wall clock: on a busy machine a
wall-clock profile charges a call that sends to a socket with the time the kernel gave the process it woke
(psycopg's send of a query measured 200 µs a call that way, 38 µs of CPU). cProfile still adds a cost to every
Python call (about twice the process's CPU in bench.pipeline): code made of many small calls weighs more in it
than it does unprofiled, so a share is a direction, and any change it suggests is measured without it.
Unset (production): nothing is profiled.
"""

from __future__ import annotations

import collections
import cProfile
import os
import pstats
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROFILE_DIR = "SFERA_PROFILE_DIR"


@contextmanager
def profiled(process: str) -> Iterator[None]:
    """The block under cProfile (thread CPU time) when ``SFERA_PROFILE_DIR`` is set; its stats then go to
    ``<dir>/<process>-<pid>.prof`` once the block ends, however it ends."""
    folder = os.environ.get(PROFILE_DIR)
    if not folder:
        yield
        return
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        Path(folder).mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(Path(folder) / f"{process}-{os.getpid()}.prof"))


def package_of(filename: str, function: str) -> str:
    """The layer a profiled function belongs to: an installed package's name, ``stdlib:<module>``, the
    repository's ``<top>/<package>`` (shared/bus, services/messaging, tests/fixtures), or a built-in's name."""
    path = filename.replace(os.sep, "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    root = str(Path(__file__).resolve().parents[2]).replace(os.sep, "/") + "/"
    if path.startswith(root):
        return "/".join(path[len(root):].split("/")[:2]).removesuffix(".py")
    if "/lib/python" in path:
        return "stdlib:" + path.split("/lib/python", 1)[1].split("/", 2)[1].removesuffix(".py")
    return function  # a built-in: {method 'poll' of 'select.epoll' objects}


def by_package(path: str | Path) -> tuple[float, list[tuple[str, float]]]:
    """A profile's own time (CPU seconds) in all, and by ``package_of``, the heaviest first."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    shares: collections.Counter[str] = collections.Counter()
    for (filename, _line, function), (_calls, _primitive, own, _cumulative, _callers) in stats.items():
        shares[package_of(filename, function)] += own
    return sum(shares.values()), shares.most_common()
