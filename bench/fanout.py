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

CPU is reported as core-seconds per second of the server process (all its
threads, from /proc), and as a ratio against the baseline measured in this run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
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


# -- worker: N subscribers in one process ----------------------------------------------


async def run_worker(url: str, publication_id: str, count: int, first_index: int) -> None:
    from dutycall.client import SignallingClient, sign_in, subscribe

    # One duty room's console per subscriber: the server allows few sockets per principal.
    tokens = json.loads(os.environ["DUTYCALL_BENCH_TOKENS"])
    base = url.replace("ws://", "http://", 1).removesuffix("/ws")
    from dutycall.conference import aiortc_compat

    aiortc_compat.set_host_addresses(["127.0.0.1"])
    subscribers = []
    frames = [0] * count

    async def read(i: int, track: Any) -> None:
        with contextlib.suppress(Exception):
            while True:
                await track.recv()
                frames[i] += 1

    for i in range(count):
        cookies = await sign_in(base, device_token=tokens[i])
        client = await SignallingClient(url, cookies=cookies).connect()
        await client.join(ROOM, f"sub{first_index + i}")
        pc, _, tracks = await subscribe(client, publication_id, passthrough=True)
        asyncio.ensure_future(read(i, tracks["video"]))
        subscribers.append((client, pc))

    deadline = time.monotonic() + 60
    while not all(frames) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    print("ready", flush=True)

    async def packets_received() -> int:
        total = 0
        for _, pc in subscribers:
            for transceiver in pc.getTransceivers():
                stats = await transceiver.receiver.getStats()
                total += sum(getattr(s, "packetsReceived", 0) or 0 for s in stats.values()
                             if getattr(s, "type", "") == "inbound-rtp")
        return total

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.readline()  # "start"
    start_frames, start_packets, t0 = list(frames), await packets_received(), time.monotonic()
    await reader.readline()  # "stop"
    end_frames, end_packets, t1 = list(frames), await packets_received(), time.monotonic()
    elapsed = t1 - t0
    print(json.dumps({
        "fps": [(e - s) / elapsed for s, e in zip(start_frames, end_frames)],
        "packets_per_s": (end_packets - start_packets) / elapsed,
    }), flush=True)
    for client, pc in subscribers:
        await pc.close()
        await client.close()


# -- one measurement: a server mode, a publisher, N subscribers ------------------------


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


async def measure(mode: str, subscribers: int, per_worker: int, seconds: float, packets: list[bytes]) -> dict[str, Any]:
    import tempfile

    import aiohttp

    from bench.common import Host
    from dutycall.client import SignallingClient, publish, sign_in
    from dutycall.conference import aiortc_compat
    from dutycall.synthetic import PreEncodedTrack

    aiortc_compat.set_host_addresses(["127.0.0.1"])
    port = free_port()
    data = tempfile.mkdtemp(prefix="dutycall-bench-")
    # The baseline is no part of the server: bench/transcoding.py registers it, then serves.
    entry = "bench.transcoding" if mode == "transcode" else "dutycall.server"
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", entry, "--host", "127.0.0.1", "--port", str(port),
        "--ice-addresses", "127.0.0.1", "--forwarding", mode, "--log-level", "WARNING",
        "--database-url", f"sqlite:///{data}/bench.sqlite3",
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL,
        env={**os.environ, "DUTYCALL_ADMIN_PASSWORD": BENCH_PASSWORD},
    )
    workers: list[asyncio.subprocess.Process] = []
    try:
        await wait_healthy(port, server)
        url = f"ws://127.0.0.1:{port}/ws"
        cookies = await sign_in(f"http://127.0.0.1:{port}", "admin", BENCH_PASSWORD)
        pub_client = await SignallingClient(url, cookies=cookies).connect()
        await pub_client.join(ROOM, "publisher")
        track = PreEncodedTrack(packets, fps=30)
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
            line = await asyncio.wait_for(worker.stdout.readline(), 120)
            if line.strip() != b"ready":
                raise RuntimeError(f"worker failed to start: {line!r}")
        await asyncio.sleep(2.0)  # let every stream settle before measuring

        for worker in workers:
            worker.stdin.write(b"start\n")
            await worker.stdin.drain()
        cpu0, t0 = process_cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, t1 = process_cpu_seconds(server.pid), time.monotonic()
        for worker in workers:
            worker.stdin.write(b"stop\n")
            await worker.stdin.drain()
        fps: list[float] = []
        packets_per_s = 0.0
        for worker in workers:
            result = json.loads(await asyncio.wait_for(worker.stdout.readline(), 60))
            fps += result["fps"]
            packets_per_s += result["packets_per_s"]
        server_cpu = (cpu1 - cpu0) / (t1 - t0)
        await pub_pc.close()
        await pub_client.close()
        return {
            "mode": mode,
            "server_cpu": server_cpu,
            "packets_out_per_s": packets_per_s,
            "us_per_packet": server_cpu / packets_per_s * 1e6 if packets_per_s else None,
            "min_fps": min(fps) if fps else 0.0,
            "mean_fps": sum(fps) / len(fps) if fps else 0.0,
            "publisher_fps": track.frames_sent / max(1e-9, time.monotonic() - (track._epoch or time.monotonic())),
        }
    finally:
        await stop_processes(workers, server)
        import shutil

        shutil.rmtree(data, ignore_errors=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from dutycall.synthetic import PreEncodedTrack

    packets = PreEncodedTrack.encode("vp8", 640, 360, 30, args.bitrate, seconds=4.0)
    sfu = await measure("passthrough", args.subscribers, args.per_worker, args.seconds, packets)
    baseline = await measure("transcode", args.subscribers, args.per_worker, args.seconds, packets)
    return {
        "subscribers": args.subscribers,
        "server_cpu": round(sfu["server_cpu"], 4),
        "baseline_server_cpu": round(baseline["server_cpu"], 4),
        "ratio": round(sfu["server_cpu"] / baseline["server_cpu"], 4) if baseline["server_cpu"] else None,
        "packets_out_per_s": round(sfu["packets_out_per_s"], 1),
        "us_per_packet": round(sfu["us_per_packet"], 1) if sfu["us_per_packet"] else None,
        "min_fps": round(sfu["min_fps"], 2),
        "mean_fps": round(sfu["mean_fps"], 2),
        "baseline_packets_out_per_s": round(baseline["packets_out_per_s"], 1),
        "baseline_us_per_packet": round(baseline["us_per_packet"], 1) if baseline["us_per_packet"] else None,
        "baseline_min_fps": round(baseline["min_fps"], 2),
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
    }


def print_table(result: dict[str, Any]) -> None:
    rows = [
        ("subscribers", result["subscribers"], ""),
        ("server CPU (core-s/s)", result["server_cpu"], result["baseline_server_cpu"]),
        ("ratio SFU / baseline", result["ratio"], ""),
        ("packets out per s", result["packets_out_per_s"], result["baseline_packets_out_per_s"]),
        ("server µs per packet", result["us_per_packet"], result["baseline_us_per_packet"]),
        ("worst subscriber fps", result["min_fps"], result["baseline_min_fps"]),
        ("mean subscriber fps", result["mean_fps"], ""),
    ]
    print(f"{'':28}{'SFU':>12}{'baseline':>12}")
    for name, sfu, base in rows:
        print(f"{name:28}{sfu!s:>12}{base!s:>12}")


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
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
