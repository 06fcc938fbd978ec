"""The SFU's forwarding paths (issue #17, "Scale"): ``SFERA_SFU_FAST_PATH=1`` (the default) rewrites the RTP
header on the raw bytes and protects and sends them itself, ``0`` re-serializes an ``RtpPacket`` per subscriber as
before. Both are checked with real aiortc peers against a real SFU process: a late subscriber decodes the
publisher's picture and tone (its key frame asked for on join), a lost packet NACKed by the subscriber's aiortc
comes again from the SFU's history, a subscriber leaving mid-stream leaves the others' media alone. And the fast
path's bytes are the ones the ``RtpPacket`` path wrote."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest
from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtcpSrPacket, RtpPacket

from sfu import forward
from sfu.forward import NO_EXTENSIONS, PublishedTrack, Slot
from sfu.testing import Owner, received, wire
from shared.contracts.join_token import TOKEN_AUDIENCE, join_token_ttl, token_secret
from tests.webrtc import Peer
from tools.devstack.infra import die_with_parent, free_port, wait_for

REPO = Path(__file__).resolve().parents[3]
CAMERA_LUMA = 90


# -- the bytes: fast path == RtpPacket path ------------------------------------------------------------------
def forwarded_bytes(fast: str, monkeypatch, packets: list[RtpPacket], nack: int | None = None) -> list[bytes]:
    """What one slot of a video track sends for ``packets`` (then for a NACK of ``nack``), on one path, through the
    production writer, a real SRTP session and a real UDP socket: the datagrams as they arrived, unprotected (a
    retransmission, which the receiving session refuses as a replay, must be the very datagram sent before)."""
    monkeypatch.setenv("SFERA_SFU_FAST_PATH", fast)
    serialized = []
    serialize = RtpPacket.serialize
    monkeypatch.setattr(RtpPacket, "serialize", lambda self, *a: serialized.append(1) or serialize(self, *a))

    async def scenario() -> list[bytes]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
            sink.bind(("127.0.0.1", 0))
            sink.setblocking(False)
            stub = await wire(0x5EEDF00D, sink.getsockname())
            track = PublishedTrack(Owner(), "camera", "video", SimpleNamespace(), set())
            slot = Slot(Owner(), "1", "video", stub.sender, 100)
            slot.last_seq, slot.last_ts = 40_000, 123_456  # it showed another source before: numbering goes on
            slot.show(track)
            for packet in packets:
                await track.on_rtp(packet)
            sent = received(sink)
            if nack is not None:
                assert track.resend(slot, nack)
                again = received(sink)
                assert len(again) == 1 and again[0] in sent  # the same SRTP bytes: same sequence, same keystream
            stub.close()
            return [stub.reader.unprotect(data) for data in sent]

    written = asyncio.run(scenario())
    monkeypatch.setattr(RtpPacket, "serialize", serialize)
    assert len(serialized) == (0 if fast == "1" else len(written) + (nack is not None))  # fast: no RtpPacket
    return written


@pytest.mark.unit
def test_the_fast_path_writes_the_bytes_the_rtppacket_path_wrote(monkeypatch):
    """Same SSRC, payload type, marker, continued sequence numbers and timestamps, the publisher's header
    extensions dropped; nothing before the first key frame; a NACKed packet resent the same."""
    monkeypatch.setattr(forward.PublishedTrack, "request_keyframe", lambda self, reason: None)
    delta = b"\x11" + bytes(30)  # VP8 descriptor S=1, frame tag P=1: not a key frame
    key = b"\x10" + b"\x00\x00\x00\x9d\x01\x2a" + bytes(30)  # S=1, P=0 and the key frame's start code
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(
        id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")]))
    packets = []
    for i, payload in enumerate([delta, key, delta + b"1", delta + b"2"]):
        p = RtpPacket(payload_type=96, marker=i % 2, sequence_number=(65_534 + i) & 0xFFFF,
                      timestamp=(4_294_960_000 + 3000 * i) & 0xFFFFFFFF,
                      ssrc=777, payload=payload)
        p.extensions.abs_send_time = 1234
        packets.append(RtpPacket.parse(p.serialize(extensions), extensions))
    assert packets[0].extensions.abs_send_time == 1234
    legacy = forwarded_bytes("0", monkeypatch, packets, nack=40_002)
    fast = forwarded_bytes("1", monkeypatch, packets, nack=40_002)
    assert fast == legacy
    assert len(fast) == 3  # the delta frame before the key frame is not sent
    first = RtpPacket.parse(fast[0])
    assert (first.ssrc, first.payload_type, first.sequence_number, first.payload) == (0x5EEDF00D, 100, 40_001, key)
    assert [RtpPacket.parse(d).sequence_number for d in fast] == [40_001, 40_002, 40_003]
    assert fast[0] == RtpPacket(payload_type=100, marker=1, sequence_number=40_001, ssrc=0x5EEDF00D,
                                timestamp=123_456 + 3000, payload=key).serialize(NO_EXTENSIONS)


# -- real peers against a real SFU ------------------------------------------------------------------------------
def token(call_id: str, rights: list[str], role: str = "participant") -> str:
    now = int(time.time())
    return jwt.encode({"aud": TOKEN_AUDIENCE, "sub": str(uuid.uuid4()), "call": call_id, "room": call_id,
                       "role": role, "rights": rights, "muted": False, "iat": now, "exp": now + join_token_ttl()},
                      token_secret(), algorithm="HS256")


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    out: dict[str, float] = {}
    for line in lines:
        if line.startswith("sfera_sfu_"):
            name, value = line.rsplit(" ", 1)
            out[name.split("{")[0]] = out.get(name.split("{")[0], 0.0) + float(value)
    return out


@pytest.fixture(scope="module", params=["1", "0", "receive", "batched"],
                ids=["fast_path", "rtppacket_path", "fast_receive", "batched_send"])
def sfu(request, tmp_path_factory):
    """``python -m sfu`` with ``SFERA_SFU_FAST_PATH`` as the parameter (no broker: its facts wait); ``receive``: the
    fast path with the receive shortcut (``SFERA_SFU_FAST_RECEIVE=1``, ``test_fast_receive.py``), off otherwise;
    ``batched``: that and each subscriber's packets of a wake-up in one sendmmsg (``SFERA_SFU_SEND_BATCH=1``,
    ``test_batch_send.py``), off otherwise."""
    fast, receive = ("1", "1") if request.param in ("receive", "batched") else (request.param, "0")
    batched = "1" if request.param == "batched" else "0"
    port = free_port()
    log = tmp_path_factory.mktemp("sfu") / "sfu.log"
    env = {**os.environ, "SFERA_SFU_PORT": str(port), "SFERA_SFU_NODE": f"test-{port}",
           "SFERA_AMQP_URI": f"amqp://guest:guest@127.0.0.1:{free_port()}/", "SFERA_LOG_LEVEL": "WARNING",
           "SFERA_SFU_FAST_PATH": fast, "SFERA_SFU_FAST_RECEIVE": receive, "SFERA_SFU_SEND_BATCH": batched,
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "services" / "sfu")])}
    process = subprocess.Popen([sys.executable, "-m", "sfu"], env=env, cwd=REPO, stdout=open(log, "wb"),
                               stderr=subprocess.STDOUT, preexec_fn=die_with_parent())

    def alive() -> bool:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1)
            return True
        except OSError:
            return False

    wait_for(alive, 30, "the SFU to listen")
    yield SimpleNamespace(url=f"ws://127.0.0.1:{port}/ws", port=port, fast=fast, receive=receive, batched=batched,
                          log=log, alive=alive)
    process.terminate()
    process.wait(timeout=15)


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.1)


def pictures(peer: Peer) -> list[float]:
    return [luma for got in peer.received.values() if got.kind == "video" for luma in got.lumas]


def ntp_seconds(ntp: int) -> float:
    return (ntp >> 32) - 2_208_988_800 + (ntp & 0xFFFFFFFF) / 2**32


def tones(peer: Peer) -> list[float]:
    return [rms for got in peer.received.values() if got.kind == "audio" for rms in got.rms]


@pytest.mark.integration
def test_a_late_subscriber_decodes_the_picture_and_the_tone(sfu):
    """The publisher has sent for a while (its first key frame long gone): the subscriber that joins then is sent
    nothing until a key frame the SFU asks for on its join, and decodes the publisher's grey and tone. The sender
    reports it gets for its video tell the truth: the packets sent so far, and an (RTP time, wall time) pair that
    matches the packets' timestamps (A/V sync)."""
    assert scrape(sfu.port)["sfera_sfu_fast_path"] == float(sfu.fast)
    assert scrape(sfu.port)["sfera_sfu_fast_receive"] == float(sfu.receive)
    assert scrape(sfu.port)["sfera_sfu_send_batch"] == float(sfu.batched)

    async def scenario() -> None:
        call_id = str(uuid.uuid4())
        publisher = await Peer(sfu.url, token(call_id, ["subscribe", "audio", "video"], "admin"),
                               camera_luma=CAMERA_LUMA, tone_hz=440, video_slots=0, audio_slots=0).connect()
        subscriber = None
        # what the publisher hears back about its media (RTCP to its senders), the same on every receive way
        heard: list[tuple[str, int | None, int]] = []  # (packet type, fmt, report blocks about its streams)
        for transceiver in publisher.pc.getTransceivers():
            def hook(sender, handle=transceiver.sender._handle_rtcp_packet):
                async def on_rtcp(packet) -> None:
                    blocks = [r for r in getattr(packet, "reports", []) if r.ssrc == sender._ssrc]
                    heard.append((type(packet).__name__, getattr(packet, "fmt", None), len(blocks)))
                    await handle(packet)
                return on_rtcp
            transceiver.sender._handle_rtcp_packet = hook(transceiver.sender)
        try:
            await until(lambda: scrape(sfu.port).get("sfera_sfu_received_packets_total", 0) > 150, 20,
                        "the publisher's media to reach the SFU")
            requests = scrape(sfu.port).get("sfera_sfu_keyframe_requests_total", 0)
            subscriber = await Peer(sfu.url, token(call_id, ["subscribe"]), video_slots=1, audio_slots=1).connect()
            video = subscriber.pc.getTransceivers()[0].receiver
            handle_rtp, handle_rtcp = video._handle_rtp_packet, video._handle_rtcp_packet
            packets: list[tuple[float, int]] = []  # (wall time, RTP timestamp) of each video packet received
            reports: list[tuple[float, RtcpSrPacket]] = []

            async def on_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
                packets.append((time.time(), packet.timestamp))
                await handle_rtp(packet, arrival_time_ms)

            async def on_rtcp(packet) -> None:
                if isinstance(packet, RtcpSrPacket):
                    reports.append((time.time(), packet))
                await handle_rtcp(packet)

            video._handle_rtp_packet, video._handle_rtcp_packet = on_rtp, on_rtcp
            await until(lambda: len(pictures(subscriber)) >= 3 and len(tones(subscriber)) >= 3, 30,
                        "decoded frames and samples")
            await until(lambda: any(r.sender_info.packet_count > 8 for _, r in reports), 10, "a sender report")
            at, report = reports[-1]
            info = report.sender_info
            assert 0 < info.packet_count <= sum(1 for t, _ in packets if t <= at) + 8
            assert abs(ntp_seconds(info.ntp_timestamp) - at) < 2  # taken at a packet's sending, not long ago
            # the RTP timestamp of the report's wall time, from the packets': within a few frames (90 kHz)
            _, rtp = min(packets, key=lambda p: abs(p[0] - ntp_seconds(info.ntp_timestamp)))
            assert abs(((info.rtp_timestamp - rtp + 2**31) % 2**32) - 2**31) < 0.3 * 90_000
            assert all(abs(luma - CAMERA_LUMA) < 12 for luma in pictures(subscriber)), pictures(subscriber)
            assert max(tones(subscriber)) > 1000, tones(subscriber)
            assert scrape(sfu.port)["sfera_sfu_keyframe_requests_total"] > requests  # asked for on the join
            # the PLI of the join reached the publisher; receiver reports with a block about its streams, or NACKs,
            # it never gets, on either receive way: aiortc's receiver statistics and NACK generator are fed by the
            # _handle_rtp_packet the forwarder replaces (forward), so the shortcut takes nothing away
            assert ("RtcpPsfbPacket", 1, 0) in heard, heard
            assert not [h for h in heard if h[0] == "RtcpRtpfbPacket" or h[2]], heard
            # the shortcut takes the media (all but each track's first packet and what aioice had queued before
            # the shortcut was in place: at load 16 in CI that was most of the first 150); off: nothing
            if sfu.receive == "1":
                await until(lambda: scrape(sfu.port)["sfera_sfu_fast_received_packets"] > 100, 10,
                            "the shortcut to take the media")
            else:
                assert scrape(sfu.port)["sfera_sfu_fast_received_packets"] == 0
            # batched sending takes what the shortcut reads (a sendmmsg a subscriber and wake-up); off: nothing
            if sfu.batched == "1":  # counted from the subscriber's join, one a wake-up: it grows while media flows
                await until(lambda: scrape(sfu.port)["sfera_sfu_batched_sends"] > 100, 10,
                            "batched sends to the subscriber")
            else:
                assert scrape(sfu.port)["sfera_sfu_batched_sends"] == 0
        finally:
            for peer in (publisher, subscriber):
                if peer is not None:
                    await peer.close()

    asyncio.run(scenario())


