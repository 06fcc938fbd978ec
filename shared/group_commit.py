"""Group commit: commands on one key that arrive while another holds the key's turn are run together next.

Commands on one key take turns (``ServiceApplication.retrying(command, key)``: a lock in the process and across
replicas), and each turn reads its aggregates, decides and saves with one commit (an fsync). When every command
into one chat takes its own turn, a chat accepts one command per turn's length, however many arrive at once
(bench.messaging: ~50 posts a second into one chat, each turn ~20 ms of reads and a commit). Here the first
command to arrive for a key leads: it waits for the turn, then takes every command that arrived meanwhile and runs
them in that one turn (one read of the aggregates, one save, one commit); the others wait for its answer. While a
batch runs, the next commands gather behind a new leader. A batch's size is bounded (``max_batch``).

``run_batch(items)`` decides each item and returns one outcome per item, in order: a value, or the exception that
item alone gets (a refusal). An exception raised by ``run_batch`` itself goes to every item of the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class _Waiting:
    __slots__ = ("item", "done", "outcome", "failed")

    def __init__(self, item: Any):
        self.item, self.done, self.outcome, self.failed = item, threading.Event(), None, False


class GroupCommit:
    def __init__(self, max_batch: int = 64):
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._open: dict[Hashable, list[_Waiting]] = {}  # key -> the batch still taking items (its leader waits)

    def submit(self, key: Hashable, item: Any, in_turn: Callable[[Callable[[], list]], list],
               run_batch: Callable[[list], list]) -> Any:
        """``item``'s outcome. ``in_turn(command)`` runs ``command`` in the key's turn (``retrying`` with the
        key: it may run it again after a lost race); the batch is closed when its command first runs."""
        me = _Waiting(item)
        with self._lock:
            batch = self._open.get(key)
            leader = batch is None
            if leader:
                batch = self._open[key] = []
            batch.append(me)
            if len(batch) >= self.max_batch:
                del self._open[key]  # full: the next item starts another batch
        if not leader:
            me.done.wait()
            return self._result(me)
        closed = False

        def command() -> list:
            nonlocal closed
            if not closed:  # the turn is ours: what arrived until now is this batch
                with self._lock:
                    if self._open.get(key) is batch:
                        del self._open[key]
                closed = True
            return run_batch([waiting.item for waiting in batch])

        try:
            outcomes = in_turn(command)
            if len(outcomes) != len(batch):
                raise AssertionError(f"run_batch answered {len(outcomes)} outcomes for {len(batch)} items")
            for waiting, outcome in zip(batch, outcomes, strict=True):
                waiting.outcome, waiting.failed = outcome, isinstance(outcome, BaseException)
        except BaseException as exc:  # the whole batch failed: each of its items gets the failure
            for waiting in batch:
                waiting.outcome, waiting.failed = exc, True
            if not closed:
                with self._lock:
                    if self._open.get(key) is batch:
                        del self._open[key]
        finally:
            for waiting in batch:
                waiting.done.set()
        return self._result(me)

    @staticmethod
    def _result(waiting: _Waiting) -> Any:
        if waiting.failed:
            raise waiting.outcome
        return waiting.outcome
