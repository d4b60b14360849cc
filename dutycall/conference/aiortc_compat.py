"""Everything dutycall needs from aiortc/aioice internals, in one place.

Written for aiortc 1.16 and aioice 0.13 (pinned in pyproject.toml). If either is
upgraded, re-read the functions this module patches or calls:

- ``aiortc.rtcrtpreceiver.get_decoder``: looked up by the receiver's decoder thread
  each time the codec changes. We wrap it so that receivers of peer connections
  marked with :func:`mark_passthrough` get a decoder that turns each reassembled
  jitter-buffer frame into an ``av.Packet`` instead of decoding it. The remote
  track then yields encoded packets, which ``RTCRtpSender`` packetizes with
  ``encoder.pack()`` without re-encoding. Unmarked connections decode as usual.
- ``RTCRtpReceiver.__decoder_queue`` (``_RTCRtpReceiver__decoder_queue``): the
  ``queue.Queue`` through which ``_handle_rtp_packet`` hands each reassembled frame to
  the decoder thread, which decodes it and posts the result back to the event loop with
  ``run_coroutine_threadsafe``. For marked connections :class:`InlineDecoderQueue`
  replaces it before the receiver starts: a passthrough "decode" is a few attribute
  sets, so it is done right there on the event loop and the two thread hops per frame
  disappear (with 200 idle consoles connected the server went from 0.50 to 0.31 core in
  ``bench/rollcall.py``). The thread still starts and only waits for the stop sentinel.
- ``RTCRtpTransceiver._codecs``: the negotiated codecs, set during
  ``setRemoteDescription`` (as deep copies, so marking them is per connection).
- ``RTCRtpSender._send_keyframe``: called when a subscriber sends PLI/FIR.
- ``RTCRtpReceiver._send_rtcp_pli``: sends PLI to the publisher.
- ``RTCDtlsTransport._handle_rtp_data``: called with every decrypted RTP packet.
  :func:`count_frames_only` replaces it on benchmark load clients' connections.
- ``RTCRtpReceiver.__jitter_buffer`` (``_RTCRtpReceiver__jitter_buffer``): replaced on
  marked connections by :mod:`.jitter`'s buffers, which release a video frame on its marker
  bit and audio packets at once (the stock one waits for the next frame: +1 frame a hop).
- ``aiortc.rate.RateCounter``: the incoming-bitrate counter of the REMB estimator that
  every video receiver runs. Its stock version walks one 1 ms bucket per elapsed
  millisecond in Python, so each stream costs about 1,000 loop steps a second however
  few packets it carries: with 150 idle consoles at 5 fps that was a fifth of the
  server's event loop. :class:`RateCounter` keeps the same arithmetic per packet.
- ``RTCRtpSender._run_rtp``, ``__rtp_history`` and the counters its RTCP reports read
  (``__ntp_timestamp``, ``__rtp_timestamp``, ``__octet_count``, ``__packet_count``), and the send
  path below it (``RTCDtlsTransport._send_rtp`` → ``RTCIceTransport._send`` → aioice's
  ``Connection.sendto`` → ``StunProtocol.send_data``): :func:`forward_packets` replaces the
  sender's loop on the server's subscriber connections with one that serializes the RTP header
  once per frame, packetizes VP8 itself and hands each SRTP-protected packet straight to the
  nominated pair's datagram transport (its ``_sock`` and ``_buffer``: a frame's packets leave in one
  GSO ``sendmsg``), without a coroutine per packet (see the function).
- ``aioice.ice.get_host_addresses``: aioice never offers loopback addresses; the
  server needs to choose the addresses it advertises.
- ``aiortc.rtcdtlstransport.RTCCertificate._create_ssl_context``: builds each connection's
  DTLS context with a cipher list of ECDHE-ECDSA suites only. In DTLS 1.2 a suite names the
  *server's* certificate type, so when aiortc is the DTLS client (it answers an offer's
  ``setup:actpass`` with ``setup:active``) a server with an RSA certificate finds "no shared
  cipher" and the handshake fails. GStreamer's webrtcbin (1.22) is such a peer: a WHIP encoder
  built on it could not publish. :func:`_create_ssl_context` adds the ECDHE-RSA equivalents
  after the ECDSA ones; a peer with an ECDSA certificate (browsers, aiortc) still gets the
  suite it got before, and aiortc's own certificate stays ECDSA.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import fractions
import functools
import logging
import os
import queue
import random
import socket
import struct
import sys
import time
import traceback
import weakref
from collections.abc import Callable
from typing import Any

import aioice
import aioice.ice
import aiortc
import av
from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    rate,
    rtcdtlstransport,
    rtcrtpreceiver,
    rtcrtpsender,
)
from aiortc.codecs import get_encoder
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket

from .jitter import ImmediateAudioBuffer, MarkerJitterBuffer

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


class InlineDecoderQueue:
    """Stands in for a marked receiver's decoder queue (see the module docstring).

    ``put`` is called on the event loop with ``(codec, frame)``, or ``None`` to stop;
    ``get`` is called by the receiver's decoder thread and returns only that ``None``.
    """

    def __init__(self, output: asyncio.Queue[Any]) -> None:
        self._output = output
        self._stop: queue.Queue[None] = queue.Queue()
        self._decoder: Decoder | None = None
        self._codec_name: str | None = None

    def put(self, task: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if task is None:
            self._stop.put(None)  # the thread exits and ends the track
            return
        codec, encoded_frame = task
        if codec.name != self._codec_name:
            self._decoder = _get_decoder(codec)
            self._codec_name = codec.name
        assert self._decoder is not None
        for frame in self._decoder.decode(encoded_frame):
            self._output.put_nowait(frame)

    def get(self) -> None:
        return self._stop.get()


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


#: aiortc's own counter, kept for the test that compares the two.
STOCK_RATE_COUNTER = rate.RateCounter


class RateCounter:
    """Drop-in for ``aiortc.rate.RateCounter``: the same rates, at a cost per packet, not per ms.

    The stock counter sums values into 1 ms buckets over a ``window_size`` ms window and
    erases the buckets that fall out of it one millisecond at a time. Here each ``add`` is
    one (ms, value) entry and erasing pops the entries older than the window.
    """

    def __init__(self, window_size: int, scale: int = 8000) -> None:
        self._window_size = window_size
        self._scale = scale
        self.reset()

    def reset(self) -> None:
        self._entries: collections.deque[tuple[int, int]] = collections.deque()
        self._origin_ms: int | None = None
        self._count = 0
        self._value = 0

    def add(self, value: int, now_ms: int) -> None:
        if self._origin_ms is None:
            self._origin_ms = now_ms
        else:
            self._erase_old(now_ms)
        self._entries.append((now_ms, value))
        self._count += 1
        self._value += value

    def rate(self, now_ms: int) -> int | None:
        if self._origin_ms is not None:
            self._erase_old(now_ms)
            active_window_size = now_ms - self._origin_ms + 1
            if self._count > 0 and active_window_size > 1:
                return round(self._scale * self._value / active_window_size)
        return None

    def _erase_old(self, now_ms: int) -> None:
        assert self._origin_ms is not None
        new_origin_ms = now_ms - self._window_size + 1
        if self._origin_ms >= new_origin_ms:
            return
        self._origin_ms = new_origin_ms
        entries = self._entries
        while entries and entries[0][0] < new_origin_ms:
            _, value = entries.popleft()
            self._count -= 1
            self._value -= value


#: DTLS 1.2 suites, aiortc's ECDSA ones first, then the same with RSA for peers with RSA certificates.
DTLS_CIPHERS = (b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:"
                b"ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:"
                b"ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA")
_stock_create_ssl_context = rtcdtlstransport.RTCCertificate._create_ssl_context


def _create_ssl_context(self: rtcdtlstransport.RTCCertificate, srtp_profiles: list[Any]) -> Any:
    """aiortc's DTLS context, accepting a DTLS server with an RSA certificate (module docstring)."""
    ctx = _stock_create_ssl_context(self, srtp_profiles)
    ctx.set_cipher_list(DTLS_CIPHERS)
    return ctx


