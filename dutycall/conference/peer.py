"""Negotiating the server side of a peer connection (the server always answers)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from . import aiortc_compat
from .errors import ConferenceError, SdpError, UnsupportedCodec
from .lifecycle import CloseReason
from .sdp import Offer

logger = logging.getLogger(__name__)


def codec_preferences(kind: str, only: str | None = None) -> list[RTCRtpCodecCapability]:
    """Our capabilities for ``kind``, restricted to codec name ``only`` if given (plus RTX)."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    if only is None:
        return [c for c in caps if c.name.lower() in ("vp8", "h264", "opus", "rtx")]
    wanted = [c for c in caps if c.name.lower() in (only.lower(), "rtx")]
    if not any(c.name.lower() == only.lower() for c in wanted):
        raise UnsupportedCodec("sdp.codec_unavailable", kind=kind, codec=only)
    return wanted


async def answer(
    pc: RTCPeerConnection,
    offer: Offer,
    passthrough: bool,
    before_remote: Callable[[], None] | None = None,
) -> str:
    """Apply a checked offer and return the answer SDP; close ``pc`` on any failure."""
    try:
        if before_remote is not None:
            before_remote()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        if passthrough:
            aiortc_compat.mark_passthrough(pc)
        await pc.setLocalDescription(await pc.createAnswer())
    except ConferenceError:
        await pc.close()
        raise
    except Exception as exc:
        await pc.close()
        message = str(exc) or type(exc).__name__
        if "codec" in message.lower() or "send parameters" in message.lower():
            raise UnsupportedCodec("sdp.no_common_codec", detail=message) from exc
        raise SdpError("sdp.negotiation", detail=message) from exc
    return pc.localDescription.sdp


def watch_connection(pc: RTCPeerConnection, on_dead: Callable[[CloseReason], None]) -> None:
    """Call ``on_dead(reason)`` when the connection fails or closes."""

    @pc.on("connectionstatechange")
    def _changed() -> None:
        state = pc.connectionState
        if state == "failed":
            on_dead(CloseReason.PEER_FAILED)
        elif state == "closed":
            on_dead(CloseReason.PEER_CLOSED)
