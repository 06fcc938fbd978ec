"""Selective forwarding: each publisher's RTP packets go to the subscribers that
see that track, as they arrived (the same encoded payload), with only the RTP
header rewritten for the subscriber's stream (SSRC, payload type, a continuous
sequence number and timestamp). Nothing is decoded and nothing is encoded.

How it hooks into aiortc (every private access is in ``aiortc_adapter``, checked at start-up):

- a publisher's receiver hands its RTP to ``PublishedTrack.on_rtp``: aiortc's
  DTLS transport has already checked and decrypted the packet and parsed its
  header; the jitter buffer and the decoder never see it (the decoder thread is
  not even started, see ``nocodec``);
- a subscriber's ``RTCRtpSender`` keeps its stream (SSRC, negotiated payload
  type, RTCP sender reports) but its track never yields a frame; packets are
  protected with its SRTP session and written straight to the nominated ICE
  pair's UDP socket, instead of aiortc's 20-30 µs packetize path. Two ways, chosen
  by ``SFERA_SFU_FAST_PATH`` (issue #17, "Scale"): ``1`` (the default) rewrites the
  12 header bytes on the raw payload (``RTP_HEADER``, no ``RtpPacket`` per
  subscriber), protects with libsrtp on the session's own buffer and ``sendto``s on
  the pair's socket (``aiortc_adapter.fast_sender``); ``0`` is the path before it:
  an ``RtpPacket`` re-serialized per subscriber, ``Session.protect`` and asyncio's
  ``transport.sendto`` (``aiortc_adapter.raw_sender``). Both send the same bytes;
- the receive shortcut (``SFERA_SFU_FAST_RECEIVE``, default ``1``, with the fast path): once a track's SSRC is
  known (its first packet came aiortc's way), its SRTP is unprotected as it reaches the nominated ICE pair's socket
  and ``PublishedTrack.on_raw`` gets the header's fields (``aiortc_adapter.fast_receive``), past aioice's queue,
  the DTLS transport's receive task, ``RtpPacket`` and the router; STUN, DTLS, RTCP and other SSRCs go aiortc's
  way. Receiver reports and NACKs to publishers are not lost by it: the receiver's ``_handle_rtp_packet`` (whose
  statistics they come from) is replaced by ``on_rtp`` on both ways, so the SFU never sent them. A wake-up of that
  socket reads what is waiting there, up to ``SFERA_SFU_RECEIVE_BATCH`` datagrams (``aiortc_adapter.drained``), not
  asyncio's one a pass of the event loop;
- batched sending (``SFERA_SFU_SEND_BATCH``, default ``1``, with the receive shortcut): the packets of one such
  wake-up are queued (``PublishedTrack.on_raw``) and, once it has read them all, go to each subscriber in one
  ``sendmmsg`` (``PublishedTrack.flush``, ``aiortc_adapter.batch_sender``): one system call a subscriber and batch,
  not one a packet; ``0``: each packet to each subscriber as it is read (``sendto``);
- the sender's RTCP goes to ``Slot.on_rtcp``: picture loss (PLI/FIR) goes to
  the publisher at most once a second per track, NACKed packets are resent from
  the track's history, receiver reports feed the loss metric.

A subscriber receives through fixed *slots* (recvonly transceivers it offered):
video slots show the tracks it should see (screens first, then the admin's and
presenters' cameras, then others), audio slots carry the loudest speakers of
the room (``Room.pick_speakers``), so a room of 25 microphones sends each
subscriber three audio streams, not 24. A slot that changes source keeps its
sequence numbers and timestamps continuous, and a video slot waits for a key
frame of its new source (asked for at once) before it forwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiortc import MediaStreamTrack, clock
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
)

from sfu import aiortc_adapter, metrics, vp8

log = logging.getLogger("sfu")

KEYFRAME_INTERVAL = 1.0  # at most one key-frame request per publisher track per second
HISTORY = 512  # packets kept per track for retransmission (NACK)
BITRATE_CAPS = {"camera": 600_000, "screen": 1_500_000}  # REMB sent to publishers (no simulcast in aiortc)
NO_EXTENSIONS = HeaderExtensionsMap()
# A video silent this long is not live: not shown, not recorded (a browser ends a screen share by replaceTrack(null),
# which keeps the transceiver and sends nothing; a camera turned off still sends black frames).
STALE_AFTER = 3.0
SOURCE_RIGHTS = {"microphone": "audio", "camera": "video", "screen": "screen"}  # the join token's right to publish each
RTP_HEADER = aiortc_adapter.RTP_HEADER  # version 2 (no padding, extension or CSRC), marker|PT, sequence, time, SSRC
# the longest payload a writer sends (an SRTP session's buffer of 1,500 bytes less the room for the tag)
MAX_PAYLOAD = 1500 - aiortc_adapter.SRTP_TRAILER - RTP_HEADER.size


def fast_path() -> bool:
    """``SFERA_SFU_FAST_PATH``: ``0`` forwards through ``RtpPacket`` objects as before; anything else (the
    default) through the raw-bytes fast path. Read when a track or slot is made."""
    return os.environ.get("SFERA_SFU_FAST_PATH", "1").strip() != "0"


def receive_batch() -> int:
    """``SFERA_SFU_RECEIVE_BATCH``: with the receive shortcut, how many datagrams one wake-up of a publisher's ICE
    socket reads (``aiortc_adapter.drained``; default 32, ``1``: one a wake-up, as asyncio reads). Read when a
    track is made."""
    try:
        return max(1, int(os.environ.get("SFERA_SFU_RECEIVE_BATCH", "32")))
    except ValueError:
        return 32


def send_batch() -> bool:
    """``SFERA_SFU_SEND_BATCH``: ``0`` sends each packet the receive shortcut reads to each subscriber at once (one
    ``sendto`` a copy); anything else (the default) queues a wake-up's packets and sends each subscriber's in one
    ``sendmmsg`` once the wake-up's datagrams are read (``aiortc_adapter.batch_sender``; only with the receive
    shortcut, and where libc has ``sendmmsg``). Read when a track is made."""
    return os.environ.get("SFERA_SFU_SEND_BATCH", "1").strip() != "0" and aiortc_adapter.SENDMMSG is not None


def fast_receive() -> bool:
    """``SFERA_SFU_FAST_RECEIVE``: ``0`` receives through aiortc's DTLS transport and receiver as before; anything
    else (the default) takes a track's packets from its ICE pair's socket once its SSRC is known
    (``aiortc_adapter.fast_receive``; only with the fast path). Read when a track is made."""
    return os.environ.get("SFERA_SFU_FAST_RECEIVE", "1").strip() != "0"


class Owner(Protocol):
    """What a track and a slot need of the participant they belong to (``room.Participant`` is one): this layer
    knows nothing of rooms."""

    user_id: str
    role: str
    joined: float
    muted: bool
    closed: bool

    def may(self, right: str) -> bool: ...

    async def send(self, message: dict) -> None: ...

    def track_started(self, track: PublishedTrack) -> None: ...


def not_allowed(source: str, mid: str | None) -> dict:
    """The signaling error for a published source the participant has no right to (CA-4):
    ``call.screen_not_allowed``, ``call.video_not_allowed`` (camera), ``call.audio_not_allowed``."""
    right = SOURCE_RIGHTS[source]
    return {"type": "error", "code": f"call.{right}_not_allowed", "source": source, "mid": mid,
            "message": f"You may not share your {source} in this call now; the call's admin decides."}


class PublishedTrack:
    """One publisher's track (microphone, camera or screen) and the slots it feeds."""

    def __init__(self, owner: Owner, source: str, kind: str, receiver: Any, rtx_types: set[int],
                 mid: str | None = None):
        self.owner = owner
        self.receiver_mid = mid
        self.source = source
        self.kind = kind
        self.receiver = receiver
        self.rtx_types = rtx_types
        self.ssrc: int | None = None
        self.slots: list[Slot] = []
        self.history: list[tuple | None] = [None] * HISTORY
        self.last_keyframe_request = 0.0
        self.deferred_keyframe: asyncio.TimerHandle | None = None
        self.level = 127.0  # audio: smoothed level in -dBov (0 loudest, 127 silence)
        self.last_voice = 0.0
        self.started = False
        self.last_packet = 0.0  # time.monotonic() of the last packet received
        self.refusal_told = False  # CA-4: the publisher was told this source is not forwarded
        self.recorders: list[Any] = []
        self.fast = fast_path()
        # the receive shortcut: asked for once, at the first packet through aiortc (DTLS is up, the SSRC known)
        self.shortcut_wanted = self.fast and fast_receive()
        self.receive_batch = receive_batch()
        # batched sending: what the shortcut read at one wake-up, queued here until ``flush``
        self.batched = self.shortcut_wanted and send_batch()
        self.pending: list[tuple] = []
        # the metrics' children, looked up once (not per packet)
        self._received = metrics.received_packets.labels(kind)
        self._forwarded = metrics.forwarded_packets.labels(kind)
        self._forwarded_bytes = metrics.forwarded_bytes.labels(kind)
        aiortc_adapter.on_received_rtp(receiver, self.on_rtp)

    @property
    def key(self) -> str:
        return f"{self.owner.user_id}:{self.source}"

    @property
    def live(self) -> bool:
        """Started, and a video still sending (see ``STALE_AFTER``); audio stays live once started (DTX pauses)."""
        return self.started and (self.kind != "video" or time.monotonic() - self.last_packet < STALE_AFTER)

    @property
    def forwarding(self) -> bool:
        """Whether the room should see it: a muted microphone and an unpermitted screen are not forwarded."""
        if self.source == "microphone" and self.owner.muted:
            return False
        return self.owner.may(SOURCE_RIGHTS[self.source])

    async def on_rtp(self, packet: RtpPacket, arrival_time_ms: int = 0) -> None:
        if packet.payload_type in self.rtx_types or not packet.payload:
            return  # retransmissions and padding: we never NACK publishers
        self.last_packet = time.monotonic()
        if self.ssrc is None:
            self.ssrc = packet.ssrc
            self.started = True
            self.owner.track_started(self)
        if self.shortcut_wanted and packet.ssrc == self.ssrc:
            self.shortcut_wanted = False
            aiortc_adapter.fast_receive(self.receiver, self.ssrc, self.on_raw, audio_level=self.kind == "audio",
                                        batch=self.receive_batch, flush=self.flush if self.batched else None)
        self._received.inc()
        seq = packet.sequence_number
        ts = packet.timestamp
        payload = packet.payload
        marker = packet.marker
        self.history[seq % HISTORY] = (seq, ts, marker, payload)
        if self.kind == "audio":
            level = packet.extensions.audio_level
            if level is not None:
                self.level = 0.8 * self.level + 0.2 * level[1]
                if level[1] < 60:
                    self.last_voice = time.monotonic()
        if not self.forwarding:
            if self.refused():
                await self.owner.send(not_allowed(self.source, self.receiver_mid))
            return
        for recorder in self.recorders:
            recorder.write(self, seq, ts, marker, payload)
        if self.fast:
            self._forward(seq, ts, marker, payload)
            return
        sent = 0
        size = 0
        for slot in self.slots:
            if (slot.waiting_keyframe or slot.rebase) and not slot.admit(seq, ts, payload):
                continue
            packet.ssrc = slot.ssrc
            packet.payload_type = slot.payload_type
            packet.sequence_number = (seq + slot.seq_offset) & 0xFFFF
            packet.timestamp = (ts + slot.ts_offset) & 0xFFFFFFFF
            data = packet.serialize(NO_EXTENSIONS)
            try:
                slot.send(data)
            except (ConnectionError, OSError, AttributeError):
                continue
            slot.sent(packet.sequence_number, packet.timestamp, len(payload), marker)
            sent += 1
            size += len(data)
        if sent:
            self._forwarded.inc(sent)
            self._forwarded_bytes.inc(size)

    def refused(self) -> bool:
        """Media arrives on a source without the right (an idle transceiver offered for later is no share): True
        once, when the publisher is to be told, instead of leaving them sending into the void."""
        if self.refusal_told or self.owner.may(SOURCE_RIGHTS[self.source]):
            return False
        self.refusal_told = True
        return True

    def on_raw(self, payload_type: int, seq: int, ts: int, marker: int, payload: bytes, level: int | None) -> None:
        """The receive shortcut's handler (``aiortc_adapter.fast_receive``, a track on the fast path, its SSRC
        known): what ``on_rtp`` does with a packet, from the decrypted packet's fields (``level``: audio's); with
        batched sending the packet waits in ``pending`` for the wake-up's ``flush``."""
        if payload_type in self.rtx_types or not payload:
            return
        PublishedTrack.fast_received += 1
        self.last_packet = now = time.monotonic()
        self._received.inc()
        self.history[seq % HISTORY] = entry = (seq, ts, marker, payload)
        if level is not None:
            self.level = 0.8 * self.level + 0.2 * level
            if level < 60:
                self.last_voice = now
        if not self.forwarding:
            if self.refused():
                asyncio.ensure_future(self.owner.send(not_allowed(self.source, self.receiver_mid)))
            return
        for recorder in self.recorders:
            recorder.write(self, seq, ts, marker, payload)
        if self.batched:
            self.pending.append(entry)
            return
        self._forward(seq, ts, marker, payload)

    def flush(self) -> None:
        """Batched sending: the packets queued since the last flush (one wake-up of the publisher's socket) go out,
        each subscriber's in one ``sendmmsg`` (``_forward_many``)."""
        packets = self.pending
        if packets:
            self.pending = []
            self._forward_many(packets)

    def _forward_many(self, packets: list[tuple]) -> None:
        """``_forward`` for a run of packets (``(seq, ts, marker, payload)``, in order): per slot, those it admits
        (a slot waiting for a key frame from the packet that starts one) to its batched writer (``Slot.send_many``),
        then its sender report's fields as ``_forward`` leaves them after the run's last packet."""
        sent = octets = 0
        ntp = None
        whole = -1  # the run's payload bytes, counted once
        for slot in self.slots:
            run = packets
            if slot.waiting_keyframe or slot.rebase:
                for i, (seq, ts, _, payload) in enumerate(packets):
                    if slot.admit(seq, ts, payload):
                        run = packets[i:] if i else packets
                        break
                else:
                    continue
            send = slot.send_many or slot.open_many()
            if send is None:
                continue
            try:
                count = send(slot.payload_type, slot.seq_offset, slot.ts_offset, run)
            except (ConnectionError, OSError, ValueError):
                continue
            if not count:
                continue
            PublishedTrack.batched_sends += 1
            if run is packets and count == len(packets):
                if whole < 0:
                    whole = sum([len(p[3]) for p in packets])
                size = whole
            else:
                size = sum([len(p[3]) for p in run if len(p[3]) <= MAX_PAYLOAD])
            last = run[-1]
            out_ts = slot.last_ts = (last[1] + slot.ts_offset) & 0xFFFFFFFF
            slot.last_seq = (last[0] + slot.seq_offset) & 0xFFFF
            before = slot.packet_count
            total = slot.packet_count = before + count
            slot.octet_count += size
            if (total + 7) >> 3 != (before + 7) >> 3:  # the run holds a 1st or 8th packet (see ``_forward``)
                if ntp is None:
                    ntp = clock.current_ntp_time()
                aiortc_adapter.report_sent(slot.sender, out_ts, total, slot.octet_count, ntp)
            sent += count
            octets += size
        if sent:
            self._forwarded.inc(sent)
            self._forwarded_bytes.inc(sent * RTP_HEADER.size + octets)

    batched_sends = 0  # the batched writers' calls, all slots (``sfera_sfu_batched_sends``)
    fast_received = 0  # packets that came by the receive shortcut, all tracks (``sfera_sfu_fast_received_packets``)

    def _forward(self, seq: int, ts: int, marker: int, payload: bytes) -> None:
        """The fast path: per slot, the header fields handed to the slot's writer (``Slot.write``: packed in front
        of the payload, protected and sent); what the slot's sender report says is updated as ``Slot.sent`` does."""
        sent = 0
        mark = 0x80 if marker else 0
        size = len(payload)
        ntp = None
        for slot in self.slots:
            if (slot.waiting_keyframe or slot.rebase) and not slot.admit(seq, ts, payload):
                continue
            write = slot.write or slot.open()
            if write is None:
                continue
            out_seq = (seq + slot.seq_offset) & 0xFFFF
            out_ts = (ts + slot.ts_offset) & 0xFFFFFFFF
            try:
                write(mark | slot.payload_type, out_seq, out_ts, payload)
            except (ConnectionError, OSError, ValueError):
                continue
            slot.last_seq = out_seq
            slot.last_ts = out_ts
            count = slot.packet_count = slot.packet_count + 1
            slot.octet_count += size
            if count & 7 == 1:  # the 1st, then every 8th: any packet gives a consistent (RTP time, wall time)
                # pair for the sender report (the wall clock read once for all slots)
                if ntp is None:
                    ntp = clock.current_ntp_time()
                aiortc_adapter.report_sent(slot.sender, out_ts, count, slot.octet_count, ntp)
            sent += 1
        if sent:
            self._forwarded.inc(sent)
            self._forwarded_bytes.inc(sent * (RTP_HEADER.size + size))

    def request_keyframe(self, reason: str) -> None:
        """PLI to the publisher at most once a second; a request inside that second is not lost
        but folded into one sent when the second is over (a late subscriber still gets its key frame)."""
        if self.kind != "video" or self.ssrc is None:
            return
        now = time.monotonic()
        wait = self.last_keyframe_request + KEYFRAME_INTERVAL - now
        if wait > 0:
            metrics.keyframe_requests.labels(reason, "absorbed").inc()
            if self.deferred_keyframe is None:
                self.deferred_keyframe = asyncio.get_event_loop().call_later(wait, self._deferred_keyframe)
            return
        self.last_keyframe_request = now
        metrics.keyframe_requests.labels(reason, "sent").inc()
        asyncio.ensure_future(aiortc_adapter.request_picture(self.receiver, self.ssrc))

    def _deferred_keyframe(self) -> None:
        self.deferred_keyframe = None
        if not self.owner.closed:
            self.request_keyframe("deferred")

    async def cap_bitrate(self) -> None:
        """REMB to the publisher: the most this track may use (no simulcast, so one rate for all)."""
        cap = BITRATE_CAPS.get(self.source)
        if cap is None or self.ssrc is None:
            return
        await aiortc_adapter.cap_bitrate(self.receiver, cap, [self.ssrc])

    def resend(self, slot: Slot, out_seq: int) -> bool:
        """A subscriber lost ``out_seq``: send it again from the history, if still there."""
        in_seq = (out_seq - slot.seq_offset) & 0xFFFF
        entry = self.history[in_seq % HISTORY]
        if entry is None or entry[0] != in_seq:
            return False
        _, ts, marker, payload = entry
        if self.fast:
            write = slot.write or slot.open()
            if write is None:
                return False
            try:
                write((0x80 if marker else 0) | slot.payload_type, out_seq, (ts + slot.ts_offset) & 0xFFFFFFFF,
                      payload)
            except (ConnectionError, OSError, ValueError):
                return False
            return True
        packet = RtpPacket(payload_type=slot.payload_type, marker=marker, sequence_number=out_seq,
                           timestamp=(ts + slot.ts_offset) & 0xFFFFFFFF, ssrc=slot.ssrc, payload=payload)
        try:
            slot.send(packet.serialize(NO_EXTENSIONS))
        except (ConnectionError, OSError, AttributeError):
            return False
        return True


