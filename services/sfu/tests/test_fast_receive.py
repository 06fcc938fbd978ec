"""The receive shortcut (``SFERA_SFU_FAST_RECEIVE=1``, issue #17 "Scale"): a known video SSRC's SRTP is taken from
the nominated ICE pair's socket (``aiortc_adapter.fast_receive``), unprotected with the DTLS transport's rx session
and its header read with ``struct``, past aioice's queue, the DTLS receive task and ``RtpPacket``. Checked here on
real SRTP sessions and aioice's own ``StunProtocol``: the subscriber is sent the very bytes aiortc's way sends it
(CSRCs, header extensions, padding in what the publisher sent), and what is not such a packet still goes aiortc's
way. Real aiortc peers through a real SFU process with the shortcut on: ``test_fast_path.py`` (its ``fast_receive``
parameter)."""

from __future__ import annotations

import asyncio
import os
import socket
from types import SimpleNamespace

import pytest
from aioice.ice import StunProtocol
from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from pylibsrtp import Policy, Session

from sfu import aiortc_adapter, forward
from sfu.forward import PublishedTrack, Slot
from sfu.testing import PROFILE, Owner, WakeUps, ice_connection, policy, received, wire
from sfu.testing import QueuedConnection as Connection

KEY = os.urandom(PROFILE.key_length + PROFILE.salt_length)
PUBLISHER_SSRC = 777
RTX_PT = 97


