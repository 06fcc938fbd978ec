"""Every place the SFU reaches into aiortc's (and aioice's) private or name-mangled attributes, in one module.

aiortc has no public API for a forwarder: it wants to decode what it receives and encode what it sends. The
SFU takes over at four points instead (``forward`` explains why each):

- a publisher's ``RTCRtpReceiver._handle_rtp_packet`` (decrypted, parsed RTP) is replaced by the forwarder's;
  with the receive shortcut, a known SSRC's SRTP is taken from the nominated pair's socket before aioice
  (``fast_receive``);
- picture-loss and bitrate (REMB) requests go out through the receiver's ``_send_rtcp*`` and its RTCP SSRC;
- a subscriber's ``RTCRtpSender`` lends its SSRC and SRTP session; packets go straight to the nominated ICE
  pair's socket, and its RTCP sender-report counters are written so that its reports stay true;
  its ``_handle_rtcp_packet`` is replaced by the slot's (NACK, PLI, receiver reports);
- negotiation reads a transceiver's offered direction and negotiated codecs;
- the codec factories and the decoder thread are replaced (``nocodec``: the SFU never decodes or encodes).

``check_aiortc()`` runs when the SFU starts: a hook that is gone or changed shape in an aiortc upgrade stops the
node at once with its name, instead of calls failing one by one. ``requirements.in`` pins aiortc to the version
these hooks were written for (``WRITTEN_FOR``).
"""

from __future__ import annotations

import asyncio.selector_events
import ctypes
import errno
import inspect
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable
from types import CodeType
from typing import Any

import aioice
import aioice.ice
import aiortc
import aiortc.rtcrtpreceiver as receiver_module
import aiortc.rtcrtpsender as sender_module
import pylibsrtp
from aiortc import clock
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceTransport
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RTCP_PSFB_APP, HeaderExtensionsMap, RtcpPsfbPacket, pack_remb_fci
from pylibsrtp._binding import ffi as srtp_ffi
from pylibsrtp._binding import lib as srtp_lib

WRITTEN_FOR = "1.16.0"


class AiortcMismatch(RuntimeError):
    """The installed aiortc lacks a hook the SFU relies on."""


# -- receiving (a publisher's track) ------------------------------------------------------------------------------
def on_received_rtp(receiver: RTCRtpReceiver, handler: Callable[[Any, int], Awaitable[None]]) -> None:
    """``handler(packet, arrival_time_ms)`` gets each decrypted, parsed RTP packet instead of the jitter buffer."""
    receiver._handle_rtp_packet = handler


def request_picture(receiver: RTCRtpReceiver, media_ssrc: int) -> Awaitable[None]:
    """A PLI to the publisher of ``media_ssrc`` (no-op until the receiver has its RTCP SSRC)."""
    return receiver._send_rtcp_pli(media_ssrc)


async def cap_bitrate(receiver: RTCRtpReceiver, bitrate: int, media_ssrcs: list[int]) -> bool:
    """A REMB to the publisher: at most ``bitrate`` for these streams. False until the receiver has its RTCP SSRC."""
    rtcp_ssrc = getattr(receiver, "_RTCRtpReceiver__rtcp_ssrc", None)
    if rtcp_ssrc is None:
        return False
    await receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                                             fci=pack_remb_fci(bitrate, media_ssrcs)))
    return True


# (payload type, sequence number, timestamp, marker, payload, audio level: 0 loudest .. 127, None if not sent)
RawHandler = Callable[[int, int, int, int, bytes, int | None], None]
RTP_FIELDS = struct.Struct("!HII")  # sequence number, timestamp, SSRC (bytes 2-12)
# a nominated pair's protocol -> its SSRCs' routes: (rx SRTP session, handler, the audio level's extension id or 0)
SHORTCUTS: dict[Any, dict[int, tuple[Any, RawHandler, int]]] = {}
# a nominated pair's protocol -> what runs after each wake-up of its socket (the tracks' batched sends)
FLUSHES: dict[Any, list[Callable[[], None]]] = {}


