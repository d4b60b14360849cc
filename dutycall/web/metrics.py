"""``/metrics``: the server's load in the Prometheus text format, for operators to see pressure
before users feel it.

Served on the main port to a signed-in administrator, or to a scraper presenting
``Authorization: Bearer <DUTYCALL_METRICS_TOKEN>``; and, with ``--metrics-address host:port``,
on a separate listener without sign-in (bind it to an internal address only).

Everything is read at scrape time by :class:`DutycallCollector` from counters the objects keep
anyway (``conference/metrics.py``): nothing is added to the media path. A scrape is one
synchronous walk of the rooms on the event loop. The only thing that runs in between is
:class:`LoopLag`, a task that sleeps 0.25 s and measures how late it wakes.

Metrics about the process carry ``worker="main"``; with media workers (``--media-workers``) each
worker's CPU, subscriptions and frames are reported as ``worker="media<N>"`` from the figures it
sends the control process every second.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .. import memory
from ..conference import ConferenceCounters, Label
from ..config import split_address
from ..directory.errors import Forbidden
from ..directory.models import Role
from ..directory.principal import PrincipalKind
from ..messages import Msg
from .auth import PRINCIPAL, error_response
from .field import FIELD
from .footage import ARCHIVE, INGEST, WHEP
from .footage_views import RELAYS
from .keys import CONFERENCE, CONFIG, COORDINATOR
from .rtsp import RTSP

logger = logging.getLogger(__name__)

#: The classic text format (every name here is a legacy one): what Prometheus 2.x and 3.x both read.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: This process's name in per-worker metrics.
WORKER = "main"
KINDS = ("audio", "video")

class Listener:
    """The separate metrics listener (``--metrics-address``), while it runs."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None

    @property
    def addresses(self) -> list[Any]:
        """Where it listens (host, port, ...), e.g. the port picked for ``host:0``; [] when off."""
        return list(self.runner.addresses) if self.runner is not None else []


REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
LISTENER = web.AppKey("metrics_listener", Listener)


class LoopLag:
    """How late the event loop wakes a task that sleeps :data:`INTERVAL`: the time every
    callback (a packet, a request) waits for its turn. A saturated loop shows here first."""

    INTERVAL = 0.25

    def __init__(self, registry: CollectorRegistry) -> None:
        self.last = Gauge("dutycall_event_loop_lag_last_seconds",
                          "How late the event loop woke a 0.25 s sleep, the last time", ["worker"],
                          registry=registry).labels(WORKER)
        self.histogram = Histogram("dutycall_event_loop_lag_seconds",
                                   "How late the event loop wakes a 0.25 s sleep (sampled 4 times a second)",
                                   ["worker"], registry=registry,
                                   buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
                                   ).labels(WORKER)
        #: The loop thread's native id (its CPU time is read on it), set when the task starts.
        self.thread: int | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.thread = threading.get_native_id()
        while True:
            started = loop.time()
            await asyncio.sleep(self.INTERVAL)
            lag = max(0.0, loop.time() - started - self.INTERVAL)
            self.last.set(lag)
            self.histogram.observe(lag)