def install() -> None:
    """Install the patches. Idempotent; harmless to connections that are not marked."""
    rtcrtpreceiver.get_decoder = _get_decoder
    aioice.ice.get_host_addresses = _get_host_addresses
    rate.RateCounter = RateCounter  # type: ignore[misc, assignment]
    rtcdtlstransport.RTCCertificate._create_ssl_context = _create_ssl_context  # type: ignore[method-assign]


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
        receiver = transceiver.receiver
        receiver._RTCRtpReceiver__decoder_queue = InlineDecoderQueue(receiver._track._queue)  # type: ignore[attr-defined, union-attr]
        # Hand each frame on when it is complete, not when the next one starts (jitter.py).
        receiver._RTCRtpReceiver__jitter_buffer = (  # type: ignore[attr-defined]
            MarkerJitterBuffer() if transceiver.kind == "video" else ImmediateAudioBuffer())


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The first (sending) codec negotiated on a transceiver, RTX excluded."""
    for codec in transceiver._codecs:
        if codec.name.lower() != "rtx":
            return codec
    return None


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` instead of the encoder hook when the remote peer sends PLI or FIR."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


#: ``DUTYCALL_STOCK_SENDER=1`` leaves aiortc's own sender loop in place (to compare the two).
STOCK_SENDER = os.environ.get("DUTYCALL_STOCK_SENDER") == "1"
#: Seconds from the NTP epoch (1900) to the Unix epoch (1970).
_NTP_UNIX_OFFSET = 2208988800
#: aiortc's VP8 packet size (``aiortc.codecs.vpx.PACKET_MAX``): payload descriptor and frame bytes.
VP8_PACKET_MAX = 1300
_VP8_CHUNK = VP8_PACKET_MAX - 4
_SENDER = "_RTCRtpSender__"
_DTLS = "_RTCDtlsTransport__"


def _ntp_now() -> int:
    """``aiortc.clock.current_ntp_time()`` without building a datetime."""
    now = time.time() + _NTP_UNIX_OFFSET
    seconds = int(now)
    return (seconds << 32) | int((now - seconds) * 0x100000000)


def vp8_payloads(frame: Any, picture_id: int) -> list[bytes]:
    """The RTP payloads aiortc's ``Vp8Encoder`` makes of one encoded frame: each a 4-byte payload
    descriptor (X bit, 15-bit picture id, S bit on the first) and up to 1296 bytes of the frame."""
    pid = 0x8000 | picture_id
    first = bytes((0x90, 0x80, pid >> 8, pid & 0xFF))
    rest = bytes((0x80, 0x80, pid >> 8, pid & 0xFF))
    return [(rest if pos else first) + frame[pos:pos + _VP8_CHUNK] for pos in range(0, len(frame), _VP8_CHUNK)]


#: Linux's UDP generic segmentation offload (``UDP_SEGMENT``, Linux 4.18): one ``sendmsg`` carries
#: several datagrams of one size (the last may be shorter) to one address; the kernel cuts them.
#: ``DUTYCALL_UDP_GSO=0`` turns it off.
UDP_SEGMENT = 103
GSO_MAX_SEGMENTS = 32
#: Errors that say this kernel cannot segment at all (then: one datagram per send from now on).
_GSO_UNSUPPORTED = {errno.ENOPROTOOPT, errno.EOPNOTSUPP}
#: Errors that say one path cannot (its MTU is under the segment size, its device has no checksum
#: offload, IPsec): that socket sends one datagram at a time from then on, the others go on.
_GSO_REFUSED_HERE = {errno.EINVAL, errno.EIO, errno.EMSGSIZE}
_no_gso_sockets: weakref.WeakSet[Any] = weakref.WeakSet()


def _kernel_segments() -> bool:
    """Whether this kernel knows ``UDP_SEGMENT``. A kernel before 4.18 does not refuse the control
    message, it ignores it and sends the whole batch as one fragmented datagram (which a receiver
    rejects as one bad SRTP packet): so ask with the socket option, once, before using it."""
    if sys.platform != "linux" or os.environ.get("DUTYCALL_UDP_GSO", "1") == "0":
        return False
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1200)
            return int(probe.getsockopt(socket.SOL_UDP, UDP_SEGMENT)) == 1200
    except OSError:
        return False


_gso = _kernel_segments()


def send_datagrams(transport: asyncio.DatagramTransport, datagrams: list[bytes], addr: Any) -> None:
    """Send ``datagrams`` to ``addr`` in order through ``transport`` (asyncio's UDP transport).

    Runs of equal-sized datagrams (a frame's RTP packets after SRTP: all the same size but the
    last) go out as one GSO ``sendmsg`` each: one trip through the network stack instead of one per
    packet, which was most of the fan-out's remaining cost. Whatever cannot go so (GSO off, the
    transport has a backlog to keep the order behind, the socket is full) goes through
    ``transport.sendto``, which queues and reports errors as usual.
    """
    global _gso
    count, i = len(datagrams), 0
    sock = getattr(transport, "_sock", None)
    if _gso and count > 1 and sock is not None and not getattr(transport, "_buffer", True) \
            and not transport.is_closing() and sock not in _no_gso_sockets:
        while i < count:
            size, j = len(datagrams[i]), i + 1
            while j < count and j - i < GSO_MAX_SEGMENTS and len(datagrams[j]) == size:
                j += 1
            if j < count and j - i < GSO_MAX_SEGMENTS and len(datagrams[j]) < size:
                j += 1  # a shorter datagram may close a segmented send
            if j - i == 1:
                transport.sendto(datagrams[i], addr)
                i = j
                if transport._buffer:  # type: ignore[attr-defined]
                    break  # it was queued: the rest must queue behind it, not overtake it
                continue
            try:
                sock.sendmsg([b"".join(datagrams[i:j])], [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))],
                             0, addr)
            except (BlockingIOError, InterruptedError):
                break  # the socket is full: the transport queues the rest
            except OSError as exc:
                if exc.errno in _GSO_UNSUPPORTED:
                    _gso = False
                    logger.warning("UDP segmentation offload refused (%s): one datagram per send from now on", exc)
                elif exc.errno in _GSO_REFUSED_HERE:
                    _no_gso_sockets.add(sock)
                    logger.info("UDP segmentation offload refused to %s (%s): one datagram per send there", addr, exc)
                break
            i = j
    for datagram in datagrams[i:]:
        transport.sendto(datagram, addr)


class HeaderTemplate:
    """A sender's RTP header (its payload type, SSRC, MID and abs-send-time extensions) serialized
    once; each frame patches the timestamp and the abs-send-time in a copy. The bytes are what
    ``RtpPacket.serialize`` makes (marker and sequence number are patched per packet after)."""

    __slots__ = ("template", "send_time_at")

    def __init__(self, payload_type: int, ssrc: int, mid: str | None, extensions_map: Any) -> None:
        def serialized(send_time: int) -> bytes:
            header = RtpPacket(payload_type=payload_type, timestamp=0)
            header.ssrc = ssrc
            header.extensions.abs_send_time = send_time
            header.extensions.mid = mid
            return bytes(header.serialize(extensions_map))

        self.template = serialized(0)
        other = serialized(0xFFFFFF)
        moved = [i for i, (a, b) in enumerate(zip(self.template, other, strict=True)) if a != b]
        # Where the 3 bytes of abs-send-time are (None: not negotiated, nothing to patch).
        self.send_time_at: int | None = moved[0] if moved else None
        if moved and moved != list(range(moved[0], moved[0] + 3)):
            raise ValueError("abs-send-time is not 3 contiguous bytes")

    def frame(self, timestamp: int, ntp: int) -> bytearray:
        """The header of one frame's packets (marker clear, sequence number 0)."""
        head = bytearray(self.template)
        head[4:8] = timestamp.to_bytes(4, "big")
        if self.send_time_at is not None:
            at = self.send_time_at
            head[at:at + 3] = ((ntp >> 14) & 0x00FFFFFF).to_bytes(3, "big")
        return head


