"""The SFU process: WebRTC signaling over a WebSocket, rooms, commands from calls.

Signaling (JSON over ``/ws``; the first message is the join token, CA-10):

    -> {"type": "join", "token": "<join token>"}
    <- {"type": "joined", "user_id", "call_id", "room", "role", "rights", "muted", "recording", "ice_servers": [...]}
    -> {"type": "offer", "sdp": "...", "sources": {"<mid>": "microphone" | "camera" | "screen"}}
       (the client's sendonly transceivers are what it publishes, its recvonly
       transceivers are its slots: a few video, three audio)
    <- {"type": "answer", "sdp": "..."}
    <- {"type": "slots", "slots": {"<mid>": {"user_id", "source"} | null}}   (whenever it changes)
    -> {"type": "pin", "tracks": ["<user_id>:camera", ...]}                   (who to see first)
    -> {"type": "leave"}
    <- {"type": "muted" | "unmuted" | "rights" | "moved" | "removed" | "ended" | "error", ...}
    <- {"type": "recording", "recording": true | false}     (the call is recorded now, or no longer: CA-6, told to all)
    <- {"type": "error", "code": "call.screen_not_allowed", "source": "screen", "mid"}  (media sent on a
       source without the right, or whose right the admin took back while it was shared: not forwarded, CA-4;
       the answer's "not_forwarded" lists such mids of the offer)

A join is judged against what the node learned from calls since the token was issued (``Changes``): a token of
someone removed is refused (``call.removed``), so is one of an ended call (``call.ended``) and one issued before the
node started (``call.token_stale``); a muted person joins muted, a moved one in their room now, whatever their
token says. The client then joins the call again (``POST /calls/{id}/join``), which answers today's rights.

ICE servers are explicitly none unless ``SFERA_SFU_ICE_SERVERS`` names STUN/TURN
servers (clients get them with credentials, shared/ice.py); aiortc's default public
STUN server cannot be reached from here and would stall every join.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import WSMsgType, web
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sfu import metrics, nocodec
from sfu.aiortc_adapter import check_aiortc, negotiated_codecs, offered_direction
from sfu.bus import CommandConsumer, FactPublisher
from sfu.forward import (
    SOURCE_RIGHTS,
    IdleTrack,
    PublishedTrack,
    Slot,
    fast_path,
    fast_receive,
    not_allowed,
    send_batch,
)
from sfu.recording import Recorder
from sfu.room import SPEAKER_TICK, Participant, Room
from shared.blobs import BlobStore
from shared.contracts.join_token import join_token_ttl, verify_join_token
from shared.errors import Conflict, DomainError, Forbidden, Gone, Unauthorized
from shared.ice import ice_servers

log = logging.getLogger("sfu")
SOURCES = {"microphone": "audio", "camera": "video", "screen": "video"}
MAX_SLOTS = {"audio": 3, "video": 9}


def ice_configuration() -> RTCConfiguration:
    urls = [u for u in os.environ.get("SFERA_SFU_ICE_SERVERS", "").split(",") if u.strip()]
    # max-bundle: one transport per participant. aiortc's "balanced" policy, as the answerer of a
    # BUNDLE offer, leaves the second and later transceivers of a kind on a transport that never
    # connects (they are marked bundled before the BUNDLE group is applied).
    return RTCConfiguration(iceServers=[RTCIceServer(urls=u.strip()) for u in urls],
                            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


# How long past a token's lifetime the node remembers a command: room for the clocks of calls and the node.
CLOCK_MARGIN = 30.0
_NONE = object()


class Changes:
    """What the node learned from calls's commands lately, that a join token issued before may not say (CA-3, CA-10).

    A join token is calls's word at the moment it was issued, and it may be used again for its lifetime (a reload,
    a second device, or someone who should not). What calls changed since reaches the node as commands; the node
    applies them to whoever is connected and remembers them here, by (call, user or None for the whole call,
    what): ``removed``, ``muted``, ``room``, ``screen_share``, ``ended``.

    The node's word wins over a token's without comparing clocks: it applies calls's commands in calls's order, so
    what it remembers is calls's state as of its last command; a token newer than that differs from it only where
    a command is on its way, which corrects the person once it arrives, as it does for everyone connected. Once a
    token's lifetime (and a margin) has passed since a command, every valid token was issued after it and says
    as much: the record is forgotten, so memory holds the commands of a few minutes at most."""

    def __init__(self, lifetime: float, clock: Callable[[], float] = time.monotonic):
        self.lifetime = lifetime
        self.clock = clock
        # oldest first: each is (re)inserted when noted, and all live as long, so they expire in this order
        self.entries: OrderedDict[tuple[str, str | None, str], tuple[object, float]] = OrderedDict()

    def note(self, call_id: str, user_id: str | None, what: str, value: object) -> None:
        self.prune()
        key = (call_id, user_id, what)
        self.entries.pop(key, None)
        self.entries[key] = (value, self.clock() + self.lifetime)

    def get(self, call_id: str, user_id: str | None, what: str, default: object = None) -> object:
        self.prune()
        entry = self.entries.get((call_id, user_id, what))
        return default if entry is None else entry[0]

    def forget(self, call_id: str, what: str | None = None) -> None:
        """The call's records (of one kind): a later command says more than they do."""
        for key in [k for k in self.entries if k[0] == call_id and (what is None or k[2] == what)]:
            del self.entries[key]

    def prune(self) -> None:
        now = self.clock()
        while self.entries:
            key, (_, expires) = next(iter(self.entries.items()))
            if expires > now:
                return
            del self.entries[key]


