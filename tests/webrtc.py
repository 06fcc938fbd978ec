"""A real WebRTC participant for tests and the benchmark: aiortc with generated
media, the SFU's signaling protocol, and checks on what it decodes.

Each publisher paints its camera one flat grey (``luma``) and plays one tone
(``tone_hz``), so a subscriber can tell by the decoded pixels and samples whose
media reached it.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import math
import os
import time
from dataclasses import dataclass, field

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import VIDEO_CLOCK_RATE

AUDIO_RATE = 48000
AUDIO_PTIME = 0.02


class FlatVideo(MediaStreamTrack):
    """A camera that shows one grey level (with a moving bar, so frames differ)."""

    kind = "video"

    def __init__(self, luma: int, width: int = 320, height: int = 240, fps: int = 30, noise: bool = False):
        super().__init__()
        self.luma = luma
        self.noise = noise  # fine noise: the encoder then spends its whole bitrate (for the benchmark)
        self._grain = bytes(min(255, luma + (b & 15)) for b in range(256))
        self.width, self.height = width, height
        self.ptime = 1 / fps
        self._start: float | None = None
        self._pts = 0
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.time()
        else:
            self._pts += int(VIDEO_CLOCK_RATE * self.ptime)
            wait = self._start + self._pts / VIDEO_CLOCK_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        if self.noise:  # grain of 16 levels around the grey: about 550 kbps from aiortc's VP8 at 320x240
            y = bytearray(os.urandom(self.width * self.height).translate(self._grain))
        else:
            y = bytearray([self.luma]) * (self.width * self.height)
        bar = (self.sent * 4) % self.width
        for row in range(0, self.height, 8):
            y[row * self.width + bar] = 255 - self.luma
        frame.planes[0].update(bytes(y))
        frame.planes[1].update(bytes([128]) * (self.width * self.height // 4))
        frame.planes[2].update(bytes([128]) * (self.width * self.height // 4))
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self.sent += 1
        return frame


class ToneAudio(MediaStreamTrack):
    """A microphone playing a tone (``amplitude`` 0 is silence)."""

    kind = "audio"

    def __init__(self, tone_hz: float, amplitude: float = 0.3):
        super().__init__()
        self.tone_hz = tone_hz
        self.amplitude = amplitude
        self._start: float | None = None
        self._pts = 0
        amp = int(32767 * amplitude)
        # one second of the tone, computed once (a whole number of cycles when tone_hz is an integer)
        self._second = b"".join(int(amp * math.sin(2 * math.pi * tone_hz * i / AUDIO_RATE)).to_bytes(
            2, "little", signed=True) for i in range(AUDIO_RATE))

    async def recv(self) -> av.AudioFrame:
        samples = int(AUDIO_RATE * AUDIO_PTIME)
        if self._start is None:
            self._start = time.time()
        else:
            self._pts += samples
            wait = self._start + self._pts / AUDIO_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        start = (self._pts % AUDIO_RATE) * 2
        data = self._second[start:start + samples * 2]
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(data)
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


@dataclass
class Received:
    """What one of a subscriber's slots decoded."""

    kind: str
    frames: int = 0
    lumas: list[float] = field(default_factory=list)
    rms: list[float] = field(default_factory=list)


def mean_luma(frame: av.VideoFrame) -> float:
    plane = frame.planes[0]
    data = bytes(plane)
    width = frame.width
    rows = range(0, frame.height, 4)
    total = sum(data[r * plane.line_size + c] for r in rows for c in range(1, width, 7))
    count = len(rows) * len(range(1, width, 7))
    return total / count


def audio_rms(frame: av.AudioFrame) -> float:
    data = bytes(frame.planes[0])
    samples = [int.from_bytes(data[i:i + 2], "little", signed=True) for i in range(0, min(len(data), 1920), 2)]
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