class _SentPackets(dict):
    """A sender's ``__rtp_history`` holding serialized packets, parsed only when a NACK asks for one
    (``RTCRtpSender._retransmit`` calls ``get``)."""

    def __init__(self, extensions_map: Any) -> None:
        super().__init__()
        self._map = extensions_map

    def get(self, key: Any, default: Any = None) -> Any:
        data = super().get(key)
        return default if data is None else RtpPacket.parse(data, self._map)


def forward_packets(sender: RTCRtpSender) -> None:
    """Send the encoded ``av.Packet``s the sender's track yields with :func:`_forward_packets`
    instead of ``RTCRtpSender._run_rtp``. Call before the sender starts (before the answer is set).

    Per frame, aiortc's loop built an ``RtpPacket`` per RTP packet, serialized its header
    extensions, read the clock through a ``datetime`` twice, and awaited three coroutines down to
    the datagram socket; at 150 subscribers that was a large part of the server's CPU. This loop
    sends the same bytes: the header is serialized once per frame and patched per packet (marker,
    sequence number), VP8 is packetized exactly as ``Vp8Encoder.pack`` does, and a frame's
    SRTP-protected packets go straight to the nominated candidate pair's UDP socket together
    (:func:`send_datagrams`; a TURN relay's transport has no socket of its own, so its packets go
    through its ``sendto``; a pair that is not UDP goes through aiortc's path).
    Retransmissions (NACK) and RTCP sender reports work as before.
    """
    if STOCK_SENDER:
        return
    sender._run_rtp = functools.partial(_forward_packets, sender)  # type: ignore[method-assign]