class DutycallCollector(Collector):
    """Rooms, participants, publications, frames and packets in and out, drops and why, keyframe
    requests, roll-calls and footage sources, and the process's CPU: read when scraped."""

    def __init__(self, app: web.Application, lag: LoopLag, gc_pauses: memory.GcPauses) -> None:
        self.app = app
        self.lag = lag
        self.gc_pauses = gc_pauses
        self.counters = ConferenceCounters(app[CONFERENCE])

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        counts = self.counters.read()
        yield _gauge("dutycall_metrics_walk_seconds", "How long the last scrape's walk of the rooms took "
                     "(it runs on the event loop)", time.perf_counter() - started)
        yield _gauge("dutycall_rooms", "Open rooms", counts.rooms)
        yield _gauge("dutycall_participants", "Participants in every room", counts.participants)
        yield _gauge("dutycall_publications", "Open publications (a participant's camera, a WHIP or RTSP source)",
                     counts.publications)
        subscriptions = GaugeMetricFamily("dutycall_subscriptions",
                                          "Open subscriptions, by type (publication: one publication; floor: "
                                          "a roll-call's whoever-has-the-floor)", labels=["type"])
        for kind, value in counts.subscriptions.items():
            subscriptions.add_metric([kind], value)
        yield subscriptions
        yield _by_kind("dutycall_published_tracks", "Published tracks", counts.published_tracks)
        yield _by_kind("dutycall_subscriber_tracks",
                       "Subscriber copies of published tracks (subscriptions and archive taps)",
                       counts.subscriber_tracks)
        yield _by_kind("dutycall_frames_queued",
                       "Frames waiting in subscriber queues now", counts.frames_queued)
        yield _by_kind("dutycall_subscriber_tracks_waiting_keyframe",
                       "Subscriber tracks waiting for a keyframe now", counts.waiting_for_keyframe)
        yield _by_kind("dutycall_ingress_lateness_max_seconds",
                       "How late the latest frame reached the server, worst source (from its RTP timestamps)",
                       counts.worst_lateness)
        yield _by_kind("dutycall_source_silence_max_seconds",
                       "Seconds since a source's last frame, worst source", counts.worst_silence)
        yield _column(counts.forwarders, 0, "dutycall_frames_received",
                      "Frames received from publishers")
        yield _column(counts.forwarders, 1, "dutycall_keyframes_received", "Keyframes received from publishers")
        yield _column(counts.forwarders, 2, "dutycall_keyframe_requests",
                      "Keyframe requests (PLI) sent to publishers, after coalescing")
        yield _column(counts.tracks, 0, "dutycall_frames_forwarded", "Frames handed to subscriber senders")
        dropped = CounterMetricFamily(
            "dutycall_frames_dropped",
            "Frames not forwarded to a subscriber, by reason (stale: waited too long under load; "
            "overflow_or_keyframe_wait: a full queue, or delta frames skipped until a keyframe)",
            labels=["kind", "reason"])
        for kind in KINDS:
            values = counts.tracks.get((kind,), [0.0] * 4)
            dropped.add_metric([kind, "stale"], values[2])
            dropped.add_metric([kind, "overflow_or_keyframe_wait"], max(0.0, values[1] - values[2]))
        yield dropped
        yield _column(counts.tracks, 3, "dutycall_queue_overflows", "Subscriber queues that overflowed")
        yield _column(counts.packets_received, 0, "dutycall_rtp_packets_received", "RTP packets received")
        yield _column(counts.packets_sent, 0, "dutycall_rtp_packets_sent", "RTP packets sent")
        yield from self._services()
        yield from self._process()

    def _services(self) -> Iterator[Metric]:
        app = self.app
        if COORDINATOR in app:
            # The coordinator keeps its live roll-calls in ``_live`` (no public count yet).
            live = getattr(app[COORDINATOR], "_live", {})
            yield _gauge("dutycall_rollcalls_live", "Roll-calls in progress", len(live))
        sources = GaugeMetricFamily("dutycall_footage_sources_live", "Incident footage sources publishing now",
                                    labels=["source"])
        if INGEST in app:
            sources.add_metric(["whip"], len(app[INGEST].sessions))
        if FIELD in app:
            sources.add_metric(["field"], len(app[FIELD].sessions))
        if RTSP in app:
            pulls = tuple(app[RTSP].pulls.values())
            sources.add_metric(["rtsp"], sum(1 for p in pulls if p.state == "live"))
            rtsp = GaugeMetricFamily("dutycall_rtsp_sources", "RTSP sources being pulled, by state", labels=["state"])
            for state in ("connecting", "live", "retrying"):
                rtsp.add_metric([state], sum(1 for p in pulls if p.state == state))
            yield rtsp
        yield sources
        if ARCHIVE in app:
            yield _gauge("dutycall_recordings_active", "Footage recordings being written", len(app[ARCHIVE].recorders))
        if WHEP in app:
            yield _gauge("dutycall_whep_viewings", "WHEP viewings of live footage", len(app[WHEP].viewings))
        if RELAYS in app:
            yield _gauge("dutycall_footage_relays_live", "Footage relays to consoles that are on",
                         len(app[RELAYS].live))

    def _process(self) -> Iterator[Metric]:
        times = os.times()
        cpu = CounterMetricFamily("dutycall_worker_cpu_seconds",
                                  "CPU seconds used by a server process, by worker and mode",
                                  labels=["worker", "mode"])
        cpu.add_metric([WORKER, "user"], times.user)
        cpu.add_metric([WORKER, "system"], times.system)
        workers = self.app[CONFERENCE].worker_stats()
        for worker in workers:  # media workers report user + system together, once a second
            cpu.add_metric([f"media{worker['index']}", "total"], worker["cpu_seconds"])
        yield cpu
        if workers:
            subscriptions = GaugeMetricFamily("dutycall_media_worker_subscriptions",
                                              "Subscriptions whose connection a media worker holds", labels=["worker"])
            forwarded = CounterMetricFamily("dutycall_media_worker_frames_forwarded",
                                            "Frames a media worker handed to its subscribers' senders",
                                            labels=["worker"])
            dropped = CounterMetricFamily("dutycall_media_worker_frames_dropped",
                                          "Frames a media worker did not forward, by reason",
                                          labels=["worker", "reason"])
            for worker in workers:
                name = f"media{worker['index']}"
                subscriptions.add_metric([name], worker["subscriptions"])
                forwarded.add_metric([name], worker["frames_forwarded"])
                dropped.add_metric([name, "stale"], worker["frames_stale"])
                dropped.add_metric([name, "overflow_or_keyframe_wait"],
                                   worker["frames_dropped"] - worker["frames_stale"])
            yield subscriptions
            yield forwarded
            yield dropped
        pauses = self.gc_pauses
        gc_metric = HistogramMetricFamily("dutycall_gc_pause_seconds",
                                          "How long each cyclic garbage collection stopped the server process "
                                          "(its event loop with it), by generation", labels=["worker", "generation"])
        for generation in range(3):
            cumulative, buckets = 0, []
            for bound, count in zip((*pauses.BUCKETS, float("inf")), pauses.buckets[generation]):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            gc_metric.add_metric([WORKER, str(generation)], buckets, pauses.sums[generation])
        yield gc_metric
        if self.lag.thread is not None and threading.get_native_id() == self.lag.thread:
            # Scraped on the loop's own thread (always, from the handlers below): its CPU time,
            # which approaches one second per second as the loop saturates.
            loop_cpu = CounterMetricFamily("dutycall_event_loop_cpu_seconds",
                                           "CPU seconds used by the event loop's thread", labels=["worker"])
            loop_cpu.add_metric([WORKER], time.thread_time())
            yield loop_cpu


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _by_kind(name: str, documentation: str, values: dict[str, int] | dict[str, float]) -> GaugeMetricFamily:
    metric = GaugeMetricFamily(name, documentation, labels=["kind"])
    for kind in KINDS:
        metric.add_metric([kind], values.get(kind, 0))
    return metric


