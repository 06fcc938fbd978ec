"""The SFU never decodes or encodes media: aiortc's codec factories are replaced
by ones that count the attempt and refuse, and a publisher's receiver does not
start its decoder thread. ``sfera_sfu_codec_instances_total`` stays 0; the test
of forwarding reads it."""

from __future__ import annotations

from sfu import aiortc_adapter, metrics


class CodecRefused(RuntimeError):
    pass


def _no_decoder(codec):
    metrics.codec_instances.labels("decoder").inc()
    raise CodecRefused(f"the SFU does not decode ({codec.mimeType})")


def _no_encoder(codec):
    metrics.codec_instances.labels("encoder").inc()
    raise CodecRefused(f"the SFU does not encode ({codec.mimeType})")


def _no_decoder_thread(loop, input_q, output_q, error_callback=None):
    """In place of aiortc's decoder worker: return at once (no thread left waiting per track)."""


def install() -> None:
    aiortc_adapter.replace_codecs(get_decoder=_no_decoder, decoder_worker=_no_decoder_thread,
                                  get_encoder=_no_encoder)