class Node:
    """One SFU process: its rooms and participants."""

    def __init__(self, name: str, facts: FactPublisher | None, blobs: BlobStore | None = None, url: str = "",
                 heartbeat: float = 2.0):
        self.name = name
        self.url = url  # where clients reach this node's signaling socket (told to calls in each heartbeat)
        self.boot = uuid.uuid4().hex  # this start of the node: calls sees a restart (its rooms are gone) by it
        self.started = time.time()  # a token issued before knows of changes this start never heard of
        self.heartbeat_interval = heartbeat
        self.facts = facts
        self.blobs = blobs
        self.rooms: dict[str, Room] = {}
        self.participants: dict[tuple[str, str], Participant] = {}
        self.changes = Changes(join_token_ttl() + CLOCK_MARGIN)
        self.recorders: dict[str, Recorder] = {}
        self.tasks: list[asyncio.Task] = []

    def fact(self, name: str, **data) -> None:
        if self.facts is not None:
            self.facts.publish(name, **data)

    # -- rooms ----------------------------------------------------------------
    def room(self, room_id: str, call_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = Room(room_id, call_id)
            metrics.rooms.set(len(self.rooms))
        return room

    def _drop_room_if_empty(self, room: Room) -> None:
        if not room.participants and self.rooms.get(room.id) is room:
            del self.rooms[room.id]
            metrics.rooms.set(len(self.rooms))

    def move(self, p: Participant, room_id: str) -> None:
        old = p.room
        if old is not None and old.id == room_id:
            return
        if old is not None:
            old.remove(p)
            self._drop_room_if_empty(old)
        self.room(room_id, p.call_id).add(p)
        for track in p.tracks.values():
            track.request_keyframe("moved")

    # -- joining ----------------------------------------------------------------
    def judge(self, claims: dict) -> dict:
        """A valid token's claims as they stand now: refused (a ``DomainError``) when what the node learned since the
        token was issued refuses it, else with what changed since (``Changes``) over what the token says."""
        call_id, user_id = str(claims["call"]), str(claims["sub"])
        if claims["iat"] < int(self.started):  # whole seconds: a token of this second may be this start's
            raise Unauthorized("call.token_stale", "The join token is older than this SFU node; join the call again.")
        changes = self.changes
        if changes.get(call_id, None, "ended"):
            raise Gone("call.ended", "This call has ended.")
        if changes.get(call_id, user_id, "removed"):
            # CA-3: calls admits a removed person to the call no more (its /join refuses them with this code)
            raise Forbidden("call.removed", "The call's admin removed you from this call.")
        role = claims.get("role", "participant")
        rights = set(claims["rights"])
        screen = changes.get(call_id, None, "screen_share")
        if screen is not None and role == "participant":  # CA-4: the admin allows participants' screens, or not
            (rights.add if screen else rights.discard)("screen")
        room = changes.get(call_id, user_id, "room", _NONE)
        if room is _NONE:
            room = changes.get(call_id, None, "room", claims["room"])
        return {**claims, "call": call_id, "sub": user_id, "role": role, "rights": sorted(rights), "room": room,
                "muted": bool(changes.get(call_id, user_id, "muted", bool(claims.get("muted"))))}

    async def join(self, claims: dict, notify) -> Participant:
        """Raises a ``DomainError`` when the token is refused (``judge``): nothing has changed then."""
        now = self.judge(claims)
        key = (now["call"], now["sub"])
        previous = self.participants.get(key)
        if previous is not None:  # the same person again (a reload, a second device): the newest wins
            await self.leave(previous, "replaced", notify_calls=False)
            now = self.judge(claims)  # a command may have been applied meanwhile
        p = Participant(now["sub"], now["call"], now["role"], now["rights"], now["muted"], notify)
        p.pc = RTCPeerConnection(ice_configuration())
        self.participants[key] = p
        self.move(p, now["room"])
        metrics.participants.set(len(self.participants))

        @p.pc.on("connectionstatechange")
        async def on_state() -> None:
            state = p.pc.connectionState
            if state == "connected" and not p.connected:
                p.connected = True
                self.fact("ParticipantConnected", call_id=p.call_id, user_id=p.user_id, room=p.room.id)
                for track in p.tracks.values():
                    track.request_keyframe("connected")
                if p.room:
                    p.room.changed()
            elif state in ("failed", "closed"):
                await self.leave(p, "disconnected")

        return p

    async def negotiate(self, p: Participant, sdp: str, sources: dict[str, str]) -> str:
        pc = p.pc
        known = {s.mid for s in (*p.video_slots, *p.audio_slots)} | {t.receiver_mid for t in p.tracks.values()}
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for t in pc.getTransceivers():
            if t.mid in known:
                continue
            direction = offered_direction(t)
            if direction == "recvonly":  # the client sends: a published track
                source = sources.get(t.mid)
                if source not in SOURCES or SOURCES[source] != t.kind or source in p.tracks:
                    t.direction = "inactive"
                    continue
                rtx = {c.payloadType for c in negotiated_codecs(t) if c.mimeType.lower().endswith("/rtx")}
                track = PublishedTrack(p, source, t.kind, t.receiver, rtx, t.mid)
                p.tracks[source] = track
                self.fact("TrackPublished", call_id=p.call_id, user_id=p.user_id, room=p.room.id, source=source,
                          kind=t.kind)
            elif direction == "sendonly" and p.may("subscribe"):  # the client receives: a slot
                slots = p.video_slots if t.kind == "video" else p.audio_slots
                codec = negotiated_codecs(t)[0]
                if len(slots) >= MAX_SLOTS[t.kind] or (t.kind == "video" and codec.mimeType.lower() != "video/vp8"):
                    t.direction = "inactive"
                    continue
                t.sender.replaceTrack(IdleTrack(t.kind))
                t.direction = "sendonly"
                slots.append(Slot(p, t.mid, t.kind, t.sender, codec.payloadType))
            else:
                t.direction = "inactive"
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        p.room.changed()
        return pc.localDescription.sdp

    async def leave(self, p: Participant, reason: str, notify_calls: bool = True) -> None:
        if p.closed:
            return
        p.closed = True
        key = (p.call_id, p.user_id)
        if self.participants.get(key) is p:
            del self.participants[key]
        room = p.room
        if room is not None:
            room.remove(p)
            self._drop_room_if_empty(room)
        for track in p.tracks.values():
            if track.started:
                metrics.tracks.labels(track.kind).dec()
        metrics.participants.set(len(self.participants))
        if p.connected and notify_calls:
            self.fact("ParticipantDisconnected", call_id=p.call_id, user_id=p.user_id,
                      room=room.id if room else p.call_id, reason=reason)
        await p.pc.close()

    def of_call(self, call_id: str) -> list[Participant]:
        return [p for (c, _), p in list(self.participants.items()) if c == call_id]

    # -- commands from calls (down) ----------------------------------------------------------------
    async def apply(self, command: str, data: dict) -> None:
        call_id = str(data["call_id"])
        metrics.commands.labels(command).inc()
        # Each is remembered for the tokens issued before it (``Changes``), then applied to who is connected.
        if command == "ParticipantMuted":
            self.changes.note(call_id, str(data["user_id"]), "muted", bool(data["muted"]))
            p = self.participants.get((call_id, str(data["user_id"])))
            if p is not None:
                p.muted = bool(data["muted"])
                await p.send({"type": "muted" if p.muted else "unmuted"})
                p.room.changed()
        elif command == "ParticipantLeft" and data.get("reason") in ("removed", "lost_access"):
            # the admin's removal, or no longer in the call's chat (calls' sweep, CA-10): out at once, and a token
            # issued before opens nothing
            self.changes.note(call_id, str(data["user_id"]), "removed", True)
            p = self.participants.get((call_id, str(data["user_id"])))
            if p is not None:
                await p.send({"type": "removed"})
                await self.leave(p, "removed")
        elif command == "PermissionsChanged":
            self.changes.note(call_id, None, "screen_share", bool(data["screen_share"]))
            for p in self.of_call(call_id):
                if p.role == "participant":
                    (p.rights.add if data["screen_share"] else p.rights.discard)("screen")
                    await p.send({"type": "rights", "rights": sorted(p.rights)})
                    screen = p.tracks.get("screen")
                    if screen is not None:
                        # CA-4: a share under way is stopped and said so; a new right may be taken back again.
                        screen.refusal_told = not p.may("screen") and screen.started
                        if screen.refusal_told:
                            await p.send(not_allowed("screen", screen.receiver_mid))
                    p.room.changed()
        elif command == "BreakoutsChanged":
            placement = data.get("placement") or {}
            if data.get("closed"):  # everyone back in the main room, whoever an older command placed elsewhere
                self.changes.forget(call_id, "room")
                self.changes.note(call_id, None, "room", call_id)
                placement = {p.user_id: call_id for p in self.of_call(call_id)}
            else:
                for user_id, room_id in placement.items():
                    self.changes.note(call_id, str(user_id), "room", str(room_id))
            for user_id, room_id in placement.items():
                p = self.participants.get((call_id, str(user_id)))
                if p is not None:
                    self.move(p, room_id)
                    await p.send({"type": "moved", "room": room_id})
        elif command == "RecordingChanged":
            await self.record(call_id, data["recording_id"], bool(data["recording"]))
            for p in self.of_call(call_id):  # CA-6: everyone in the call knows it is recorded, at once
                await p.send({"type": "recording", "recording": bool(data["recording"])})
        elif command == "CallEnded":
            await self.record(call_id, None, False)
            for p in self.of_call(call_id):
                await p.send({"type": "ended"})
                await self.leave(p, "ended")
            self.changes.forget(call_id)  # only that it ended says anything now
            self.changes.note(call_id, None, "ended", True)

    # -- recording (CA-6) ----------------------------------------------------------------
    async def record(self, call_id: str, recording_id: str | None, on: bool) -> None:
        current = self.recorders.get(call_id)
        if on:
            if current is None and recording_id:
                self.recorders[call_id] = Recorder(self.rooms.get, call_id, recording_id)
            return
        if current is not None and (recording_id is None or current.recording_id == recording_id):
            del self.recorders[call_id]
            written = await current.finish(self.blobs)
            if written is not None:
                self.fact("RecordingWritten", call_id=call_id, recording_id=current.recording_id, **written)

    # -- liveness (calls assigns rooms to live nodes) -------------------------------------------------------
    def load(self) -> dict:
        return {"calls": sorted({p.call_id for p in self.participants.values()}), "rooms": len(self.rooms),
                "participants": len(self.participants)}

    async def heartbeats(self) -> None:
        """``sfu.NodeHeartbeat`` every ``heartbeat_interval`` seconds: calls declares a node that falls silent
        dead (its participants gone) and assigns the node's calls elsewhere when they are joined again."""
        while True:
            if self.facts is not None:
                self.facts.heartbeat(url=self.url, interval=self.heartbeat_interval, boot=self.boot, **self.load())
            await asyncio.sleep(self.heartbeat_interval)

    # -- housekeeping ----------------------------------------------------------------
    async def ticker(self) -> None:
        """Speakers every quarter second; bitrate caps and recorders' sources every second."""
        n = 0
        while True:
            await asyncio.sleep(SPEAKER_TICK)
            n += 1
            for room in list(self.rooms.values()):
                room.speaker_tick()
            if n % 4 == 0:
                for room in list(self.rooms.values()):
                    room.check_live()
                    await room.cap_bitrates()
                for recorder in list(self.recorders.values()):
                    recorder.follow()

    async def close(self) -> None:
        for p in list(self.participants.values()):
            await self.leave(p, "shutdown")
        for call_id in list(self.recorders):
            await self.recorders.pop(call_id).discard()


async def signaling(request: web.Request) -> web.WebSocketResponse:
    node: Node = request.app["node"]
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)

    async def notify(message: dict) -> None:
        if not ws.closed:
            await ws.send_str(json.dumps(message))

    p: Participant | None = None
    try:
        token = request.query.get("token")
        if token is None:
            first = await ws.receive(timeout=15)
            if first.type != WSMsgType.TEXT:
                return ws
            token = json.loads(first.data).get("token", "")
        try:
            claims = verify_join_token(token)
            if claims.get("node") not in (None, node.name):
                raise Conflict("call.wrong_node", "This call is on another SFU node now; join the call again.")
            p = await node.join(claims, notify)  # judged against what the node learned since (CA-3)
        except DomainError as exc:
            metrics.joins.labels(exc.code).inc()
            await ws.send_str(json.dumps({"type": "error", "code": exc.code, "message": exc.message}))
            await ws.close(code=4001)
            return ws
        metrics.joins.labels("ok").inc()
        await notify({"type": "joined", "user_id": p.user_id, "call_id": p.call_id, "room": p.room.id,
                      "role": p.role, "rights": sorted(p.rights), "muted": p.muted,
                      "recording": p.call_id in node.recorders, "ice_servers": ice_servers(p.user_id)})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            try:
                message = json.loads(msg.data)
            except ValueError:
                await notify({"type": "error", "code": "signal.invalid", "message": "Messages are JSON."})
                continue
            kind = message.get("type")
            if kind == "offer" and isinstance(message.get("sdp"), str):
                sources = {str(k): v for k, v in (message.get("sources") or {}).items()}
                refused = [m for m, s in sources.items() if s in SOURCE_RIGHTS and not p.may(SOURCE_RIGHTS[s])]
                try:
                    sdp = await node.negotiate(p, message["sdp"], sources)
                except Exception as exc:  # a malformed SDP must not take the node down
                    log.warning("negotiation failed", extra={"user_id": p.user_id, "error": str(exc)})
                    await notify({"type": "error", "code": "signal.bad_offer", "message": str(exc)[:200]})
                    continue
                # CA-4: sources without the right are not forwarded; the publisher is told (an error)
                # as soon as media arrives on one (forward.PublishedTrack.on_rtp).
                await notify({"type": "answer", "sdp": sdp, "not_forwarded": refused})
            elif kind == "pin":
                p.pins = [str(t) for t in (message.get("tracks") or [])][:MAX_SLOTS["video"]]
                p.room.changed()
            elif kind == "leave":
                break
            else:
                await notify({"type": "error", "code": "signal.unknown", "message": f"Unknown message {kind!r}."})
    except TimeoutError:
        pass
    finally:
        if p is not None:
            await node.leave(p, "left")
        await ws.close()
    return ws


