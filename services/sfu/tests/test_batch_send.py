"""Batched sending (``SFERA_SFU_SEND_BATCH=1``, the default with the receive shortcut; issue #17 "Scale"): the
packets the receive shortcut reads at one wake-up of a publisher's ICE socket go to each subscriber in one
``sendmmsg`` (``aiortc_adapter.batch_sender``), not one ``sendto`` a packet and subscriber. Checked on real SRTP
sessions, aioice's own ``StunProtocol`` on a real asyncio UDP endpoint and real receiving sockets: each subscriber
gets the very packets the unbatched way sends, in order, a subscriber waiting for a key frame from the key frame
on, and its sender report's counters stay true; the writer's fallbacks (a full socket, a TURN pair, too long a
packet, no pair). Real aiortc peers through a real SFU process with it: ``test_fast_path.py`` (``batched``)."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import socket
from types import SimpleNamespace

import pytest
from aioice.ice import StunProtocol
from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session

from sfu import aiortc_adapter, forward
from sfu.forward import PublishedTrack, Slot
from sfu.testing import PROFILE, Owner, WakeUps, ice_connection, policy, received, wire
from sfu.testing import QueuedConnection as Connection

KEY = os.urandom(PROFILE.key_length + PROFILE.salt_length)
PUBLISHER_SSRC = 777
KEYFRAME = b"\x10" + b"\x00\x00\x00\x9d\x01\x2a" + bytes(30)  # VP8: start of a key frame
DELTA = b"\x11" + bytes(30)
REAL_SENDMMSG = aiortc_adapter.SENDMMSG  # libc's, before any test wraps it


class CountingSocket:
    """A subscriber's ICE socket that counts the ``sendto`` calls made on it (the rest is the real socket's)."""

    def __init__(self, real: socket.socket):
        self.real = real
        self.sendto_calls = 0

    def sendto(self, data, address):
        self.sendto_calls += 1
        return self.real.sendto(data, address)

    def __getattr__(self, name):
        return getattr(self.real, name)


def forwarded(batched: bool, monkeypatch) -> dict:
    """One wake-up of the publisher's socket reads 12 waiting datagrams (a DTLS one among them: aiortc's way) of a
    video track shown on 3 subscribers' slots, the third shown only after the first packet (it waits for the key
    frame in the middle of the burst); what each subscriber received (unprotected), the ``sendmmsg`` and ``sendto``
    calls made, and each slot's sender-report fields."""
    monkeypatch.setenv("SFERA_SFU_FAST_PATH", "1")
    monkeypatch.setenv("SFERA_SFU_FAST_RECEIVE", "1")
    monkeypatch.setenv("SFERA_SFU_RECEIVE_BATCH", "32")
    monkeypatch.setenv("SFERA_SFU_SEND_BATCH", "1" if batched else "0")
    monkeypatch.setattr(forward.PublishedTrack, "request_keyframe", lambda self, reason: None)
    calls = []
    real = REAL_SENDMMSG
    monkeypatch.setattr(aiortc_adapter, "SENDMMSG", lambda *a: calls.append(a[2]) or real(*a))
    outbound = Session(policy(KEY, Policy.SSRC_ANY_OUTBOUND))
    payloads = [KEYFRAME] + [DELTA + bytes([i]) for i in range(1, 6)] + [KEYFRAME + b"6"] + \
        [DELTA + bytes([i]) for i in range(7, 12)]
    media = [outbound.protect(RtpPacket(payload_type=96, marker=i % 3 == 0, sequence_number=(65_530 + i) & 0xFFFF,
                                        timestamp=3000 * i, ssrc=PUBLISHER_SSRC, payload=payload).serialize())
             for i, payload in enumerate(payloads)]
    dtls = bytes([23, 254, 253]) + bytes(30)
    burst = media[1:4] + [dtls] + media[4:]  # 12 datagrams

    async def scenario() -> dict:
        loop = asyncio.get_running_loop()
        connection = Connection()
        transport, protocol = await loop.create_datagram_endpoint(lambda: StunProtocol(connection),
                                                                  local_addr=("127.0.0.1", 0))
        protocol.local_candidate = SimpleNamespace(component=1)
        inbound = Session(policy(KEY, Policy.SSRC_ANY_INBOUND))
        receiver = SimpleNamespace(transport=SimpleNamespace(_rx_srtp=inbound, transport=SimpleNamespace(
            _connection=ice_connection(protocol))))
        sinks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
        stubs, slots, counting = [], [], []
        track = PublishedTrack(Owner(), "camera", "video", receiver, set())
        for i, sink in enumerate(sinks):
            sink.bind(("127.0.0.1", 0))
            sink.setblocking(False)
            stubs.append(stub := await wire(0x5EED0000 + i, sink.getsockname()))
            stub.source._sock = CountingSocket(stub.source._sock)
            counting.append(stub.source._sock)
            slots.append(Slot(Owner(), str(i), "video", stub.sender, 100))
        for slot in slots[:2]:
            slot.show(track)
        await track.on_rtp(RtpPacket.parse(inbound.unprotect(media[0])))  # aiortc's way: the SSRC known
        slots[2].show(track)  # joins now: waits for the next key frame
        for sink in sinks:
            received(sink)
        for stub in counting:
            stub.sendto_calls = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as publisher:
            wakeups = WakeUps(protocol)
            for data in burst:  # all waiting before the loop looks at the socket (loopback: queued in sendto)
                publisher.sendto(data, transport.get_extra_info("sockname"))
            got: list[list[bytes]] = [[], [], []]
            for _ in range(200):
                await asyncio.sleep(0.005)
                for i, sink in enumerate(sinks):
                    got[i] += received(sink)
                if len(got[0]) >= 11 and len(got[2]) >= 6:
                    break
        transport.close()
        for stub, sink in zip(stubs, sinks, strict=True):
            stub.close()
            sink.close()
        reports = [(s._RTCRtpSender__packet_count, s._RTCRtpSender__octet_count, s._RTCRtpSender__rtp_timestamp)
                   for s in (stub.sender for stub in stubs)]
        return {"got": [[stub.reader.unprotect(d) for d in datagrams] for stub, datagrams in zip(stubs, got,
                                                                                                 strict=True)],
                "woken": wakeups.count, "sendmmsg": calls, "sendto": [c.sendto_calls for c in counting],
                "slots": [(s.packet_count, s.octet_count, s.last_seq, s.last_ts) for s in slots], "reports": reports,
                "queued": connection.queued}

    return asyncio.run(scenario())


