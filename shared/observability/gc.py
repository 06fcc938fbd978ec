"""Python's cyclic garbage collector, measured in every Sfera process.

A full (generation 2) collection walks every live object and holds the process's one event loop while it does: in
messaging at 200 posts/s a pass took 60-65 ms and every post under way waited behind it (bench.messaging_trace
--steps closed); in the realtime server with 10,000 sockets, seconds. ``time_collections(observe)`` calls
``observe(generation, pause, cpu, collected)`` after each collection; ``export_gc_metrics(process)`` puts them on
the process's /metrics:

- ``sfera_gc_pause_seconds{process, generation}`` (histogram): wall time of each collection;
- ``sfera_gc_cpu_seconds_total{process, generation}``: its CPU time (the pause less what the machine gave others);
- ``sfera_gc_collected_total{process, generation}``: objects freed (cyclic garbage refcounting alone did not free).

A collection can start at any allocation of a container, in any thread or green thread, while that code holds any
lock - prometheus_client's metric locks included (plain ``threading.Lock``, green under eventlet: taking it in the
callback could deadlock or switch green threads in the middle of a collection). So the callback takes no lock: it
adds to plain lists (one bytecode-level update each under the GIL) and a collector of our own turns them into
samples when /metrics is read.
"""

from __future__ import annotations

import bisect
import gc
import time
from collections.abc import Callable, Iterator
from itertools import accumulate

from prometheus_client.core import REGISTRY, CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
GENERATIONS = (0, 1, 2)

Observe = Callable[[int, float, float, int], None]


def time_collections(observe: Observe) -> Callable[[str, dict], None]:
    """Calls ``observe(generation, pause seconds, CPU seconds, objects collected)`` after every collection of this
    process's cyclic collector; returns the callback (``gc.callbacks.remove`` it to stop). ``observe`` runs inside
    the collection: it must not take locks nor switch (green) threads."""
    started = [0.0, 0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0], started[1] = time.perf_counter(), time.thread_time()
        else:
            observe(info["generation"], time.perf_counter() - started[0], time.thread_time() - started[1],
                    info["collected"])

    gc.callbacks.append(callback)
    return callback


class Collections(Collector):
    """What ``time_collections`` observed, by generation, as Prometheus samples (read when /metrics is)."""

    def __init__(self, process: str):
        self.process = process
        # by generation: counts per pause bucket (the last: above every bound), pause sum, CPU sum, objects freed
        self.buckets = {g: [0] * (len(PAUSE_BUCKETS) + 1) for g in GENERATIONS}
        self.pause = {g: 0.0 for g in GENERATIONS}
        self.cpu = {g: 0.0 for g in GENERATIONS}
        self.collected = {g: 0 for g in GENERATIONS}

    def observe(self, generation: int, pause: float, cpu: float, collected: int) -> None:
        self.buckets[generation][bisect.bisect_left(PAUSE_BUCKETS, pause)] += 1
        self.pause[generation] += pause
        self.cpu[generation] += max(cpu, 0.0)
        self.collected[generation] += collected

    def collect(self) -> Iterator:
        names = ["process", "generation"]
        pauses = HistogramMetricFamily("sfera_gc_pause_seconds", "Pauses of this process in Python's cyclic "
                                       "garbage collector, by generation (a full pass, 2, walks every live "
                                       "object; the event loop waits behind it).", labels=names)
        cpu = CounterMetricFamily("sfera_gc_cpu_seconds", "CPU time of this process's cyclic collections (their "
                                  "pauses less the time the machine gave to others), by generation.", labels=names)
        collected = CounterMetricFamily("sfera_gc_collected", "Objects this process's cyclic garbage collector "
                                        "freed (what refcounting alone did not), by generation.", labels=names)
        bounds = [str(bound) for bound in PAUSE_BUCKETS] + ["+Inf"]
        for g in GENERATIONS:
            labels = [self.process, str(g)]
            running = list(accumulate(self.buckets[g]))  # a copy: a collection may add while this runs
            pauses.add_metric(labels, list(zip(bounds, running, strict=True)), self.pause[g])
            cpu.add_metric(labels, self.cpu[g])
            collected.add_metric(labels, self.collected[g])
        yield pauses
        yield cpu
        yield collected


_exported: Collections | None = None


def export_gc_metrics(process: str, registry=REGISTRY) -> Collections:
    """Measures this process's collections into its /metrics under ``process`` (once a process: a second call
    returns the first's collector)."""
    global _exported
    if _exported is None:
        _exported = Collections(process)
        registry.register(_exported)
        time_collections(_exported.observe)
    return _exported
