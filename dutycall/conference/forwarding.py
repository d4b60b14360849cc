"""The packet path: one source track fanned out to subscriber tracks, encoded.

A :class:`TrackForwarder` reads one remote track of a publication. With the
passthrough decoder (see ``aiortc_compat``) that track yields ``av.Packet``s; the
forwarder pushes each packet to every :class:`ForwardedTrack`, which an
``RTCRtpSender`` of a subscriber reads and packetizes without encoding.

Why a bounded queue per subscriber: one subscriber whose sender falls behind
must not hold packets for everyone else or grow memory without limit. When its
queue overflows, video is dropped up to the next keyframe (a delta frame after
a gap would only show garbage) and a keyframe is requested from the publisher.

:class:`Forwarder` is what a publication needs of its forwarders; :class:`TrackForwarder`
is the one the server uses. Other kinds plug in by name (:func:`register_forwarding`):
the benchmark's MediaRelay baseline (``bench/transcoding.py``) does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError

from . import aiortc_compat

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_FRAMES = {"video": 60, "audio": 50}
#: A frame still queued for a subscriber this long after the server received it is not sent:
#: under CPU contention the subscriber skips to fresh media (video: to a keyframe) instead of
#: falling further behind. Every video drop costs a keyframe (150 subscribers dropping together at
#: 0.4 s turned a near-saturated fan-out into a keyframe churn: 69 % of frames delivered against
#: 85 % at 1 s, bench/fanout.py N=150), so video waits up to a second; audio drops cost nothing.
STALE_AFTER = {"video": 1.0, "audio": 0.5}
#: ...except the keyframe a subscriber is waiting for, up to this late.
KEYFRAME_GRACE = 2.0
#: While a subscriber waits for a keyframe, ask again this often: a PLI can be lost or
#: ignored by the publisher's encoder, and the subscriber sees nothing until one arrives.
KEYFRAME_RETRY = 0.5
#: Keyframes asked for because subscribers dropped stale video (the server itself is behind): at
#: most one per this many seconds per published track. A keyframe is many packets to every
#: subscriber, so under overload asking at the join rate (4 a second) added the load that made the
#: next frames stale: with media workers at N=150 packets out doubled for the same frames.
RECOVERY_KEYFRAME_INTERVAL = 1.0


class Lateness:
    """How late each frame of one source reached the server, from its RTP timestamp.

    ``transit = arrival - timestamp / clock`` is constant (plus network jitter) while the
    publisher sends in real time; the least transit seen over the last 10-20 s is taken as "on
    time", and a frame's lateness is how far its transit exceeds that. So frames the server
    read from its socket only after a stall of its own loop count as late as they are, although
    they were just processed. A jump of more than :data:`CLOCK_JUMP` (an encoder restarted, a
    wrapped clock) starts again from that frame.
    """

    WINDOW = 10.0
    CLOCK_JUMP = 5.0

    def __init__(self) -> None:
        self._last_ts: int | None = None
        self._unwrapped = 0
        self._current = self._previous = float("inf")
        self._rotate_at = 0.0

    def of(self, packet: av.Packet, now: float) -> float:
        """Seconds ``packet`` (arriving ``now``) is behind the source's real time (>= 0)."""
        ts, time_base = packet.pts, packet.time_base
        if ts is None or not time_base:
            return 0.0
        last = self._last_ts
        self._unwrapped += 0 if last is None else ((ts - last + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        self._last_ts = ts
        transit = now - self._unwrapped * float(time_base)
        if now >= self._rotate_at:
            self._previous, self._current, self._rotate_at = self._current, float("inf"), now + self.WINDOW
        self._current = min(self._current, transit)
        late = transit - min(self._current, self._previous)
        if late > self.CLOCK_JUMP:
            self._current = self._previous = transit
            return 0.0
        return late


@runtime_checkable
class Forwarder(Protocol):
    """One published track fanned out to subscriber tracks: what a publication needs."""

    kind: str
    frames_received: int
    #: ``time.monotonic()`` of the last frame received from the publisher (None: none yet).
    last_frame_at: float | None

    @property
    def subscriber_count(self) -> int: ...

    def start(self) -> None:
        """Start reading the published track."""

    def subscribe(self, drop_stale: bool = True) -> MediaStreamTrack:
        """A new subscriber track; ``stop()`` it when done. ``drop_stale=False`` for server-side
        consumers (the archive) that must get every frame however late."""

    def unsubscribe(self, sub: MediaStreamTrack) -> None:
        """Forget a subscriber track (called by the track when it stops)."""

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (throttled)."""

    async def next_keyframe(self, timeout: float) -> bool:
        """Wait for the publisher's next keyframe; False on timeout."""

    async def stop(self) -> None:
        """Stop reading and end every subscriber track. Idempotent."""


class ForwarderFactory(Protocol):
    """Makes the forwarder of one published track; ``on_ended`` is called if the track ends
    by itself (not after ``stop()``)."""

    def __call__(self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None,
                 on_ended: Callable[[], None] | None = None, keyframe_interval: float = 0.25) -> Forwarder: ...


class ForwardedTrack(MediaStreamTrack):
    """A subscriber's copy of a source track: encoded packets, bounded, keyframe-gated."""

    def __init__(self, kind: str, forwarder: TrackForwarder, max_queue: int | None = None,
                 drop_stale: bool = True) -> None:
        super().__init__()
        self.kind = kind
        self._forwarder = forwarder
        self._max_queue = max_queue or DEFAULT_QUEUE_FRAMES.get(kind, 50)
        #: (when the server received it, packet)
        self._queue: deque[tuple[float, av.Packet]] = deque()
        self._stale_after = STALE_AFTER.get(kind, 0.3) if drop_stale else float("inf")
        self._waiter: asyncio.Future[None] | None = None
        # A video subscriber can only start decoding at a keyframe.
        self._need_keyframe = kind == "video"
        self.frames_forwarded = 0
        self.frames_dropped = 0
        #: Of ``frames_dropped``: dropped because they waited too long to be sent.
        self.frames_stale = 0
        self.overflows = 0
        self._asked_at = time.monotonic()
        #: Waiting for a keyframe because this track shed stale video (the server was behind):
        #: its requests go through the forwarder's slower recovery throttle.
        self._recovering = False
        #: Called (no arguments) when a packet is queued or the track stops: lets a
        #: :class:`SwitchableTrack` wait on two sources without a task per packet.
        self.on_ready: Callable[[], None] | None = None

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._need_keyframe

    def push(self, packet: av.Packet, received_at: float) -> None:
        """Queue a packet for this subscriber; never blocks. ``received_at``: when the server
        received it, less how late it was then (:class:`Lateness`)."""
        if self.readyState != "live":
            return
        now = time.monotonic()
        late = now - received_at
        if late > self._stale_after and packet.is_keyframe and self._need_keyframe and late < KEYFRAME_GRACE:
            received_at = now  # the awaited keyframe: queued as if fresh (see below)
        elif late > self._stale_after:
            # Already too late to be worth sending (the server read it late): drop it now. The
            # keyframe a subscriber waits for is let through up to KEYFRAME_GRACE: dropping it too
            # would leave the picture frozen until the next, which an overloaded server makes late
            # again.
            self.frames_dropped += 1
            self.frames_stale += 1
            if self.kind == "video" and not self._need_keyframe:
                self._shed_stale()
            return
        if self._need_keyframe:
            if not packet.is_keyframe:
                self.frames_dropped += 1
                now = time.monotonic()
                if now - self._asked_at > KEYFRAME_RETRY:
                    self._asked_at = now
                    self._ask_for_keyframe()
                return
            self._need_keyframe = False
            self._recovering = False
        if len(self._queue) >= self._max_queue:
            self.overflows += 1
            if self.kind == "video":
                # Everything queued depends on frames the subscriber may never
                # get now: drop it all and restart at a keyframe.
                self.frames_dropped += len(self._queue)
                self._queue.clear()
                if not packet.is_keyframe:
                    self.frames_dropped += 1
                    self._need_keyframe = True
                    self._asked_at = time.monotonic()
                    self._forwarder.request_keyframe()
                    return
            else:
                self._queue.popleft()
                self.frames_dropped += 1
        self._queue.append((received_at, packet))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.on_ready is not None:
            self.on_ready()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def restart_at_keyframe(self) -> None:
        """Drop what is queued and wait for the next keyframe (the source lost frames)."""
        self.frames_dropped += len(self._queue)
        self._queue.clear()
        self._need_keyframe = True
        self._asked_at = time.monotonic()

    def take(self) -> av.Packet | None:
        """The next packet still fresh enough to send, or None (nothing queued, or all stale)."""
        queue = self._queue
        if queue and time.monotonic() - queue[0][0] > self._stale_after:
            self._shed_stale()
        if not queue:
            return None
        self.frames_forwarded += 1
        return queue.popleft()[1]

    def _ask_for_keyframe(self) -> None:
        if self._recovering:
            self._forwarder.request_recovery_keyframe()
        else:
            self._forwarder.request_keyframe()

    def _shed_stale(self) -> None:
        """Drop what waited too long. Video: everything queued (the fresh frames depend on
        the stale ones) and then up to a keyframe, asked for now (at the recovery rate); audio:
        the stale packets."""
        queue = self._queue
        if self.kind == "video":
            dropped = len(queue)
            queue.clear()
            self._need_keyframe = True
            self._recovering = True
            self._asked_at = time.monotonic()
            self._forwarder.request_recovery_keyframe()
        else:
            limit = time.monotonic() - self._stale_after
            dropped = 0
            while queue and queue[0][0] < limit:
                queue.popleft()
                dropped += 1
        self.frames_dropped += dropped
        self.frames_stale += dropped

    async def recv(self) -> Any:
        while True:
            packet = self.take()
            if packet is not None:
                return packet
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def request_keyframe(self) -> None:
        """The subscriber lost the picture (PLI/FIR): ask the publisher, throttled."""
        self._forwarder.request_keyframe()

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        self._forwarder.unsubscribe(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.on_ready is not None:
            self.on_ready()


class TrackForwarder:
    """Reads one published track and fans its encoded packets out to subscribers."""

    def __init__(
        self,
        track: MediaStreamTrack,
        receiver: RTCRtpReceiver | None,
        on_ended: Callable[[], None] | None = None,
        keyframe_interval: float = 0.25,
    ) -> None:
        self.kind = track.kind
        self.track = track
        self.receiver = receiver
        self._subscribers: set[ForwardedTrack] = set()
        self._on_ended = on_ended
        self._keyframe_interval = keyframe_interval
        self._last_keyframe_request = -1e9
        self._last_recovery_request = -1e9
        self._pending_recovery: asyncio.TimerHandle | None = None
        #: Recovery requests (see RECOVERY_KEYFRAME_INTERVAL) passed on, and turned away.
        self.recovery_requests = 0
        self.recovery_requests_throttled = 0
        self._pending_keyframe: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.frames_received = 0
        self.keyframes_received = 0
        self.keyframe_requests_sent = 0
        self.last_frame_at: float | None = None
        self.started_at = time.monotonic()
        self.lateness = Lateness()
        #: How late the last frame reached the server (seconds behind the source's clock).
        self.last_lateness = 0.0
        self._keyframe_waiters: list[asyncio.Future[None]] = []
        # Keyframe requests in flight: referenced until sent, cancelled by stop().
        self._requests: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self, drop_stale: bool = True) -> ForwardedTrack:
        """A new subscriber track; it starts at the next keyframe, requested now."""
        sub = ForwardedTrack(self.kind, self, drop_stale=drop_stale)
        self._subscribers.add(sub)
        if self.kind == "video":
            self.request_keyframe()
        return sub

    def unsubscribe(self, sub: MediaStreamTrack) -> None:
        self._subscribers.discard(sub)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most once per ``keyframe_interval``.

        Requests inside the interval are coalesced into one sent when it ends, so
        a burst of joiners costs the publisher one keyframe, not one each.
        """
        if self.kind != "video" or not self._can_ask():
            return
        now = time.monotonic()
        wait = self._last_keyframe_request + self._keyframe_interval - now
        if wait <= 0:
            self._send_keyframe_request()
        elif self._pending_keyframe is None:
            loop = asyncio.get_running_loop()
            self._pending_keyframe = loop.call_later(wait, self._send_keyframe_request)

    def request_recovery_keyframe(self) -> None:
        """A subscriber shed stale video: ask for a keyframe at most once per
        :data:`RECOVERY_KEYFRAME_INTERVAL` (then as :meth:`request_keyframe` does). A request
        inside the interval is deferred to its end, not dropped: a subscriber that keeps getting
        late frames never retries by itself, and a browser's encoder sends keyframes only when
        asked. While any subscriber still waits, it is asked again each interval (a PLI can be
        lost, a keyframe can come too late to be sent)."""
        now = time.monotonic()
        wait = self._last_recovery_request + RECOVERY_KEYFRAME_INTERVAL - now
        if wait > 0:
            self.recovery_requests_throttled += 1
        else:
            self._last_recovery_request = now
            self.recovery_requests += 1
            self.request_keyframe()
            wait = RECOVERY_KEYFRAME_INTERVAL
        if self._pending_recovery is None and self._task is not None and not self._task.done():
            self._pending_recovery = asyncio.get_running_loop().call_later(wait, self._deferred_recovery)

    def _deferred_recovery(self) -> None:
        self._pending_recovery = None
        # Only if someone still waits for it (the keyframe may have come meanwhile).
        if any(sub._recovering for sub in self._subscribers):  # (stop() cancels this timer)
            self.request_recovery_keyframe()

    async def next_keyframe(self, timeout: float) -> bool:
        """Wait until the next keyframe arrives from the publisher; False on timeout."""
        waiter = asyncio.get_running_loop().create_future()
        self._keyframe_waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
            return True
        except TimeoutError:
            return False

    def _can_ask(self) -> bool:
        """Whether a keyframe request can reach the publisher now."""
        return self.receiver is not None and self._task is not None and not self._task.done()

    def _send_keyframe_request(self) -> None:
        self._pending_keyframe = None
        if not self._can_ask():
            return
        self._last_keyframe_request = time.monotonic()
        self.keyframe_requests_sent += 1
        self._ask_publisher()

    def _ask_publisher(self) -> None:
        """Send the publisher a PLI (a piped forwarder asks the process that holds it instead)."""
        assert self.receiver is not None
        request = asyncio.ensure_future(aiortc_compat.send_pli(self.receiver))
        self._requests.add(request)
        request.add_done_callback(self._requests.discard)

    async def _run(self) -> None:
        try:
            while True:
                try:
                    packet = await self.track.recv()
                except MediaStreamError:
                    break
                if not isinstance(packet, av.Packet):
                    # Only happens if the passthrough decoder was not installed on
                    # this connection: never forward decoded frames.
                    logger.error("forwarder got a decoded %s frame; dropping", self.kind)
                    continue
                self.deliver(packet)
        finally:
            self._cancel_timers()
            if self._on_ended is not None:
                self._on_ended()

    def _cancel_timers(self) -> None:
        for timer in (self._pending_keyframe, self._pending_recovery):
            if timer is not None:
                timer.cancel()
        self._pending_keyframe = self._pending_recovery = None

    def deliver(self, packet: av.Packet) -> None:
        """One frame from the publisher: to every subscriber, now."""
        self.frames_received += 1
        now = time.monotonic()
        if packet.is_keyframe and self.kind == "video":
            self.keyframes_received += 1
            waiters, self._keyframe_waiters = self._keyframe_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self.last_frame_at = now
        # Subscribers judge staleness from when the frame *should* have arrived.
        self.last_lateness = late = self.lateness.of(packet, now)
        due = now - late
        for sub in tuple(self._subscribers):
            sub.push(packet, due)

    def resync(self) -> None:
        """Frames were lost before they reached us (a piped stream's gap): every video
        subscriber waits for a keyframe, asked for now."""
        if self.kind != "video":
            return
        for sub in tuple(self._subscribers):
            sub.restart_at_keyframe()
        self.request_keyframe()

    async def stop(self) -> None:
        """Stop reading and end every subscriber track. Idempotent."""
        task, self._task = self._task, None
        self._cancel_timers()
        self._on_ended = None
        for sub in tuple(self._subscribers):
            sub.stop()
        self._subscribers.clear()
        requests = [r for r in self._requests if not r.done()]
        for request in requests:
            request.cancel()
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if requests:
            await asyncio.gather(*requests, return_exceptions=True)


#: Forwarder kinds by ``ConferenceSettings.forwarding`` name.
_FORWARDINGS: dict[str, ForwarderFactory] = {"passthrough": TrackForwarder}


def register_forwarding(name: str, factory: ForwarderFactory) -> None:
    """Make ``--forwarding name`` use ``factory`` (the benchmark's baseline plugs in so)."""
    _FORWARDINGS[name] = factory


def forwarder_factory(name: str) -> ForwarderFactory:
    """The factory registered for forwarding mode ``name``; ValueError if there is none."""
    factory = _FORWARDINGS.get(name)
    if factory is None:
        raise ValueError(f"no forwarding {name!r} here (known: {', '.join(sorted(_FORWARDINGS))}); "
                         "'transcode' is the benchmark's baseline: start it with python -m bench.transcoding")
    return factory


class SwitchableTrack(MediaStreamTrack):
    """A subscriber track whose source the server switches: "whoever has the floor".

    One per subscriber for the whole roll-call, instead of a new peer connection each time
    the floor moves. On a switch it subscribes to the new source (which starts at a
    keyframe and asks the publisher for one) and keeps forwarding the old source until
    the new one's first keyframe is here, so the picture never stops in between. It then
    rebases timestamps so the subscriber's stream stays continuous; packets are copied,
    since the shared ones must not change.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.source: TrackForwarder | None = None
        self._sub: ForwardedTrack | None = None
        #: The source switched to, until its first packet (a keyframe for video) arrives.
        self._next: ForwardedTrack | None = None
        self._changed: asyncio.Future[None] | None = None
        self._offset = 0
        self._last_pts: int | None = None
        self._rebase = False
        # One frame's worth of clock: 30 fps at 90 kHz, 20 ms at 48 kHz.
        self._step = 3000 if kind == "video" else 960
        self.switches = 0
        self.frames_forwarded = 0

    def switch(self, forwarder: TrackForwarder | None) -> None:
        """Forward from ``forwarder`` from its next keyframe on (None: stop sending now)."""
        if forwarder is self.source and (forwarder is None or self._sub is not None or self._next is not None):
            return
        self.source = forwarder
        self.switches += 1
        if self._next is not None:
            self._next.stop()
            self._next = None
        if forwarder is None:
            self._drop_current()
        else:
            self._next = forwarder.subscribe()
            self._next.on_ready = self._wake
        self._wake()

    def _drop_current(self) -> None:
        if self._sub is not None:
            self._sub.on_ready = None
            self._sub.stop()
            self._sub = None

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    async def recv(self) -> Any:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            nxt = self._next
            if nxt is not None:
                if nxt.queued:
                    # The new source's first keyframe is here: leave the old one now.
                    self._drop_current()
                    self._sub, self._next = nxt, None
                    self._rebase = True
                elif nxt.readyState != "live":
                    self._next = None
                    if self.source is nxt._forwarder:
                        self.source = None
            sub = self._sub
            packet = sub.take() if sub is not None else None
            if packet is not None:
                return self._rebased(packet)
            if sub is not None and sub.readyState != "live":  # the source itself ended
                self._sub = None
                if self._next is None:
                    self.source = None
                continue
            self._changed = asyncio.get_running_loop().create_future()
            try:
                await self._changed
            finally:
                self._changed = None

    def _rebased(self, packet: av.Packet) -> av.Packet:
        pts = packet.pts or 0  # the passthrough decoder always sets it (the RTP timestamp)
        if self._rebase:
            self._offset = 0 if self._last_pts is None else self._last_pts + self._step - pts
            self._rebase = False
        out = av.Packet(bytes(packet))
        out.pts = pts + self._offset
        if packet.time_base is not None:
            out.time_base = packet.time_base
        out.is_keyframe = packet.is_keyframe
        self._last_pts = out.pts
        self.frames_forwarded += 1
        return out

    def request_keyframe(self) -> None:
        if self._sub is not None:
            self._sub.request_keyframe()

    def stop(self) -> None:
        super().stop()
        self._drop_current()
        if self._next is not None:
            self._next.on_ready = None
            self._next.stop()
            self._next = None
        self._wake()