def fast_receive(receiver: RTCRtpReceiver, ssrc: int, handler: RawHandler, audio_level: bool = False,
                 batch: int = 1, flush: Callable[[], None] | None = None) -> bool:
    """The receive shortcut (``forward`` with ``SFERA_SFU_FAST_RECEIVE=1``): from now on an SRTP datagram of
    ``ssrc`` that reaches one of the ICE connection's sockets is unprotected with the DTLS transport's rx SRTP session
    and its header read with ``struct`` (no ``RtpPacket``), and ``handler(payload_type, seq, timestamp, marker,
    payload, level)`` is called at once, in the socket's ``datagram_received``: no aioice parse as STUN, no aioice
    queue, no wake-up of the DTLS transport's receive task, no router. ``audio_level``: the RFC 6464 level is read
    from the header extension negotiated for it (else ``level`` is None). Everything else on that socket (STUN,
    DTLS, SRTCP, another SSRC, a datagram SRTP refuses) goes aiortc's way as before. Every socket of the connection,
    not only the one of the pair this side nominated: the publisher sends on the pair it chose (aioice's controlled
    side keeps the last pair nominated to it, which may be another local socket: on a host with IPv4 and IPv6
    addresses the media then never met the shortcut), and aioice hands what any of them receives to the same
    connection, as the shortcut does. False (nothing changed) while there is no rx SRTP session or nominated pair
    (not connected). The routes live as long as each socket's protocol (the peer connection). ``batch``: a wake-up
    of a socket reads up to so many datagrams (``drained``), not asyncio's one; taken when the socket gets its
    shortcut (its connection's first track). ``flush``: called once after each wake-up's datagrams were handled (the
    forwarder's batched send: ``handler`` only queued them)."""
    dtls = getattr(receiver, "transport", None)
    session = getattr(dtls, "_rx_srtp", None)
    if session is None:
        return False
    connection = dtls.transport._connection
    if connection._nominated.get(1) is None:
        return False
    level_id = 0
    if audio_level:
        level_id = dtls._rtp_header_extensions_map._HeaderExtensionsMap__ids.audio_level or 0
    for protocol in connection._protocols:
        routes = SHORTCUTS.get(protocol)
        if routes is None:
            routes = SHORTCUTS[protocol] = {}
            flushes = FLUSHES[protocol] = []
            shortcut = _shortcut(protocol, protocol.datagram_received, routes)
            protocol.datagram_received = drained(protocol, shortcut, batch, flushes)
        routes[ssrc] = (session, handler, level_id)
        if flush is not None and flush not in FLUSHES[protocol]:
            FLUSHES[protocol].append(flush)
    return True


def audio_level_of(packet: bytes, start: int, end: int, level_id: int) -> int | None:
    """The RFC 6464 level in the header extension block ``packet[start:end]`` (its 4-byte head included), read as
    aiortc's ``unpack_header_extensions`` reads one-byte (0xBEDE) and two-byte (0x1000) elements."""
    profile = int.from_bytes(packet[start:start + 2], "big")
    pos = start + 4
    if profile == 0xBEDE:
        while pos < end:
            head = packet[pos]
            if head == 0:
                pos += 1
                continue
            if head >> 4 == level_id:
                return packet[pos + 1] & 0x7F if pos + 1 < end else None
            pos += 2 + (head & 0x0F)
    elif profile == 0x1000:
        while pos < end:
            if packet[pos] == 0:
                pos += 1
                continue
            if pos + 2 >= end:
                return None
            if packet[pos] == level_id:
                return packet[pos + 2] & 0x7F if packet[pos + 1] else None
            pos += 2 + packet[pos + 1]
    return None


def drained(protocol: Any, handle: Callable[[bytes, Any], None], batch: int,
            after: list[Callable[[], None]] | None = None) -> Callable[[bytes, Any], None]:
    """``handle`` for the datagram asyncio read on a wake-up of the protocol's socket, then for up to ``batch - 1``
    more already waiting there, read at once from the socket itself (until it has none: BlockingIOError), in their
    order: one select, one pass of the event loop and one ``_read_ready`` for a burst instead of one each (a
    publisher's video frame is several packets; a loaded SFU finds several waiting). As asyncio's ``_read_ready``
    does: an OSError of the read goes to ``error_received``, nothing is read once the transport is closing. Not for a
    socket asyncio's datagram transport does not own (a TURN relay's pair): one datagram a call. Then each of
    ``after`` (a list: what is added later runs too), once a wake-up, whatever ``handle`` did."""
    after = [] if after is None else after
    transport = getattr(protocol, "transport", None)
    if batch <= 1 or not isinstance(transport, DATAGRAM_TRANSPORT):
        def one(data: bytes, addr: Any) -> None:
            try:
                handle(data, addr)
            finally:
                for done in after:
                    done()

        return one
    sock = transport._sock
    size = transport.max_size
    more = range(batch - 1)

    def datagram_received(data: bytes, addr: Any) -> None:
        try:
            handle(data, addr)
            for _ in more:
                if transport.is_closing():
                    return
                try:
                    data, addr = sock.recvfrom(size)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    protocol.error_received(exc)
                    return
                handle(data, addr)
        finally:
            for done in after:
                done()

    return datagram_received