@pytest.mark.integration
def test_a_nacked_packet_is_sent_again_from_the_history(sfu):
    """Some video packets to the subscriber are lost on the way (dropped below its SRTP): its aiortc receiver
    NACKs them and the SFU sends each again from its history, the very same bytes (same sequence number, so the
    same SRTP keystream); the picture still decodes."""

    async def scenario() -> None:
        call_id = str(uuid.uuid4())
        publisher = await Peer(sfu.url, token(call_id, ["subscribe", "video"], "admin"), camera_luma=CAMERA_LUMA,
                               video_slots=0, audio_slots=0).connect()
        subscriber = Peer(sfu.url, token(call_id, ["subscribe"]), video_slots=1, audio_slots=0)
        dropped: dict[int, bytes] = {}
        again: dict[int, bytes] = {}
        try:
            await subscriber.connect()
            video = subscriber.pc.getTransceivers()[0]
            payload_type = video._codecs[0].payloadType
            ice = video.receiver.transport.transport
            recv = ice._recv
            seen: set[int] = set()

            async def lossy() -> bytes:
                """Below SRTP (a packet lost on the way never reached it: SRTP refuses a replayed one)."""
                while True:
                    data = await recv()
                    if len(data) < 12 or data[1] & 0x7F != payload_type or 192 <= data[1] <= 223:
                        return data  # not video RTP
                    seq = int.from_bytes(data[2:4], "big")
                    if seq in dropped:
                        again[seq] = data
                    elif seq not in seen and len(seen) > 30 and seq % 9 == 4 and len(dropped) < 20:
                        dropped[seq] = data
                        continue
                    seen.add(seq)
                    return data

            ice._recv = lossy
            await until(lambda: len(again) >= 5 and len(pictures(subscriber)) >= 5, 30,
                        lambda: f"retransmissions: dropped {sorted(dropped)}, again {sorted(again)}, "
                                f"{len(pictures(subscriber))} pictures, {scrape(sfu.port)}")
            assert all(again[seq] == dropped[seq] for seq in again)
            assert scrape(sfu.port)["sfera_sfu_retransmitted_packets_total"] >= len(again)
            assert all(abs(luma - CAMERA_LUMA) < 12 for luma in pictures(subscriber)), pictures(subscriber)
        finally:
            await subscriber.close()
            await publisher.close()

    asyncio.run(scenario())


