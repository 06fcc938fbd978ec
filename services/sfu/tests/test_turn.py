"""A real TURN server (Debian's coturn, on loopback, TURN REST API secret): two
aiortc peers configured from the join answer's ice_servers, offered relay
candidates only, connect through TURN and exchange data; credentials made with
another secret are refused."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import subprocess
import uuid

import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from shared.ice import ice_servers
from tools.devstack.infra import die_with_parent, free_port, free_port_block, wait_for

pytestmark = pytest.mark.integration

SECRET = "turn-test-secret"


@pytest.fixture(scope="module")
def coturn(tmp_path_factory):
    if shutil.which("turnserver") is None:
        pytest.fail("turnserver is missing: run `make setup` (tools/bootstrap/system-deps.sh installs coturn)")
    folder = tmp_path_factory.mktemp("coturn")
    port, relays = free_port(), free_port_block(20)
    process = subprocess.Popen(
        ["turnserver", "-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--listening-port", str(port),
         "--min-port", str(relays), "--max-port", str(relays + 19), "--no-tls", "--no-dtls", "--no-cli",
         "--allow-loopback-peers", "--use-auth-secret", f"--static-auth-secret={SECRET}", "--realm", "sfera.test",
         "--userdb", str(folder / "turndb"), "--pidfile", str(folder / "turn.pid"), "--log-file", "stdout",
         "--simple-log"],
        stdout=open(folder / "turn.log", "wb"), stderr=subprocess.STDOUT, preexec_fn=die_with_parent())

    def listening() -> bool:
        """A STUN binding request is answered."""
        assert process.poll() is None, (folder / "turn.log").read_text()[-2000:]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.3)
            probe.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + os.urandom(12), ("127.0.0.1", port))
            try:
                return probe.recv(1024)[:2] == b"\x01\x01"
            except OSError:
                return False

    wait_for(listening, 20, "turnserver to listen")
    yield {"url": f"turn:127.0.0.1:{port}?transport=udp", "log": folder / "turn.log"}
    process.terminate()
    process.wait(timeout=10)


def configuration(servers: list[dict]) -> RTCConfiguration:
    return RTCConfiguration(iceServers=[RTCIceServer(urls=s["urls"], username=s.get("username"),
                                                     credential=s.get("credential")) for s in servers])


def relay_only(sdp: str) -> str:
    """Forced relay: every candidate but the TURN server's relayed ones is taken out."""
    return "\r\n".join(line for line in sdp.split("\r\n")
                       if not line.startswith("a=candidate:") or " typ relay" in line) + "\r\n"


async def connect_through_turn(servers_a: list[dict], servers_b: list[dict]) -> tuple[str, str, str]:
    a, b = RTCPeerConnection(configuration(servers_a)), RTCPeerConnection(configuration(servers_b))
    received: asyncio.Future = asyncio.get_running_loop().create_future()
    channel = a.createDataChannel("check")

    @b.on("datachannel")
    def on_channel(remote):
        @remote.on("message")
        def on_message(message):
            if not received.done():
                received.set_result(message)

    @channel.on("open")
    def on_open():
        channel.send("через TURN")

    try:
        await a.setLocalDescription(await a.createOffer())
        offer = relay_only(a.localDescription.sdp)
        await b.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await b.setLocalDescription(await b.createAnswer())
        answer = relay_only(b.localDescription.sdp)
        await a.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        message = await asyncio.wait_for(received, timeout=30)
        return message, offer, answer
    finally:
        await a.close()
        await b.close()


def test_peers_from_the_join_answer_connect_through_a_real_turn_server(coturn):
    env = {"SFERA_SFU_ICE_SERVERS": coturn["url"], "SFERA_TURN_SECRET": SECRET}
    servers_a, servers_b = ice_servers(str(uuid.uuid4()), env), ice_servers(str(uuid.uuid4()), env)
    message, offer, answer = asyncio.run(connect_through_turn(servers_a, servers_b))
    assert message == "через TURN"
    for sdp in (offer, answer):
        candidates = [line for line in sdp.split("\r\n") if line.startswith("a=candidate:")]
        assert candidates and all(" typ relay " in c for c in candidates), candidates


def test_credentials_of_another_secret_get_no_relay_candidate(coturn):
    servers = ice_servers(str(uuid.uuid4()), {"SFERA_SFU_ICE_SERVERS": coturn["url"], "SFERA_TURN_SECRET": "wrong"})

    async def gather() -> str:
        pc = RTCPeerConnection(configuration(servers))
        pc.createDataChannel("x")
        try:
            await pc.setLocalDescription(await pc.createOffer())
            return pc.localDescription.sdp
        finally:
            await pc.close()

    assert " typ relay " not in asyncio.run(gather())
