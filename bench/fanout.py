"""Fan-out benchmark: one VP8 publisher to N subscribers through the real server.

Runs the server twice in one run, as separate processes: first the SFU
(forwarding encoded packets), then the baseline that decodes once and
re-encodes per subscriber the way stock aiortc MediaRelay does (bench/transcoding.py,
served with ``--forwarding transcode``). Subscribers run
in separate worker processes and do not decode (they count the encoded frames
they receive), so load clients stay cheap. The publisher loops pre-encoded VP8
640x360 at 30 fps.

    python bench/fanout.py --subscribers 10
    python bench/fanout.py --subscribers 50 --json
    python bench/fanout.py --subscribers 150 --busy-cores 1 --no-baseline

Every frame the publisher sends ends with its send time (``time.monotonic_ns()``, 8 bytes);
subscribers read it off the frame's marker packet on arrival, on the same clock, so latency is
one-way, per frame. Frames are counted by their send time: the window is the frames *sent*
during the measurement, on the publisher's and every subscriber's side alike, so no
subscriber can count more than the source sent. ``frames_delivered_pct`` is the share of
those that arrived within a grace of 2 s; ``publications_removed`` counts removals of the
publication announced during the run (the watchdog must never remove a live one).

CPU is reported as core-seconds per second of the server process (all its
threads, from /proc), and as a ratio against the baseline measured in this run.

The publisher's 4 s loop starts with a keyframe. ``--keyframe-cap PCT`` caps that keyframe
at PCT % of one frame's share of the bitrate, as a browser's WebRTC VP8 encoder caps its own
(libvpx ``rc_max_intra_bitrate_pct``, about 900 at 30 fps): ~17 KB, 15 packets, for the
default 700 kbps. ``--keyframe-cap 0`` leaves it uncapped (~110 KB, ~92 packets: the figures
before this option; each one is a burst of N x 92 packets, which sets the p99). Both sizes
are printed (``keyframe_bytes``, ``mean_frame_bytes``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import struct
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

ROOM = "bench"
BENCH_PASSWORD = "bench-password-1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def stop_processes(workers: list[asyncio.subprocess.Process], server: asyncio.subprocess.Process) -> None:
    """Kill the load workers; stop the server gracefully (it stops its own children), or kill it."""
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
        await worker.wait()
    with contextlib.suppress(ProcessLookupError):
        server.terminate()
    try:
        await asyncio.wait_for(server.wait(), 10)
    except TimeoutError:
        server.kill()
        await server.wait()


def process_cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU of a process and all its threads, and (by default) of its live
    child processes and the children it has reaped: the server's evidence worker counts
    as server CPU."""
    def stat(p: int | str) -> list[str]:
        with open(f"/proc/{p}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    fields = stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])  # reaped children
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    child = stat(entry)
                except OSError:
                    continue
                if int(child[1]) == pid:
                    ticks += int(child[11]) + int(child[12])
    return ticks / CLOCK_TICKS


def process_tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of ``pid`` itself and of each live child process, by pid (media workers)."""
    found = {pid: process_cpu_seconds(pid, children=False)}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                if parent == pid:
                    found[int(entry)] = process_cpu_seconds(int(entry), children=False)
            except (OSError, ValueError, IndexError):
                continue
    return found


async def scrape_metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The server's ``/metrics`` (its ``--metrics-address``) as {(sample name, labels): value}; empty
    if it cannot be read (the transcoding baseline serves the same page)."""
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    except (aiohttp.ClientError, OSError):
        return {}
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def server_stalls(before: dict[Any, float], after: dict[Any, float]) -> dict[str, Any]:
    """What stopped the server's event loop during the window, from its own histograms: loop-lag
    samples (4 a second) later than 100 ms, the worst lag bucket reached, and the cyclic garbage
    collector's pauses (count, seconds, by generation)."""
    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    if not after:
        return {}
    bounds = sorted(float(dict(labels)["le"]) for name, labels in after
                    if name == "dutycall_event_loop_lag_seconds_bucket" and dict(labels).get("worker") == "main")
    counts = {b: delta("dutycall_event_loop_lag_seconds_bucket", worker="main", le=_le(b)) for b in bounds}
    total = delta("dutycall_event_loop_lag_seconds_count", worker="main")
    worst = next((b for b in bounds if counts[b] >= total), None) if total else None
    return {
        "loop_lag_samples": int(total),
        "loop_lag_over_100ms": int(total - counts.get(0.1, total)),
        "loop_lag_worst_bucket_ms": None if worst is None else (worst * 1000 if worst != float("inf") else "inf"),
        "gc_pauses": {g: [int(delta("dutycall_gc_pause_seconds_count", worker="main", generation=g)),
                          round(delta("dutycall_gc_pause_seconds_sum", worker="main", generation=g), 3)]
                      for g in ("0", "1", "2")},
    }


def _le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString

    return floatToGoString(bound)


def udp_counters() -> dict[str, int]:
    """The network namespace's UDP counters (``/proc/net/snmp``); empty where there are none."""
    try:
        with open("/proc/net/snmp") as f:
            rows = [line.split() for line in f if line.startswith("Udp:")]
        return {name: int(value) for name, value in zip(rows[0][1:], rows[1][1:])}
    except (OSError, IndexError, ValueError):
        return {}


# -- the publisher's frames carry their send time -------------------------------------------

STAMP = struct.Struct(">Q")


def stamped_track(packets: list[bytes], fps: int = 30) -> Any:
    """A pre-encoded VP8 track whose every frame ends with 8 bytes: ``time.monotonic_ns()`` when
    it was handed to the sender. The server forwards frames as they are, and subscribers read the
    stamp off the frame's last RTP packet (the one with the marker bit) on the same clock
    (CLOCK_MONOTONIC is one clock for every process of the machine). Subscribers do not decode."""
    import av

    from dutycall.synthetic import PreEncodedTrack

    class StampedTrack(PreEncodedTrack):
        def __init__(self) -> None:
            super().__init__(packets, fps=fps)
            self.sent_ns: list[int] = []

        async def recv(self) -> av.Packet:
            packet = await super().recv()
            now = time.monotonic_ns()
            stamped = av.Packet(stamp_frame(bytes(packet), now))
            stamped.pts, stamped.time_base, stamped.is_keyframe = packet.pts, packet.time_base, packet.is_keyframe
            self.sent_ns.append(now)
            return stamped

    return StampedTrack()


#: What a VP8 packetizer (aiortc's, the server's) puts of a frame into each RTP packet:
#: 1300 bytes less a payload descriptor of 1 to 4 bytes.
VP8_CHUNKS = (1296, 1297, 1298, 1299)


def stamp_frame(frame: bytes, now_ns: int) -> bytes:
    """``frame`` + a few zero bytes + the 8-byte stamp, padded so that however the frame is cut
    into RTP packets the stamp is whole in the last one (the one with the marker bit)."""
    for pad in range(16):
        size = len(frame) + pad + STAMP.size
        if all(size % chunk == 0 or size % chunk >= STAMP.size for chunk in VP8_CHUNKS):
            return frame + bytes(pad) + STAMP.pack(now_ns)
    raise AssertionError("no padding fits")  # pragma: no cover - 16 covers 4 chunk sizes


def rtp_payload_end(data: bytes) -> bytes | None:
    """The last 8 bytes of an RTP packet's payload (RFC 3550: padding excluded)."""
    end = len(data)
    if data[0] & 0x20:  # padding: its last octet counts the padding octets
        end -= data[-1]
    return data[end - STAMP.size:end] if end - STAMP.size >= 12 else None


# -- worker: N subscribers in one process ----------------------------------------------


async def run_worker(url: str, publication_id: str, count: int, first_index: int) -> None:
    from dutycall.client import SignallingClient, sign_in, subscribe
    from dutycall.conference import aiortc_compat

    # One duty room's console per subscriber: the server allows few sockets per principal.
    tokens = json.loads(os.environ["DUTYCALL_BENCH_TOKENS"])
    base = url.replace("ws://", "http://", 1).removesuffix("/ws")
    aiortc_compat.set_host_addresses(["127.0.0.1"])
    subscribers = []
    # Per subscriber: (send time, arrival time) of every frame, read on its marker packet at
    # once (no jitter buffer here: the load clients add no frame of delay of their own).
    frames: list[list[tuple[int, int]]] = [[] for _ in range(count)]
    packets = [0]
    markers = [0] * count  # every frame, stamped or not (the transcoding baseline drops stamps)
    recording = [True]

    def reader(i: int) -> Any:
        def on_packet(data: bytes) -> None:
            packets[0] += 1
            if len(data) < 12 or not data[1] & 0x80 or not recording[0]:
                return
            markers[i] += 1
            stamp = rtp_payload_end(data)
            if stamp is not None:
                frames[i].append((STAMP.unpack(stamp)[0], time.monotonic_ns()))
        return on_packet

    for i in range(count):
        cookies = await sign_in(base, device_token=tokens[i])
        client = await SignallingClient(url, cookies=cookies).connect()
        await client.join(ROOM, f"sub{first_index + i}")
        pc, _, _ = await subscribe(client, publication_id, passthrough=True)
        aiortc_compat.read_rtp_only(pc, reader(i))
        subscribers.append((client, pc))

    deadline = time.monotonic() + 60
    while not all(frames) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    print("ready", flush=True)

    loop = asyncio.get_running_loop()
    reader_pipe = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader_pipe), sys.stdin)
    await reader_pipe.readline()  # "start"
    # Packets and time taken at the same instant (nothing awaited between them).
    start_packets, start_markers, t0 = packets[0], list(markers), time.monotonic()
    for own in frames:
        own.clear()
    window = (await reader_pipe.readline()).split()  # "stop <first send ns> <end send ns>"
    end_packets, end_markers, t1 = packets[0], list(markers), time.monotonic()
    recording[0] = False
    first, end = int(window[1]), int(window[2])
    delivered, latencies_us = [], []
    for own in frames:
        mine = [(sent, arrived) for sent, arrived in own if first <= sent < end]
        delivered.append(len(mine))
        latencies_us += [(arrived - sent) // 1000 for sent, arrived in mine]
    print(json.dumps({
        "delivered": delivered,
        "latencies_us": latencies_us,
        "packets_per_s": (end_packets - start_packets) / (t1 - t0),
        "any_fps": [(e - s) / (t1 - t0) for s, e in zip(start_markers, end_markers)],
    }), flush=True)
    for client, pc in subscribers:
        await pc.close()
        await client.close()


# -- one measurement: a server mode, a publisher, N subscribers ------------------------

#: Seconds a frame sent inside the window may take to arrive and still count as delivered.
GRACE = 2.0
#: Seconds each worker process may take to have its consoles connected and receiving.
READY_TIMEOUT = 600


def _percentile(sorted_us: list[int], pct: float) -> float | None:
    if not sorted_us:
        return None
    return round(sorted_us[min(len(sorted_us) - 1, int(len(sorted_us) * pct / 100))] / 1000, 2)


def _removals(client: Any, publication_id: str) -> int:
    """Removals of the publication announced to its publisher so far (events drained)."""
    count = 0
    while not client.events.empty():
        event = client.events.get_nowait()
        count += event.get("type") == "publication_removed" and event.get("publication_id") == publication_id
    return count


async def wait_healthy(port: int, proc: asyncio.subprocess.Process, timeout: float = 30) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError("server exited during start-up")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError("server did not become healthy")


async def measure(mode: str, subscribers: int, per_worker: int, seconds: float, packets: list[bytes],
                  busy_cores: int = 0, server_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """One server (``mode``: "passthrough" or the "transcode" baseline; ``server_args`` appended to
    its command line), one stamped 640x360 30 fps publisher, ``subscribers`` lean consoles in
    worker processes; the figures over one window of sent frames."""
    import tempfile

    import aiohttp

    from bench.common import Host
    from dutycall.client import SignallingClient, publish, sign_in
    from dutycall.conference import aiortc_compat
    aiortc_compat.set_host_addresses(["127.0.0.1"])
    port = free_port()
    metrics_port = free_port()
    data = tempfile.mkdtemp(prefix="dutycall-bench-")
    # The baseline is no part of the server: bench/transcoding.py registers it, then serves.
    entry = "bench.transcoding" if mode == "transcode" else "dutycall.server"
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", entry, "--host", "127.0.0.1", "--port", str(port),
        "--ice-addresses", "127.0.0.1", "--forwarding", mode, "--log-level", "WARNING",
        "--database-url", f"sqlite:///{data}/bench.sqlite3", "--metrics-address", f"127.0.0.1:{metrics_port}",
        *server_args,
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL,
        env={**os.environ, "DUTYCALL_ADMIN_PASSWORD": BENCH_PASSWORD},
    )
    workers: list[asyncio.subprocess.Process] = []
    busy: list[asyncio.subprocess.Process] = []
    try:
        await wait_healthy(port, server)
        url = f"ws://127.0.0.1:{port}/ws"
        cookies = await sign_in(f"http://127.0.0.1:{port}", "admin", BENCH_PASSWORD)
        pub_client = await SignallingClient(url, cookies=cookies).connect()
        await pub_client.join(ROOM, "publisher")
        track = stamped_track(packets, fps=30)
        pub_pc, published = await publish(pub_client, video=track)
        # The publisher (an administrator) opened the free-form room: let one console per subscriber in.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            host = await Host(http, f"http://127.0.0.1:{port}").sign_in()
            room_ids, tokens = await host.create_rooms(subscribers)
            for room_id in room_ids:
                await host.post(f"/api/conference-rooms/{ROOM}/invites", {"duty_room_id": room_id})

        index = 0
        while index < subscribers:
            count = min(per_worker, subscribers - index)
            workers.append(await asyncio.create_subprocess_exec(
                sys.executable, os.path.abspath(__file__), "--worker", url, published["publication_id"],
                str(count), str(index), cwd=ROOT,
                env={**os.environ, "DUTYCALL_BENCH_TOKENS": json.dumps(tokens[index:index + count])},
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            ))
            index += count
        for worker in workers:
            # Workers start one after another's consoles sign in and subscribe: on a loaded
            # machine 150 consoles take minutes.
            line = await asyncio.wait_for(worker.stdout.readline(), READY_TIMEOUT)
            if line.strip() != b"ready":
                raise RuntimeError(f"worker failed to start: {line!r}")
        # K processes that each keep a core busy, beside the server for the whole run.
        for _ in range(busy_cores):
            busy.append(await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass"))
        await asyncio.sleep(2.0)  # let every stream settle before measuring
        removed_before = _removals(pub_client, published["publication_id"])

        for worker in workers:
            worker.stdin.write(b"start\n")
            await worker.stdin.drain()
        metrics0 = await scrape_metrics(metrics_port)
        tree0 = process_tree_cpu(server.pid)
        udp0 = udp_counters()
        keyframes0 = track.keyframes_sent
        cpu0, t0, first_ns = process_cpu_seconds(server.pid), time.monotonic(), time.monotonic_ns()
        await asyncio.sleep(seconds)
        cpu1, t1, end_ns = process_cpu_seconds(server.pid), time.monotonic(), time.monotonic_ns()
        tree1 = process_tree_cpu(server.pid)
        udp1 = udp_counters()
        keyframes = track.keyframes_sent - keyframes0
        metrics1 = await scrape_metrics(metrics_port)
        # Per process (the server's control process first, then each child: media workers, and
        # the evidence pool if it ran), over the same window.
        per_process = [(tree1[p] - tree0[p]) / (t1 - t0) for p in sorted(tree1, key=lambda p: (p != server.pid, p))
                       if p in tree0]
        # The window is the frames *sent* in [first_ns, end_ns): the publisher's count and every
        # subscriber's are over the same frames. Those still in flight get a grace to arrive.
        sent = sum(1 for t in track.sent_ns if first_ns <= t < end_ns)
        await asyncio.sleep(GRACE)
        for worker in workers:
            worker.stdin.write(f"stop {first_ns} {end_ns}\n".encode())
            await worker.stdin.drain()
        delivered: list[int] = []
        any_fps: list[float] = []
        latencies: list[int] = []
        packets_per_s = 0.0
        for worker in workers:
            result = json.loads(await asyncio.wait_for(worker.stdout.readline(), 120))
            delivered += result["delivered"]
            any_fps += result["any_fps"]
            latencies += result["latencies_us"]
            packets_per_s += result["packets_per_s"]
        removed = removed_before + _removals(pub_client, published["publication_id"])
        server_cpu = (cpu1 - cpu0) / (t1 - t0)
        window = (end_ns - first_ns) / 1e9
        latencies.sort()
        await pub_pc.close()
        await pub_client.close()
        return {
            "mode": mode,
            "server_cpu": server_cpu,
            "packets_out_per_s": packets_per_s,
            "us_per_packet": server_cpu / packets_per_s * 1e6 if packets_per_s else None,
            "publisher_fps": sent / window,
            "min_fps": min(delivered) / window if delivered else 0.0,
            # Frames whatever their content, over the worker's own start/stop (the baseline's
            # re-encoded frames carry no stamp).
            "min_any_fps": min(any_fps) if any_fps else 0.0,
            "mean_fps": sum(delivered) / len(delivered) / window if delivered else 0.0,
            "frames_delivered_pct": 100.0 * sum(delivered) / (sent * len(delivered)) if sent and delivered else 0.0,
            "latency_p50_ms": _percentile(latencies, 50),
            "latency_p99_ms": _percentile(latencies, 99),
            "publications_removed": removed,
            # Where frames went missing: datagrams the kernel dropped because a receiver's socket
            # buffer was full (a load client, or the server's own socket, read too late), and the
            # keyframes the publisher made on request (each one is a burst of packets).
            "udp_rcvbuf_drops": udp1.get("RcvbufErrors", 0) - udp0.get("RcvbufErrors", 0),
            "publisher_keyframes": keyframes,
            **server_stalls(metrics0, metrics1),
            "worker_cpu": [round(c, 4) for c in per_process],
        }
    finally:
        for process in busy:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        await stop_processes(workers, server)
        import shutil

        shutil.rmtree(data, ignore_errors=True)


KEYFRAME_CAP_HELP = ("cap the publisher's keyframe at PCT %% of a frame's share of the bitrate, as a "
                     "browser's VP8 encoder does (default 900); 0: uncapped")


def keyframe_cap_arg(text: str) -> int:
    """``--keyframe-cap``: a percentage, 0 (uncapped) or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("a percentage, 0 or more (0: uncapped)")
    return value


def baseline_delivered(baseline: dict[str, Any], source_fps: float) -> bool:
    """Whether a baseline run delivered enough to compare with: one whose worst subscriber got
    under half the source's rate cost next to nothing, so no ratio is taken from it."""
    if baseline["min_any_fps"] >= 0.5 * source_fps and baseline["server_cpu"]:
        return True
    print(f"warning: the baseline's worst subscriber got {baseline['min_any_fps']:.1f} fps: no ratio",
          file=sys.stderr)
    return False


def leader_packets(bitrate: int, keyframe_cap: int) -> tuple[list[bytes], dict[str, Any]]:
    """The publisher's pre-encoded 640x360 30 fps loop, and what its frames weigh."""
    from dutycall.synthetic import PreEncodedTrack

    packets = PreEncodedTrack.encode("vp8", 640, 360, 30, bitrate, seconds=4.0,
                                     max_intra_pct=keyframe_cap or None)
    return packets, {"keyframe_cap_pct": keyframe_cap, "keyframe_bytes": len(packets[0]),
                     "mean_frame_bytes": round(sum(map(len, packets[1:])) / max(1, len(packets) - 1))}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    packets, sizes = leader_packets(args.bitrate, args.keyframe_cap)
    server_args = ("--media-workers", str(args.media_workers)) if args.media_workers else ()
    sfu = await measure("passthrough", args.subscribers, args.per_worker, args.seconds, packets, args.busy_cores,
                        server_args)
    cpu = sfu["worker_cpu"]
    result = {
        "subscribers": args.subscribers,
        "busy_cores": args.busy_cores,
        "server_cpu": round(sfu["server_cpu"], 4),
        "packets_out_per_s": round(sfu["packets_out_per_s"], 1),
        "us_per_packet": round(sfu["us_per_packet"], 1) if sfu["us_per_packet"] else None,
        "publisher_fps": round(sfu["publisher_fps"], 2),
        "min_fps": round(sfu["min_fps"], 2),
        "mean_fps": round(sfu["mean_fps"], 2),
        "frames_delivered_pct": round(sfu["frames_delivered_pct"], 2),
        "latency_p50_ms": sfu["latency_p50_ms"],
        "latency_p99_ms": sfu["latency_p99_ms"],
        "publications_removed": sfu["publications_removed"],
        "min_any_fps": round(sfu["min_any_fps"], 2),
        "udp_rcvbuf_drops": sfu["udp_rcvbuf_drops"],
        "publisher_keyframes": sfu["publisher_keyframes"],
        **sizes,
        **{key: sfu[key] for key in ("loop_lag_samples", "loop_lag_over_100ms", "loop_lag_worst_bucket_ms",
                                     "gc_pauses") if key in sfu},
        "media_workers": args.media_workers,
        # The control process first, then each media worker: the load spread over cores.
        "worker_cpu": cpu,
        "busiest_share": round(max(cpu) / sum(cpu), 3) if cpu and sum(cpu) else None,
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
    }
    if not args.baseline:
        return result
    baseline = await measure("transcode", args.subscribers, args.per_worker, args.seconds, packets, args.busy_cores)
    if not baseline_delivered(baseline, sfu["publisher_fps"]):
        return {**result, "baseline_server_cpu": round(baseline["server_cpu"], 4), "ratio": None,
                "baseline_min_fps": round(baseline["min_any_fps"], 2)}
    return {
        **result,
        "server_cpu": round(sfu["server_cpu"], 4),
        "baseline_server_cpu": round(baseline["server_cpu"], 4),
        "ratio": round(sfu["server_cpu"] / baseline["server_cpu"], 4) if baseline["server_cpu"] else None,
        "packets_out_per_s": round(sfu["packets_out_per_s"], 1),
        "us_per_packet": round(sfu["us_per_packet"], 1) if sfu["us_per_packet"] else None,
        "min_fps": round(sfu["min_fps"], 2),
        "mean_fps": round(sfu["mean_fps"], 2),
        "baseline_packets_out_per_s": round(baseline["packets_out_per_s"], 1),
        "baseline_us_per_packet": round(baseline["us_per_packet"], 1) if baseline["us_per_packet"] else None,
        "baseline_min_fps": round(baseline["min_any_fps"], 2),
    }


def print_table(result: dict[str, Any]) -> None:
    get = result.get
    rows = [
        ("subscribers", result["subscribers"], ""),
        ("busy cores beside", result["busy_cores"], ""),
        ("server CPU (core-s/s)", result["server_cpu"], get("baseline_server_cpu", "")),
        ("ratio SFU / baseline", get("ratio", ""), ""),
        ("packets out per s", result["packets_out_per_s"], get("baseline_packets_out_per_s", "")),
        ("server µs per packet", result["us_per_packet"], get("baseline_us_per_packet", "")),
        ("publisher fps", result["publisher_fps"], ""),
        ("worst subscriber fps", result["min_fps"], get("baseline_min_fps", "")),
        ("mean subscriber fps", result["mean_fps"], ""),
        ("frames delivered %", result["frames_delivered_pct"], ""),
        ("latency p50 / p99 ms", f"{result['latency_p50_ms']} / {result['latency_p99_ms']}", ""),
        ("publications removed", result["publications_removed"], ""),
        ("UDP receive-buffer drops", result["udp_rcvbuf_drops"], ""),
        ("publisher keyframes", result["publisher_keyframes"], ""),
        ("keyframe / mean frame bytes", f"{result['keyframe_bytes']} / {result['mean_frame_bytes']}", ""),
        ("CPU per process (control, workers)", result["worker_cpu"], ""),
    ]
    print(f"{'':28}{'SFU':>16}{'baseline':>12}")
    for name, sfu, base in rows:
        print(f"{name:28}{sfu!s:>16}{base!s:>12}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, publication_id, count, first = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        asyncio.run(run_worker(url, publication_id, count, first))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", "-n", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window per mode")
    parser.add_argument("--per-worker", type=int, default=10, help="subscribers per worker process")
    parser.add_argument("--bitrate", type=int, default=700_000, help="publisher bitrate (bps)")
    parser.add_argument("--busy-cores", type=int, default=0,
                        help="busy-loop processes beside the server for the run (CPU contention)")
    parser.add_argument("--keyframe-cap", type=keyframe_cap_arg, default=900, metavar="PCT", help=KEYFRAME_CAP_HELP)
    parser.add_argument("--media-workers", type=int, default=0,
                        help="the server's media worker processes (--media-workers); 0: none")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the transcoding baseline (no CPU ratio)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
