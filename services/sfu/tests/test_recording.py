"""Recording (CA-6): muxing runs on the recorder's own thread, never on the event loop that forwards media, and
the temporary folder of the file is removed once the recording is stored, empty or discarded."""

from __future__ import annotations

import asyncio
import struct
import threading
from types import SimpleNamespace

import pytest

from sfu import recording
from sfu.recording import Recorder

pytestmark = pytest.mark.unit

DESCRIPTOR = b"\x10"  # S=1, partition 0: the start of a frame
KEY_FRAME = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 320, 240) + bytes(40)
INTER_FRAME = b"\x01\x00\x00" + bytes(40)


class Blobs:
    def __init__(self):
        self.stored: dict[str, bytes] = {}

    def put(self, stream, max_bytes: int) -> tuple[str, int]:
        data = stream.read()
        self.stored["k1"] = data
        return "k1", len(data)


def recorder_with_tracks() -> tuple[Recorder, SimpleNamespace, SimpleNamespace]:
    rec = Recorder(lambda call_id: None, "call-1", "0f0e0d0c-rec")
    video, audio = SimpleNamespace(recorders=[rec]), SimpleNamespace(recorders=[rec])
    rec.video, rec.audio = video, audio
    return rec, video, audio


def test_ca6_frames_are_muxed_off_the_event_loop_and_the_folder_goes_when_stored(monkeypatch):
    threads: list[str] = []
    original = recording.WebmWriter.video_frame

    def video_frame(self, data, rtp_ts):
        threads.append(threading.current_thread().name)
        original(self, data, rtp_ts)

    monkeypatch.setattr(recording.WebmWriter, "video_frame", video_frame)
    blobs = Blobs()

    async def scenario() -> tuple[dict | None, str]:
        rec, video, audio = recorder_with_tracks()
        assert rec.directory.is_dir()
        for n in range(30):
            frame = KEY_FRAME if n == 0 else INTER_FRAME
            rec.write(video, n, n * 3000, 1, DESCRIPTOR + frame)
            rec.write(audio, n, n * 960, 0, b"\xf8\xff\xfe")
        written = await rec.finish(blobs)
        assert not rec.directory.exists()
        assert video.recorders == [] and audio.recorders == []
        return written, threading.current_thread().name

    written, loop_thread = asyncio.run(scenario())
    assert written is not None and written["media_type"] == "video/webm"
    assert written["size"] == len(blobs.stored["k1"]) and blobs.stored["k1"][:4] == b"\x1a\x45\xdf\xa3"  # EBML
    assert written["duration"] == pytest.approx(29 * 3000 / 90000, abs=0.05)
    assert len(threads) == 30 and loop_thread not in threads
    assert all(name.startswith("sfu-recording-") for name in threads)


def test_ca6_a_recording_without_a_key_frame_stores_nothing_and_leaves_no_folder():
    async def scenario():
        rec, video, _ = recorder_with_tracks()
        for n in range(5):
            rec.write(video, n, n * 3000, 1, DESCRIPTOR + INTER_FRAME)
        return await rec.finish(Blobs()), rec.directory

    written, directory = asyncio.run(scenario())
    assert written is None and not directory.exists()


def test_a_recording_discarded_when_the_node_stops_leaves_no_folder():
    async def scenario():
        rec, video, _ = recorder_with_tracks()
        rec.write(video, 0, 0, 1, DESCRIPTOR + KEY_FRAME)
        await rec.discard()
        return rec.directory

    assert not asyncio.run(scenario()).exists()
