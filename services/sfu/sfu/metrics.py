"""The SFU's Prometheus metrics (docs/architecture.md, "Observability")."""

from prometheus_client import Counter, Gauge, Histogram

rooms = Gauge("sfera_sfu_rooms", "Rooms with someone in them on this node")
participants = Gauge("sfera_sfu_participants", "Participants connected to this node")
tracks = Gauge("sfera_sfu_tracks", "Published tracks on this node", ["kind"])
received_packets = Counter("sfera_sfu_received_packets_total", "RTP packets received from publishers", ["kind"])
forwarded_packets = Counter("sfera_sfu_forwarded_packets_total", "RTP packets forwarded to subscribers", ["kind"])
forwarded_bytes = Counter("sfera_sfu_forwarded_bytes_total", "RTP bytes forwarded to subscribers", ["kind"])
keyframe_requests = Counter("sfera_sfu_keyframe_requests_total",
                            "Key-frame requests: sent to a publisher, or absorbed by the once-a-second limit",
                            ["reason", "outcome"])
nacks = Counter("sfera_sfu_nacked_packets_total", "Packets subscribers reported lost (NACK)")
retransmitted_packets = Counter("sfera_sfu_retransmitted_packets_total", "Packets resent from the history")
rtcp_fraction_lost = Histogram("sfera_sfu_rtcp_fraction_lost", "Loss fraction in subscribers' receiver reports",
                               ["kind"], buckets=(0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1))
rtcp_packets_lost = Gauge("sfera_sfu_rtcp_packets_lost", "Cumulative loss in the latest receiver report", ["kind"])
codec_instances = Counter("sfera_sfu_codec_instances_total",
                          "Decoders or encoders aiortc tried to create in the SFU (must stay 0)", ["what"])
joins = Counter("sfera_sfu_joins_total", "Signaling joins", ["outcome"])
commands = Counter("sfera_sfu_commands_total", "Commands from the calls service applied", ["command"])
fast_path = Gauge("sfera_sfu_fast_path",
                  "1: RTP forwarded on the raw-bytes fast path, 0: through RtpPacket objects (SFERA_SFU_FAST_PATH)")
speaker_switches = Counter("sfera_sfu_speaker_switches_total", "Audio slots that changed speaker")
fast_receive = Gauge("sfera_sfu_fast_receive",
                     "1: a track's SRTP taken from its ICE pair's socket past aiortc (SFERA_SFU_FAST_RECEIVE)")
send_batch = Gauge("sfera_sfu_send_batch",
                   "1: the packets of a receive wake-up go to each subscriber in one sendmmsg (SFERA_SFU_SEND_BATCH)")
batched_sends = Gauge(
    "sfera_sfu_batched_sends",
    "sendmmsg calls of batched sending (SFERA_SFU_SEND_BATCH) since start, one a subscriber and batch")
fast_received_packets = Gauge("sfera_sfu_fast_received_packets",
                              "RTP packets received by the receive shortcut (SFERA_SFU_FAST_RECEIVE) since start")