class Peer:
    def __init__(self, sfu_url: str, token: str, *, camera_luma: int | None = None, tone_hz: float | None = None,
                 screen_luma: int | None = None, video_slots: int = 4, audio_slots: int = 3, decode: bool = True,
                 amplitude: float = 0.3, noise: bool = False):
        self.sfu_url = sfu_url
        self.token = token
        self.sources: dict[str, MediaStreamTrack] = {}
        if tone_hz is not None:
            self.sources["microphone"] = ToneAudio(tone_hz, amplitude)
        if camera_luma is not None:
            self.sources["camera"] = FlatVideo(camera_luma, noise=noise)
        if screen_luma is not None:
            self.sources["screen"] = FlatVideo(screen_luma, 640, 360, fps=5, noise=noise)
        self.video_slots = video_slots
        self.audio_slots = audio_slots
        self.decode = decode
        self.pc: RTCPeerConnection | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.messages: list[dict] = []
        self.slots: dict[str, dict | None] = {}
        self.received: dict[str, Received] = {}
        self.joined: dict = {}
        self.answer: dict = {}
        self.tasks: list[asyncio.Task] = []
        self._waiters: list[tuple[str, asyncio.Future]] = []
        self.on_packet = None

    # -- signaling -----------------------------------------------------------------------------------
    async def connect(self, timeout: float = 20) -> Peer:
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.sfu_url)
        self.tasks.append(asyncio.ensure_future(self._read()))
        await self.ws.send_str(json.dumps({"type": "join", "token": self.token}))
        self.joined = await self.wait_for("joined", timeout, fail_on_error=True)
        # max-bundle: aiortc with "balanced" leaves its later transceivers of a kind on a transport that
        # never connects once the answer bundles them (browsers bundle everything anyway).
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.pc.on("track", self._on_track)
        mids: dict[int, str] = {}
        for i, (source, track) in enumerate(self.sources.items()):
            self.pc.addTransceiver(track, direction="sendonly")
            mids[i] = source
        for _ in range(self.video_slots):
            self.pc.addTransceiver("video", direction="recvonly")
        for _ in range(self.audio_slots):
            self.pc.addTransceiver("audio", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        transceivers = self.pc.getTransceivers()
        sources = {transceivers[i].mid: source for i, source in mids.items()}
        await self.ws.send_str(json.dumps({"type": "offer", "sdp": self.pc.localDescription.sdp,
                                           "sources": sources}))
        self.answer = await self.wait_for("answer", timeout, fail_on_error=True)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=self.answer["sdp"], type="answer"))
        return self

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(msg.data)
            self.messages.append(message)
            if message["type"] == "slots":
                self.slots.update(message["slots"])
            for kind, future in list(self._waiters):
                if not future.done() and (message["type"] == kind or message["type"] == "error"):
                    future.set_result(message)
                    self._waiters.remove((kind, future))
        for _, future in self._waiters:
            if not future.done():
                future.set_result({"type": "closed"})

    async def wait_for(self, kind: str, timeout: float = 20, fail_on_error: bool = False) -> dict:
        for m in self.messages:
            if m["type"] == kind:
                return m
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((kind, future))
        message = await asyncio.wait_for(future, timeout)
        if fail_on_error and message["type"] != kind:
            raise RuntimeError(f"expected {kind}, got {message}")
        return message

    async def send(self, message: dict) -> None:
        await self.ws.send_str(json.dumps(message))

    # -- media -----------------------------------------------------------------------------------------
    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        mid = transceiver.mid
        got = self.received[mid] = Received(track.kind)
        if self.decode:
            self.tasks.append(asyncio.ensure_future(self._consume(mid, track)))
        else:
            # count packets (and hand them to ``on_packet``) instead of decoding: a light subscriber
            # for the benchmark, so that a hundred of them fit in one process
            async def count(packet, arrival_time_ms: int = 0) -> None:
                got.frames += 1
                if self.on_packet is not None:
                    self.on_packet(mid, packet)

            transceiver.receiver._handle_rtp_packet = count

    async def _consume(self, mid: str, track: MediaStreamTrack) -> None:
        got = self.received[mid]
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            got.frames += 1
            if got.kind == "video":
                if got.frames % 5 == 1:
                    got.lumas.append(mean_luma(frame))
            elif got.frames % 10 == 1:
                got.rms.append(audio_rms(frame))

    def slot_of(self, user_id: str, source: str) -> str | None:
        for mid, shown in self.slots.items():
            if shown and shown["user_id"] == user_id and shown["source"] == source:
                return mid
        return None

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
