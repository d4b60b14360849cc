"""What the conference's media objects count, read at scrape time for ``/metrics`` (web/metrics.py).

Nothing here runs on the media path: the forwarders, subscriber tracks and aiortc's RTP
senders and receivers keep their own plain integer counters, and :meth:`ConferenceCounters.read`
walks every room once, synchronously (no awaiting), and sums them. Walking 200 rooms' objects
is a few thousand attribute reads.

Those objects come and go (a subscriber leaves, a publication ends), and a Prometheus counter
must never go down, so :class:`Totals` remembers what each object counted when last read and,
once an object is gone from the walk, keeps its count: read through a weak reference if the
object is still alive (its final count), else the count of the last scrape (what it counted
after that scrape and before it ended is then not counted).
"""

from __future__ import annotations

import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import aiortc_compat
from .conference import Conference
from .forwarding import ForwardedTrack
from .workers import RemoteSubscription

Label = tuple[str, ...]


class Totals:
    """Per-object counters summed into totals (by label) that never go down.

    ``extract(obj)`` returns the object's counters (a tuple of the same length each time).
    """

    def __init__(self, extract: Callable[[Any], tuple[float, ...]]) -> None:
        self._extract = extract
        #: id(obj) → (weak reference, label, counters when last read)
        self._seen: dict[int, tuple[weakref.ref[Any], Label, tuple[float, ...]]] = {}
        #: What objects no longer walked counted, by label.
        self._retired: dict[Label, list[float]] = {}

    def _retire(self, ref: weakref.ref[Any], label: Label, last: tuple[float, ...]) -> None:
        obj = ref()
        final = self._extract(obj) if obj is not None else last
        # A count never goes below what was already reported for it.
        final = tuple(max(a, b) for a, b in zip(final, last))
        _add(self._retired, label, final)

    def read(self, objects: Iterable[tuple[Any, Label]]) -> dict[Label, list[float]]:
        """Totals by label over ``objects`` (each ``(obj, label)``) and every object seen before."""
        current: dict[int, tuple[weakref.ref[Any], Label, tuple[float, ...]]] = {}
        live: dict[Label, list[float]] = {}
        seen, extract = self._seen, self._extract
        for obj, label in objects:
            key = id(obj)
            if key in current:
                continue  # reached twice in one walk
            values = extract(obj)
            old = seen.get(key)
            if old is None:
                ref = weakref.ref(obj)
            elif (ref := old[0])() is not obj:  # the id was reused by a new object
                self._retire(*old)
                ref = weakref.ref(obj)
            current[key] = (ref, label, values)
            found = live.get(label)
            if found is None:
                live[label] = list(values)
            else:
                for i, value in enumerate(values):
                    found[i] += value
        for key, old in self._seen.items():
            if key not in current:
                self._retire(*old)
        self._seen = current
        totals = {label: list(retired) for label, retired in self._retired.items()}
        for label, counted in live.items():
            _add(totals, label, counted)
        return totals


def _add(into: dict[Label, list[float]], label: Label, values: Iterable[float]) -> None:
    found = into.get(label)
    if found is None:
        into[label] = list(values)
    else:
        for i, value in enumerate(values):
            found[i] += value


def _forwarder_counters(forwarder: Any) -> tuple[float, ...]:
    return (getattr(forwarder, "frames_received", 0), getattr(forwarder, "keyframes_received", 0),
            getattr(forwarder, "keyframe_requests_sent", 0))


def _track_counters(track: ForwardedTrack) -> tuple[float, ...]:
    return (track.frames_forwarded, track.frames_dropped, track.frames_stale, track.overflows)


