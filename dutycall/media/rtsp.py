"""RTSP pull: the server pulls an IP camera's, a drone's or a CCTV platform's RTSP stream into an
incident's footage room, H264 without re-encoding, and keeps pulling it until a host stops it.

A host adds a source (``rtsp://`` or ``rtsps://`` URL and a label) to an incident; scope as ingest
tokens (an account with ``incidents.manage`` whose subtree holds the incident). The URL may carry
credentials (``rtsp://user:pass@camera/...``): they are stored, and used, but never returned,
logged or shown: everything outside this module sees :func:`mask_url`'s ``rtsp://***@camera/...``.

The server reaches only what ``rtsp_allow`` (:class:`AllowPolicy`, DUTYCALL_RTSP_ALLOW) lists: by
default the private ranges on the cameras' ports, never loopback, link-local (cloud metadata) or
multicast unless listed explicitly. Checked when a source is added (400) and in each attempt's
thread, which resolves the host once and connects to the address it checked (:func:`pin`). What the
API says about a failure is coarse (:data:`ERRORS`); the detail is in the log. FFmpeg follows RTSP
redirects and cannot be told not to: an egress firewall is what confines those (docs/architecture.md).

Each source has a task on the event loop and, while connected, a thread of its own (never the
loop, never the default executor that ``asyncio.to_thread`` shares): PyAV opens the URL (RTSP over
TCP, with open and read timeouts) and demuxes. The thread joins the demuxer's packets into access
units (a multi-slice frame can come as several packets sharing one timestamp; a packet without a
timestamp belongs to the next one's frame), gives a keyframe that lacks them the SPS/PPS the SDP
announced (``sprop-parameter-sets``, the stream's extradata), and hands each frame to the loop.

How the frames become a publication without changing the conference: an aiortc peer connection
in this process publishes a :class:`PacketTrack` (whose ``recv`` returns the camera's
``av.Packet``s, which ``RTCRtpSender`` packetizes without encoding) to the footage room exactly as a
WHIP encoder would (``Room.join`` and ``Room.publish`` with its offer): forwarding, subscribers,
the archive (``Archive.start`` as ``ingest.py``) and the room's rules then treat it like any
other publication. The cost is one loopback DTLS/SRTP hop per stream.

Each connection that delivers is a :class:`~dutycall.media.models.FootageSource` (kind "rtsp") with
``footage_started`` / ``footage_stopped`` on the incident's timeline (reason "camera_lost" when the
camera went away). When the camera drops (the connection closes, a read times out, the
publication's media stops), the source retries with exponential back-off: 1 s doubling to 30 s,
back to 1 s once a connection has delivered for a minute. States: "connecting", "live",
"retrying" (with the next attempt's time), "stopped". Sources not stopped are started again when
the server starts (:meth:`RtspPulls.resume`).

Keyframes: a subscriber's keyframe request (PLI) cannot reach an RTSP camera, so a console that
joins waits for the camera's next keyframe (its GOP: typically 1 to 4 s). Audio is not pulled
(cameras send AAC or G.711, which WebRTC consoles and the WebM archive do not carry as they are).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import fractions
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import av.container.core
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..conference import CloseReason, Conference, Participant, Publication, codec_preferences, parse_offer
from ..directory.base import DirectoryBase
from ..directory.models import as_utc, utcnow
from ..directory.principal import Principal
from ..incidents.models import Incident, IncidentEvent
from ..messages import CATALOGUE, EN, ZH
from ..text import unsafe_reason
from .errors import Forbidden, Invalid, NotFound, TooMany
from .models import RtspSource
from .naming import footage_room
from .recording import Archive
from .scope import incident_in_scope, require_host

logger = logging.getLogger(__name__)

MAX_LABEL = 64
MAX_URL = 1024
MAX_SOURCES = 32
#: Sources not stopped per incident, and per unit (the incident's unit path): one district cannot
#: take the whole server's ``MAX_SOURCES``.
MAX_PER_INCIDENT, MAX_PER_UNIT = 8, 16
#: Where the server may pull from (``rtsp_allow``, DUTYCALL_RTSP_ALLOW): cameras live on private
#: networks. Ports allowed on an allowed network besides the ones an entry names.
DEFAULT_ALLOW = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
DEFAULT_PORTS = frozenset({554, 8554, 322})
#: A demuxed frame being joined may hold at most this many packets / bytes (a camera that never
#: sends a timestamp would otherwise grow it without end): beyond, it is dropped.
MAX_PARTS, MAX_PART_BYTES = 256, 8 * 1024 * 1024
#: What ``last_error`` may say (the detail goes to the server log only: a finer answer would make
#: the API a port scanner of the networks the server reaches).
ERRORS = ("unreachable", "not_rtsp", "auth_failed", "timeout", "ended")
#: Back-off between attempts: from the first to the last, doubling; reset after a good minute.
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET_AFTER = 1.0, 30.0, 60.0
#: PyAV's limits: opening the URL (RTSP DESCRIBE/SETUP/PLAY), then any one read.
OPEN_TIMEOUT, READ_TIMEOUT = 10.0, 5.0
#: How long an opened stream may take to deliver its first keyframe before the attempt fails.
FIRST_KEYFRAME_TIMEOUT = 15.0
#: Frames queued for the local sender; beyond that video skips to the next keyframe.
QUEUE_FRAMES = 90
#: While live, how often the incident is checked (a closed or merged one stops its sources).
INCIDENT_CHECK = 30.0
VIDEO_CLOCK = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
STATES = ("connecting", "live", "retrying", "stopped")
#: NAL unit types: IDR slice, SPS, PPS, access unit delimiter.
NAL_IDR, NAL_SPS, NAL_PPS, NAL_AUD = 5, 7, 8, 9

MESSAGES: dict[str, dict[str, str]] = {
    "rtsp.no_right": {ZH: "您的角色不能为事件添加或停止 RTSP 视频源",
                      EN: "Your role cannot add or stop RTSP video sources for incidents"},
    "rtsp.url": {ZH: "地址应为 rtsp:// 或 rtsps:// 开头、含主机名的 URL（不超过 {max} 个字符）",
                 EN: "The address must be an rtsp:// or rtsps:// URL with a host name (at most {max} characters)"},
    "rtsp.label": {ZH: "名称应为 1 至 {max} 个字符，且不含控制字符",
                   EN: "The label must be 1 to {max} characters without control characters"},
    "rtsp.not_found": {ZH: "没有编号为 {id} 的 RTSP 视频源", EN: "There is no RTSP video source {id}"},
    "rtsp.too_many": {ZH: "同时拉取的 RTSP 视频源已达上限（{max} 个）",
                      EN: "Too many RTSP video sources at once (at most {max})"},
    "rtsp.too_many_incident": {ZH: "本事件同时拉取的 RTSP 视频源已达上限（{max} 个）",
                               EN: "Too many RTSP video sources for this incident at once (at most {max})"},
    "rtsp.too_many_unit": {ZH: "本单位同时拉取的 RTSP 视频源已达上限（{max} 个）",
                           EN: "Too many RTSP video sources for this unit at once (at most {max})"},
    "rtsp.not_allowed": {ZH: "不允许从该地址或端口拉取视频（只允许管理员在 DUTYCALL_RTSP_ALLOW 中列出的网络和端口）",
                         EN: "Pulling from this address or port is not allowed (only the networks and ports the "
                             "administrator lists in DUTYCALL_RTSP_ALLOW)"},
}
CATALOGUE.update(MESSAGES)


class BadUrl(Invalid):
    """Not an rtsp:// or rtsps:// URL with a host (the route answers 400)."""

    code = "invalid_url"