@pytest.mark.integration
def test_a_subscriber_leaving_mid_stream_leaves_the_others_media_alone(sfu):
    """One subscriber leaves properly, another's peer connection just vanishes (no goodbye): the SFU keeps
    forwarding to the one who stays, and stays healthy."""

    async def scenario() -> None:
        call_id = str(uuid.uuid4())
        publisher = await Peer(sfu.url, token(call_id, ["subscribe", "audio", "video"], "admin"),
                               camera_luma=CAMERA_LUMA, tone_hz=440, video_slots=0, audio_slots=0).connect()
        peers = [await Peer(sfu.url, token(call_id, ["subscribe"]), video_slots=1, audio_slots=1).connect()
                 for _ in range(3)]
        stays, leaves, vanishes = peers
        try:
            await until(lambda: all(len(pictures(p)) >= 2 for p in peers), 30, "every subscriber's picture")
            await leaves.close()
            await vanishes.pc.close()  # the signaling socket stays: the SFU sees only its media transport go
            await asyncio.sleep(1)
            before = (len(pictures(stays)), len(tones(stays)))
            forwarded = scrape(sfu.port)["sfera_sfu_forwarded_packets_total"]
            await until(lambda: len(pictures(stays)) >= before[0] + 4 and len(tones(stays)) >= before[1] + 4, 20,
                        "the staying subscriber's media")
            assert scrape(sfu.port)["sfera_sfu_forwarded_packets_total"] > forwarded
            assert sfu.alive()
            assert "Traceback" not in sfu.log.read_text()
        finally:
            for peer in (stays, vanishes, publisher):
                await peer.close()

    asyncio.run(scenario())


