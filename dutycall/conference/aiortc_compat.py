"""Everything dutycall needs from aiortc/aioice internals, in one place.

Written for aiortc 1.16 and aioice 0.13 (pinned in pyproject.toml). If either is
upgraded, re-read the functions this module patches or calls:

- ``aiortc.rtcrtpreceiver.get_decoder``: looked up by the receiver's decoder thread
  each time the codec changes. We wrap it so that receivers of peer connections
  marked with :func:`mark_passthrough` get a decoder that turns each reassembled
  jitter-buffer frame into an ``av.Packet`` instead of decoding it. The remote
  track then yields encoded packets, which ``RTCRtpSender`` packetizes with
  ``encoder.pack()`` without re-encoding. Unmarked connections decode as usual.
- ``RTCRtpTransceiver._codecs``: the negotiated codecs, set during
  ``setRemoteDescription`` (as deep copies, so marking them is per connection).
- ``RTCRtpSender._send_keyframe``: called when a subscriber sends PLI/FIR.
- ``RTCRtpReceiver._send_rtcp_pli``: sends PLI to the publisher.
- ``aioice.ice.get_host_addresses``: aioice never offers loopback addresses; the
  server needs to choose the addresses it advertises.
"""

from __future__ import annotations

import fractions
import logging
from collections.abc import Callable
from typing import Any

import aioice
import aioice.ice
import aiortc
import av
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc import rtcrtpreceiver
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

logger = logging.getLogger(__name__)

WRITTEN_FOR = {"aiortc": "1.16.", "aioice": "0.13."}

if not aiortc.__version__.startswith(WRITTEN_FOR["aiortc"]) or not aioice.__version__.startswith(
    WRITTEN_FOR["aioice"]
):  # pragma: no cover - guarded by the pin
    raise ImportError(
        f"dutycall.conference.aiortc_compat was written for aiortc {WRITTEN_FOR['aiortc']}x "
        f"and aioice {WRITTEN_FOR['aioice']}x, found aiortc {aiortc.__version__} "
        f"and aioice {aioice.__version__}"
    )

_PASSTHROUGH_MARK = "_dutycall_passthrough"
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """Whether an encoded frame (depayloaded, as the jitter buffer gives it) is a keyframe."""
    if not data:
        return False
    name = codec_name.upper()
    if name == "VP8":
        # RFC 6386 section 9.1: bit 0 of the frame tag is 0 for a key frame.
        return (data[0] & 0x01) == 0
    if name == "H264":
        return _h264_has_idr(data)
    # Audio: every frame stands alone.
    return True


def _h264_has_idr(data: bytes) -> bool:
    # aiortc's depayloader emits Annex B: NAL units behind 00 00 00 01 start codes.
    pos = data.find(b"\x00\x00\x01")
    while pos != -1 and pos + 3 < len(data):
        if data[pos + 3] & 0x1F == 5:
            return True
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return False


class PassthroughDecoder(Decoder):
    """A "decoder" that hands on each encoded frame as an ``av.Packet``."""

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.codec_name = codec.name
        self.time_base = fractions.Fraction(1, codec.clockRate)

    def decode(self, encoded_frame: JitterFrame) -> list[Any]:
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.dts = encoded_frame.timestamp
        packet.time_base = self.time_base
        packet.is_keyframe = is_keyframe(self.codec_name, encoded_frame.data)
        return [packet]


_stock_get_decoder = rtcrtpreceiver.get_decoder


def _get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
    if getattr(codec, _PASSTHROUGH_MARK, False):
        return PassthroughDecoder(codec)
    return _stock_get_decoder(codec)


_host_addresses: list[str] | None = None
_stock_get_host_addresses = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _host_addresses is None:
        return _stock_get_host_addresses(use_ipv4, use_ipv6)
    return [a for a in _host_addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


def install() -> None:
    """Install the patches. Idempotent; harmless to connections that are not marked."""
    rtcrtpreceiver.get_decoder = _get_decoder  # type: ignore[assignment]
    aioice.ice.get_host_addresses = _get_host_addresses  # type: ignore[assignment]


def set_host_addresses(addresses: list[str] | None) -> None:
    """Advertise exactly these local addresses in ICE (None: aioice's default, the host's own)."""
    global _host_addresses
    _host_addresses = list(addresses) if addresses else None


def mark_passthrough(pc: RTCPeerConnection) -> None:
    """Make every receiver of ``pc`` yield encoded packets instead of decoded frames.

    Call after ``setRemoteDescription`` and before ``setLocalDescription``: the
    receivers start (and pick their decoder) when both descriptions are set.
    """
    for transceiver in pc.getTransceivers():
        for codec in transceiver._codecs:
            setattr(codec, _PASSTHROUGH_MARK, True)


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The first (sending) codec negotiated on a transceiver, RTX excluded."""
    for codec in transceiver._codecs:
        if codec.name.lower() != "rtx":
            return codec
    return None


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` instead of the encoder hook when the remote peer sends PLI or FIR."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


async def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Send a Picture Loss Indication to every source the receiver heard recently."""
    sources = receiver.getSynchronizationSources()
    for source in sources:
        await receiver._send_rtcp_pli(source.source)
    return bool(sources)


install()
