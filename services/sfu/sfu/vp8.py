"""VP8 over RTP, read in one place: the payload descriptor (RFC 7741 4.2) in front of the VP8 data, and the
frame header (RFC 6386 9.1). The forwarder asks whether a packet starts a key frame; the recorder strips the
descriptor to rebuild frames and reads a key frame's size. Nothing here decodes a picture."""

from __future__ import annotations

import struct

KEYFRAME_START_CODE = b"\x9d\x01\x2a"


def descriptor_size(payload: bytes) -> int | None:
    """Length of the payload descriptor, or ``None`` when the payload is too short to hold it."""
    if not payload:
        return None
    size = 1
    if payload[0] & 0x80:  # X: an extension byte follows
        if len(payload) < 2:
            return None
        x = payload[1]
        size = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits (M bit)
            if len(payload) <= size:
                return None
            size += 2 if payload[size] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            size += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            size += 1
    return size if size <= len(payload) else None


def is_keyframe(frame: bytes) -> bool:
    """Whether VP8 data (a frame, or the first packet's data of one) starts a key frame: its frame tag's P bit
    is 0 (RFC 6386 9.1)."""
    return bool(frame) and not frame[0] & 0x01


def is_keyframe_start(payload: bytes) -> bool:
    """True for the first packet of a key frame: start of partition 0 (S=1, PID=0) and a key frame's tag."""
    size = descriptor_size(payload)
    if size is None or not (payload[0] & 0x10) or (payload[0] & 0x07):
        return False
    return is_keyframe(payload[size:])


def frame_data(payload: bytes) -> bytes:
    """The VP8 data of a packet, without its descriptor (nothing for a malformed one)."""
    size = descriptor_size(payload)
    return b"" if size is None else payload[size:]


def dimensions(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a key frame's header, or ``None`` for an inter frame or a short one."""
    if len(frame) < 10 or not is_keyframe(frame) or frame[3:6] != KEYFRAME_START_CODE:
        return None
    width, height = struct.unpack("<HH", frame[6:10])
    return width & 0x3FFF, height & 0x3FFF