class NotAllowed(BadUrl):
    """The URL's host resolves to an address, or names a port, outside ``rtsp_allow`` (400)."""

    code = "url_not_allowed"


# -- where the server may pull from ----------------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Never pulled from unless an allow entry lies inside one of them (lists it explicitly): "this"
#: network, loopback, link-local (cloud metadata at 169.254.169.254), multicast, reserved/broadcast.
SPECIAL: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "fe80::/10", "ff00::/8"))


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id:
            return ipaddress.IPv6Address(str(address).split("%")[0])
    return address


@dataclass(frozen=True)
class AllowEntry:
    network: Network
    #: Ports allowed besides DEFAULT_PORTS; None: any port (``:*``).
    ports: frozenset[int] | None
    ranges: tuple[tuple[int, int], ...] = ()

    def allows_port(self, port: int) -> bool:
        return self.ports is None or port in DEFAULT_PORTS or port in self.ports \
            or any(lo <= port <= hi for lo, hi in self.ranges)


class AllowPolicy:
    """``rtsp_allow``: comma-separated CIDR networks, each optionally with ports: ``10.0.0.0/8``,
    ``192.168.0.0/16:8000``, ``[fd00::/8]:8000``, ``10.1.0.0/16:1024-2048``, ``127.0.0.0/8:*``
    (any port); one port spec an entry (list a network twice for two). Ports 554, 8554 and 322
    are allowed on every listed network. Loopback, link-local, multicast, "this network" and
    reserved addresses pass only an entry inside them (never ``0.0.0.0/0``)."""

    def __init__(self, value: str = DEFAULT_ALLOW) -> None:
        self.text = value
        self.entries = parse_allow(value)

    def allows(self, address: Address, port: int) -> bool:
        address = _plain(address)
        special = [n for n in SPECIAL if n.version == address.version and address in n]
        for entry in self.entries:
            if entry.network.version != address.version or address not in entry.network:
                continue
            if special and not any(entry.network.subnet_of(n) for n in special):  # type: ignore[arg-type]
                continue
            if entry.allows_port(port):
                return True
        return False


def parse_allow(value: str) -> tuple[AllowEntry, ...]:
    """The entries of an ``rtsp_allow`` text; ValueError naming the first bad one."""
    entries = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        network_text, ports_text = item, ""
        if item.startswith("["):
            network_text, _, rest = item[1:].partition("]")
            if rest and not rest.startswith(":"):
                raise ValueError(f"rtsp allow entry {item!r}: expected [network]:ports")
            ports_text = rest[1:]
        elif item.count(":") == 1:
            network_text, _, ports_text = item.partition(":")
        try:
            network = ipaddress.ip_network(network_text.strip(), strict=False)
        except ValueError as exc:
            raise ValueError(f"rtsp allow entry {item!r}: {exc}") from None
        ports: set[int] = set()
        ranges: list[tuple[int, int]] = []
        port = ports_text.strip()
        if port == "*":
            entries.append(AllowEntry(network, None))
            continue
        if re.fullmatch(r"\d{1,5}-\d{1,5}", port):
            lo, hi = (int(x) for x in port.split("-"))
            if not 1 <= lo <= hi <= 65535:
                raise ValueError(f"rtsp allow entry {item!r}: bad port range {port}")
            ranges.append((lo, hi))
        elif port.isdigit() and 1 <= int(port) <= 65535:
            ports.add(int(port))
        elif port or ports_text:
            raise ValueError(f"rtsp allow entry {item!r}: bad port {port!r} (a port, lo-hi or *)")
        entries.append(AllowEntry(network, frozenset(ports), tuple(ranges)))
    return tuple(entries)


