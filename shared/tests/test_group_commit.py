"""shared.group_commit: what arrives while a key's turn runs is run together in the next turn, each item its own
outcome; a batch's failure is each of its items' (issue #17: posts into one chat, one commit for many)."""

from __future__ import annotations

import threading
import time

import pytest

from shared.group_commit import GroupCommit

pytestmark = pytest.mark.unit


def test_items_arriving_during_a_turn_run_together_next_each_with_its_own_outcome():
    group, turn, batches, outcomes = GroupCommit(), threading.Lock(), [], {}

    def in_turn(command):
        with turn:
            return command()

    def run_batch(items):
        batches.append(list(items))
        return [ValueError(item) if item == "refused" else item.upper() for item in items]

    def submit(item):
        try:
            outcomes[item] = group.submit("k", item, in_turn, run_batch)
        except ValueError as exc:
            outcomes[item] = exc

    items = ["a", "b", "refused", "c", "d"]
    threads = [threading.Thread(target=submit, args=(item,)) for item in items]
    with turn:  # a turn under way: all five arrive meanwhile
        for t in threads:
            t.start()
            time.sleep(0.05)  # in this order
        deadline = time.monotonic() + 10
        while len(group._open.get("k", ())) < len(items) and time.monotonic() < deadline:
            time.sleep(0.01)
    for t in threads:
        t.join(10)
    assert batches == [items]
    assert {k: v for k, v in outcomes.items() if k != "refused"} == {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert isinstance(outcomes["refused"], ValueError)
    assert group._open == {}
    assert group.submit("k", "e", in_turn, run_batch) == "E" and batches[-1] == ["e"]  # alone: a batch of one


def test_a_failed_batch_fails_each_of_its_items_and_the_next_batch_runs():
    group = GroupCommit()
    with pytest.raises(RuntimeError):
        group.submit("k", 1, lambda command: command(), lambda items: (_ for _ in ()).throw(RuntimeError("down")))
    assert group._open == {}
    assert group.submit("k", 2, lambda command: command(), lambda items: [i * 10 for i in items]) == 20


def test_a_batch_is_bounded_and_a_retried_turn_runs_the_same_batch():
    group, runs = GroupCommit(max_batch=3), []
    gate = threading.Event()

    def in_turn(command):
        gate.wait(10)
        command()  # a lost race: the turn runs it again, the same items
        return command()

    def run_batch(items):
        runs.append(list(items))
        return items

    results = []
    threads = [threading.Thread(target=lambda n=n: results.append(group.submit("k", n, in_turn, run_batch)))
               for n in range(5)]
    # each item arrives before the next (CI under load started a later thread first): the key's open batch
    # holds 1, 2, then is full (closed), then the next holds 1, 2
    for t, open_after in zip(threads, (1, 2, 0, 1, 2), strict=True):
        t.start()
        deadline = time.monotonic() + 10
        while len(group._open.get("k", ())) != open_after and time.monotonic() < deadline:
            time.sleep(0.005)
    gate.set()
    for t in threads:
        t.join(10)
    assert sorted(results) == [0, 1, 2, 3, 4]
    # both leaders were let through the gate at once (this in_turn is no lock): their runs may interleave
    assert sorted(runs) == [[0, 1, 2], [0, 1, 2], [3, 4], [3, 4]]
