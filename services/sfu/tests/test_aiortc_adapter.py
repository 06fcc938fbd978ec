"""The aiortc hooks the SFU relies on are all there (sfu/aiortc_adapter.py), and a missing one stops the node at
start-up with its name instead of failing calls one by one."""

from __future__ import annotations

import subprocess
import sys

import pytest
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender

from sfu import aiortc_adapter
from sfu.aiortc_adapter import AiortcMismatch, check_aiortc

pytestmark = pytest.mark.unit


def test_the_installed_aiortc_has_every_hook():
    assert aiortc_adapter.problems() == []
    check_aiortc()


def test_a_missing_method_is_named(monkeypatch):
    monkeypatch.delattr(RTCRtpReceiver, "_handle_rtp_packet")
    with pytest.raises(AiortcMismatch, match=r"RTCRtpReceiver\._handle_rtp_packet"):
        check_aiortc()


def test_a_method_that_changed_its_parameters_is_named(monkeypatch):
    async def handle(self, packet, arrival_time): ...

    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtp_packet", handle)
    with pytest.raises(AiortcMismatch, match="_handle_rtp_packet takes"):
        check_aiortc()


def test_a_name_mangled_attribute_the_class_no_longer_uses_is_named(monkeypatch):
    """aiortc renamed its sender-report counter: writing the old name would change nothing."""
    monkeypatch.setattr(aiortc_adapter, "ATTRIBUTES",
                        [*aiortc_adapter.ATTRIBUTES, (RTCRtpSender, "_RTCRtpSender__rtp_timestamp_v2")])
    with pytest.raises(AiortcMismatch, match="_RTCRtpSender__rtp_timestamp_v2"):
        check_aiortc()


def test_a_codec_factory_that_is_gone_is_named(monkeypatch):
    monkeypatch.setitem(aiortc_adapter.ORIGINALS, ("aiortc.rtcrtpsender", "get_encoder"), None)
    with pytest.raises(AiortcMismatch, match="get_encoder is gone"):
        check_aiortc()


def test_the_check_still_passes_after_the_codecs_are_replaced(monkeypatch):
    """serve() checks before nocodec.install(); a second node in the same process checks after it."""
    import aiortc.rtcrtpreceiver as receiver_module
    import aiortc.rtcrtpsender as sender_module

    from sfu import nocodec

    for module, name in ((receiver_module, "get_decoder"), (receiver_module, "decoder_worker"),
                         (sender_module, "get_encoder")):
        monkeypatch.setattr(module, name, getattr(module, name))  # aiortc's own again after the test
    nocodec.install()
    assert receiver_module.get_decoder is nocodec._no_decoder
    check_aiortc()


def test_the_sfu_refuses_to_start_on_a_mismatch(tmp_path):
    """python -m sfu exits 1 and says which hook is missing, before it listens or connects to anything."""
    probe = tmp_path / "sitecustomize.py"
    probe.write_text("from aiortc.rtcrtpsender import RTCRtpSender\ndel RTCRtpSender._handle_rtcp_packet\n")
    result = subprocess.run([sys.executable, "-m", "sfu"], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "SFERA_SFU_PORT": "1"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "RTCRtpSender._handle_rtcp_packet" in result.stderr