async def _forward_packets(sender: RTCRtpSender, codec: RTCRtpCodecParameters) -> None:
    getattr(sender, _SENDER + "rtp_started").set()
    extensions_map = getattr(sender, _SENDER + "rtp_header_extensions_map")
    history = _SentPackets(extensions_map)
    setattr(sender, _SENDER + "rtp_history", history)
    mid = getattr(sender, _SENDER + "mid")
    vp8 = codec.name.upper() == "VP8"
    encoder: Any = None
    picture_id = random.randint(0, 0x7FFF)
    sequence = rtcrtpsender.random_sequence_number()  # aiortc's: the lower half, so SRTP's rollover is right
    origin = random.randint(0, 0xFFFFFFFF)
    octets = packets = 0
    headers: HeaderTemplate | None = None
    try:
        while True:
            track = getattr(sender, _SENDER + "track")
            if track is None:
                await asyncio.sleep(0.02)
                continue
            data = await track.recv()
            if not sender._enabled:
                continue
            if not isinstance(data, av.Packet):
                raise TypeError(f"forward_packets: the track yields {type(data).__name__}, not av.Packet")
            if vp8:
                payloads = vp8_payloads(memoryview(data), picture_id)
                picture_id = (picture_id + 1) & 0x7FFF
                pts = data.pts or 0
                if data.time_base is not None and data.time_base != VIDEO_TIME_BASE:
                    pts = int(pts * data.time_base * 90000)
            else:
                if encoder is None:
                    encoder = get_encoder(codec)
                payloads, pts = encoder.pack(data)
            if not payloads:
                continue
            timestamp = (origin + pts) & 0xFFFFFFFF
            ntp = _ntp_now()
            if headers is None:
                headers = HeaderTemplate(codec.payloadType or 0, sender._ssrc, mid, extensions_map)
            template = headers.frame(timestamp, ntp)
            dtls = sender.transport  # read per frame, as aiortc does per packet
            if dtls._state != DtlsState.CONNECTED:
                raise ConnectionError("Cannot send encrypted RTP, not connected")
            pair = dtls.transport._connection._nominated.get(1)
            udp: asyncio.DatagramTransport | None = None
            if pair is not None and type(pair.protocol) is aioice.ice.StunProtocol:
                udp, remote = pair.protocol.transport, pair.remote_addr
            protect = dtls._tx_srtp.protect
            last = len(payloads) - 1
            wire_bytes = 0
            wires = []
            for i, payload in enumerate(payloads):
                head = bytearray(template)
                if i == last:
                    head[1] |= 0x80
                head[2] = sequence >> 8
                head[3] = sequence & 0xFF
                head += payload
                plain = bytes(head)
                history[sequence % RTP_HISTORY_SIZE] = plain
                wire = protect(plain)
                wires.append(wire)
                wire_bytes += len(wire)
                sequence = (sequence + 1) & 0xFFFF
                octets += len(payload)
            if udp is not None:
                send_datagrams(udp, wires, remote)
            else:
                for wire in wires:
                    await dtls.transport._send(wire)
            packets += len(payloads)
            # What aiortc's loop keeps for RTCP sender reports and getStats().
            setattr(sender, _SENDER + "ntp_timestamp", ntp)
            setattr(sender, _SENDER + "rtp_timestamp", timestamp)
            setattr(sender, _SENDER + "octet_count", octets)
            setattr(sender, _SENDER + "packet_count", packets)
            setattr(dtls, _DTLS + "tx_bytes", getattr(dtls, _DTLS + "tx_bytes") + wire_bytes)
            setattr(dtls, _DTLS + "tx_packets", getattr(dtls, _DTLS + "tx_packets") + len(payloads))
    except (asyncio.CancelledError, ConnectionError, MediaStreamError):
        pass
    except Exception:
        logger.warning("sender stopped: %s", traceback.format_exc())
    track = getattr(sender, _SENDER + "track")
    if track is not None:
        track.stop()
        setattr(sender, _SENDER + "track", None)
    setattr(sender, _SENDER + "encoder", None)
    getattr(sender, _SENDER + "rtp_exited").set()


