"""VP8 over RTP read in one place (sfu.vp8): the forwarder's key-frame test and the recorder's frames."""

from __future__ import annotations

import struct

import pytest

from sfu import vp8

pytestmark = pytest.mark.unit

KEY_TAG = b"\x50\x2a\x00" + vp8.KEYFRAME_START_CODE + struct.pack("<HH", 640, 360)  # P bit 0: a key frame
INTER_TAG = b"\x51\x2a\x00\x00\x00"  # P bit 1


@pytest.mark.parametrize(("descriptor", "size"), [
    (b"\x10", 1),                      # S, no extension
    (b"\x90\x80\x05", 3),              # X, I with a 7-bit picture id
    (b"\x90\x80\x81\x02", 4),          # X, I with a 15-bit picture id
    (b"\x90\xe0\x81\x02\x07\x40", 6),  # X, I (15 bits), L, T
    (b"\x90\x10\x20", 3),              # X, K only
])
def test_the_descriptor_is_measured_as_rfc_7741_lays_it_out(descriptor, size):
    assert vp8.descriptor_size(descriptor + KEY_TAG) == size
    assert vp8.frame_data(descriptor + KEY_TAG) == KEY_TAG
    assert vp8.is_keyframe_start(descriptor + KEY_TAG)
    assert not vp8.is_keyframe_start(descriptor + INTER_TAG)


def test_only_the_start_of_partition_0_starts_a_key_frame():
    assert not vp8.is_keyframe_start(b"\x00" + KEY_TAG)  # S=0: a continuation packet
    assert not vp8.is_keyframe_start(b"\x11" + KEY_TAG)  # partition 1


@pytest.mark.parametrize("payload", [b"", b"\x90", b"\x90\x80", b"\x90\x80\x81", b"\x90\xc0\x05", b"\x10"])
def test_a_truncated_payload_is_no_key_frame_and_no_data(payload):
    """A malformed packet from a publisher is skipped, it does not raise in the forwarding loop."""
    assert vp8.is_keyframe_start(payload) is False
    assert vp8.frame_data(payload) == b""


def test_a_key_frames_header_gives_its_size():
    assert vp8.dimensions(KEY_TAG) == (640, 360)
    assert vp8.dimensions(INTER_TAG + b"\x00" * 5) is None
    assert vp8.dimensions(KEY_TAG[:8]) is None


def test_the_frame_tag_is_read_in_one_place_for_the_forwarder_and_the_recorder():
    assert vp8.is_keyframe(KEY_TAG) and not vp8.is_keyframe(INTER_TAG) and not vp8.is_keyframe(b"")
    assert vp8.dimensions(KEY_TAG) == (640, 360) and vp8.dimensions(INTER_TAG) is None