@pytest.mark.unit
def test_a_wake_ups_packets_go_to_each_subscriber_in_one_sendmmsg(monkeypatch):
    """11 media packets read at one wake-up, 3 subscribers: 3 ``sendmmsg`` calls (11, 11 and the 6 from the key
    frame on for the subscriber that waits for one) and no ``sendto``, where the unbatched way makes 28 ``sendto``
    calls; the same bytes reach each subscriber in the same order, the slots' numbering and counters end the same,
    and each sender report's (packet count, octets, RTP time) is the slot's after its last packet."""
    unbatched = forwarded(False, monkeypatch)
    batched = forwarded(True, monkeypatch)
    assert unbatched["woken"] == batched["woken"] == 1
    assert unbatched["queued"] == batched["queued"] == [bytes([23, 254, 253]) + bytes(30)]
    assert unbatched["sendmmsg"] == [] and unbatched["sendto"] == [11, 11, 6]
    assert batched["sendmmsg"] == [11, 11, 6] and batched["sendto"] == [0, 0, 0]
    assert batched["got"] == unbatched["got"]
    assert [len(g) for g in batched["got"]] == [11, 11, 6]
    assert [RtpPacket.parse(d).payload for d in batched["got"][2]][0] == KEYFRAME + b"6"
    assert [RtpPacket.parse(d).sequence_number for d in batched["got"][0]] == [(65_531 + i) & 0xFFFF
                                                                                for i in range(11)]
    assert batched["slots"] == unbatched["slots"]
    # the report after the run: the slot's last packet's time with the count and octets of all its packets so far
    assert batched["reports"] == [(count, octets, ts) for count, octets, _, ts in batched["slots"]]


# -- the writer -----------------------------------------------------------------------------------------------------
def rtp(seq: int, ts: int, payload: bytes, pt: int = 96, marker: int = 0, ssrc: int = 1234) -> bytes:
    return forward.RTP_HEADER.pack(0x80, marker << 7 | pt, seq, ts, ssrc) + payload


