"""Recording (CA-6) without transcoding: the forwarded VP8 frames and Opus packets
are reassembled from RTP and remuxed into WebM with PyAV's muxer; no codec runs.

What is recorded: the main room's leading picture (a presenter's screen, else
the admin's camera, else the first camera) and the admin's microphone (else the
loudest). Mixing every microphone would need decoding; a lesson's recording is
the teacher's.

Frames are put together on the event loop (a few byte copies per packet); muxing, closing the file and the
upload run on the recorder's own thread, in order, so the forwarding loop never waits for a disk. The file's
temporary directory is removed when the recording is finished or discarded.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from sfu import vp8
from sfu.forward import PublishedTrack
from sfu.room import Room, leading

log = logging.getLogger("sfu")
VIDEO_CLOCK = Fraction(1, 90000)
AUDIO_CLOCK = Fraction(1, 48000)
OPUS_HEAD = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 312, 48000, 0, 0)


class WebmWriter:
    """Encoded VP8 frames and Opus packets into a WebM file, as they are. The file is opened at the first key
    frame (its size is the video stream's); one thread at a time uses a writer."""

    def __init__(self, path: Path):
        self.path = path
        self.container: Any = None
        self.video: Any = None
        self.audio: Any = None
        self.started = False
        self.first_video_ts: int | None = None
        self.first_audio_ts: int | None = None
        self.video_frames = 0
        self.audio_packets = 0
        self.last_pts = 0.0

    def video_frame(self, data: bytes, rtp_ts: int) -> None:
        if not self.started:
            size = vp8.dimensions(data)
            if size is None:
                return  # wait for a key frame
            self.container = av.open(str(self.path), "w", format="webm")
            self.video = self.container.add_stream("libvpx", rate=30)
            self.audio = self.container.add_stream("libopus", rate=48000)
            self.audio.codec_context.extradata = OPUS_HEAD
            self.video.width, self.video.height = size
            self.started = True
            self.first_video_ts = rtp_ts
        pts = (rtp_ts - self.first_video_ts) & 0xFFFFFFFF
        packet = av.Packet(data)
        packet.stream = self.video
        packet.time_base = VIDEO_CLOCK
        packet.pts = packet.dts = pts
        packet.is_keyframe = vp8.is_keyframe(data)
        self.container.mux(packet)
        self.video_frames += 1
        self.last_pts = max(self.last_pts, float(pts * VIDEO_CLOCK))

    def audio_packet(self, data: bytes, rtp_ts: int, wall: float, video_wall: float | None) -> None:
        if not self.started:
            return
        if self.first_audio_ts is None:
            # line audio up with the video by wall clock at the first packet
            offset = int(max(0.0, wall - (video_wall or wall)) * 48000)
            self.first_audio_ts = (rtp_ts - offset) & 0xFFFFFFFF
        pts = (rtp_ts - self.first_audio_ts) & 0xFFFFFFFF
        packet = av.Packet(data)
        packet.stream = self.audio
        packet.time_base = AUDIO_CLOCK
        packet.pts = packet.dts = pts
        self.container.mux(packet)
        self.audio_packets += 1
        self.last_pts = max(self.last_pts, float(pts * AUDIO_CLOCK))

    def close(self) -> None:
        if self.container is not None:
            self.container.close()


class Recorder:
    """Follows the room's leading tracks and writes what they forward.

    ``find_room(call_id)`` is the node's room of that id (None when nobody is in it)."""

    def __init__(self, find_room: Callable[[str], Room | None], call_id: str, recording_id: str):
        self.find_room = find_room
        self.call_id = call_id
        self.recording_id = recording_id
        self.directory = Path(tempfile.mkdtemp(prefix="sfera-recording-"))
        self.mux = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sfu-recording-{recording_id[:8]}")
        self.writer = WebmWriter(self.directory / f"{recording_id}.webm")
        self.video: PublishedTrack | None = None
        self.audio: PublishedTrack | None = None
        self.frame = bytearray()
        self.frame_ts: int | None = None
        self.video_wall: float | None = None
        self.video_seen = False  # a key frame went to the writer: the picture no longer follows the room
        self.started_at = time.time()
        self.follow()

    def _attach(self, current: PublishedTrack | None, wanted: PublishedTrack | None) -> PublishedTrack | None:
        if current is wanted:
            return current
        if current is not None and self in current.recorders:
            current.recorders.remove(self)
        if wanted is not None:
            wanted.recorders.append(self)
            wanted.request_keyframe("recording")
        return wanted

    def follow(self) -> None:
        room = self.find_room(self.call_id)
        if room is None:
            return
        videos = sorted(room.tracks("video"), key=leading)
        audios = room.tracks("audio")
        audios.sort(key=lambda t: (t.owner.role != "admin", t.level))
        # the picture follows the leading track until the file has started (its timestamps are that track's)
        if videos and not self.video_seen and self.video is not videos[0]:
            self.video = self._attach(self.video, videos[0])
        if audios and self.audio is None:
            self.audio = self._attach(None, audios[0])

    def _muxed(self, write: Callable[..., None], *args: Any) -> None:
        """On the recorder's thread."""
        try:
            write(*args)
        except (av.FFmpegError, ValueError) as exc:
            log.warning("recording: packet skipped", extra={"error": str(exc)})

    def write(self, track: PublishedTrack, seq: int, ts: int, marker: int, payload: bytes) -> None:
        if track is self.video:
            if self.frame_ts != ts:
                self.frame = bytearray()
                self.frame_ts = ts
            self.frame += vp8.frame_data(payload)
            if marker:
                frame = bytes(self.frame)
                self.frame = bytearray()
                if not self.video_seen and vp8.dimensions(frame) is None:
                    return  # the file starts with a key frame
                self.video_seen = True
                if self.video_wall is None:
                    self.video_wall = time.time()
                self.mux.submit(self._muxed, self.writer.video_frame, frame, ts)
        elif track is self.audio and self.video_seen:
            self.mux.submit(self._muxed, self.writer.audio_packet, payload, ts, time.time(), self.video_wall)

    def _close_and_store(self, blobs: Any) -> dict | None:
        """On the recorder's thread, after every frame before it: the file closed, stored, its folder removed."""
        try:
            self.writer.close()
            if not self.writer.video_frames or blobs is None:
                log.warning("recording: nothing recorded", extra={"call_id": self.call_id})
                return None
            with self.writer.path.open("rb") as f:
                key, size = blobs.put(f, 1 << 34)
            return {"blob_key": key, "size": size, "media_type": "video/webm",
                    "duration": round(max(self.writer.last_pts, 0.0), 3),
                    "file_name": f"recording-{time.strftime('%Y-%m-%d-%H%M', time.localtime(self.started_at))}.webm"}
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    async def finish(self, blobs: Any) -> dict | None:
        """Stops following, writes out and stores the file (what ``RecordingWritten`` says), or None."""
        for track in (self.video, self.audio):
            self._attach(track, None)
        self.video = self.audio = None
        try:
            return await asyncio.get_running_loop().run_in_executor(self.mux, self._close_and_store, blobs)
        finally:
            self.mux.shutdown(wait=False)

    async def discard(self) -> None:
        """The node stops: nothing is stored, the temporary file goes."""
        await self.finish(None)