class IdleTrack(MediaStreamTrack):
    """What a slot's aiortc sender waits on: it never yields a frame, so aiortc's
    own packetizer and encoder never run (the SFU writes the packets itself)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self._never: asyncio.Future | None = None

    async def recv(self):
        self._never = asyncio.get_running_loop().create_future()
        await self._never
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        if self._never is not None and not self._never.done():
            self._never.cancel()


class Slot:
    """One of a subscriber's receiving transceivers and the track it currently shows."""

    def __init__(self, owner: Owner, mid: str, kind: str, sender: Any, payload_type: int):
        self.owner = owner
        self.mid = mid
        self.kind = kind
        self.sender = sender
        self.ssrc = aiortc_adapter.sender_ssrc(sender)
        self.payload_type = payload_type
        self.source: PublishedTrack | None = None
        self.seq_offset = 0
        self.ts_offset = 0
        self.last_seq: int | None = None
        self.last_ts: int | None = None
        self.rebase = True
        self.waiting_keyframe = kind == "video"
        self._send: Callable[[bytes], None] | None = None
        self.write: aiortc_adapter.Writer | None = None  # the fast path's writer, once DTLS is up (``open``)
        self.send_many: aiortc_adapter.BatchWriter | None = None  # the batched writer, once DTLS is up
        self.packet_count = 0
        self.octet_count = 0
        aiortc_adapter.on_received_rtcp(sender, self.on_rtcp)

    def send(self, data: bytes) -> None:
        if self._send is None:
            self._send = aiortc_adapter.raw_sender(self.sender)
        self._send(data)

    def open(self) -> aiortc_adapter.Writer | None:
        """The fast path's writer for this slot (``aiortc_adapter.fast_sender``); None while DTLS is not up."""
        self.write = aiortc_adapter.fast_sender(self.sender)
        return self.write

    def open_many(self) -> aiortc_adapter.BatchWriter | None:
        """The batched writer for this slot (``aiortc_adapter.batch_sender``); None while DTLS is not up."""
        self.send_many = aiortc_adapter.batch_sender(self.sender)
        return self.send_many

    def show(self, track: PublishedTrack | None) -> bool:
        """Point the slot at ``track``; True when it changed."""
        if track is self.source:
            return False
        if self.source is not None and self in self.source.slots:
            self.source.slots.remove(self)
        self.source = track
        self.rebase = True
        if track is not None:
            track.slots.append(self)
            if self.kind == "video":
                self.waiting_keyframe = True
                track.request_keyframe("subscribe")
        return True

    def admit(self, seq: int, ts: int, payload: bytes) -> bool:
        """Whether this packet of the slot's source goes out, for a slot that waits for a key frame or has a new
        source (both forwarding paths ask, only then): a video slot waits for its source's key frame, and a slot's
        first packet from a new source continues its numbering (``rebase_to``)."""
        if self.waiting_keyframe:
            if not vp8.is_keyframe_start(payload):
                return False
            self.waiting_keyframe = False
        if self.rebase:
            self.rebase_to(seq, ts)
        return True

    def rebase_to(self, seq: int, ts: int) -> None:
        """Continue this slot's numbering from wherever it was, whatever the new source's numbers are."""
        self.rebase = False
        if self.last_seq is None:
            self.seq_offset = 0
            self.ts_offset = 0
            return
        self.seq_offset = (self.last_seq + 1 - seq) & 0xFFFF
        step = 960 if self.kind == "audio" else 3000
        self.ts_offset = (self.last_ts + step - ts) & 0xFFFFFFFF

    def sent(self, seq: int, ts: int, size: int, marker: int) -> None:
        self.last_seq = seq
        self.last_ts = ts
        self.packet_count += 1
        self.octet_count += size
        if marker or not self.packet_count & 7:
            # what aiortc's RTCP sender report tells the subscriber (A/V sync, statistics): any packet
            # gives a consistent (RTP time, wall time) pair, so every frame's last or every 8th will do
            aiortc_adapter.report_sent(self.sender, ts, self.packet_count, self.octet_count)

    async def on_rtcp(self, packet: Any) -> None:
        source = self.source
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == self.ssrc:
                    metrics.rtcp_fraction_lost.labels(self.kind).observe(report.fraction_lost / 256)
                    metrics.rtcp_packets_lost.labels(self.kind).set(report.packets_lost)
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            metrics.nacks.inc(len(packet.lost))
            if source is not None:
                for seq in packet.lost:
                    if source.resend(self, seq):
                        metrics.retransmitted_packets.inc()
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            if source is not None:
                source.request_keyframe("pli" if packet.fmt == RTCP_PSFB_PLI else "fir")
