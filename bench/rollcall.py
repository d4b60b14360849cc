"""Roll-call benchmark: N cheap simulated consoles in a roll-call through the real server.

    python bench/rollcall.py --rooms 150 [--json]

Each console (in worker processes) signs in with its duty room's device credential,
joins the roll-call's room, publishes a pre-encoded VP8 stream (the small profile,
320x180 at 5 fps, until the server gives it the floor; then 640x360 at 30 fps), holds one
floor subscription (counting frames as their last packet arrives: no jitter buffer, no
decoding), and answers as soon as it rings. The
host starts the roll-call and lets the server poll every room in turn.

Prints ``rooms``, ``server_cpu`` (core-seconds per second of the server process over the
polling phase), ``called_room_min_fps`` (the worst console's rate receiving the floor
between switches, from 0.5 s after each switch to the next: one room's steady cadence, at
most the 30 fps it sends), ``floor_frames_per_s_min`` (the worst console's floor frames over
the whole polling phase, switches included: the floor changes source at the new room's
first keyframe and the two rooms' 30 fps cadences are not aligned, so each switch can add
part of a frame and this count can exceed 30 when switches come every second),
``answered`` and ``seconds``; with a baseline ``idle_server_cpu`` measured in the same run
while all consoles sit connected before the start, and the ratio.

``DUTYCALL_BENCH_DUMP=/tmp/dump`` makes each worker write its raw frame arrival and floor
switch times (and one console's RTP timestamps) to ``/tmp/dump.<pid>.json``: that is how
the ~0.6 s floor handover at fast polling was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.common import ConsoleTrack, Host, read_encoded, start_server, write_encoded  # noqa: E402
from bench.fanout import free_port, process_cpu_seconds, stop_processes, wait_healthy  # noqa: E402


async def run_worker(base: str, room: str, tokens: list[str], cache: str) -> None:
    """Consoles of this worker: publish, follow the floor, answer when rung."""
    from dutycall.client import SignallingClient, publish, sign_in, subscribe
    from dutycall.conference import aiortc_compat

    aiortc_compat.set_host_addresses(["127.0.0.1"])
    small, full = read_encoded(cache)

    floor_times: list[list[float]] = []
    rtp_times: list[tuple[float, int]] = []
    switch_times: list[list[float]] = []
    answered = 0

    async def console(token: str, index: int) -> None:
        nonlocal answered
        cookies = await sign_in(base, device_token=token)
        client = await SignallingClient(base.replace("http", "ws") + "/ws", cookies=cookies).connect()
        await client.join(room, "")
        track = ConsoleTrack(small, full)
        await publish(client, video=track)
        pc, _, _ = await subscribe(client, None, kinds=("video",), passthrough=True)
        times = floor_times[index]
        switches = switch_times[index]
        # Count the floor's frames as they arrive (last packet of each frame) and keep
        # nothing: aiortc's RTP parsing, jitter buffer and decoder thread would cost these
        # load clients more than the server spends forwarding to them.
        if index == 0 and os.environ.get("DUTYCALL_BENCH_DUMP"):
            aiortc_compat.count_frames_only(
                pc, lambda ts: (times.append(time.time()), rtp_times.append((time.time(), ts))))
        else:
            aiortc_compat.count_frames_only(pc, lambda _ts: times.append(time.time()))

        while True:
            event = await client.events.get()
            if event.get("type") == "rollcall_floor":
                switches.append(time.time())
            elif event.get("type") == "publish_quality":
                track.set_profile(event["profile"])
            elif event.get("type") == "rollcall_ring":
                await client.request("rollcall_answer", roll_call_id=event["roll_call_id"], officer="值班员")
                answered += 1

    for _ in tokens:
        floor_times.append([])
        switch_times.append([])
    for i, token in enumerate(tokens):
        asyncio.ensure_future(console(token, i))
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    window = json.loads(await reader.readline())  # {"start": t0, "end": t1}
    fps = [sum(1 for t in times if window["start"] <= t <= window["end"]) / (window["end"] - window["start"])
           for times in floor_times]
    steady = [steady_rate(times, switches, window["start"], window["end"])
              for times, switches in zip(floor_times, switch_times)]
    if os.environ.get("DUTYCALL_BENCH_DUMP"):
        with open(f"{os.environ['DUTYCALL_BENCH_DUMP']}.{os.getpid()}.json", "w") as f:
            json.dump({"window": window, "frames": floor_times, "switches": switch_times, "rtp": rtp_times}, f)
    print(json.dumps({"fps": fps, "steady_fps": [f for f in steady if f is not None], "answered": answered}),
          flush=True)


#: After a floor switch the media follows at the new room's keyframe: left out of the steady rate.
SETTLE = 0.5


def steady_rate(times: list[float], switches: list[float], start: float, end: float) -> float | None:
    """Frames per second between floor switches (from SETTLE s after one to the next), within
    [start, end]: one source's steady cadence, which cannot exceed the rate it sends at. Over a
    whole phase the floor splices many sources whose cadences are not aligned, so each switch
    can add part of a frame: that count (``fps``) may exceed one source's rate."""
    marks = sorted(t for t in switches if start <= t <= end)
    spans = [(a + SETTLE, b) for a, b in zip(marks, marks[1:]) if b - a > SETTLE]
    seconds = sum(b - a for a, b in spans)
    if seconds <= 0:
        return None
    return sum(1 for t in times for a, b in spans if a <= t < b) / seconds


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    data = tempfile.mkdtemp(prefix="dutycall-rollcall-")
    cache = write_encoded(data, args.bitrate)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await start_server(data, port)
    workers: list[asyncio.subprocess.Process] = []
    try:
        await wait_healthy(port, server)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            host = await Host(http, base).sign_in()
            rooms, tokens = await host.create_rooms(args.rooms)
            created = await host.post("/api/rollcalls", {"room_ids": rooms, "answer_window": 30, "late_after": 15})
            rid = created["id"]
            for start in range(0, args.rooms, args.per_worker):
                workers.append(await asyncio.create_subprocess_exec(
                    sys.executable, os.path.abspath(__file__), "--worker", base, created["room"], cache,
                    *tokens[start:start + args.per_worker], cwd=ROOT,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE))
            for worker in workers:
                assert (await asyncio.wait_for(worker.stdout.readline(), 120)).strip() == b"ready"

            async def board() -> dict[str, Any]:
                return await host.get(f"/api/rollcalls/{rid}")

            deadline = time.monotonic() + 300
            while not all(r["connected"] for r in (await board())["rooms"]):
                assert time.monotonic() < deadline, "consoles never all connected"
                await asyncio.sleep(1)
            cpu0, t0 = process_cpu_seconds(server.pid), time.monotonic()
            await asyncio.sleep(args.idle_seconds)
            idle_cpu = (process_cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)

            await host.post(f"/api/rollcalls/{rid}/start", {})
            await host.post(f"/api/rollcalls/{rid}/poll", {"dwell": args.dwell})
            cpu0, t0, wall0 = process_cpu_seconds(server.pid), time.monotonic(), time.time() + 2.0
            while (await board())["phase"] != "finished":
                assert time.monotonic() - t0 < 60 + args.rooms * (args.dwell + 5), "roll-call did not finish"
                await asyncio.sleep(0.5)
            cpu1, t1, wall1 = process_cpu_seconds(server.pid), time.monotonic(), time.time() - 0.5
            final = await board()
        fps: list[float] = []
        steady: list[float] = []
        answered = 0
        for worker in workers:
            worker.stdin.write(json.dumps({"start": wall0, "end": wall1}).encode() + b"\n")
            await worker.stdin.drain()
            result = json.loads(await asyncio.wait_for(worker.stdout.readline(), 60))
            fps += result["fps"]
            steady += result["steady_fps"]
            answered += result["answered"]
        server_cpu = (cpu1 - cpu0) / (t1 - t0)
        recorded = sum(1 for r in final["rooms"] if r["status"] in ("on_time", "late"))
        return {
            "rooms": args.rooms, "server_cpu": round(server_cpu, 3), "idle_server_cpu": round(idle_cpu, 3),
            "ratio_to_idle": round(server_cpu / idle_cpu, 2) if idle_cpu else None,
            "called_room_min_fps": round(min(steady), 2) if steady else None,
            "called_room_mean_fps": round(sum(steady) / len(steady), 2) if steady else None,
            "floor_frames_per_s_min": round(min(fps), 2),
            "answered": recorded, "answers_sent": answered, "seconds": round(t1 - t0, 1), "cpus": os.cpu_count(),
        }
    finally:
        await stop_processes(workers, server)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        asyncio.run(run_worker(sys.argv[2], sys.argv[3], sys.argv[5:], sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--dwell", type=float, default=2.0,
                        help="seconds between one answer and the next call (a host needs a moment to see each "
                             "room; 0.5 is a stress run where floor handovers dominate)")
    parser.add_argument("--per-worker", type=int, default=25, help="consoles per worker process")
    parser.add_argument("--bitrate", type=int, default=400_000, help="the called room's full-quality bitrate")
    parser.add_argument("--idle-seconds", type=float, default=5.0,
                        help="how long to measure the baseline with every console connected and idle")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:24}{value}")


if __name__ == "__main__":
    main()
