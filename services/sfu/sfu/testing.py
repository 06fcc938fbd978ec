"""Stand-ins for what aiortc gives the forwarder, for the SFU's tests and ``bench.sfu_forward`` (one copy of each):
an ``Owner`` that may do everything, and a subscriber's sender (``wire``) whose DTLS transport is only what
``aiortc_adapter``'s writers use of it: a real SRTP session (pylibsrtp, keyed as DTLS would key it, with the profile
aiortc negotiates first) and the nominated ICE pair, a real asyncio UDP endpoint sending to a real address. Only
DTLS and ICE are not there.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from aiortc.rtcdtlstransport import SRTP_PROFILES
from pylibsrtp import Policy, Session

PROFILE = SRTP_PROFILES[0]  # what aiortc offers first (AEAD_AES_256_GCM where libsrtp has it), as browsers do


class Owner:
    """A participant with every right (``forward.Owner``)."""

    user_id = "teacher"
    role = "admin"
    joined = 0.0
    muted = False
    closed = False

    def may(self, right: str) -> bool:
        return True

    async def send(self, message: dict) -> None:
        return None

    def track_started(self, track) -> None:
        return None


@dataclass
class Wire:
    """A stand-in sender and what it sends through: ``sender`` goes to ``Slot`` (its ``_ssrc`` and ``transport``);
    ``nominated`` is the ICE connection's nominated pairs (``{1: pair}``; change it to move or drop the pair),
    ``source`` the pair's asyncio transport, ``reader`` an SRTP session that unprotects what was sent."""

    sender: Any
    nominated: dict
    source: asyncio.DatagramTransport
    reader: Session

    @property
    def pair(self) -> Any:
        return self.nominated.get(1)

    def close(self) -> None:
        self.source.close()


def policy(key: bytes, ssrc_type: int) -> Policy:
    """As ``RTCDtlsTransport._setup_srtp`` makes them: a packet may be sent again (a NACK's retransmission)."""
    made = Policy(key=key, ssrc_type=ssrc_type, srtp_profile=PROFILE.libsrtp_profile)
    made.allow_repeat_tx = True
    made.window_size = 1024
    return made


async def wire(ssrc: int, remote_addr: tuple[str, int]) -> Wire:
    """A sender of SSRC ``ssrc`` whose nominated pair sends from a new local UDP socket to ``remote_addr``."""
    loop = asyncio.get_running_loop()
    source, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    key = os.urandom(PROFILE.key_length + PROFILE.salt_length)
    outbound = Session(policy(key, Policy.SSRC_ANY_OUTBOUND))
    reader = Session(policy(key, Policy.SSRC_ANY_INBOUND))
    nominated = {1: SimpleNamespace(protocol=SimpleNamespace(transport=source), remote_addr=remote_addr)}
    dtls = SimpleNamespace(_tx_srtp=outbound, transport=SimpleNamespace(_connection=SimpleNamespace(
        _nominated=nominated)))
    return Wire(SimpleNamespace(_ssrc=ssrc, transport=dtls), nominated, source, reader)


class QueuedConnection:
    """What aioice's ``StunProtocol`` hands a datagram that is not STUN (``Connection.data_received``): here, a
    list of what reached aiortc's way."""

    def __init__(self):
        self.queued: list[bytes] = []

    def data_received(self, data: bytes, component: int) -> None:
        self.queued.append(data)

    def protocol_lost(self, protocol) -> None:
        pass


class WakeUps:
    """Counts the wake-ups of a datagram protocol: its ``datagram_received`` calls (asyncio's ``_read_ready``
    makes one a wake-up; the receive shortcut drains the socket in it)."""

    def __init__(self, protocol: Any):
        self.count = 0
        drained = protocol.datagram_received

        def counted(data: bytes, addr: Any) -> None:
            self.count += 1
            drained(data, addr)

        protocol.datagram_received = counted


def ice_connection(protocol: Any, *others: Any) -> SimpleNamespace:
    """A receiver's ICE connection as ``aiortc_adapter.fast_receive`` reads it: this side nominated the pair on
    ``protocol``; its sockets' protocols are that one and ``others``."""
    return SimpleNamespace(_nominated={1: SimpleNamespace(protocol=protocol)}, _protocols=[protocol, *others])


def received(sink: socket.socket) -> list[bytes]:
    """Every datagram waiting on a non-blocking ``sink`` (sent on loopback: there already)."""
    out = []
    while True:
        try:
            out.append(sink.recv(2048))
        except BlockingIOError:
            return out