def node_checks(node: Node, commands: CommandConsumer | None) -> dict[str, str]:
    """What the node needs from outside to do its work: calls's commands consumed (a participant removed, muted,
    a call ended reach it that way) and its facts and heartbeats published (without them calls soon names the
    node dead and moves its rooms)."""
    checks: dict[str, str] = {}
    if commands is not None:
        checks["commands"] = "ok" if commands.ready.is_set() else "failing: not consuming calls's commands yet"
    if node.facts is not None:
        stalled = getattr(node.facts, "stalled", False)
        checks["facts"] = "failing: the broker did not take the last facts" if stalled else "ok"
    return checks


async def healthz(request: web.Request) -> web.Response:
    """Readiness: 503 while the node cannot take calls's commands or publish its facts (the broker away, still
    connecting); the process itself answering is ``/livez``, which a broker outage must not fail."""
    node: Node = request.app["node"]
    checks = node_checks(node, request.app["commands"])
    healthy = all(v == "ok" for v in checks.values())
    return web.json_response({"process": "sfu", "status": "ok" if healthy else "failing", "checks": checks,
                              "node": node.name, "url": node.url, "rooms": len(node.rooms),
                              "participants": len(node.participants)}, status=200 if healthy else 503)


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"process": "sfu", "status": "alive"})