@pytest.mark.unit
def test_the_batched_writer_sends_in_order_and_falls_back_to_its_transport(monkeypatch):
    """A plain UDP pair: the packets, numbered with the slot's offsets, leave protected in one ``sendmmsg`` each
    64 (70 packets: 2 calls), in order; too long a packet is left out (the rest go); what the socket does not take
    (a full buffer: ``sendmmsg`` sends fewer, or none with EAGAIN) goes through the transport's ``sendto`` with bytes
    of its own, in order; another error is raised; a pair that is no plain socket (a TURN relay) goes through its
    transport; no nominated pair: ConnectionError; no SRTP session yet: no writer."""
    from sfu.aiortc_adapter import batch_sender

    calls = []
    real = REAL_SENDMMSG
    monkeypatch.setattr(aiortc_adapter, "SENDMMSG", lambda fd, vector, count, flags: calls.append(count) or
                        real(fd, vector, count, flags))

    async def scenario() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
            sink.bind(("127.0.0.1", 0))
            sink.setblocking(False)
            sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            stub = await wire(1234, sink.getsockname())
            assert batch_sender(SimpleNamespace(transport=SimpleNamespace(_tx_srtp=None))) is None
            send = batch_sender(stub.sender)
            packets = [(65_500 + i, 1000 * i, i % 2, bytes([i]) * (100 + i)) for i in range(70)]
            assert send(96, 40, 7, packets) == 70
            assert calls == [64, 6]
            got = [stub.reader.unprotect(d) for d in received(sink)]
            assert got == [rtp((65_540 + i) & 0xFFFF, 1000 * i + 7, bytes([i]) * (100 + i), marker=i % 2)
                           for i in range(70)]

            calls.clear()
            assert send(111, 0, 0, [(101, 10, 0, b"a"), (102, 20, 0, bytes(1500)), (103, 30, 1, b"c")]) == 2
            assert calls == [2]
            assert [stub.reader.unprotect(d) for d in received(sink)] == [rtp(101, 10, b"a", 111),
                                                                         rtp(103, 30, b"c", 111, 1)]

            via_transport = []
            stub.source.sendto = lambda data, addr: via_transport.append((data, addr))
            monkeypatch.setattr(aiortc_adapter, "SENDMMSG", lambda fd, vector, count, flags:
                                real(fd, vector, min(count, 2), flags))  # the buffer takes 2
            send = batch_sender(stub.sender)
            assert send(96, 0, 0, [(110 + i, 0, 0, b"p%d" % i) for i in range(5)]) == 5
            assert [stub.reader.unprotect(d) for d in received(sink)] == [rtp(110, 0, b"p0"), rtp(111, 0, b"p1")]
            assert all(isinstance(d, bytes) and a == stub.pair.remote_addr for d, a in via_transport)
            assert [stub.reader.unprotect(d) for d, _ in via_transport] == [rtp(112 + i, 0, b"p%d" % (2 + i))
                                                                            for i in range(3)]

            def failing(code):
                def sendmmsg(fd, vector, count, flags):
                    ctypes.set_errno(code)
                    return -1
                return sendmmsg

            via_transport.clear()
            monkeypatch.setattr(aiortc_adapter, "SENDMMSG", failing(errno.EAGAIN))
            send = batch_sender(stub.sender)
            assert send(96, 0, 0, [(120, 0, 0, b"x"), (121, 0, 0, b"y")]) == 2
            assert [stub.reader.unprotect(d) for d, _ in via_transport] == [rtp(120, 0, b"x"), rtp(121, 0, b"y")]
            monkeypatch.setattr(aiortc_adapter, "SENDMMSG", failing(errno.EPERM))
            with pytest.raises(OSError):
                batch_sender(stub.sender)(96, 0, 0, [(122, 0, 0, b"z")])

            relayed = []  # a TURN pair: its transport is aioice's, no socket of its own
            monkeypatch.setattr(aiortc_adapter, "SENDMMSG", real)
            send = batch_sender(stub.sender)
            stub.nominated[1] = SimpleNamespace(protocol=SimpleNamespace(transport=SimpleNamespace(
                sendto=lambda data, addr: relayed.append((data, addr)))), remote_addr=("10.0.0.1", 3478))
            assert send(96, 0, 0, [(130, 0, 0, b"r1"), (131, 0, 0, b"r2")]) == 2
            assert [stub.reader.unprotect(d) for d, a in relayed if a == ("10.0.0.1", 3478)] == [
                rtp(130, 0, b"r1"), rtp(131, 0, b"r2")]
            del stub.nominated[1]
            with pytest.raises(ConnectionError):
                send(96, 0, 0, [(132, 0, 0, b"gone")])
            stub.close()

    asyncio.run(scenario())


@pytest.mark.unit
def test_the_batched_writer_sends_to_an_ipv6_address():
    """An ICE pair on IPv6 (``sockaddr`` builds a ``sockaddr_in6``): the packets reach the IPv6 socket."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        sink = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sink.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    sink.setblocking(False)

    async def scenario() -> list[bytes]:
        stub = await wire(1234, sink.getsockname()[:2])
        loop = asyncio.get_running_loop()
        source, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("::1", 0))
        stub.nominated[1] = SimpleNamespace(protocol=SimpleNamespace(transport=source),
                                            remote_addr=sink.getsockname()[:2])
        assert aiortc_adapter.batch_sender(stub.sender)(96, 0, 0, [(1, 0, 0, b"six"), (2, 0, 0, b"six!")]) == 2
        await asyncio.sleep(0.01)
        out = [stub.reader.unprotect(d) for d in received(sink)]
        source.close()
        stub.close()
        return out

    with sink:
        assert asyncio.run(scenario()) == [rtp(1, 0, b"six"), rtp(2, 0, b"six!")]
