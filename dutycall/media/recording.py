"""The archive: a publication's encoded packets written to disk without re-encoding.

A :class:`Recorder` taps a publication's forwarders exactly like one more subscriber (video
keyframe-gated, a keyframe asked for at once) and hands the packets to a writer thread in
batches (every ``batch_ms``, 200 ms: waking a thread for each packet cost the event loop more
than all the muxing, through the handover of the GIL), bounded to ``queue_packets`` in
flight; nothing else happens on the event loop that forwards media. When the bound is reached
the packet is dropped and the drop logged; video then skips to the next keyframe (and asks for
one), since a picture after a gap would only show garbage.

The writer thread muxes the packets with PyAV (libavformat) into segments of bounded length,
each starting at a keyframe (one is asked for when a segment is due to end):

- VP8 (and audio-only) sources: WebM (Matroska: VP8 video, Opus audio). Clusters are closed
  every ``cluster_ms`` (500 ms) and every write is flushed to the file, so a process killed
  with SIGKILL loses at most the open cluster: about half a second.
- H264 sources: fragmented MP4 (``empty_moov``, a ``moof``/``mdat`` fragment every
  ``fragment_ms``, 1 s, and at each keyframe; ``default_base_moof`` as browsers' MSE wants), Opus
  audio in MP4 (``dOps``). The packets are the Annex-B access units aiortc's depacketiser
  reassembles (one per RTP timestamp, however many slices share it); the SPS/PPS of the first
  keyframe become the stream's ``avcC`` (libavformat converts the Annex-B units to length
  prefixes), width and height are read from the SPS (:func:`h264_sps_size`). A keyframe that
  comes without its SPS/PPS gets the last ones seen. A SIGKILL loses at most the open fragment.

Either way every file stays readable after a kill. A closed segment gets its index (Cues) and
duration; the thread then hashes it (SHA-256) and reports its size and end.

Disk space: no recording starts below ``min_free_bytes`` (:meth:`Archive.ensure_space`: the
refusal goes on the incident's timeline, ``footage_recording_refused``), and the writer checks
the free space every ``space_check_seconds`` while it records: below the minimum it closes the
segment cleanly and stops writing (the live stream goes on), which goes on the timeline as
``footage_recording_stopped`` with reason ``low_disk``.

Retention: with ``retention_days`` > 0 a daily sweep (:meth:`Archive.sweep`, an asyncio task of
the archive, the file work in a thread) deletes the files of segments that ended longer ago
than that and whose incident is closed; each row keeps its hash and becomes "expired", and
each incident gets one ``footage_expired`` line on its timeline (at the time of the sweep).
A segment still recording is never touched.

Rows: a :class:`~dutycall.media.models.FootageSegment` per file, "recording" while written,
"complete" once closed and hashed. At the next start :meth:`Archive.recover` finds the
segments a crash left "recording" (and files whose row was not written yet), hashes them,
reads their length from the file, and marks them "recovered"; the sources they belonged to
are closed as "lost".

Timing: each kind's RTP timestamps (90 kHz video, 48 kHz audio) are unwrapped and anchored to
the wall clock at that kind's first packet, so audio and video line up; an anchor is moved
when the publisher's clock jumps (more than 5 s off the wall clock, or backwards).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fractions
import hashlib
import logging
import os
import pathlib
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..conference import Publication
from ..directory.models import as_utc, utcnow
from ..incidents.models import Incident, IncidentEvent
from .errors import NoSpace
from .models import FootageSegment, FootageSource

logger = logging.getLogger(__name__)

MS = fractions.Fraction(1, 1000)
#: Packets the writer thread may fall behind by (about 7 s of a 30 fps stream with audio).
QUEUE_PACKETS = 600
#: The publisher's clock may drift this far from the wall clock before it is re-anchored.
MAX_CLOCK_SKEW = 5.0
#: While a segment is due to end, a keyframe is asked for this often.
KEYFRAME_ASK = 1.0
#: Containers by video codec (audio only: WebM).
CONTAINERS = {"VP8": "webm", "H264": "mp4", None: "webm"}
#: How often the retention sweep runs.
SWEEP_INTERVAL = 24 * 3600.0
#: Segment statuses whose file the retention sweep may delete.
FINISHED = ("complete", "recovered")
SEGMENT_NAME = re.compile(r"(\d+)-(\d{4,})\.(webm|mp4)")


@dataclass(frozen=True)
class RecordingSettings:
    """Where and how the archive writes."""

    directory: pathlib.Path
    segment_seconds: float = 60.0
    min_free_bytes: int = 1024 * 1024 * 1024
    #: Matroska cluster length: what a SIGKILL can lose at most (plus what is queued).
    cluster_ms: int = 500
    #: Fragmented MP4 (H264): the longest fragment, what a SIGKILL can lose at most.
    fragment_ms: int = 1000
    queue_packets: int = QUEUE_PACKETS
    #: Packets are handed to the writer thread in batches this long (added to what a kill loses).
    batch_ms: int = 200
    #: While recording, the free space is checked this often (below the minimum: stop writing).
    space_check_seconds: float = 2.0
    #: Segments of closed incidents are deleted this many days after they ended (0: kept forever).
    retention_days: float = 0.0

    @classmethod
    def from_config(cls, config: Any) -> RecordingSettings:
        """The archive's settings from the server's :class:`~dutycall.config.Config`."""
        return cls(pathlib.Path(config.recordings_dir), config.recording_segment_seconds,
                   config.recording_min_free_bytes,
                   retention_days=float(getattr(config, "recording_retention_days", 0) or 0))


def free_bytes(directory: pathlib.Path) -> int:
    """Free space on the disk of ``directory`` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(directory).free


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe's header (RFC 6386 section 9.1); None otherwise."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return (data[6] | data[7] << 8) & 0x3FFF, (data[8] | data[9] << 8) & 0x3FFF


