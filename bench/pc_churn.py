"""Peer-connection churn: does the server's memory per connection come back when it closes?

    python bench/pc_churn.py --cycles 1000 [--arena-max 2] [--trim] [--json]

A server (in a child process, so its memory is its own) and, in this process, one
publisher that stays and ``--lanes`` signalling sockets that each, per cycle, join a room,
publish a video track, subscribe to the publisher (passthrough), wait for frames to arrive
both ways, leave and close both connections: two server-side peer connections opened,
negotiated (ICE, DTLS, SRTP), carrying media and closed per cycle, as a console's move
between standby and a roll-call does. Every ``--report-every`` cycles, with every lane
idle, the server reports its resident memory, glibc's ``mallinfo2`` (heap held vs in use),
its threads and asyncio tasks, and how many live Python objects of each type it holds
(peer connections, transports, publications, tasks...), so a leak of native-backed objects
shows as a count that grows. With ``--trim`` the server also calls ``malloc_trim(0)`` (in
a thread, as ``dutycall.memory.MemoryTrimmer`` does) at each report and says how much it
gave back, how long it took and how long the event loop stalled meanwhile;
``--arena-max N`` starts the server with ``MALLOC_ARENA_MAX=N``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.common import PASSWORD, database_url  # noqa: E402
from bench.fanout import free_port, process_cpu_seconds, wait_healthy  # noqa: E402

ROOM = "churn"
#: Types whose live count the server always reports (by class name).
WATCHED = ("RTCPeerConnection", "RTCDtlsTransport", "RTCIceTransport", "RTCSctpTransport", "RTCRtpReceiver",
           "RTCRtpSender", "RTCRtpTransceiver", "Connection", "Publication", "Subscription", "Participant",
           "TrackForwarder", "ForwardedTrack", "RemoteStreamTrack", "Task", "Future", "Packet", "CodecContext",
           "Session", "SignallingPeer")


# -- the server side: dutycall's app plus a stats command on stdin -------------------------


class LoopLag:
    """The longest delay of a 5 ms timer on the event loop since the last reset."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, time.perf_counter() - start - 0.005)


def type_counts() -> collections.Counter[str]:
    """Live gc-tracked objects by class name."""
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


async def serve(port: int, data: str) -> None:
    from aiohttp import web

    from dutycall import config as config_mod
    from dutycall import memory
    from dutycall.server import _logging, build_parser
    from dutycall.web import create_app

    args = build_parser().parse_args(["--host", "127.0.0.1", "--port", str(port), "--ice-addresses", "127.0.0.1",
                                      "--database-url", database_url(data), "--log-level", "WARNING"])
    config = config_mod.from_args(args)
    _logging(config.log_level)
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    lag = LoopLag()
    lag_task = asyncio.ensure_future(lag.run())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    first: collections.Counter[str] | None = None
    while (line := (await reader.readline()).strip()) not in (b"", b"stop"):
        report: dict[str, Any] = {}
        if line == b"trim":
            lag.worst = 0.0
            result = await loop.run_in_executor(None, memory.trim_and_measure)
            report["trim"] = {"rss_before_mb": round(result.rss_before / 2**20, 1),
                              "rss_after_mb": round(result.rss_after / 2**20, 1),
                              "ms": round(result.seconds * 1000, 1), "loop_stall_ms": round(lag.worst * 1000, 1)}
        gc.collect()
        counts = type_counts()
        first = first if first is not None else counts
        grown = {name: counts[name] - first[name] for name in counts if counts[name] - first[name] >= 50}
        stats = memory.allocator_stats() or {}
        with open("/proc/self/status") as f:
            threads = next(int(s.split()[1]) for s in f if s.startswith("Threads:"))
        report.update({
            "rss_mb": round(memory.resident_bytes() / 2**20, 1),
            "malloc_held_mb": round((stats.get("arena", 0) + stats.get("mmapped", 0)) / 2**20, 1),
            "malloc_in_use_mb": round(stats.get("in_use", 0) / 2**20, 1),
            "malloc_free_mb": round(stats.get("free", 0) / 2**20, 1),
            "threads": threads, "tasks": len(asyncio.all_tasks()),
            "watched": {name: counts[name] for name in WATCHED if counts[name]},
            "grown_types": dict(sorted(grown.items(), key=lambda kv: -kv[1])[:12]),
        })
        print(json.dumps(report), flush=True)
    lag_task.cancel()
    await runner.cleanup()


# -- the driver: one publisher, lanes that churn ---------------------------------------------