def _column(totals: dict[Label, list[float]], column: int, name: str, documentation: str) -> CounterMetricFamily:
    """Counter ``name`` by kind from column ``column`` of ``totals``."""
    metric = CounterMetricFamily(name, documentation, labels=["kind"])
    for kind in KINDS:
        values = totals.get((kind,))
        metric.add_metric([kind], values[column] if values else 0.0)
    return metric


def setup(app: web.Application) -> None:
    """The registry, ``GET /metrics`` on the main port, the loop-lag task and the separate
    listener (both started and stopped with the app)."""
    registry = CollectorRegistry()
    lag = LoopLag(registry)
    gc_pauses = memory.GcPauses()
    registry.register(DutycallCollector(app, lag, gc_pauses))
    ProcessCollector(registry=registry)  # process_cpu_seconds_total, resident memory, open files
    app[REGISTRY] = registry
    app[LISTENER] = Listener()
    app.router.add_get("/metrics", metrics_signed_in)
    app.cleanup_ctx.append(lambda app: _run(app, lag, gc_pauses))


def exposition(registry: CollectorRegistry) -> web.Response:
    return web.Response(body=generate_latest(registry),
                        headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


async def metrics_signed_in(request: web.Request) -> web.Response:
    """``/metrics`` on the main port: a signed-in administrator, or the metrics bearer token."""
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, given = authorization.partition(" ")
        token = request.app[CONFIG].metrics_token
        # Compared as digests in constant time: neither the token nor its length leaks.
        if scheme.lower() == "bearer" and token and hmac.compare_digest(_digest(given.strip()), _digest(token)):
            return exposition(request.app[REGISTRY])
        response = error_response(request, 401, "not_signed_in", Msg("web.sign_in_first"))
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    principal = request.get(PRINCIPAL)
    if principal is None:
        return error_response(request, 401, "not_signed_in", Msg("web.sign_in_first"))
    if principal.kind != PrincipalKind.ACCOUNT or principal.role != Role.admin:
        raise Forbidden("directory.not_allowed", permission="metrics")
    return exposition(request.app[REGISTRY])


async def _run(app: web.Application, lag: LoopLag, gc_pauses: memory.GcPauses) -> AsyncIterator[None]:
    task = asyncio.ensure_future(lag.run())
    gc_pauses.install()
    runner: web.AppRunner | None = None
    try:
        address = app[CONFIG].metrics_address
        if address:
            host, port = split_address(address)
            site_app = web.Application()
            site_app[REGISTRY] = app[REGISTRY]
            site_app.router.add_get("/metrics", _metrics_open)
            runner = web.AppRunner(site_app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            app[LISTENER].runner = runner
            logger.info("metrics served without sign-in at http://%s/metrics", address)
        yield
    finally:
        gc_pauses.uninstall()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if runner is not None:
            app[LISTENER].runner = None
            await runner.cleanup()


async def _metrics_open(request: web.Request) -> web.Response:
    """``/metrics`` on ``--metrics-address``: no sign-in (the address is the protection)."""
    return exposition(request.app[REGISTRY])
