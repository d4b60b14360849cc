"""Checking client session descriptions before they reach aiortc.

aiortc's parser raises whatever it trips over (IndexError, ValueError, ...);
a client must instead get one clear error and nothing must change. We also
drop mDNS (``.local``) candidates: resolving them would send multicast queries
onto the host's network, and a browser that hides its address behind mDNS is
reached through the peer-reflexive candidate of its first connectivity check.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc import sdp as aiortc_sdp

from ..messages import Msg
from .errors import SdpError, UnsupportedCodec

MAX_SDP_BYTES = 64 * 1024

# What the forwarding path can carry, per media kind (lower-case codec names).
FORWARDABLE = {"video": ("vp8", "h264"), "audio": ("opus",)}
SEND_DIRECTIONS = ("sendonly", "sendrecv")
RECV_DIRECTIONS = ("recvonly", "sendrecv")


@dataclass(frozen=True)
class MediaSection:
    """One m-line of an offer: its kind, direction and offered codec names."""

    kind: str
    direction: str
    codecs: tuple[str, ...]


@dataclass(frozen=True)
class Offer:
    """A checked offer: the SDP to hand to aiortc and what it asks for."""

    sdp: str
    media: tuple[MediaSection, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(m.kind for m in self.media)


def _strip_mdns_candidates(sdp: str) -> str:
    lines = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) > 4 and parts[4].lower().endswith(".local"):
                continue
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def parse_offer(sdp: object, purpose: str) -> Offer:
    """Check an offer for ``purpose`` ("publish" or "subscribe") and return it cleaned.

    Raises :class:`SdpError` or :class:`UnsupportedCodec` and never anything else.
    """
    if not isinstance(sdp, str) or not sdp.strip():
        raise SdpError("sdp.empty")
    if len(sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise SdpError("sdp.too_large", max=MAX_SDP_BYTES)
    if not sdp.lstrip().startswith("v=0"):
        raise SdpError("sdp.version")
    cleaned = _strip_mdns_candidates(sdp)
    try:
        parsed = aiortc_sdp.SessionDescription.parse(cleaned)
    except Exception as exc:
        raise SdpError("sdp.malformed", detail=f"{type(exc).__name__}: {exc}") from exc
    if not parsed.media:
        raise SdpError("sdp.no_media")

    wanted = SEND_DIRECTIONS if purpose == "publish" else RECV_DIRECTIONS
    sections = []
    for media in parsed.media:
        if media.kind not in FORWARDABLE:
            raise SdpError("sdp.media_kind", kind=media.kind)
        if media.direction not in wanted:
            raise SdpError("sdp.direction", purpose=purpose, wanted=" / ".join(wanted), kind=media.kind,
                           got=media.direction)
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise SdpError("sdp.ice", kind=media.kind)
        if not media.dtls or not media.dtls.fingerprints:
            raise SdpError("sdp.fingerprint", kind=media.kind)
        names = tuple(c.name.lower() for c in media.rtp.codecs)
        usable = [n for n in names if n in FORWARDABLE[media.kind]]
        if not usable:
            raise UnsupportedCodec("sdp.codecs", kind=media.kind,
                                   offered=", ".join(names) or Msg("sdp.nothing"),
                                   forwarded=", ".join(FORWARDABLE[media.kind]))
        sections.append(MediaSection(media.kind, media.direction, names))
    kinds = [s.kind for s in sections]
    if len(set(kinds)) != len(kinds):
        raise SdpError("sdp.duplicate_kinds")
    return Offer(cleaned, tuple(sections))