def publisher_packets() -> tuple[list[bytes], HeaderExtensionsMap]:
    """What a publisher sends, SRTP-protected: a delta frame (not forwarded before the key frame), a key frame with a
    header extension, frames with CSRCs and with padding, and an RTX packet on the track's SSRC."""
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(
        id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")]))
    delta = b"\x11" + bytes(30)
    key = b"\x10" + b"\x00\x00\x00\x9d\x01\x2a" + bytes(30)
    made = []
    sent = [(delta, [], 0, 96), (key, [], 0, 96), (delta + b"1", [5, 6], 0, 96), (delta + b"2", [], 7, 96),
            (delta + b"3", [], 0, RTX_PT), (delta + b"4", [9], 4, 96)]  # payload, CSRCs, padding, payload type
    for i, (payload, csrc, padding, pt) in enumerate(sent):
        p = RtpPacket(payload_type=pt, marker=i % 2, sequence_number=(65_534 + i) & 0xFFFF,
                      timestamp=(4_294_960_000 + 3000 * i) & 0xFFFFFFFF, ssrc=PUBLISHER_SSRC, payload=payload)
        p.csrc = csrc
        p.padding_size = padding
        p.extensions.abs_send_time = 1234 + i
        made.append(p.serialize(extensions))
    outbound = Session(policy(KEY, Policy.SSRC_ANY_OUTBOUND))
    return [outbound.protect(data) for data in made], extensions


def forwarded(shortcut: bool, monkeypatch) -> tuple[list[bytes], list[bytes]]:
    """What one slot of a video track sends for ``publisher_packets()`` received one way or the other (the first
    packet always through aiortc's way: it makes the SSRC known), unprotected; and what went aiortc's way."""
    monkeypatch.setenv("SFERA_SFU_FAST_PATH", "1")
    monkeypatch.setenv("SFERA_SFU_FAST_RECEIVE", "1" if shortcut else "0")
    monkeypatch.setattr(forward.PublishedTrack, "request_keyframe", lambda self, reason: None)
    datagrams, extensions = publisher_packets()

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        connection = Connection()
        protocol = StunProtocol(connection)
        protocol.local_candidate = SimpleNamespace(component=1)
        inbound = Session(policy(KEY, Policy.SSRC_ANY_INBOUND))
        receiver = SimpleNamespace(transport=SimpleNamespace(_rx_srtp=inbound, transport=SimpleNamespace(
            _connection=ice_connection(protocol))))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
            sink.bind(("127.0.0.1", 0))
            sink.setblocking(False)
            stub = await wire(0x5EEDF00D, sink.getsockname())
            track = PublishedTrack(Owner(), "camera", "video", receiver, {RTX_PT})
            slot = Slot(Owner(), "1", "video", stub.sender, 100)
            slot.show(track)
            aiortc_way = []
            for data in datagrams:
                protocol.datagram_received(data, ("10.0.0.2", 5000))
                while connection.queued:  # aiortc's way: the DTLS transport's receive task, RtpPacket, the router
                    queued = connection.queued.pop(0)
                    aiortc_way.append(queued)
                    await track.on_rtp(RtpPacket.parse(inbound.unprotect(queued), extensions))
            await asyncio.sleep(0)
            sent = [stub.reader.unprotect(data) for data in received(sink)]
            stub.close()
            return sent, aiortc_way

    return asyncio.run(scenario())


@pytest.mark.unit
def test_the_shortcut_forwards_the_bytes_aiortcs_way_forwarded(monkeypatch):
    """Same SSRC, payload type, marker, sequence numbers, timestamps and payload (CSRCs, header extension and padding
    taken off as ``RtpPacket.parse`` takes them), the RTX packet not forwarded; after the first packet nothing of the
    track's SSRC goes through aioice's queue."""
    PublishedTrack.fast_received = 0
    old, old_queued = forwarded(False, monkeypatch)
    assert PublishedTrack.fast_received == 0
    new, new_queued = forwarded(True, monkeypatch)
    assert new == old
    assert len(new) == 4  # the delta frame before the key frame and the RTX packet are not sent
    assert [RtpPacket.parse(d).sequence_number for d in new] == [65_535, 0, 1, 3]
    assert len(old_queued) == 6
    assert len(new_queued) == 1  # the first packet, which makes the SSRC known; then the shortcut
    assert PublishedTrack.fast_received == 4  # the RTX packet is dropped before it counts


@pytest.mark.unit
def test_what_is_not_a_known_ssrcs_srtp_goes_aiortcs_way(monkeypatch):
    """STUN-less datagrams that are DTLS, SRTCP (RFC 5761: second byte 192-223), another SSRC, or refused by SRTP
    (forged): the first three are handed to aioice's connection as before, the forged one is dropped (as aiortc drops
    it after its unprotect fails); with the switch off nothing takes the shortcut."""
    monkeypatch.setenv("SFERA_SFU_FAST_PATH", "1")
    monkeypatch.setenv("SFERA_SFU_FAST_RECEIVE", "1")
    datagrams, extensions = publisher_packets()

    async def scenario() -> None:
        connection = Connection()
        protocol = StunProtocol(connection)
        protocol.local_candidate = SimpleNamespace(component=1)
        original = protocol.datagram_received
        inbound = Session(policy(KEY, Policy.SSRC_ANY_INBOUND))
        receiver = SimpleNamespace(transport=SimpleNamespace(_rx_srtp=inbound, transport=SimpleNamespace(
            _connection=ice_connection(protocol))))
        track = PublishedTrack(Owner(), "camera", "video", receiver, set())
        track.on_raw = lambda *fields: got.append(fields)
        got: list[tuple] = []
        await track.on_rtp(RtpPacket.parse(inbound.unprotect(datagrams[1]), extensions))
        assert protocol.datagram_received != original
        dtls = bytes([22, 254, 253]) + bytes(20)
        rtcp = bytes([0x80, 200, 0, 6]) + PUBLISHER_SSRC.to_bytes(4, "big") + bytes(40)
        other = bytearray(datagrams[2])
        other[8:12] = (888).to_bytes(4, "big")
        forged = bytearray(datagrams[2])
        forged[-1] ^= 1
        for data in (dtls, rtcp, bytes(other), bytes(forged), datagrams[2]):
            protocol.datagram_received(data, ("10.0.0.2", 5000))
        assert connection.queued == [dtls, rtcp, bytes(other)]
        assert got == [(96, 0, 4_294_966_000, 0, b"\x11" + bytes(30) + b"1", None)]
        protocol.connection_lost(None)  # the peer connection closed: its routes go
        assert protocol not in aiortc_adapter.SHORTCUTS

        monkeypatch.setenv("SFERA_SFU_FAST_RECEIVE", "0")
        protocol = StunProtocol(connection)
        original = protocol.datagram_received
        receiver.transport.transport._connection._nominated[1] = SimpleNamespace(protocol=protocol)
        off = PublishedTrack(Owner(), "camera", "video", receiver, set())
        await off.on_rtp(RtpPacket.parse(Session(policy(KEY, Policy.SSRC_ANY_INBOUND)).unprotect(datagrams[1]),
                                         extensions))
        assert protocol.datagram_received == original

    asyncio.run(scenario())


@pytest.mark.unit
def test_media_reaching_another_socket_of_the_connection_takes_the_shortcut(monkeypatch):
    """The publisher sends on the pair it chose, which need not be the one this side nominated (aioice's controlled
    side keeps the last pair nominated to it; with IPv4 and IPv6 host candidates the media may come to the other
    local socket): the shortcut is on every socket of the ICE connection, so a known SSRC's SRTP on either is
    taken, and what is not such a packet still goes to aioice's connection from either. Before, the shortcut sat
    on the nominated pair's socket alone and such a publisher's media all went aiortc's way (bench.sfu_forward
    --profile caught a flood forwarded by on_rtp)."""
    monkeypatch.setenv("SFERA_SFU_FAST_PATH", "1")
    monkeypatch.setenv("SFERA_SFU_FAST_RECEIVE", "1")
    monkeypatch.setenv("SFERA_SFU_SEND_BATCH", "0")
    datagrams, extensions = publisher_packets()

    async def scenario() -> None:
        connection = Connection()
        nominated, other = StunProtocol(connection), StunProtocol(connection)
        for protocol in (nominated, other):
            protocol.local_candidate = SimpleNamespace(component=1)
        inbound = Session(policy(KEY, Policy.SSRC_ANY_INBOUND))
        receiver = SimpleNamespace(transport=SimpleNamespace(_rx_srtp=inbound, transport=SimpleNamespace(
            _connection=ice_connection(nominated, other))))
        track = PublishedTrack(Owner(), "camera", "video", receiver, set())
        got: list[tuple] = []
        track.on_raw = lambda *fields: got.append(fields)
        await track.on_rtp(RtpPacket.parse(inbound.unprotect(datagrams[1]), extensions))
        dtls = bytes([22, 254, 253]) + bytes(20)
        other.datagram_received(datagrams[2], ("10.0.0.2", 5000))
        other.datagram_received(dtls, ("10.0.0.2", 5000))
        nominated.datagram_received(datagrams[3], ("10.0.0.2", 5000))
        assert [fields[1] for fields in got] == [0, 1]  # both sockets' media by the shortcut
        assert connection.queued == [dtls]
        for protocol in (nominated, other):
            protocol.connection_lost(None)
        assert nominated not in aiortc_adapter.SHORTCUTS and other not in aiortc_adapter.SHORTCUTS

    asyncio.run(scenario())


@pytest.mark.unit
@pytest.mark.parametrize("level_id", [1, 20], ids=["one_byte_extensions", "two_byte_extensions"])
def test_an_audio_tracks_level_is_read_as_aiortc_reads_it(monkeypatch, level_id):
    """The speaker detection's input (RFC 6464 audio level; the loudest microphones get the audio slots): the same
    level from the raw header extension block, one-byte (ids up to 14) or two-byte elements, as from aiortc's
    ``RtpPacket``; a packet without it leaves the level alone."""
    monkeypatch.setenv("SFERA_SFU_FAST_PATH", "1")
    monkeypatch.setenv("SFERA_SFU_FAST_RECEIVE", "1")
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
        RTCRtpHeaderExtensionParameters(id=level_id, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level")]))
    outbound = Session(policy(KEY, Policy.SSRC_ANY_OUTBOUND))
    datagrams = []
    for i, level in enumerate([30, 90, None, 10, 127]):
        p = RtpPacket(payload_type=111, sequence_number=100 + i, timestamp=960 * i, ssrc=PUBLISHER_SSRC,
                      payload=b"opus" + bytes([i]))
        p.extensions.abs_send_time = 99
        if level is not None:
            p.extensions.audio_level = (level < 60, level)
        datagrams.append(outbound.protect(p.serialize(extensions)))

    async def levels(shortcut: bool) -> list[float]:
        connection = Connection()
        protocol = StunProtocol(connection)
        protocol.local_candidate = SimpleNamespace(component=1)
        inbound = Session(policy(KEY, Policy.SSRC_ANY_INBOUND))
        receiver = SimpleNamespace(transport=SimpleNamespace(
            _rx_srtp=inbound, _rtp_header_extensions_map=extensions,
            transport=SimpleNamespace(_connection=ice_connection(protocol))))
        track = PublishedTrack(Owner(), "microphone", "audio", receiver, set())
        track.shortcut_wanted = shortcut
        out = []
        for data in datagrams:
            protocol.datagram_received(data, ("10.0.0.2", 5000))
            while connection.queued:
                await track.on_rtp(RtpPacket.parse(inbound.unprotect(connection.queued.pop(0)), extensions))
            out.append((track.level, track.last_voice > 0))
        assert len(track.history) and track.history[104 % len(track.history)][3] == b"opus\x04"
        return out

    PublishedTrack.fast_received = 0
    old = asyncio.run(levels(False))
    assert PublishedTrack.fast_received == 0
    new = asyncio.run(levels(True))
    assert PublishedTrack.fast_received == 4  # all but the first
    assert new == old
    assert old[2] == old[1] and old[0] != old[1]  # read at all, and not without the extension


@pytest.mark.unit
@pytest.mark.parametrize(("batch", "wakeups"), [(1, 12), (5, 3), (32, 1)])
def test_a_burst_waiting_on_the_socket_is_read_in_one_wake_up_all_forwarded_in_order(monkeypatch, batch, wakeups):
    """``SFERA_SFU_RECEIVE_BATCH``: 12 datagrams wait on the publisher's ICE socket (a real asyncio UDP endpoint
    with aioice's ``StunProtocol``) when the event loop next looks: with batch 32 one wake-up reads them all, with 5
    they take 3 (5 + 5 + 2), with 1 (asyncio's way) 12. Either way the subscriber gets every media packet once, in
    the order sent, and the DTLS datagram among them still goes to aioice's connection."""
    monkeypatch.setenv("SFERA_SFU_FAST_PATH", "1")
    monkeypatch.setenv("SFERA_SFU_FAST_RECEIVE", "1")
    monkeypatch.setenv("SFERA_SFU_RECEIVE_BATCH", str(batch))
    monkeypatch.setattr(forward.PublishedTrack, "request_keyframe", lambda self, reason: None)
    outbound = Session(policy(KEY, Policy.SSRC_ANY_OUTBOUND))
    key = b"\x10" + b"\x00\x00\x00\x9d\x01\x2a" + bytes(30)
    media = [outbound.protect(RtpPacket(payload_type=96, sequence_number=1000 + i, timestamp=3000 * i,
                                        ssrc=PUBLISHER_SSRC, payload=key + bytes([i])).serialize())
             for i in range(12)]
    dtls = bytes([23, 254, 253]) + bytes(30)
    burst = media[1:6] + [dtls] + media[6:]  # 12 datagrams

    async def scenario() -> tuple[list[int], list[bytes], int]:
        loop = asyncio.get_running_loop()
        connection = Connection()
        transport, protocol = await loop.create_datagram_endpoint(lambda: StunProtocol(connection),
                                                                  local_addr=("127.0.0.1", 0))
        protocol.local_candidate = SimpleNamespace(component=1)
        inbound = Session(policy(KEY, Policy.SSRC_ANY_INBOUND))
        receiver = SimpleNamespace(transport=SimpleNamespace(_rx_srtp=inbound, transport=SimpleNamespace(
            _connection=ice_connection(protocol))))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as publisher:
            sink.bind(("127.0.0.1", 0))
            sink.setblocking(False)
            stub = await wire(0x5EEDF00D, sink.getsockname())
            track = PublishedTrack(Owner(), "camera", "video", receiver, set())
            slot = Slot(Owner(), "1", "video", stub.sender, 100)
            slot.show(track)
            await track.on_rtp(RtpPacket.parse(inbound.unprotect(media[0])))  # aiortc's way: the SSRC known
            wakeups = WakeUps(protocol)
            for data in burst:  # all waiting before the loop looks at the socket (loopback: queued in sendto)
                publisher.sendto(data, transport.get_extra_info("sockname"))
            sent: list[bytes] = []
            for _ in range(200):
                await asyncio.sleep(0.005)
                sent += received(sink)
                if len(sent) >= len(media) and not connection.queued[1:]:
                    break
            transport.close()
            stub.close()
            return [RtpPacket.parse(stub.reader.unprotect(d)).sequence_number for d in sent], connection.queued, \
                wakeups.count

    sequence, queued, woken = asyncio.run(scenario())
    assert sequence == list(range(1000, 1012))  # all, once, in order (the first by aiortc's way)
    assert queued == [dtls]
    assert woken == wakeups