# -- H264 (Annex B) -------------------------------------------------------------------------------

_START = re.compile(b"\x00\x00\x01")


def h264_nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B access unit (start codes removed, trailing zeros kept off)."""
    starts = [m.end() for m in _START.finditer(data)]
    units = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        unit = data[start:end].rstrip(b"\x00") if i + 1 < len(starts) else data[start:end]
        if unit:
            units.append(unit)
    return units


class _Bits:
    """An RBSP read bit by bit (Exp-Golomb codes of H.264 section 9.1)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        if self.pos >> 3 >= len(self.data):
            raise ValueError("SPS ends early")
        value = self.data[self.pos >> 3] >> (7 - (self.pos & 7)) & 1
        self.pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = value << 1 | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def h264_sps_size(sps: bytes) -> tuple[int, int] | None:
    """Width and height (after cropping) from an SPS NAL unit (H.264 section 7.3.2.1.1); None
    if it cannot be read."""
    if len(sps) < 4 or sps[0] & 0x1F != 7:
        return None
    rbsp = re.sub(b"\x00\x00\x03", b"\x00\x00", sps[1:])  # emulation prevention bytes
    bits = _Bits(rbsp[3:])
    profile = rbsp[0]
    try:
        bits.ue()  # seq_parameter_set_id
        chroma = 1
        separate_planes = 0
        if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
            chroma = bits.ue()
            if chroma == 3:
                separate_planes = bits.bit()
            bits.ue()  # bit_depth_luma_minus8
            bits.ue()  # bit_depth_chroma_minus8
            bits.bit()  # qpprime_y_zero_transform_bypass_flag
            if bits.bit():  # seq_scaling_matrix_present_flag
                for i in range(8 if chroma != 3 else 12):
                    if bits.bit():
                        last = following = 8
                        for _ in range(16 if i < 6 else 64):
                            if following:
                                following = (last + bits.se() + 256) % 256
                            last = following or last
        bits.ue()  # log2_max_frame_num_minus4
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()
        elif poc_type == 1:
            bits.bit()
            bits.se()
            bits.se()
            for _ in range(bits.ue()):
                bits.se()
        bits.ue()  # max_num_ref_frames
        bits.bit()  # gaps_in_frame_num_value_allowed_flag
        width_mbs = bits.ue() + 1
        height_units = bits.ue() + 1
        frame_mbs_only = bits.bit()
        if not frame_mbs_only:
            bits.bit()  # mb_adaptive_frame_field_flag
        bits.bit()  # direct_8x8_inference_flag
        left = right = top = bottom = 0
        if bits.bit():  # frame_cropping_flag
            left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
    except ValueError:
        return None
    if chroma == 0 or separate_planes:
        crop_x, crop_y = 1, 2 - frame_mbs_only
    else:
        crop_x, crop_y = (2 if chroma in (1, 2) else 1), (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_x * (left + right)
    height = (2 - frame_mbs_only) * height_units * 16 - crop_y * (top + bottom)
    return (width, height) if width > 0 and height > 0 else None


def h264_parameter_sets(data: bytes) -> bytes | None:
    """The SPS and PPS units of an access unit, in Annex B; None if it has no SPS."""
    units = h264_nal_units(data)
    if not any(u[0] & 0x1F == 7 for u in units):
        return None
    return b"".join(b"\x00\x00\x00\x01" + u for u in units if u[0] & 0x1F in (7, 8))


def sha256_of(path: pathlib.Path) -> tuple[str, int]:
    """The file's SHA-256 (hex) and size; CPU and disk: never on the event loop."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def media_duration(path: pathlib.Path) -> float | None:
    """Seconds from the file's first packet to the end of its last (demuxed, nothing decoded);
    None if nothing in it can be read. Works on a file a crash cut short."""
    first = last = None
    try:
        with av.open(str(path)) as container:
            for packet in container.demux():
                if packet.pts is None or packet.time_base is None:
                    continue
                start = float(packet.pts * packet.time_base)
                end = start + float((packet.duration or 0) * packet.time_base)
                first = start if first is None else min(first, start)
                last = end if last is None else max(last, end)
    except (av.FFmpegError, OSError) as exc:  # a cut-short tail: what was read counts
        logger.info("reading %s stopped early: %s", path, exc)
    if first is None or last is None:
        return None
    return max(0.0, last - first)


# -- the writer thread ---------------------------------------------------------------------------


@dataclass
class _Clock:
    """One kind's RTP clock, unwrapped and anchored to the recording's wall clock."""

    rate: int
    anchor_rtp: int | None = None
    anchor_at: float = 0.0
    last_rtp: int | None = None
    unwrapped: int = 0
    last_time: float = -1.0

    def time(self, rtp: int, arrived: float) -> float:
        if self.last_rtp is None:
            self.unwrapped = rtp
        else:
            delta = (rtp - self.last_rtp) & 0xFFFFFFFF
            self.unwrapped += delta - (1 << 32) if delta >= 1 << 31 else delta
        self.last_rtp = rtp
        if self.anchor_rtp is None:
            self.anchor_rtp, self.anchor_at = self.unwrapped, arrived
        t = self.anchor_at + (self.unwrapped - self.anchor_rtp) / self.rate
        if t < self.last_time - 0.5 or abs(t - arrived) > MAX_CLOCK_SKEW:
            self.anchor_rtp, self.anchor_at = self.unwrapped, arrived
            t = arrived
        self.last_time = max(t, self.last_time)
        return t


@dataclass
class SegmentOpened:
    number: int
    path: str
    container: str
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    started_at: dt.datetime


@dataclass
class SegmentClosed:
    number: int
    ended_at: dt.datetime
    duration: float
    size: int
    sha256: str


@dataclass
class WriterStopped:
    #: "stopped", "ended", "low_disk", "no_media", ...
    reason: str
    #: With "low_disk": the free space found, in MB.
    free_mb: int | None = None


Report = SegmentOpened | SegmentClosed | WriterStopped


class SegmentWriter:
    """The thread that muxes one source's packets into segment files and hashes them.

    ``put`` is called on the event loop and never blocks; everything else runs in the thread.
    ``report`` is called in the thread with what happened to the files (the caller moves it
    to its loop); ``want_keyframe`` too, when a segment is due to end.
    """

    def __init__(self, settings: RecordingSettings, relative_dir: str, source_id: int,
                 video_codec: str | None, audio_codec: str | None,
                 report: Callable[[Report], None], want_keyframe: Callable[[], None],
                 free_space: Callable[[pathlib.Path], int] = free_bytes) -> None:
        self.settings = settings
        self._free_space = free_space
        self.relative_dir = relative_dir
        self.source_id = source_id
        self.video_codec = video_codec.upper() if video_codec else None
        self.audio_codec = audio_codec.lower() if audio_codec else None
        self._report = report
        self._want_keyframe = want_keyframe
        self.queue: queue.Queue[list[tuple[str, bytes, int, bool, float]] | None] = queue.Queue()
        #: Packets handed to the thread (written on the loop) and done with (written in the thread).
        self._handed = 0
        self._done = 0
        self._batch: list[tuple[str, bytes, int, bool, float]] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self.dropped = 0
        self._dropped_logged_at = 0.0
        self.written = 0
        #: ``time.monotonic()`` when the first packet written had arrived (None: none yet).
        self.first_written_at: float | None = None
        self._stop_reason = "stopped"
        self._t0_wall = utcnow()
        self._t0 = time.monotonic()
        self._clocks = {"video": _Clock(90000), "audio": _Clock(48000)}
        self._container: Any = None
        self._streams: dict[str, Any] = {}
        self._number = 0
        self._segment_start = 0.0
        self._segment_path: pathlib.Path | None = None
        self._last_ms: dict[str, int] = {}
        self._last_end = 0.0
        self._asked_at = 0.0
        self._space_checked_at = time.monotonic()
        self._low_free: int | None = None
        #: H264: the last SPS and PPS seen (Annex B), for a keyframe that comes without them.
        self._parameter_sets: bytes | None = None
        self._thread = threading.Thread(target=self._run, name=f"recorder-{source_id}", daemon=True)

    # -- on the event loop --------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def put(self, kind: str, packet: av.Packet) -> bool:
        """Queue a packet for the thread (it gets it with the next batch); False (dropped,
        logged) when ``queue_packets`` are already waiting."""
        if self._handed - self._done + len(self._batch) >= self.settings.queue_packets:
            self.dropped += 1
            now = time.monotonic()
            if now - self._dropped_logged_at > 5.0:
                self._dropped_logged_at = now
                logger.warning("recording of source %s: writer behind, %d packets dropped so far",
                               self.source_id, self.dropped)
            return False
        self._batch.append((kind, bytes(packet), int(packet.pts or 0), bool(packet.is_keyframe),
                            time.monotonic() - self._t0))
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(self.settings.batch_ms / 1000, self.flush)
        return True

    def flush(self) -> None:
        """Hand the batch to the thread now (on the loop)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._batch:
            batch, self._batch = self._batch, []
            self._handed += len(batch)
            self.queue.put_nowait(batch)

    def stop(self, reason: str = "stopped") -> None:
        """Ask the thread to finish the open segment and end (after what is queued)."""
        self._stop_reason = reason
        self.flush()
        self.queue.put_nowait(None)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- in the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        reason = "stopped"
        try:
            while (batch := self.queue.get()) is not None:
                if not self._write_batch(batch):
                    reason = "low_disk"
                    break
            else:
                reason = self._stop_reason
        finally:
            try:
                self._close_segment()
            except Exception:
                logger.exception("recording of source %s: closing the last segment failed", self.source_id)
            self._report(WriterStopped(reason, self._low_free // 2**20 if self._low_free is not None else None))

    def _write_batch(self, batch: list[tuple[str, bytes, int, bool, float]]) -> bool:
        try:
            for item in batch:
                try:
                    if self._write(*item) is False:
                        return False
                except Exception:  # one bad packet must not end the archive
                    logger.exception("recording of source %s: a packet could not be written", self.source_id)
            return True
        finally:
            self._done += len(batch)

    def _enough_space(self) -> bool:
        free = self._free_space(self.settings.directory)
        if free < self.settings.min_free_bytes:
            self._low_free = free
            logger.warning("recording of source %s stopped: %d MB free on the recordings disk, %d MB required",
                           self.source_id, free // 2**20, self.settings.min_free_bytes // 2**20)
            return False
        return True

    def _write(self, kind: str, data: bytes, rtp: int, keyframe: bool, arrived: float) -> bool:
        t = self._clocks[kind].time(rtp, arrived)
        has_video = self.video_codec is not None
        now = time.monotonic()
        if self._container is not None and now - self._space_checked_at >= self.settings.space_check_seconds:
            self._space_checked_at = now
            if not self._enough_space():
                return False
        if keyframe and kind == "video" and self.video_codec == "H264":
            found = h264_parameter_sets(data)
            if found is not None:
                self._parameter_sets = found
            elif self._parameter_sets is not None:
                data = self._parameter_sets + data
        if self._container is None:
            # A segment starts at a video keyframe (audio before the first picture is dropped).
            if has_video and not (kind == "video" and keyframe):
                return True
            if not self._open_segment(t, data if kind == "video" else None):
                return False
        elif t - self._segment_start >= self.settings.segment_seconds:
            if not has_video or (kind == "video" and keyframe):
                self._close_segment()
                if not self._open_segment(t, data if kind == "video" else None):
                    return False
            elif time.monotonic() - self._asked_at > KEYFRAME_ASK:
                self._asked_at = time.monotonic()
                self._want_keyframe()
        stream = self._streams.get(kind)
        if stream is None:
            return True
        ms = max(0, round((t - self._segment_start) * 1000))
        last = self._last_ms.get(kind)
        if last is not None and ms <= last:
            ms = last + 1  # timestamps must grow within a stream (a repeated or late one)
        self._last_ms[kind] = ms
        packet = av.Packet(data)
        packet.stream = stream
        packet.pts = packet.dts = ms
        packet.time_base = MS
        packet.is_keyframe = keyframe
        self._container.mux(packet)
        if self.first_written_at is None:
            self.first_written_at = self._t0 + arrived
        self._last_end = max(self._last_end, t + (0.02 if kind == "audio" else 1 / 30))
        self.written += 1
        return True

    def _open_segment(self, t: float, keyframe: bytes | None) -> bool:
        self._space_checked_at = time.monotonic()
        if not self._enough_space():
            return False
        self._number += 1
        container_kind = CONTAINERS.get(self.video_codec, "webm")
        relative = f"{self.relative_dir}/{self.source_id}-{self._number:04d}.{container_kind}"
        path = self.settings.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        size = None
        if keyframe is not None and self.video_codec == "VP8":
            size = vp8_size(keyframe)
        elif keyframe is not None and self.video_codec == "H264":
            sps = next((u for u in h264_nal_units(keyframe) if u[0] & 0x1F == 7), None)
            size = h264_sps_size(sps) if sps is not None else None
        options = {
            "flush_packets": "1",  # every packet reaches the file at once
            "max_interleave_delta": "300000",  # never hold one stream for the other > 0.3 s
        }
        if container_kind == "mp4":
            options.update({
                # Fragmented: a moof/mdat every fragment_ms and at each keyframe, the moov (empty)
                # at the start: a file cut short by a kill stays readable up to its last fragment.
                "movflags": "frag_keyframe+empty_moov+default_base_moof",
                "frag_duration": str(self.settings.fragment_ms * 1000),
            })
        else:
            options["cluster_time_limit"] = str(self.settings.cluster_ms)  # Matroska: close clusters often
        container: Any = av.open(str(path), "w", format=container_kind, options=options)
        self._streams = {}
        if self.video_codec == "VP8":
            width, height = size or (640, 480)
            video = container.add_stream("libvpx", rate=30, width=width, height=height)
            video.time_base = MS
            self._streams["video"] = video
        elif self.video_codec == "H264":
            # No codec opened: the packets are muxed as they came; PyAV takes the stream's
            # extradata (SPS/PPS) from the first packet, this keyframe, and the MP4 muxer
            # writes it as avcC.
            width, height = size or (0, 0)
            video = container.add_mux_stream("h264", rate=30, width=width, height=height)
            video.time_base = MS
            self._streams["video"] = video
        if self.audio_codec == "opus":
            audio = container.add_stream("libopus", rate=48000, layout="stereo")
            audio.time_base = MS
            self._streams["audio"] = audio
        self._container = container
        self._segment_path = path
        self._segment_start = t
        self._last_ms = {}
        self._last_end = t
        self._report(SegmentOpened(
            self._number, relative, container_kind, self.video_codec if "video" in self._streams else None,
            self.audio_codec if "audio" in self._streams else None,
            size[0] if size else None, size[1] if size else None, self._wall(t)))
        return True

    def _close_segment(self) -> None:
        container, self._container = self._container, None
        if container is None or self._segment_path is None:
            return
        try:
            container.close()  # Cues and the duration: the file becomes seekable
        except Exception:
            logger.exception("recording of source %s: closing segment %d failed", self.source_id, self._number)
        sha256, size = sha256_of(self._segment_path)
        self._report(SegmentClosed(self._number, self._wall(self._last_end),
                                   round(self._last_end - self._segment_start, 3), size, sha256))

    def _wall(self, t: float) -> dt.datetime:
        return self._t0_wall + dt.timedelta(seconds=t)


# -- on the event loop --------------------------------------------------------------------------


class Recorder:
    """One publication being archived: its taps, its writer thread, its rows."""

    def __init__(self, archive: Archive, publication: Publication, source_id: int, incident_id: int) -> None:
        self.archive = archive
        self.publication = publication
        self.source_id = source_id
        self.incident_id = incident_id
        self._loop = asyncio.get_running_loop()
        self._reports: asyncio.Queue[Report] = asyncio.Queue()
        kinds = [k for k in ("video", "audio") if publication.forwarder(k) is not None]
        video = publication.codec_name("video") if "video" in kinds else None
        audio = publication.codec_name("audio") if "audio" in kinds else None
        if video is not None and video.upper() not in CONTAINERS:
            logger.warning("source %s: %s video is not archived (VP8 and H264 are); recording its audio",
                           source_id, video)
            video = None
        if audio is not None and audio.lower() != "opus":
            audio = None
        self.writer = SegmentWriter(archive.settings, f"{incident_id}/{source_id}", source_id, video, audio,
                                    self._from_thread, self._ask_keyframe, archive.free_space)
        wanted = {"video": video, "audio": audio}
        self._taps: dict[str, Any] = {k: publication.tap(k) for k in kinds if wanted[k]}
        self._need_keyframe = False
        self._readers: list[asyncio.Task[None]] = []
        self._rows: asyncio.Task[None] | None = None
        self.stopped = asyncio.Event()
        self._stopping = False
        #: The archive's task that forgets this recorder once it stopped.
        self.forget: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.writer.start()
        self._rows = asyncio.ensure_future(self._write_rows())
        for kind, tap in self._taps.items():
            if tap is not None:
                self._readers.append(asyncio.ensure_future(self._read(kind, tap)))
        if not self._readers:
            self.writer.stop("no_media")

    async def _read(self, kind: str, tap: Any) -> None:
        put = self.writer.put
        try:
            while True:
                packet = await tap.recv()
                if kind == "video" and self._need_keyframe:
                    if not packet.is_keyframe:
                        continue
                    self._need_keyframe = False
                if not put(kind, packet) and kind == "video":
                    self._need_keyframe = True  # what follows a lost frame cannot be decoded
                    tap.request_keyframe()
        except Exception:  # MediaStreamError: the publication ended
            pass
        finally:
            if all(r.done() or r is asyncio.current_task() for r in self._readers):
                self._stop_writer("ended")

    def _ask_keyframe(self) -> None:
        """In the writer thread: a segment is due to end at the next keyframe."""
        tap = self._taps.get("video")
        if tap is not None:
            self._loop.call_soon_threadsafe(tap.request_keyframe)

    def _from_thread(self, report: Report) -> None:
        try:
            self._loop.call_soon_threadsafe(self._reports.put_nowait, report)
        except RuntimeError:  # the loop is gone (the process is ending); recovery finishes the rows
            pass

    def _stop_writer(self, reason: str) -> None:
        if not self._stopping:
            self._stopping = True
            self.writer.stop(reason)

    async def _write_rows(self) -> None:
        """Apply the thread's reports to the database, in order, until it stops."""
        while True:
            report = await self._reports.get()
            try:
                await self.archive.apply(self.source_id, self.incident_id, report)
            except Exception:
                logger.exception("recording of source %s: writing %s failed", self.source_id, report)
            if isinstance(report, WriterStopped):
                if report.reason == "low_disk":
                    try:
                        await self.archive.low_disk(self.source_id, self.incident_id, report.free_mb)
                    except Exception:
                        logger.exception("recording of source %s: the low-disk event was not written", self.source_id)
                self.stopped.set()
                for tap in self._taps.values():
                    if tap is not None:
                        tap.stop()
                return

    async def stop(self, reason: str = "stopped") -> None:
        """Stop recording: the open segment is closed, hashed and its row finished. Idempotent."""
        self._stop_writer(reason)
        for tap in self._taps.values():
            if tap is not None:
                tap.stop()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await asyncio.to_thread(self.writer.join)
        if self._rows is not None:
            await asyncio.shield(self._rows)


class Archive:
    """Every recording of the server, the segment rows, and recovery after a crash."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: RecordingSettings,
                 clock: Callable[[], dt.datetime] = utcnow,
                 free_space: Callable[[pathlib.Path], int] = free_bytes) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock
        #: Free bytes on the recordings disk (tests replace it); called in threads.
        self.free_space = free_space
        self.recorders: dict[int, Recorder] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def new_source(self, incident_id: int, kind: str, label: str, room: str,
                         ingest_token_id: int | None = None) -> int:
        """A source row for what is about to be recorded; returns its id."""
        async with self.sessionmaker.begin() as db:
            source = FootageSource(incident_id=incident_id, kind=kind, label=label, room=room,
                                   ingest_token_id=ingest_token_id, started_at=utcnow())
            db.add(source)
            await db.flush()
            return source.id

    async def end_source(self, source_id: int, reason: str) -> None:
        """Stop recording the source (if it is) and close its row."""
        await self.stop(source_id, reason)
        async with self.sessionmaker.begin() as db:
            source = await db.get(FootageSource, source_id)
            if source is not None and source.ended_at is None:
                source.ended_at, source.end_reason = utcnow(), reason

    def check_space(self) -> None:
        """Raise :class:`NoSpace` if the recordings disk is below its minimum free space."""
        free = self.free_space(self.settings.directory)
        if free < self.settings.min_free_bytes:
            raise NoSpace("footage.no_space", free_mb=free // 2**20, min_mb=self.settings.min_free_bytes // 2**20)

    async def ensure_space(self, incident_id: int, actor: str = "system", source_id: int | None = None) -> None:
        """:meth:`check_space` (in a thread); a refusal is logged and put on the incident's
        timeline (``footage_recording_refused``) before :class:`NoSpace` is raised."""
        try:
            await asyncio.to_thread(self.check_space)
        except NoSpace as refused:
            params = dict(refused.msg.params)
            logger.warning("recording for incident %s refused: %s MB free on the recordings disk, %s MB required",
                           incident_id, params.get("free_mb"), params.get("min_mb"))
            await self._event(incident_id, "footage_recording_refused", actor, {
                "reason": "low_disk", "source_id": source_id, "free_mb": params.get("free_mb"),
                "min_mb": params.get("min_mb")})
            raise

    async def low_disk(self, source_id: int, incident_id: int, free_mb: int | None) -> None:
        """A recording stopped itself below the minimum free space: log it, and put it on the
        incident's timeline (the live stream goes on)."""
        logger.warning("recording of source %s (incident %s) stopped: the recordings disk is low (%s MB free); "
                       "the stream stays live", source_id, incident_id, free_mb)
        await self._event(incident_id, "footage_recording_stopped", "system", {
            "reason": "low_disk", "source_id": source_id, "free_mb": free_mb,
            "min_mb": self.settings.min_free_bytes // 2**20})

    async def _event(self, incident_id: int, kind: str, actor: str, detail: dict[str, Any]) -> None:
        async with self.sessionmaker.begin() as db:
            db.add(IncidentEvent(incident_id=incident_id, at=self.clock(), kind=kind, actor=actor, detail=detail))

    async def start(self, publication: Publication, source_id: int, incident_id: int) -> Recorder:
        """Archive ``publication`` as source ``source_id`` (its row exists) until it ends or
        :meth:`stop`; refuses (:class:`NoSpace`, on the timeline) when the disk is below its minimum."""
        await self.ensure_space(incident_id, source_id=source_id)
        recorder = Recorder(self, publication, source_id, incident_id)
        self.recorders[source_id] = recorder
        recorder.start()
        recorder.forget = asyncio.ensure_future(self._forget_when_stopped(recorder))
        return recorder

    async def _forget_when_stopped(self, recorder: Recorder) -> None:
        await recorder.stopped.wait()
        if self.recorders.get(recorder.source_id) is recorder:
            del self.recorders[recorder.source_id]

    async def stop(self, source_id: int, reason: str = "stopped") -> None:
        recorder = self.recorders.get(source_id)
        if recorder is not None:
            await recorder.stop(reason)

    async def close(self) -> None:
        """Stop every recording (server stop): each open segment is closed and hashed; the
        retention sweep ends."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        await asyncio.gather(*(r.stop("server_stopped") for r in list(self.recorders.values())),
                             return_exceptions=True)

    async def apply(self, source_id: int, incident_id: int, report: Report) -> None:
        """Write one of the writer thread's reports."""
        if isinstance(report, WriterStopped):
            return
        async with self.sessionmaker.begin() as db:
            if isinstance(report, SegmentOpened):
                db.add(FootageSegment(
                    source_id=source_id, incident_id=incident_id, number=report.number, path=report.path,
                    container=report.container, video_codec=report.video_codec, audio_codec=report.audio_codec,
                    width=report.width, height=report.height, started_at=report.started_at, status="recording"))
                return
            segment = (await db.execute(select(FootageSegment).where(
                FootageSegment.source_id == source_id, FootageSegment.number == report.number))).scalar_one()
            segment.ended_at, segment.duration = report.ended_at, report.duration
            segment.size, segment.sha256, segment.status = report.size, report.sha256, "complete"

    # -- retention -------------------------------------------------------------------------------

    def start_retention(self, interval: float = SWEEP_INTERVAL) -> None:
        """Run :meth:`sweep` now and then every ``interval`` seconds (daily) until :meth:`close`;
        nothing with ``retention_days`` 0 (kept forever). Idempotent."""
        if self.settings.retention_days > 0 and self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_daily(interval))

    async def _sweep_daily(self, interval: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("the footage retention sweep failed; next try in %.0f s", interval)
            await asyncio.sleep(interval)

    async def sweep(self) -> dict[int, list[int]]:
        """Delete the files of finished segments that ended more than ``retention_days`` ago and
        whose incident is closed; their rows stay (with their hashes) as "expired", and each
        incident gets one ``footage_expired`` timeline line. Returns {incident id: segment ids}."""
        days = self.settings.retention_days
        if days <= 0:
            return {}
        now = self.clock()
        cutoff = now - dt.timedelta(days=days)
        async with self.sessionmaker() as db:
            rows = (await db.execute(
                select(FootageSegment.id, FootageSegment.incident_id, FootageSegment.source_id, FootageSegment.path,
                       FootageSegment.ended_at, FootageSegment.size)
                .join(Incident, Incident.id == FootageSegment.incident_id)
                .where(FootageSegment.status.in_(FINISHED), Incident.status == "closed")
                .order_by(FootageSegment.id))).all()
        recording = set(self.recorders)
        due = [r for r in rows if r.ended_at is not None and as_utc(r.ended_at) <= cutoff
               and r.source_id not in recording]
        if not due:
            return {}
        await asyncio.to_thread(self._delete_files, [r.path for r in due])
        expired: dict[int, list[int]] = {}
        async with self.sessionmaker.begin() as db:
            for r in due:
                segment = await db.get(FootageSegment, r.id)
                if segment is None or segment.status not in FINISHED:
                    continue
                segment.status = "expired"
                expired.setdefault(r.incident_id, []).append(r.id)
            sizes = {r.id: r.size or 0 for r in due}
            for incident_id, ids in expired.items():
                db.add(IncidentEvent(incident_id=incident_id, at=now, kind="footage_expired", actor="system", detail={
                    "segments": len(ids), "segment_ids": ids, "days": days,
                    "bytes": sum(sizes[i] for i in ids)}))
        for incident_id, ids in expired.items():
            logger.info("footage retention: %d segments of incident %s expired (files deleted, hashes kept)",
                        len(ids), incident_id)
        return expired

    def _delete_files(self, paths: list[str]) -> None:
        """In a thread: the files go (one already gone is fine), then any folder left empty."""
        root = self.settings.directory.resolve()
        for relative in paths:
            path = (self.settings.directory / relative).resolve()
            if root not in path.parents:
                logger.error("footage retention: %s is outside the recordings directory; not deleted", relative)
                continue
            try:
                path.unlink(missing_ok=True)
            except OSError:
                logger.exception("footage retention: %s could not be deleted", relative)
                continue
            for folder in (path.parent, path.parent.parent):
                try:
                    folder.rmdir()  # only if empty
                except OSError:
                    break

    async def segments(self, source_id: int) -> list[FootageSegment]:
        async with self.sessionmaker() as db:
            return list((await db.execute(select(FootageSegment).where(FootageSegment.source_id == source_id)
                                          .order_by(FootageSegment.number))).scalars())

    async def recover(self) -> list[int]:
        """At start: finish what a crash left open. Segments still "recording" (and files of
        open sources that never got a row) are hashed, measured and marked "recovered"; their
        sources are closed as "lost". Returns the ids of the segments recovered."""
        async with self.sessionmaker() as db:
            open_segments = list((await db.execute(select(FootageSegment).where(
                FootageSegment.status == "recording").order_by(FootageSegment.id))).scalars())
            open_sources = list((await db.execute(select(FootageSource).where(
                FootageSource.ended_at.is_(None)))).scalars())
            known = set((await db.execute(select(FootageSegment.path).where(
                FootageSegment.source_id.in_([s.id for s in open_sources])))).scalars()) if open_sources else set()
        recovered: list[int] = []
        # Files an open source wrote whose row the crash did not leave time to write.
        orphans: list[tuple[FootageSource, int, str]] = []
        for source in open_sources:
            folder = self.settings.directory / f"{source.incident_id}/{source.id}"
            for path in sorted(folder.glob("*")) if folder.is_dir() else []:
                match = SEGMENT_NAME.fullmatch(path.name)
                relative = f"{source.incident_id}/{source.id}/{path.name}"
                if match and int(match.group(1)) == source.id and relative not in known:
                    orphans.append((source, int(match.group(2)), relative))
        for segment in open_segments:
            finished = await asyncio.to_thread(self._measure, self.settings.directory / segment.path)
            async with self.sessionmaker.begin() as db:
                row = await db.get(FootageSegment, segment.id)
                if row is None:
                    continue
                row.sha256, row.size, row.duration = finished["sha256"], finished["size"], finished["duration"]
                row.ended_at = as_utc(row.started_at) + dt.timedelta(seconds=finished["duration"] or 0.0)
                row.status = "recovered"
            recovered.append(segment.id)
            logger.warning("segment %s (%s) was cut short by a stop: recovered, %.1f s, %s bytes",
                           segment.id, segment.path, finished["duration"] or 0.0, finished["size"])
        for source, number, relative in orphans:
            finished = await asyncio.to_thread(self._measure, self.settings.directory / relative)
            started = as_utc(source.started_at)
            async with self.sessionmaker.begin() as db:
                row = FootageSegment(
                    source_id=source.id, incident_id=source.incident_id, number=number, path=relative,
                    container=relative.rsplit(".", 1)[-1], started_at=started,
                    ended_at=started + dt.timedelta(seconds=finished["duration"] or 0.0),
                    duration=finished["duration"], size=finished["size"], sha256=finished["sha256"],
                    status="recovered", **finished["streams"])
                db.add(row)
                await db.flush()
                recovered.append(row.id)
        if open_sources:
            async with self.sessionmaker.begin() as db:
                for source in open_sources:
                    lost = await db.get(FootageSource, source.id)
                    if lost is not None and lost.ended_at is None:
                        lost.ended_at, lost.end_reason = utcnow(), "lost"
        self.start_retention()
        return recovered

    @staticmethod
    def _measure(path: pathlib.Path) -> dict[str, Any]:
        """A cut-short file's hash, size, length and streams (in a thread)."""
        if not path.exists():
            return {"sha256": None, "size": 0, "duration": None, "streams": {}}
        sha256, size = sha256_of(path)
        streams: dict[str, Any] = {}
        try:
            with av.open(str(path)) as container:
                for stream in container.streams:
                    context: Any = stream.codec_context
                    if stream.type == "video":
                        streams.update(video_codec=context.name.upper(), width=context.width or None,
                                       height=context.height or None)
                    elif stream.type == "audio":
                        streams["audio_codec"] = context.name
        except (av.FFmpegError, OSError):
            pass
        return {"sha256": sha256, "size": size, "duration": media_duration(path), "streams": streams}


def settings_from(directory: str | os.PathLike[str], segment_seconds: float, min_free_bytes: int,
                  retention_days: float = 0.0) -> RecordingSettings:
    return RecordingSettings(pathlib.Path(directory), segment_seconds, min_free_bytes, retention_days=retention_days)


__all__ = ["Archive", "Recorder", "RecordingSettings", "SegmentWriter", "h264_nal_units", "h264_parameter_sets",
           "h264_sps_size", "media_duration", "settings_from", "sha256_of", "vp8_size"]