@dataclass
class MediaCounts:
    """One scrape's reading of the conference."""

    rooms: int = 0
    participants: int = 0
    publications: int = 0
    #: Open subscriptions by type: "publication" (one publication) or "floor" (a roll-call's floor).
    subscriptions: dict[str, int] = field(default_factory=lambda: {"publication": 0, "floor": 0})
    #: Published tracks by kind.
    published_tracks: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: Subscriber tracks (subscriptions' and archive taps' copies of a published track) by kind.
    subscriber_tracks: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: Frames waiting in subscriber queues now, by kind.
    frames_queued: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: Subscriber tracks waiting for a keyframe now, by kind.
    waiting_for_keyframe: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: How late the last frame of the latest source reached the server (seconds), by kind.
    worst_lateness: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: Seconds since the oldest live source's last frame, by kind (a stalled publisher shows here).
    worst_silence: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: (kind,) → [frames received, keyframes received, keyframe requests sent to publishers]
    forwarders: dict[Label, list[float]] = field(default_factory=dict)
    #: (kind,) → [frames forwarded, frames dropped, of which stale, queue overflows]
    tracks: dict[Label, list[float]] = field(default_factory=dict)
    #: (kind,) → [RTP packets received]; (kind,) → [RTP packets sent]
    packets_received: dict[Label, list[float]] = field(default_factory=dict)
    packets_sent: dict[Label, list[float]] = field(default_factory=dict)


class ConferenceCounters:
    """Reads a :class:`Conference`'s counters; one per registry (its totals are remembered)."""

    def __init__(self, conference: Conference) -> None:
        self.conference = conference
        self._forwarders = Totals(_forwarder_counters)
        self._tracks = Totals(_track_counters)
        self._received = Totals(lambda receiver: (aiortc_compat.rtp_packets_received(receiver),))
        self._sent = Totals(lambda sender: (aiortc_compat.rtp_packets_sent(sender),))

    def read(self) -> MediaCounts:
        """One synchronous walk of every room (call it on the event loop)."""
        counts = MediaCounts()
        now = time.monotonic()
        forwarders: list[tuple[Any, Label]] = []
        tracks: list[tuple[Any, Label]] = []
        receivers: list[tuple[Any, Label]] = []
        senders: list[tuple[Any, Label]] = []
        pcs: list[Any] = []
        for room in tuple(self.conference.rooms.values()):
            counts.rooms += 1
            for participant in tuple(room.participants.values()):
                counts.participants += 1
                for publication in tuple(participant.publications.values()):
                    counts.publications += 1
                    pcs.append(publication.pc)
                    for kind, forwarder in tuple(publication.forwarders.items()):
                        counts.published_tracks[kind] += 1
                        forwarders.append((forwarder, (kind,)))
                        lateness = getattr(forwarder, "last_lateness", 0.0)
                        counts.worst_lateness[kind] = max(counts.worst_lateness[kind], lateness)
                        if forwarder.last_frame_at is not None:
                            counts.worst_silence[kind] = max(counts.worst_silence[kind],
                                                             now - forwarder.last_frame_at)
                        # TrackForwarder keeps its subscriber tracks in ``_subscribers`` (no public
                        # accessor yet): subscriptions', floor tracks' and the archive's taps alike.
                        for track in tuple(getattr(forwarder, "_subscribers", ())):
                            if isinstance(track, ForwardedTrack):
                                counts.subscriber_tracks[kind] += 1
                                counts.frames_queued[kind] += track.queued
                                counts.waiting_for_keyframe[kind] += track.waiting_for_keyframe
                                tracks.append((track, (kind,)))
                for subscription in tuple(participant.subscriptions.values()):
                    counts.subscriptions["floor" if subscription.floor else "publication"] += 1
                    if not isinstance(subscription, RemoteSubscription):  # a worker's counts its own
                        pcs.append(subscription.pc)
        for pc in pcs:
            for transceiver in pc.getTransceivers():
                kind = transceiver.kind
                receivers.append((transceiver.receiver, (kind,)))
                senders.append((transceiver.sender, (kind,)))
        counts.forwarders = self._forwarders.read(forwarders)
        counts.tracks = self._tracks.read(tracks)
        counts.packets_received = self._received.read(receivers)
        counts.packets_sent = self._sent.read(senders)
        return counts