def _shortcut(protocol: Any, original: Callable[[bytes, Any], None],
              routes: dict[int, tuple[Any, RawHandler, int]]) -> Callable[[bytes, Any], None]:
    unpack_from = RTP_FIELDS.unpack_from
    srtp_error = pylibsrtp.Error

    def datagram_received(data: bytes, addr: Any) -> None:
        # RFC 7983: 128-191 is RTP/RTCP; RFC 5761: a second byte of 192-223 (RTCP's 200-207 among them) is RTCP
        if len(data) > 12 and 127 < data[0] < 192 and not 191 < data[1] < 224:
            route = routes.get(unpack_from(data, 2)[2])
            if route is not None:
                try:
                    packet = route[0].unprotect(data)
                except srtp_error:
                    return  # as aiortc: a forged, replayed or late packet is dropped
                first = packet[0]
                start = 12 + (first & 0x0F) * 4  # CSRCs
                end = len(packet)
                level = None
                if first & 0x10 and end >= start + 4:  # a header extension (the forwarder drops them)
                    extensions = start
                    start += 4 + int.from_bytes(packet[start + 2:start + 4], "big") * 4
                    if route[2] and start <= end:
                        level = audio_level_of(packet, extensions, start, route[2])
                if first & 0x20 and end > start:  # padding: its count is the last byte
                    end -= packet[-1]
                if start > end:
                    return  # malformed: aiortc's RtpPacket.parse refuses it too
                second = packet[1]
                seq, ts, _ = unpack_from(packet, 2)
                route[1](second & 0x7F, seq, ts, second >> 7, packet[start:end], level)
                return
        original(data, addr)

    def connection_lost(exc: Exception | None) -> None:
        SHORTCUTS.pop(protocol, None)
        FLUSHES.pop(protocol, None)
        lost(exc)

    lost = protocol.connection_lost
    protocol.connection_lost = connection_lost
    return datagram_received


# -- sending (a subscriber's slot) ---------------------------------------------------------------------------------
def sender_ssrc(sender: RTCRtpSender) -> int:
    return sender._ssrc


def on_received_rtcp(sender: RTCRtpSender, handler: Callable[[Any], Awaitable[None]]) -> None:
    """``handler(packet)`` gets the subscriber's RTCP about this sender's stream (NACK, PLI/FIR, reports)."""
    sender._handle_rtcp_packet = handler


def raw_sender(sender: RTCRtpSender) -> Callable[[bytes], None]:
    """A function that protects an RTP packet with the sender's SRTP session and writes it to the nominated ICE
    pair's socket (about 5 µs, where aiortc's packetize path takes 20-30 µs). Call once the transport is up."""
    dtls = sender.transport
    protect = dtls._tx_srtp.protect
    connection = dtls.transport._connection

    def send(packet: bytes) -> None:
        pair = connection._nominated.get(1)
        if pair is None:
            raise ConnectionError("not connected")
        pair.protocol.transport.sendto(protect(packet), pair.remote_addr)

    return send


SRTP_TRAILER = pylibsrtp.SRTP_MAX_TRAILER_LEN  # the room the session's buffer keeps after a packet for the tag
DATAGRAM_TRANSPORT = asyncio.selector_events._SelectorDatagramTransport
RTP_HEADER = struct.Struct("!BBHII")  # version 2 (no padding, extension or CSRC), marker|PT, sequence, time, SSRC
RTP_VERSION = 0x80
Writer = Callable[[int, int, int, bytes], None]  # (marker|payload type, sequence number, timestamp, payload)