@pytest.mark.unit
def test_the_fast_writer_sends_on_the_pairs_socket_and_falls_back_to_its_transport():
    """A plain UDP pair: the header (the sender's SSRC) and payload go out protected on its socket (an SRTP receiver
    with the same key reads the packet back); a full socket or a pair that is no plain socket (a TURN relay) goes
    through the transport's ``sendto`` with bytes of its own (the packet is built in the SRTP session's buffer,
    which the next packet overwrites); too long a packet: ValueError, nothing sent; no nominated pair:
    ConnectionError; no SRTP session yet: no writer."""
    from sfu.aiortc_adapter import fast_sender

    def rtp(seq: int, ts: int, payload: bytes = b"payload", marker_pt: int = 96) -> bytes:
        return forward.RTP_HEADER.pack(0x80, marker_pt, seq, ts, 1234) + payload

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        received: asyncio.Queue = asyncio.Queue()

        class Sink(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                received.put_nowait(data)

        sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        stub = await wire(1234, sink.get_extra_info("sockname"))
        pair, source, nominated, reader = stub.pair, stub.source, stub.nominated, stub.reader
        assert fast_sender(SimpleNamespace(transport=SimpleNamespace(_tx_srtp=None))) is None
        write = fast_sender(stub.sender)
        write(96, 7, 3000, b"payload")
        assert reader.unprotect(await asyncio.wait_for(received.get(), 5)) == rtp(7, 3000)
        with pytest.raises(ValueError):
            write(96, 8, 3000, bytes(1500))
        other = fast_sender(stub.sender)  # a second slot of the same subscriber: one SRTP session (max-bundle)
        other(0x80 | 111, 8, 960, b"opus")
        write(96, 9, 6000, b"payload")
        assert [reader.unprotect(await asyncio.wait_for(received.get(), 5)) for _ in range(2)] == [
            rtp(8, 960, b"opus", 0x80 | 111), rtp(9, 6000)]
        assert received.empty()

        class Full:  # the socket's buffer is full: asyncio's transport keeps the packet
            def sendto(self, data, addr):
                raise BlockingIOError

        via_transport = []
        source._sock, real = Full(), source._sock
        source.sendto = lambda data, addr: via_transport.append((data, addr))
        nominated[1] = SimpleNamespace(protocol=pair.protocol, remote_addr=pair.remote_addr)  # looked up again
        write(96, 10, 9000, b"payload")
        write(96, 11, 12000, b"another payload")  # built over the first one in the session's buffer
        source._sock = real
        assert [address for _, address in via_transport] == [pair.remote_addr] * 2
        assert all(isinstance(data, bytes) for data, _ in via_transport)
        assert [reader.unprotect(data) for data, _ in via_transport] == [rtp(10, 9000), rtp(11, 12000,
                                                                                          b"another payload")]

        relayed = []  # a TURN pair: its transport is aioice's, no socket of its own
        nominated[1] = SimpleNamespace(protocol=SimpleNamespace(transport=SimpleNamespace(
            sendto=lambda data, addr: relayed.append(data))), remote_addr=("10.0.0.1", 3478))
        write(96, 12, 15000, b"payload")
        write(96, 13, 18000, b"more")
        assert all(isinstance(d, bytes) for d in relayed)
        assert [reader.unprotect(d) for d in relayed] == [rtp(12, 15000), rtp(13, 18000, b"more")]
        del nominated[1]
        with pytest.raises(ConnectionError):
            write(96, 14, 21000, b"payload")
        sink.close()
        source.close()

    asyncio.run(scenario())