async def prometheus(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(node: Node, commands: CommandConsumer | None = None) -> web.Application:
    app = web.Application()
    app["node"] = node
    app["commands"] = commands
    app.router.add_get("/ws", signaling)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    app.router.add_get("/metrics", prometheus)
    return app


async def serve(host: str, port: int, node: Node, commands: CommandConsumer | None) -> None:
    check_aiortc()  # before the codecs are replaced: a hook an aiortc upgrade removed stops the node here
    nocodec.install()
    metrics.fast_path.set(1 if fast_path() else 0)
    metrics.fast_receive.set(1 if fast_path() and fast_receive() else 0)
    metrics.fast_received_packets.set_function(lambda: PublishedTrack.fast_received)
    metrics.send_batch.set(1 if fast_path() and fast_receive() and send_batch() else 0)
    metrics.batched_sends.set_function(lambda: PublishedTrack.batched_sends)
    runner = web.AppRunner(make_app(node, commands))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    node.tasks.append(asyncio.ensure_future(node.ticker()))
    node.tasks.append(asyncio.ensure_future(node.heartbeats()))
    if node.facts is not None:
        node.facts.start()
    if commands is not None:
        node.tasks.append(asyncio.ensure_future(commands.run()))
    log.info("sfu listening", extra={"host": host, "port": port, "node": node.name})
    stop = asyncio.Event()
    try:
        await stop.wait()
    finally:
        await node.close()
        for task in node.tasks:
            task.cancel()
        await runner.cleanup()