def nominated_route(nominated: dict) -> list[Any]:
    """The nominated ICE pair a writer sends on: the pair, its UDP socket (None: not plain UDP, e.g. TURN), the
    remote address and the pair's transport. Writers call it when the nominated pair changed."""
    pair = nominated.get(1)
    if pair is None:
        raise ConnectionError("not connected")
    transport = pair.protocol.transport
    sock = transport._sock if isinstance(transport, DATAGRAM_TRANSPORT) else None
    return [pair, sock, pair.remote_addr, transport]


def fast_sender(sender: RTCRtpSender) -> Writer | None:
    """The fast path's writer (``forward`` with ``SFERA_SFU_FAST_PATH=1``): ``write(marker_pt, seq, ts, payload)``
    packs the 12-byte RTP header (the sender's SSRC) and the payload into the sender's SRTP session's own buffer,
    protects it there with libsrtp's ``srtp_protect`` (no ``Session.protect``: no allocation, no copy in and out)
    and ``sendto``s it from that buffer on the nominated pair's own UDP socket, not through asyncio's transport
    (whose ``sendto`` it falls back to, with a copy, when the socket's buffer is full, and which it uses for a pair
    that is not a plain UDP socket: a TURN relay). The same checks as ``Session.protect``: never longer than the
    buffer leaves room for (ValueError), a libsrtp error is raised (ConnectionError). The buffer is the session's:
    one write at a time, as the event loop runs them. None until DTLS is up (no SRTP session yet)."""
    dtls = sender.transport
    session = getattr(dtls, "_tx_srtp", None) if dtls is not None else None
    if session is None:
        return None
    ssrc = sender._ssrc
    srtp = session._srtp[0]
    cdata = session._cdata
    view = memoryview(session._buffer)
    limit = len(cdata) - SRTP_TRAILER
    length = srtp_ffi.new("int *")
    protect = srtp_lib.srtp_protect
    pack_into = RTP_HEADER.pack_into
    nominated = dtls.transport._connection._nominated
    route: list[Any] = [None, None, None, None]  # the pair last used, its socket (None: not plain UDP), address,
    # transport

    def send(marker_pt: int, seq: int, ts: int, payload: bytes) -> None:
        if nominated.get(1) is not route[0]:
            route[:] = nominated_route(nominated)
        size = 12 + len(payload)
        if size > limit:
            raise ValueError("packet is too long")
        pack_into(view, 0, RTP_VERSION, marker_pt, seq, ts, ssrc)
        view[12:size] = payload
        length[0] = size
        status = protect(srtp, cdata, length)
        if status:
            raise ConnectionError(f"SRTP protect failed ({status})")
        sock = route[1]
        if sock is None:
            route[3].sendto(view[:length[0]].tobytes(), route[2])
            return
        try:
            sock.sendto(view[:length[0]], route[2])
        except (BlockingIOError, InterruptedError):
            # asyncio keeps it and sends it when the socket can take it (a copy: the buffer is the next packet's)
            route[3].sendto(view[:length[0]].tobytes(), route[2])

    return send