async def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Send a Picture Loss Indication to every source the receiver heard recently."""
    sources = receiver.getSynchronizationSources()
    for source in sources:
        await receiver._send_rtcp_pli(source.source)
    return bool(sources)


def count_frames_only(pc: RTCPeerConnection, on_frame: Callable[[int], None]) -> None:
    """Make ``pc`` only count the video frames it receives: call ``on_frame(rtp_timestamp)``
    for each RTP packet with the marker bit (the last packet of a frame) and keep nothing.

    For benchmark load clients that must receive many streams on a shared machine: ICE,
    DTLS, SRTP and RTCP still run, but RTP parsing, the jitter buffer, the decoder thread
    and the bitrate estimator are skipped (together they cost more than the rest of the
    receive path). The connection's tracks then never yield a frame. Call once the
    connection is set up (its transports exist).
    """

    def handle(data: bytes) -> None:
        if len(data) >= 12 and data[1] & 0x80:
            on_frame(int.from_bytes(data[4:8], "big"))

    read_rtp_only(pc, handle)


def read_rtp_only(pc: RTCPeerConnection, on_packet: Callable[[bytes], None]) -> None:
    """Hand every decrypted RTP packet ``pc`` receives, as bytes, to ``on_packet`` and nothing
    else (see :func:`count_frames_only`; for load clients that read what the server sent)."""

    async def handle(data: bytes, arrival_time_ms: int) -> None:
        on_packet(data)

    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport is not None:
            transport._handle_rtp_data = handle  # type: ignore[method-assign]

install()


# -- counters for /metrics (dutycall/conference/metrics.py) ------------------------------------------
# ``RTCRtpReceiver.__remote_streams`` (ssrc → ``StreamStatistics``, RTX streams included) and
# ``RTCRtpSender.__packet_count`` are what their ``getStats()`` reports; read here without awaiting,
# so a scrape walks every connection in one synchronous pass.


def rtp_packets_received(receiver: RTCRtpReceiver) -> int:
    """RTP packets ``receiver`` has received, over every source it heard (0 before it starts)."""
    streams = getattr(receiver, "_RTCRtpReceiver__remote_streams", None) or {}
    return sum(int(getattr(stream, "packets_received", 0)) for stream in tuple(streams.values()))


def rtp_packets_sent(sender: RTCRtpSender) -> int:
    """RTP packets ``sender`` has sent (retransmissions excluded, as in its ``getStats()``)."""
    return int(getattr(sender, "_RTCRtpSender__packet_count", 0))
