"""Acks sent together (shared/bus/delivery.py, issue #17): one ``multiple`` ack covers only a run of delivery tags
from the channel's oldest unsettled one whose workers all finished (or were requeued); a finished delivery after
a gap is acked alone at once (the prefetch window waits for it), never left for later nor covered early."""

from __future__ import annotations

from shared.bus.delivery import ChannelAcks


def finished(acks: ChannelAcks, *tags: int) -> None:
    for tag in tags:
        acks.ready[tag] = f"message {tag}"


def test_a_run_of_finished_deliveries_is_one_multiple_ack_of_its_last():
    acks = ChannelAcks()
    finished(acks, 2, 1, 3)
    assert acks.take() == ("message 3", 3, [])
    finished(acks, 4)
    assert acks.take() == ("message 4", 1, [])
    assert acks.acked_to == 4


def test_a_delivery_still_in_its_worker_ends_the_run_and_those_after_it_are_acked_alone():
    acks = ChannelAcks()
    finished(acks, 1, 2, 4, 5)  # 3 is still being handled: a multiple ack of 5 would acknowledge it
    assert acks.take() == ("message 2", 2, ["message 4", "message 5"])
    assert acks.acked_to == 2
    finished(acks, 3, 6)  # 4 and 5 were acked alone: the run goes over them, the multiple ack is of 6
    assert acks.take() == ("message 6", 2, [])
    assert acks.acked_to == 6 and not acks.settled


def test_a_requeued_delivery_does_not_end_the_run_and_is_not_acked():
    acks = ChannelAcks()
    acks.settled.add(2)  # requeued
    finished(acks, 1, 3)
    assert acks.take() == ("message 3", 2, [])
    assert acks.acked_to == 3


def test_nothing_finished_sends_nothing():
    acks = ChannelAcks()
    acks.settled.add(1)
    assert acks.take() == (None, 0, [])
    assert acks.acked_to == 1