def url_port(parts: urllib.parse.SplitResult) -> int:
    """The port the URL names, or its scheme's (FFmpeg's) default: 554, rtsps 322."""
    return parts.port or (322 if parts.scheme.lower() == "rtsps" else 554)


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` stands for (a literal as it is); OSError when it does not resolve.
    Blocking: in a thread."""
    try:
        return [_plain(ipaddress.ip_address(host))]
    except ValueError:
        pass
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(_plain(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in found))


def pin(url: str, policy: AllowPolicy) -> str:
    """``url`` with its host replaced by the address it resolves to now, once every address it
    resolves to is allowed (no second lookup by FFmpeg a DNS answer could change between):
    NotAllowed otherwise; OSError when it does not resolve. Blocking: in a thread."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None
    port = url_port(parts)
    addresses = resolve(parts.hostname, port)
    if not addresses or not all(policy.allows(a, port) for a in addresses):
        raise NotAllowed("rtsp.not_allowed", field="url")
    address = addresses[0]
    host = f"[{address}]" if address.version == 6 else str(address)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


# -- URLs ----------------------------------------------------------------------------------------


#: Credentials some cameras take in the path or query (``/user=admin_password=x_channel=1``,
#: ``;password=x``, ``?pwd=x``): the value runs to the next separator or ``_key=``.
PATH_SECRET = re.compile(r"(?i)(?<![a-z0-9])(user(?:name)?|pass\w*?|pwd)=(.*?)(?=[&;/?]|_[a-z]+=|$)")


def check_url(url: object) -> str:
    """``url`` if it is an ``rtsp://`` or ``rtsps://`` URL with a host; BadUrl otherwise (also for a
    ``#``: FFmpeg and the masking would read a password with one differently)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or unsafe_reason(url, multiline=False) \
            or any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in url) or "#" in url:
        raise BadUrl("rtsp.url", field="url", max=MAX_URL)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # ValueError when it is not a number in range
    except ValueError:
        raise BadUrl("rtsp.url", field="url", max=MAX_URL) from None
    if parts.scheme.lower() not in ("rtsp", "rtsps") or not parts.hostname or not url.lower().startswith(
            f"{parts.scheme.lower()}://") or (port is not None and port == 0):
        raise BadUrl("rtsp.url", field="url", max=MAX_URL)
    return url


def mask_url(url: str) -> str:
    """The URL as it may be shown: credentials (user info) as ``***``, a query as ``?***`` (some
    cameras take passwords there too), ``user=``/``password=``/``pwd=``… values in the path as
    ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "rtsp://***"
    netloc = f"***@{host}" if "@" in parts.netloc else host
    path = PATH_SECRET.sub(lambda m: f"{m.group(1)}=***", parts.path)
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, "***" if parts.query else "", ""))


def _secrets(url: str) -> list[str]:
    """Every part of ``url`` that may be a credential, longest first."""
    try:
        parts = urllib.parse.urlsplit(url)
        found = [url, parts.netloc.rpartition("@")[0], parts.username, parts.password, parts.query,
                 urllib.parse.unquote(parts.password or "")]
    except ValueError:
        return [url]
    found += [m.group(2) for m in PATH_SECRET.finditer(url)]
    return sorted({f for f in found if f}, key=len, reverse=True)


def _scrub(text: str, *urls: str) -> str:
    """``text`` (an error's words) without the URLs or their credentials in it."""
    for url in urls:
        text = text.replace(url, mask_url(url))
        for secret in _secrets(url):
            if len(secret) >= 2:
                text = text.replace(secret, "***")
    return text[:200]


def _error_text(exc: BaseException, *urls: str) -> str:
    """The detail for the server log (never the API): the exception's words, scrubbed."""
    words = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return _scrub(f"{type(exc).__name__}: {words}", *urls)


def error_kind(exc: BaseException) -> str:
    """What ``last_error`` says about a failed attempt: one of :data:`ERRORS`."""
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError | PermissionError):
        return "auth_failed"
    if isinstance(exc, TimeoutError | av.error.ExitError | NoKeyframe) \
            or getattr(exc, "errno", None) in (errno.ETIMEDOUT, errno.EAGAIN):
        return "timeout"
    if isinstance(exc, StreamEnded):
        return "ended"
    if isinstance(exc, NotAllowed | ConnectionError | socket.gaierror) or (
            isinstance(exc, OSError) and not isinstance(exc, ValueError | av.error.HTTPClientError)):
        return "unreachable"
    return "not_rtsp"


# -- H264 access units ---------------------------------------------------------------------------


def nal_types(data: bytes) -> list[int]:
    """The NAL unit types of an Annex B buffer, in order."""
    found = []
    pos = data.find(b"\x00\x00\x01")
    while pos != -1 and pos + 3 < len(data):
        found.append(data[pos + 3] & 0x1F)
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return found


def annex_b_parameter_sets(extradata: bytes | None) -> bytes:
    """The SPS/PPS of a stream's extradata as Annex B (RTSP's is Annex B already; an avcC record,
    which some demuxers give, is converted)."""
    if not extradata:
        return b""
    if extradata[:3] == b"\x00\x00\x01" or extradata[:4] == b"\x00\x00\x00\x01":
        return extradata
    if extradata[0] != 1 or len(extradata) < 7:
        return b""
    out, pos = b"", 5
    try:
        for count_mask in (0x1F, 0xFF):
            count = extradata[pos] & count_mask
            pos += 1
            for _ in range(count):
                size = int.from_bytes(extradata[pos:pos + 2], "big")
                out += b"\x00\x00\x00\x01" + extradata[pos + 2:pos + 2 + size]
                pos += 2 + size
    except IndexError:
        return out
    return out


@dataclass
class Frame:
    """One access unit for the sender: Annex B bytes, its 90 kHz timestamp, keyframe or not."""

    data: bytes
    pts: int
    keyframe: bool


class AccessUnits:
    """Joins demuxed packets into whole frames (by timestamp) and completes keyframes."""

    def __init__(self, parameter_sets: bytes) -> None:
        self.parameter_sets = parameter_sets
        self._parts: list[bytes] = []
        self._size = 0
        self._pts: int | None = None
        #: Frames dropped for being over MAX_PARTS / MAX_PART_BYTES (a camera never timestamping).
        self.overflows = 0

    def add(self, data: bytes, pts: int | None) -> Frame | None:
        """Take one packet; returns the frame it completed (the previous one), if any."""
        done = None
        if pts is not None and self._pts is not None and pts != self._pts and self._parts:
            done = self._finish()
        if pts is not None:
            self._pts = pts
        if len(self._parts) >= MAX_PARTS or self._size + len(data) > MAX_PART_BYTES:
            self.overflows += 1
            if self.overflows == 1 or self.overflows % 100 == 0:
                logger.warning("RTSP: a frame grew past %d packets or %d bytes without a new timestamp: "
                               "dropped (%d so far)", MAX_PARTS, MAX_PART_BYTES, self.overflows)
            self._parts, self._size = [], 0
        self._parts.append(data)
        self._size += len(data)
        return done

    def flush(self) -> Frame | None:
        return self._finish() if self._parts and self._pts is not None else None

    def _finish(self) -> Frame:
        data = b"".join(self._parts)
        self._parts, self._size = [], 0
        types = nal_types(data)
        keyframe = NAL_IDR in types
        if keyframe and NAL_SPS not in types and self.parameter_sets:
            data = self.parameter_sets + data
        assert self._pts is not None
        return Frame(data, self._pts, keyframe)


# -- the sending track ---------------------------------------------------------------------------


class PacketTrack(MediaStreamTrack):
    """A track whose ``recv`` returns encoded frames as ``av.Packet``s (aiortc's sender packetizes
    them as they are): the camera's video here; also a pre-recorded greeting's video and audio
    (``media/playout.py``: ``kind="audio"``, ``clock=48000``, every audio frame a "keyframe").
    ``Frame.pts`` counts ``clock`` ticks. Bounded: when the sender falls behind, frames are dropped
    up to the next keyframe."""

    kind = "video"

    def __init__(self, kind: str = "video", clock: int = VIDEO_CLOCK) -> None:
        super().__init__()
        self.kind = kind
        self._time_base = fractions.Fraction(1, clock)
        self._queue: deque[Frame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._need_keyframe = True
        self.frames = 0
        self.keyframes = 0
        self.dropped = 0
        self.first_keyframe = asyncio.Event()

    def push(self, frame: Frame) -> None:
        """On the event loop: queue a frame (called from the puller thread via call_soon_threadsafe)."""
        if self.readyState != "live":
            return
        if self._need_keyframe and not frame.keyframe:
            self.dropped += 1
            return
        self._need_keyframe = False
        if len(self._queue) >= QUEUE_FRAMES:
            self.dropped += len(self._queue)
            self._queue.clear()
            if not frame.keyframe:
                self.dropped += 1
                self._need_keyframe = True
                return
        self._queue.append(frame)
        self.frames += 1
        if frame.keyframe:
            self.keyframes += 1
            self.first_keyframe.set()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self) -> av.Packet:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        frame = self._queue.popleft()
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = frame.pts
        packet.time_base = self._time_base
        packet.is_keyframe = frame.keyframe
        return packet

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


# -- the puller thread ---------------------------------------------------------------------------


class NotH264(Exception):
    """The URL's stream has no H264 video."""


class NoKeyframe(Exception):
    """The stream opened but sent no keyframe in time."""


class StreamEnded(Exception):
    """The stream ended before its first keyframe."""


_puller_thread = threading.local()


class _InterruptingClock:
    """Stands in for the ``time`` module of ``av.container.core``, whose interrupt callback (set
    when ``av.open`` gets a timeout) asks ``time.monotonic()`` whether the open or the read in
    progress is over its limit. In a puller thread whose stop is set, each call reads a billion
    seconds later than the one before: FFmpeg's next interrupt check (every 100 ms while it waits on
    a socket) ends the open or read, even while a camera trickles bytes. Everywhere else it is
    ``time``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def monotonic() -> float:
        stop: threading.Event | None = getattr(_puller_thread, "stop", None)
        if stop is not None and stop.is_set():
            _puller_thread.jump = getattr(_puller_thread, "jump", 0.0) + 1e9
            return time.monotonic() + _puller_thread.jump
        return time.monotonic()


#: Whether PyAV's interrupt callback honours a stop (else a stop waits for the read timeout).
INTERRUPTIBLE = getattr(av.container.core, "time", None) is time
if INTERRUPTIBLE:
    av.container.core.time = _InterruptingClock()  # type: ignore[attr-defined]


def open_options(url: str) -> dict[str, str]:
    """FFmpeg's options for ``url``: RTSP over TCP with a socket timeout; for ``rtsps://`` the
    server's certificate verified (the system's CA bundle, ``SSL_CERT_FILE`` if set) against the
    URL's own host name, although the connection goes to the address pinned."""
    options = {"rtsp_transport": "tcp", "rtsp_flags": "prefer_tcp", "timeout": str(int(READ_TIMEOUT * 1e6))}
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() == "rtsps":
        paths = ssl.get_default_verify_paths()
        options.update({"tls_verify": "1", "verifyhost": parts.hostname or ""})
        ca_file = paths.cafile or paths.openssl_cafile
        if ca_file:
            options["ca_file"] = ca_file
    return options


class Puller:
    """One connection to the camera, in a thread of its own: open, then demux until the stream
    ends, a read times out, or :meth:`stop`. Frames reach ``deliver`` on the event loop."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, deliver: Callable[[Frame], None],
                 policy: AllowPolicy | None = None) -> None:
        self.url = url
        self.policy = policy or AllowPolicy()
        #: The URL with its host pinned to the address checked (set in the thread).
        self.pinned: str | None = None
        self._loop = loop
        self._deliver = deliver
        self._stop = threading.Event()
        self.opened: asyncio.Future[str] = loop.create_future()  # the codec's description
        self.ended: asyncio.Future[str] = loop.create_future()  # why it ended
        # Retrieved even when nobody waits for it any more (a stop while opening).
        self.opened.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._thread = threading.Thread(target=self._run, name="rtsp-pull", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end: within FFmpeg's next interrupt check (0.1 s) while it waits on
        the camera (:class:`_InterruptingClock`), or at its next packet."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread (tests); whether it ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _post(self, callback: Callable[..., Any], *args: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
            return True
        except RuntimeError:  # the loop is closed: the server is gone
            self._stop.set()
            return False

    @staticmethod
    def _settle(future: asyncio.Future[Any], value: Any = None, error: BaseException | None = None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def _run(self) -> None:
        _puller_thread.stop = self._stop
        try:
            # Resolved once, here, and every address checked; FFmpeg connects to the one pinned.
            self.pinned = pin(self.url, self.policy)
            if self._stop.is_set():
                raise ConnectionError("stopped")
            # FFmpeg's RTSP demuxer follows 3xx redirects and has no option against it (nor does
            # PyAV say where it ended up): see docs/architecture.md.
            container: Any = av.open(self.pinned, options=open_options(self.url),
                                     timeout=(OPEN_TIMEOUT, READ_TIMEOUT))
        except Exception as exc:  # refused, unreachable, unauthorised, timed out, not RTSP, not allowed
            self._post(self._settle, self.opened, None, exc)
            self._post(self._settle, self.ended, "failed")
            return
        reason = "camera_lost"
        try:
            video = next((s for s in container.streams.video if s.codec_context.name == "h264"), None)
            if video is None:
                found = ", ".join(s.codec_context.name for s in container.streams) or "nothing"
                self._post(self._settle, self.opened, None, NotH264(f"no H264 video (found {found})"))
                reason = "failed"
                return
            size = f"{video.codec_context.width}x{video.codec_context.height}"
            self._post(self._settle, self.opened, f"H264 {size}")
            self._demux(container, video)
            reason = "stopped" if self._stop.is_set() else "camera_lost"
        except Exception as exc:
            if not self._stop.is_set():
                logger.info("RTSP %s: %s", mask_url(self.url), _error_text(exc, self.url, self.pinned or self.url))
            reason = "stopped" if self._stop.is_set() else "camera_lost"
        finally:
            try:
                container.close()
            except Exception:
                pass
            self._post(self._settle, self.ended, reason)

    def _demux(self, container: Any, video: Any) -> None:
        units = AccessUnits(annex_b_parameter_sets(video.codec_context.extradata))
        base = video.time_base or VIDEO_TIME_BASE
        for packet in container.demux(video):
            if self._stop.is_set():
                return
            if packet.size == 0:  # the demuxer's end-of-stream flush
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            rtp = None if pts is None else int(pts * base * VIDEO_CLOCK)
            frame = units.add(bytes(packet), rtp)
            if frame is not None and not self._post(self._deliver, frame):
                return
        last = units.flush()
        if last is not None:
            self._post(self._deliver, last)


# -- sources -------------------------------------------------------------------------------------


@dataclass
class Pull:
    """One RTSP source being pulled: its row's facts and where it stands now."""

    id: int
    incident_id: int
    unit_path: str
    label: str
    url: str
    state: str = "connecting"
    next_attempt_at: dt.datetime | None = None
    live_since: dt.datetime | None = None
    #: One of ERRORS (the detail is in the log only).
    last_error: str | None = None
    attempts: int = 0
    puller: Puller | None = None
    footage_source_id: int | None = None
    publication: Publication | None = None
    task: asyncio.Task[None] | None = None
    stopping: bool = False
    #: Why it is being halted ("stopped" by a host, "server_stopped").
    stop_reason: str = "stopped"
    #: Why the publication ended by itself, when it did.
    end_reason: str = "camera_lost"
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pinned(self) -> str | None:
        return self.puller.pinned if self.puller is not None else None
    #: Set when the current connection should end (the publication ended by itself, a stop).
    drop: asyncio.Event = field(default_factory=asyncio.Event)


class RtspPulls:
    """Every RTSP source of the server: the API's operations and the pulling tasks."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], conference: Conference, archive: Archive,
                 clock: Callable[[], dt.datetime] = utcnow, policy: AllowPolicy | None = None) -> None:
        self.sessionmaker = sessionmaker
        #: Where sources may be pulled from (``rtsp_allow``).
        self.policy = policy or AllowPolicy()
        #: Sources being added (counted in the quotas until they are in ``pulls``): (incident, unit path).
        self._adding: list[tuple[int, str]] = []
        self.conference = conference
        self.archive = archive
        self.clock = clock
        self.pulls: dict[int, Pull] = {}
        self.backoff = (BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET_AFTER)
        conference.on_unpublished.append(self._unpublished)

    # -- scope ---------------------------------------------------------------------------------------

    @staticmethod
    def _host(who: Principal) -> None:
        require_host(who, "rtsp.no_right")

    _incident = staticmethod(incident_in_scope)

    def _json(self, row: RtspSource) -> dict[str, Any]:
        pull = self.pulls.get(row.id)
        state = pull.state if pull is not None else row.state
        if pull is None and state != "stopped":
            state = "connecting"  # about to be resumed
        return {
            "id": row.id, "incident_id": row.incident_id, "label": row.label, "url": mask_url(row.url),
            "state": state,
            "next_attempt_at": pull.next_attempt_at.isoformat() if pull and pull.next_attempt_at
            and state == "retrying" else None,
            "live_since": pull.live_since.isoformat() if pull and pull.live_since and state == "live" else None,
            "last_error": pull.last_error if pull else None,
            "attempts": pull.attempts if pull else 0,
            "footage_source_id": pull.footage_source_id if pull and state == "live" else None,
            "publication_id": pull.publication.id if pull and pull.publication and state == "live" else None,
            "created_at": as_utc(row.created_at).isoformat(),
            "stopped_at": as_utc(row.stopped_at).isoformat() if row.stopped_at else None,
        }

    # -- the API ---------------------------------------------------------------------------------------

    async def add(self, who: Principal, incident_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Start pulling ``data["url"]`` into the incident's footage room. BadUrl (400) for anything
        but an rtsp(s) URL with a host; Invalid (422) for a bad label."""
        self._host(who)
        url = check_url(data.get("url"))
        label = data.get("label", "")
        if not isinstance(label, str) or not label.strip() or len(label.strip()) > MAX_LABEL \
                or unsafe_reason(label, multiline=False):
            raise Invalid("rtsp.label", field="label", max=MAX_LABEL)
        self._quota(None, None)
        async with self.sessionmaker() as db:  # in scope (404) before the host's name is looked up
            await self._incident(db, who, incident_id)
        await self.admit(url)
        now = self.clock()
        reserved: tuple[int, str] | None = None
        try:
            async with self.sessionmaker.begin() as db:
                incident = await self._incident(db, who, incident_id)
                if incident.status in ("closed", "merged"):
                    raise Forbidden("footage.incident_closed")
                # Checked and reserved with no await between: two adds at once cannot both pass.
                self._quota(incident.id, incident.unit_path)
                reserved = (incident.id, incident.unit_path)
                self._adding.append(reserved)
                row = RtspSource(incident_id=incident.id, unit_path=incident.unit_path, label=label.strip(),
                                 url=url, state="connecting", created_by=who.id, created_at=now)
                db.add(row)
                await db.flush()
                DirectoryBase.audit(db, who, "add", "rtsp_source", row.id, incident.unit_path,
                                    incident_id=incident.id, label=row.label, url=mask_url(url))
            self._start(row)
        finally:
            if reserved is not None:
                self._adding.remove(reserved)
        return self._json(row)

    def _quota(self, incident_id: int | None, unit_path: str | None) -> None:
        """TooMany when another source would pass the server's, the incident's or the unit's cap."""
        live = [(p.incident_id, p.unit_path) for p in self.pulls.values() if not p.stopping] + self._adding
        if len(live) >= MAX_SOURCES:
            raise TooMany("rtsp.too_many", max=MAX_SOURCES)
        if incident_id is not None and sum(1 for i, _ in live if i == incident_id) >= MAX_PER_INCIDENT:
            raise TooMany("rtsp.too_many_incident", max=MAX_PER_INCIDENT)
        if unit_path is not None and sum(1 for _, u in live if u == unit_path) >= MAX_PER_UNIT:
            raise TooMany("rtsp.too_many_unit", max=MAX_PER_UNIT)

    async def admit(self, url: str) -> None:
        """NotAllowed (400) when the URL's host resolves now to an address, or its port is one,
        that ``rtsp_allow`` does not let the server reach. A name that does not resolve yet passes
        (each attempt resolves and checks again, in its thread, and connects to what it checked)."""
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname is not None
        port = url_port(parts)
        try:
            addresses = await asyncio.wait_for(asyncio.to_thread(resolve, parts.hostname, port), 5)
        except (OSError, TimeoutError, UnicodeError) as exc:
            logger.info("RTSP source host %r does not resolve now: %s", parts.hostname, exc)
            return
        if not addresses or not all(self.policy.allows(a, port) for a in addresses):
            raise NotAllowed("rtsp.not_allowed", field="url")

    async def sources(self, who: Principal, incident_id: int) -> list[dict[str, Any]]:
        self._host(who)
        async with self.sessionmaker() as db:
            await self._incident(db, who, incident_id)
            rows = (await db.execute(select(RtspSource).where(RtspSource.incident_id == incident_id)
                                     .order_by(RtspSource.id))).scalars()
            return [self._json(r) for r in rows]

    async def stop(self, who: Principal, source_id: int) -> dict[str, Any]:
        """Stop pulling: the live stream ends now and the source is not resumed."""
        self._host(who)
        async with self.sessionmaker.begin() as db:
            row = await db.get(RtspSource, source_id)
            if row is None or not who.covers(row.unit_path):
                raise NotFound("rtsp.not_found", id=source_id)
            if row.state != "stopped":
                row.state, row.stopped_at, row.stopped_by = "stopped", self.clock(), who.id
                DirectoryBase.audit(db, who, "stop", "rtsp_source", row.id, row.unit_path,
                                    incident_id=row.incident_id)
        pull = self.pulls.get(source_id)
        if pull is not None:
            await self._halt(pull, "stopped")
        async with self.sessionmaker() as db:
            row = await db.get(RtspSource, source_id)
            assert row is not None
            return self._json(row)

    # -- lifetime --------------------------------------------------------------------------------------

    async def resume(self) -> list[int]:
        """At start: pull again every source that was not stopped (the server stopped or crashed)."""
        async with self.sessionmaker() as db:
            rows = list((await db.execute(select(RtspSource).where(RtspSource.state != "stopped")
                                          .order_by(RtspSource.id))).scalars())
        for row in rows:
            if row.id not in self.pulls:
                self._start(row)
        if rows:
            logger.info("RTSP sources %s resumed", [r.id for r in rows])
        return [r.id for r in rows]

    async def incident_ended(self, incident_id: int) -> None:
        """The incident closed or merged (an ``Incidents.on_ended`` hook): its sources stop now
        (reason ``incident_closed``), not at the next incident check."""
        pulls = [p for p in self.pulls.values() if p.incident_id == incident_id and not p.stopping]
        for pull in pulls:
            pull.stopping, pull.stop_reason = True, "incident_closed"
        async with self.sessionmaker.begin() as db:
            rows = (await db.execute(select(RtspSource).where(RtspSource.incident_id == incident_id,
                                                              RtspSource.state != "stopped"))).scalars()
            for row in rows:
                row.state, row.stopped_at = "stopped", self.clock()
        await asyncio.gather(*(self._halt(p, "incident_closed") for p in pulls), return_exceptions=True)
        if pulls:
            logger.info("RTSP sources %s stopped: their incident %s closed", [p.id for p in pulls], incident_id)

    async def close(self) -> None:
        """Server stop: every pull ends (its recording closed) but stays due to resume at the next start."""
        await asyncio.gather(*(self._halt(p, "server_stopped") for p in list(self.pulls.values())),
                             return_exceptions=True)

    def _start(self, row: RtspSource) -> None:
        pull = Pull(row.id, row.incident_id, row.unit_path, row.label, row.url)
        self.pulls[row.id] = pull
        pull.task = asyncio.ensure_future(self._run(pull))

    async def _halt(self, pull: Pull, reason: str) -> None:
        pull.stopping = True
        pull.stop_reason = reason
        pull.drop.set()
        pull.wake.set()
        if pull.task is not None:
            await asyncio.gather(pull.task, return_exceptions=True)
        if self.pulls.get(pull.id) is pull:
            del self.pulls[pull.id]

    async def _set_state(self, pull: Pull, state: str) -> None:
        pull.state = state
        if pull.stopping:
            return
        async with self.sessionmaker.begin() as db:
            row = await db.get(RtspSource, pull.id)
            if row is not None and row.state != "stopped":
                row.state = state

    async def _run(self, pull: Pull) -> None:
        first, most, reset_after = self.backoff
        delay = first
        masked = mask_url(pull.url)
        while not pull.stopping:
            if await self._incident_over(pull):
                break
            pull.attempts += 1
            await self._set_state(pull, "connecting")
            live_for = 0.0
            try:
                live_for = await self._connect(pull)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                pull.last_error = error_kind(exc)
                logger.info("RTSP source %s (%s): attempt %d failed (%s): %s", pull.id, masked, pull.attempts,
                            pull.last_error, _error_text(exc, pull.url, pull.pinned or pull.url))
            if pull.stopping:
                break
            if live_for >= reset_after:
                delay = first
            pull.next_attempt_at = self.clock() + dt.timedelta(seconds=delay)
            await self._set_state(pull, "retrying")
            pull.wake.clear()
            try:
                await asyncio.wait_for(pull.wake.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, most)
        pull.state = "stopped"
        pull.next_attempt_at = None

    async def _incident_over(self, pull: Pull) -> bool:
        """A closed or merged incident takes no more footage: the source stops for good."""
        async with self.sessionmaker.begin() as db:
            incident = await db.get(Incident, pull.incident_id)
            if incident is not None and incident.status not in ("closed", "merged"):
                return False
            row = await db.get(RtspSource, pull.id)
            if row is not None and row.state != "stopped":
                row.state, row.stopped_at = "stopped", self.clock()
        logger.info("RTSP source %s stopped: its incident %s is closed", pull.id, pull.incident_id)
        pull.stopping = True
        if self.pulls.get(pull.id) is pull:
            del self.pulls[pull.id]
        return True

    async def _connect(self, pull: Pull) -> float:
        """One connection: open, publish and archive once the first keyframe is in, forward until
        the camera goes; returns how many seconds it was live (0 if it never was)."""
        loop = asyncio.get_running_loop()
        track = PacketTrack()
        puller = Puller(pull.url, loop, track.push, self.policy)
        pull.puller = puller
        if not pull.stopping:
            pull.drop.clear()
        puller.start()
        try:
            stop_wait = asyncio.ensure_future(pull.drop.wait())
            try:
                opening: list[asyncio.Future[Any]] = [puller.opened, stop_wait]
                await asyncio.wait(opening, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop_wait.cancel()
            if pull.stopping:
                return 0.0
            description = await puller.opened
            waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(track.first_keyframe.wait()),
                                                asyncio.ensure_future(pull.drop.wait())]
            try:
                await asyncio.wait([*waits, puller.ended], timeout=FIRST_KEYFRAME_TIMEOUT,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            if pull.stopping:
                return 0.0
            if not track.first_keyframe.is_set():
                if puller.ended.done():
                    raise StreamEnded("the stream ended before its first keyframe")
                raise NoKeyframe(f"the camera sent no keyframe in {FIRST_KEYFRAME_TIMEOUT:.0f} s")
            return await self._live(pull, puller, track, description)
        finally:
            puller.stop()
            track.stop()

    async def _live(self, pull: Pull, puller: Puller, track: PacketTrack, description: str) -> float:
        await asyncio.to_thread(self.archive.check_space)
        room_name = footage_room(pull.incident_id)
        source_id = await self.archive.new_source(pull.incident_id, "rtsp", pull.label, room_name)
        room = self.conference.room(room_name)
        participant = room.join(pull.label, lambda message: None,
                                identity={"kind": "rtsp", "rtsp_source_id": pull.id},
                                tag=f"footage_source:{source_id}", shown={"footage_source_id": source_id})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        reason = "failed"
        started_at = self.clock()
        live_at: float | None = None
        try:
            publication = await self._publish(pc, track, participant, pull.label)
            pull.publication = publication
            await self.archive.start(publication, source_id, pull.incident_id)
            async with self.sessionmaker.begin() as db:
                db.add(IncidentEvent(incident_id=pull.incident_id, at=started_at, kind="footage_started",
                                     actor=pull.label, detail={
                                         "source_id": source_id, "source_kind": "rtsp", "rtsp_source_id": pull.id,
                                         "video": publication.codec_name("video"), "audio": None}))
            pull.footage_source_id, pull.live_since, pull.last_error = source_id, started_at, None
            live_at = time.monotonic()
            await self._set_state(pull, "live")
            logger.info("RTSP source %s (%s) live for incident %s as footage source %s: %s", pull.id,
                        mask_url(pull.url), pull.incident_id, source_id, description)
            drop: asyncio.Future[Any] = asyncio.ensure_future(pull.drop.wait())
            try:
                ending: list[asyncio.Future[Any]] = [drop, puller.ended]
                while not (await asyncio.wait(ending, timeout=INCIDENT_CHECK,
                                              return_when=asyncio.FIRST_COMPLETED))[0]:
                    if await self._incident_over(pull):
                        pull.stop_reason = "incident_closed"
                        break
            finally:
                drop.cancel()
            if pull.stopping:
                reason = pull.stop_reason
            elif puller.ended.done():
                reason = "camera_lost"
            else:
                reason = pull.end_reason
            if reason == "camera_lost":
                pull.last_error = "ended"
            return time.monotonic() - live_at
        finally:
            pull.publication = None
            pull.footage_source_id = None
            pull.live_since = None
            puller.stop()
            track.stop()
            await self._end(pull, source_id, participant, pc, reason, started_at, live_at is not None)

    async def _publish(self, pc: RTCPeerConnection, track: PacketTrack, participant: Participant,
                       label: str) -> Publication:
        """Publish ``track`` into the participant's room from a peer connection in this process."""
        transceiver = pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(codec_preferences("video", "H264"))
        await pc.setLocalDescription(await pc.createOffer())
        offer = parse_offer(pc.localDescription.sdp, "publish")
        publication, answer = await participant.room.publish(participant, offer, label, "H264")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        return publication

    async def _end(self, pull: Pull, source_id: int, participant: Participant, pc: RTCPeerConnection,
                   reason: str, started_at: dt.datetime, was_live: bool) -> None:
        try:
            await self.archive.end_source(source_id, reason)
        except Exception:
            logger.exception("RTSP source %s: closing footage source %s failed", pull.id, source_id)
        room = participant.room
        await room.leave(participant, CloseReason.LEFT)
        self.conference.forget_if_empty(room)
        await pc.close()
        if was_live:
            now = self.clock()
            async with self.sessionmaker.begin() as db:
                db.add(IncidentEvent(incident_id=pull.incident_id, at=now, kind="footage_stopped",
                                     actor=pull.label, detail={
                                         "source_id": source_id, "source_kind": "rtsp", "rtsp_source_id": pull.id,
                                         "reason": reason, "seconds": round((now - started_at).total_seconds(), 1)}))
        logger.info("RTSP source %s: footage source %s ended (%s)", pull.id, source_id, reason)

    def _unpublished(self, publication: Publication, reason: CloseReason) -> None:
        """A pull's publication ended by itself (its media stopped): end the connection and retry."""
        for pull in self.pulls.values():
            if pull.publication is publication and not pull.stopping:
                pull.end_reason = "media_timeout" if reason == CloseReason.MEDIA_TIMEOUT else "camera_lost"
                pull.drop.set()