# -- batched sending: a subscriber's packets of one receive wake-up in one sendmmsg ----------------------------------
SEND_BATCH = 64  # packets at most in one sendmmsg (a longer run goes in several)
STRIDE = 1504  # the scratch buffer's bytes a packet: the SRTP session's 1,500 (packet and trailer room), 8-aligned
# (payload type, sequence offset, timestamp offset, [(sequence, timestamp, marker 0/1, payload), ...]) -> packets sent
BatchWriter = Callable[[int, int, int, list], int]


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32), ("msg_iov", ctypes.c_void_p),
                ("msg_iovlen", ctypes.c_size_t), ("msg_control", ctypes.c_void_p),
                ("msg_controllen", ctypes.c_size_t), ("msg_flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _libc_sendmmsg() -> Any:
    """libc's ``sendmmsg(fd, msgvec, vlen, flags)`` (Linux), or None where there is none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sendmmsg
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


SENDMMSG = _libc_sendmmsg()


class _Scratch:
    """Where a batch's packets are built, protected and sent from (one for the process: one batch at a time, as the
    event loop runs them): ``SEND_BATCH`` regions of ``STRIDE`` bytes, libsrtp's pointer and length of each, and
    the iovec of each pointing at it (``iov_lengths[2 * i + 1]`` is region i's length as sent)."""

    def __init__(self) -> None:
        self.buffer = bytearray(SEND_BATCH * STRIDE)
        self.view = memoryview(self.buffer)
        self.base = srtp_ffi.from_buffer("char[]", self.buffer)
        self.packets = [self.base + i * STRIDE for i in range(SEND_BATCH)]
        self.lengths = srtp_ffi.new("int[]", SEND_BATCH)
        self.length_of = [self.lengths + i for i in range(SEND_BATCH)]
        self.iov_raw = bytearray(ctypes.sizeof(_Iovec) * SEND_BATCH)
        self.iov = (_Iovec * SEND_BATCH).from_buffer(self.iov_raw)
        start = ctypes.addressof(ctypes.c_char.from_buffer(self.buffer))
        for i in range(SEND_BATCH):
            self.iov[i].iov_base = start + i * STRIDE
        self.iov_lengths = memoryview(self.iov_raw).cast("B").cast("Q" if ctypes.sizeof(ctypes.c_size_t) == 8
                                                                     else "I")
        self.iov_address = ctypes.addressof(self.iov)


_SCRATCH: list[_Scratch] = []


def sockaddr(sock: Any, address: Any) -> bytes | None:
    """The C ``sockaddr`` of ``address`` (host, port[, flowinfo, scope]) for ``sock``'s family (numeric hosts only,
    as ICE's candidates are); None if it is none of IPv4's or IPv6's."""
    try:
        family, _, _, _, found = socket.getaddrinfo(address[0], address[1], sock.family, socket.SOCK_DGRAM, 0,
                                                    socket.AI_NUMERICHOST)[0]
    except (OSError, IndexError, TypeError, ValueError):
        return None
    if family == socket.AF_INET:
        return struct.pack("=H", family) + struct.pack("!H", found[1]) + socket.inet_pton(family, found[0]) + bytes(8)
    if family == socket.AF_INET6:
        return (struct.pack("=H", family) + struct.pack("!HI", found[1], found[2])
                + socket.inet_pton(family, found[0].split("%")[0]) + struct.pack("=I", found[3]))
    return None


def batch_sender(sender: RTCRtpSender) -> BatchWriter | None:
    """The batched writer (``forward`` with ``SFERA_SFU_SEND_BATCH=1``): ``send_many(payload_type, seq_offset,
    ts_offset, packets)`` builds each packet's RTP header (the sender's SSRC, the sequence number and timestamp
    moved by the offsets, the marker) and payload in a region of the process's scratch buffer, protects each there
    with libsrtp's ``srtp_protect`` and sends them all to the nominated pair's address with one ``sendmmsg`` on its
    own UDP socket: one system call, one socket lookup and at most one wake-up of the receiver for the lot, where
    ``fast_sender`` makes one of each a packet. What the socket does not take (its buffer full) goes through
    asyncio's transport (a copy each), as does everything for a pair that is not a plain UDP socket (a TURN relay)
    or whose address is no IPv4 or IPv6 one. A packet longer than the buffer leaves room for is left out (the
    single writer's ValueError); a libsrtp error is raised (ConnectionError), no nominated pair: ConnectionError.
    Returns how many packets went out. None until DTLS is up (no SRTP session yet) or without libc's sendmmsg."""
    dtls = sender.transport
    session = getattr(dtls, "_tx_srtp", None) if dtls is not None else None
    if session is None or SENDMMSG is None:
        return None
    if not _SCRATCH:
        _SCRATCH.append(_Scratch())
    scratch = _SCRATCH[0]
    ssrc = sender._ssrc
    srtp = session._srtp[0]
    limit = min(len(session._cdata), STRIDE) - SRTP_TRAILER  # as the single writer's
    view, regions, lengths, length_of, iov_lengths = (scratch.view, scratch.packets, scratch.lengths,
                                                      scratch.length_of, scratch.iov_lengths)
    protect = srtp_lib.srtp_protect
    sendmmsg = SENDMMSG
    pack_into = RTP_HEADER.pack_into
    nominated = dtls.transport._connection._nominated
    name = ctypes.create_string_buffer(28)
    messages = (_Mmsghdr * SEND_BATCH)()
    for i, message in enumerate(messages):
        message.msg_hdr.msg_name = ctypes.addressof(name)
        message.msg_hdr.msg_iov = scratch.iov_address + i * ctypes.sizeof(_Iovec)
        message.msg_hdr.msg_iovlen = 1
    vector = ctypes.addressof(messages)
    route: list[Any] = [None, None, None, None]  # the pair last used, its socket (None: send through the
    # transport), address, transport

    def through_transport(start: int, end: int) -> None:
        transport, address = route[3], route[2]
        for i in range(start, end):
            transport.sendto(view[i * STRIDE:i * STRIDE + iov_lengths[2 * i + 1]].tobytes(), address)

    def flush(count: int) -> None:
        sock = route[1]
        if sock is None:
            through_transport(0, count)
            return
        done = sendmmsg(sock.fileno(), vector, count, 0)
        if done < 0:
            error = ctypes.get_errno()
            if error not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                raise OSError(error, os.strerror(error))
            done = 0
        if done < count:  # the socket's buffer is full: asyncio keeps the rest and sends it when it can
            through_transport(done, count)

    def send_many(payload_type: int, seq_offset: int, ts_offset: int, packets: list) -> int:
        if nominated.get(1) is not route[0]:
            pair, sock, remote, transport = nominated_route(nominated)
            address = sockaddr(sock, remote) if sock is not None else None
            if address is None:
                sock = None
            else:
                ctypes.memmove(name, address, len(address))
                for message in messages:
                    message.msg_hdr.msg_namelen = len(address)
            route[:] = pair, sock, remote, transport
        count = sent = 0
        for seq, ts, marker, payload in packets:
            size = 12 + len(payload)
            if size > limit:
                continue
            at = count * STRIDE
            pack_into(view, at, RTP_VERSION, marker << 7 | payload_type, (seq + seq_offset) & 0xFFFF,
                      (ts + ts_offset) & 0xFFFFFFFF, ssrc)
            view[at + 12:at + size] = payload
            lengths[count] = size
            status = protect(srtp, regions[count], length_of[count])
            if status:
                raise ConnectionError(f"SRTP protect failed ({status})")
            iov_lengths[2 * count + 1] = lengths[count]
            count += 1
            if count == SEND_BATCH:
                flush(count)
                sent += count
                count = 0
        if count:
            flush(count)
        return sent + count

    return send_many


def report_sent(sender: RTCRtpSender, rtp_timestamp: int, packet_count: int, octet_count: int,
                ntp_timestamp: int | None = None) -> None:
    """What the sender's next RTCP sender report tells the subscriber (A/V sync, statistics): the packets the SFU
    wrote past aiortc's own send path, and the RTP timestamp of now (``ntp_timestamp``: now, if already known)."""
    sender._RTCRtpSender__rtp_timestamp = rtp_timestamp
    sender._RTCRtpSender__ntp_timestamp = ntp_timestamp if ntp_timestamp is not None else clock.current_ntp_time()
    sender._RTCRtpSender__packet_count = packet_count
    sender._RTCRtpSender__octet_count = octet_count


# -- negotiation ---------------------------------------------------------------------------------------------------
def offered_direction(transceiver: RTCRtpTransceiver) -> str | None:
    """The direction the remote offer gave this transceiver (``recvonly``: the client sends)."""
    return transceiver._offerDirection


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[Any]:
    return transceiver._codecs


# -- no codecs -----------------------------------------------------------------------------------------------------
def replace_codecs(get_decoder: Callable, decoder_worker: Callable, get_encoder: Callable) -> None:
    """aiortc's decoder and encoder factories and its decoder thread's body, replaced process-wide."""
    receiver_module.get_decoder = get_decoder
    receiver_module.decoder_worker = decoder_worker
    sender_module.get_encoder = get_encoder


# -- the start-up check --------------------------------------------------------------------------------------------
METHODS: list[tuple[type, str, tuple[str, ...]]] = [  # class, coroutine method, its parameters after self
    (RTCRtpReceiver, "_handle_rtp_packet", ("packet", "arrival_time_ms")),
    (RTCRtpReceiver, "_send_rtcp_pli", ("media_ssrc",)),
    (RTCRtpReceiver, "_send_rtcp", ("packet",)),
    (RTCRtpSender, "_handle_rtcp_packet", ("packet",)),
]
ATTRIBUTES: list[tuple[type, str]] = [  # instance attributes the class's own code sets or reads
    (RTCRtpReceiver, "_RTCRtpReceiver__rtcp_ssrc"),
    (RTCRtpSender, "_ssrc"),
    (RTCRtpSender, "_RTCRtpSender__rtp_timestamp"),
    (RTCRtpSender, "_RTCRtpSender__ntp_timestamp"),
    (RTCRtpSender, "_RTCRtpSender__packet_count"),
    (RTCRtpSender, "_RTCRtpSender__octet_count"),
    (RTCDtlsTransport, "_tx_srtp"),
    (RTCDtlsTransport, "_rx_srtp"),
    (RTCDtlsTransport, "_rtp_header_extensions_map"),
    (HeaderExtensionsMap, "_HeaderExtensionsMap__ids"),
    (RTCIceTransport, "_connection"),
    (aioice.Connection, "_nominated"),
    (aioice.Connection, "_protocols"),
    (pylibsrtp.Session, "_srtp"),
    (pylibsrtp.Session, "_buffer"),
    (pylibsrtp.Session, "_cdata"),
    (DATAGRAM_TRANSPORT, "_sock"),
    (DATAGRAM_TRANSPORT, "max_size"),
    (RTCRtpTransceiver, "_offerDirection"),
    (RTCRtpTransceiver, "_codecs"),
]
MODULE_FUNCTIONS: list[tuple[Any, str, type | str]] = [  # module, function, who calls it by that name
    (receiver_module, "get_decoder", "decoder_worker"),  # a function of the same module
    (receiver_module, "decoder_worker", RTCRtpReceiver),  # the decoder thread's target
    (sender_module, "get_encoder", RTCRtpSender),
]
# as aiortc has them before ``replace_codecs`` (the check may run after it)
ORIGINALS = {(module.__name__, name): getattr(module, name, None) for module, name, _ in MODULE_FUNCTIONS}


def _names_in(code: CodeType) -> Iterable[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _names_in(const)


def names_used_by(cls: type) -> set[str]:
    """Every attribute and global name the class's own functions use (``co_names``, nested functions too)."""
    names: set[str] = set()
    for value in vars(cls).values():
        function = getattr(value, "__func__", getattr(value, "fget", value))
        code = getattr(function, "__code__", None)
        if code is not None:
            names.update(_names_in(code))
    return names


def problems() -> list[str]:
    """What the installed aiortc lacks of the hooks above (empty: all is there)."""
    found: list[str] = []
    for cls, name, params in METHODS:
        method = getattr(cls, name, None)
        if method is None or not inspect.iscoroutinefunction(method):
            found.append(f"{cls.__name__}.{name} is not a coroutine method")
            continue
        actual = tuple(inspect.signature(method).parameters)[1:]
        if actual[:len(params)] != params:
            found.append(f"{cls.__name__}.{name} takes {actual}, not {params}")
    used: dict[type, set[str]] = {}
    for cls, name in ATTRIBUTES:
        if name not in used.setdefault(cls, names_used_by(cls)):
            found.append(f"{cls.__name__} no longer uses the attribute {name}")
    for module, name, caller in MODULE_FUNCTIONS:
        if not callable(ORIGINALS[module.__name__, name]):
            found.append(f"{module.__name__}.{name} is gone")
            continue
        if isinstance(caller, str):
            calling = ORIGINALS.get((module.__name__, caller)) or getattr(module, caller, None)
            names = set(_names_in(calling.__code__)) if hasattr(calling, "__code__") else set()
        else:
            names = used.setdefault(caller, names_used_by(caller))
        if name not in names:
            found.append(f"{module.__name__}: {getattr(caller, '__name__', caller)} no longer calls {name}")
    if not callable(getattr(aioice.ice.StunProtocol, "datagram_received", None)) or "data_received" not in \
            names_used_by(aioice.ice.StunProtocol):
        found.append("aioice's StunProtocol no longer hands data to its connection in datagram_received (the receive "
                     "shortcut)")
    if not hasattr(srtp_lib, "srtp_protect") or not isinstance(getattr(pylibsrtp, "SRTP_MAX_TRAILER_LEN", None), int):
        found.append("pylibsrtp no longer has srtp_protect or SRTP_MAX_TRAILER_LEN (the fast path's protect)")
    return found


def check_aiortc() -> None:
    """Raises ``AiortcMismatch`` naming every missing hook; called when the SFU starts."""
    found = problems()
    if found:
        raise AiortcMismatch(f"aiortc {aiortc.__version__} lacks what the SFU hooks into (written for "
                             f"{WRITTEN_FOR}; see sfu/aiortc_adapter.py): " + "; ".join(found))