class Lane:
    """One signalling socket that joins, publishes, subscribes, leaves and closes per cycle."""

    def __init__(self, client: Any, packets: list[bytes], source: str) -> None:
        self.client, self.packets, self.source = client, packets, source
        self.frames = 0
        self.cycles = 0

    def on_frame(self, _timestamp: int) -> None:
        self.frames += 1

    async def cycle(self) -> None:
        from dutycall.client import publish, subscribe
        from dutycall.conference import aiortc_compat
        from dutycall.synthetic import PreEncodedTrack

        await self.client.join(ROOM, "")
        pcs = []
        try:
            pc, _ = await publish(self.client, video=PreEncodedTrack(self.packets, fps=15))
            pcs.append(pc)
            pc, _, _ = await subscribe(self.client, self.source, kinds=("video",), passthrough=True)
            pcs.append(pc)
            aiortc_compat.count_frames_only(pc, self.on_frame)
            wanted = self.frames + 5
            deadline = time.monotonic() + 30
            while self.frames < wanted or any(p.connectionState != "connected" for p in pcs):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no media after 30 s ({[p.connectionState for p in pcs]})")
                await asyncio.sleep(0.05)
        finally:
            with contextlib.suppress(Exception):
                await self.client.request("leave")
            for pc in pcs:
                await pc.close()
        self.cycles += 1


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    from dutycall.client import SignallingClient, publish, sign_in
    from dutycall.conference import aiortc_compat
    from dutycall.synthetic import PreEncodedTrack

    aiortc_compat.set_host_addresses(["127.0.0.1"])
    packets = PreEncodedTrack.encode("vp8", 320, 180, 15, 150_000, seconds=2)
    data = tempfile.mkdtemp(prefix="dutycall-churn-")
    port = free_port()
    env = {**os.environ, "DUTYCALL_ADMIN_PASSWORD": PASSWORD}
    if args.arena_max:
        env["MALLOC_ARENA_MAX"] = str(args.arena_max)
    server = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), "--serve", str(port), data, cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    rows: list[dict[str, Any]] = []

    async def ask(command: bytes) -> dict[str, Any]:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write(command + b"\n")
        await server.stdin.drain()
        while True:  # skip anything else the server prints
            line = await asyncio.wait_for(server.stdout.readline(), 120)
            if not line:
                raise RuntimeError(f"the server exited ({server.returncode})")
            if line.startswith(b"{"):
                return json.loads(line)

    clients = []
    try:
        await wait_healthy(port, server)
        base = f"http://127.0.0.1:{port}"
        cookies = await sign_in(base, "admin", PASSWORD)
        # An account may hold 4 sockets: the publisher and up to 3 lanes.
        for _ in range(1 + args.lanes):
            clients.append(await SignallingClient(base.replace("http", "ws", 1) + "/ws", cookies=cookies).connect())
        await clients[0].join(ROOM, "")
        source_pc, published = await publish(clients[0], video=PreEncodedTrack(packets, fps=15))
        lanes = [Lane(client, packets, published["publication_id"]) for client in clients[1:]]
        cpu0, t0 = process_cpu_seconds(server.pid, children=False), time.monotonic()
        done = 0
        while True:
            row = await ask(b"trim" if args.trim and done else b"stats")
            row["cycles"] = done
            row["server_pcs_opened"] = 2 * done
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            if done >= args.cycles:
                break
            batch = min(args.report_every, args.cycles - done)
            await asyncio.gather(*(lane_cycles(lane, batch // len(lanes) + (i < batch % len(lanes)))
                                   for i, lane in enumerate(lanes)))
            done += batch
        cpu = (process_cpu_seconds(server.pid, children=False) - cpu0) / (time.monotonic() - t0)
        await source_pc.close()
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
        if server.returncode is None:
            with contextlib.suppress(Exception):
                await ask(b"stop")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait(), 20)
            if server.returncode is None:
                server.kill()
                await server.wait()
        shutil.rmtree(data, ignore_errors=True)
    after_first = [r for r in rows if r["cycles"] > 0]
    first, last = (after_first[0], after_first[-1]) if after_first else (rows[0], rows[-1])
    cycles = last["cycles"] - first["cycles"]
    return {
        "cycles": args.cycles, "lanes": args.lanes, "arena_max": args.arena_max, "trim": args.trim,
        "rss_start_mb": rows[0]["rss_mb"], "rss_end_mb": rows[-1]["rss_mb"],
        "rss_per_100_cycles_after_first_report_kb":
            round((last["rss_mb"] - first["rss_mb"]) * 1024 / cycles * 100, 1) if cycles else None,
        "server_cpu": round(cpu, 3), "rows": rows,
    }


async def lane_cycles(lane: Lane, count: int) -> None:
    for _ in range(count):
        await lane.cycle()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(serve(int(sys.argv[2]), sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=1000, help="join/publish/subscribe/leave cycles in all")
    parser.add_argument("--lanes", type=int, default=3, choices=(1, 2, 3), help="sockets churning at once")
    parser.add_argument("--report-every", type=int, default=100)
    parser.add_argument("--arena-max", type=int, default=0, help="start the server with MALLOC_ARENA_MAX")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) in the server at each report")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    result = asyncio.run(drive(args))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"{'cycles':>7} {'rss MB':>7} {'held':>7} {'in use':>7} {'free':>7} {'thr':>4} {'tasks':>5}"
          "  trim / grown types")
    for r in result["rows"]:
        extra = f"trim {r['trim']}" if "trim" in r else ""
        print(f"{r['cycles']:>7} {r['rss_mb']:>7} {r['malloc_held_mb']:>7} {r['malloc_in_use_mb']:>7} "
              f"{r['malloc_free_mb']:>7} {r['threads']:>4} {r['tasks']:>5}  {extra} {r['grown_types'] or ''}")
    for key in ("rss_start_mb", "rss_end_mb", "rss_per_100_cycles_after_first_report_kb", "server_cpu"):
        print(f"{key}: {result[key]}")


if __name__ == "__main__":
    main()
