"""The receive edge: read every UDP socket dry, hand media past STUN parsing, note arrival.

Written for aioice 0.13 (pinned; see ``aiortc_compat``). Three patches on aioice's
``StunProtocol``, the ``asyncio.DatagramProtocol`` behind every ICE socket:

- **Read dry.** asyncio's datagram transport reads *one* datagram per readiness event, so
  a busy event loop (a fan-out to 150 subscribers) reads a publisher's socket once per loop
  iteration while the publisher sends several packets per frame: the backlog builds in the
  kernel, *before* the fan-out, where no queue of ours can drop stale media, and the
  kernel's buffer overflows silently. Each readiness event now reads up to
  :data:`READ_BATCH` datagrams, and sockets ask for a larger receive buffer. Ingress comes
  before egress: what is read is queued for the DTLS/SRTP task, and what cannot be sent in
  time is dropped at the subscribers' queues (``forwarding.py``), where it is cheap.
- **Demultiplex by the first byte** (RFC 7983): 128–191 is RTP/RTCP and 20–63 DTLS; only
  the rest can be STUN. aioice parses every datagram as STUN first and catches the
  ValueError, an exception per media packet.
- **Note when media arrived.** Each connection remembers the monotonic time an RTP (not
  RTCP) packet was last *read from its socket*. The publication watchdog judges that, not
  when the server got round to processing the packet, so a server slowed by CPU
  contention (reading its own backlog late) never removes a publication whose publisher
  is sending normally.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from aioice import ice
from aiortc import RTCPeerConnection

logger = logging.getLogger(__name__)

#: Datagrams read per readiness event at most (then other sockets get their turn).
READ_BATCH = 64
#: Receive buffer asked for each ICE socket (the kernel caps it at net.core.rmem_max).
RECEIVE_BUFFER = 1 << 20
_MEDIA_AT = "_dutycall_media_at"

_stock_connection_made = ice.StunProtocol.connection_made
_stock_datagram_received = ice.StunProtocol.datagram_received


def _read_dry(transport: Any) -> None:
    """``_SelectorDatagramTransport._read_ready`` reading up to READ_BATCH datagrams."""
    sock, protocol, max_size = transport._sock, transport._protocol, transport.max_size
    for _ in range(READ_BATCH):
        if transport._conn_lost:
            return
        try:
            data, addr = sock.recvfrom(max_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            protocol.error_received(exc)
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # as asyncio's own transport does
            transport._fatal_error(exc, "Fatal read error on datagram transport")
            return
        protocol.datagram_received(data, addr)


def _read_dry_instead(transport: Any) -> None:
    """Make the event loop call :func:`_read_dry` when the socket is readable (replacing the
    transport's reader, which asyncio adds right after ``connection_made``)."""
    if not transport._conn_lost and not transport.is_closing():
        transport._loop._add_reader(transport._sock_fd, _read_dry, transport)


def _connection_made(self: ice.StunProtocol, transport: asyncio.BaseTransport) -> None:
    _stock_connection_made(self, transport)
    if hasattr(transport, "_sock_fd") and hasattr(transport, "_conn_lost"):
        # asyncio's transport calls connection_made, then adds its reader: both with call_soon,
        # so this runs after the reader was added.
        asyncio.get_running_loop().call_soon(_read_dry_instead, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            except OSError as exc:  # pragma: no cover - a kernel that refuses: keep its default
                logger.debug("SO_RCVBUF refused: %s", exc)


def _datagram_received(self: ice.StunProtocol, data: bytes | str, addr: tuple[Any, ...]) -> None:
    if isinstance(data, bytes) and data:
        first = data[0]
        if 128 <= first <= 191:  # RTP or RTCP (RFC 7983)
            if len(data) > 1 and not 192 <= data[1] <= 223:  # RTP, not RTCP (RFC 5761)
                setattr(self.receiver, _MEDIA_AT, time.monotonic())
            self.receiver.data_received(data, self.local_candidate.component)
            return
        if 20 <= first <= 63:  # DTLS
            self.receiver.data_received(data, self.local_candidate.component)
            return
    _stock_datagram_received(self, data, addr)


def install() -> None:
    """Install the patches (idempotent)."""
    ice.StunProtocol.connection_made = _connection_made  # type: ignore[method-assign]
    ice.StunProtocol.datagram_received = _datagram_received  # type: ignore[method-assign]


def last_media_arrival(pc: RTCPeerConnection) -> float | None:
    """``time.monotonic()`` when an RTP packet for ``pc`` was last read off its socket (None:
    never). Every transceiver of a bundled connection shares one ICE connection."""
    latest: float | None = None
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        connection = getattr(getattr(dtls, "transport", None), "_connection", None)
        at = getattr(connection, _MEDIA_AT, None)
        if at is not None and (latest is None or at > latest):
            latest = at
    return latest


install()
