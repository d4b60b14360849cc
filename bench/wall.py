"""The wall's own server cost: N simulated consoles in a roll-call's room, without a wall and
then with one wall viewer looking at every room's keyframe thumbnail.

    python bench/wall.py --rooms 150 [--json]

The consoles are bench/rollcall.py's lean workers (pre-encoded VP8, the small profile: 320x180 at
5 fps, one floor subscription counting frames), in a roll-call that is not started, so every
room publishes the small profile as between calls. The server's CPU (its process and its worker
processes: the thumbnail decoder counts) is measured for ``--seconds`` with nobody looking at a
wall, then, after ``--warmup`` seconds, for as long again while one viewer does what the
/command page does for a wall of every room: ``POST /api/wall/look`` every 2 s saying which
pictures it has (the answer carries the newer ones), and ``GET /api/wall/<room>/thumb.jpg`` only
for a newer picture the answer did not carry.

Prints ``rooms`` (``connected``: consoles publishing before, ``connected_after``: after; the lean
workers do not reconnect, so a busy machine that drops some makes the run's numbers worthless),
``wall_cpu`` (core-seconds per second: with the wall minus without),
``tile_age_max_s`` (the oldest picture age any look reported over the measured interval, as the
page would show it), ``baseline_cpu`` and ``with_wall_cpu``, ``thumbs_per_s`` and
``thumb_bytes_mean`` (what the viewer fetched), ``rooms_without_picture`` (at the last look),
``all_pictured_after_s`` (from the wall's first look until every room had a picture: the worker
starts then) and the load average of the machine before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.common import Host, start_server, write_encoded  # noqa: E402
from bench.fanout import free_port, process_cpu_seconds, stop_processes, wait_healthy  # noqa: E402

ROLLCALL_WORKER = os.path.join(ROOT, "bench", "rollcall.py")
LOOK_EVERY = 2.0


async def wall_viewer(host: Host, room_ids: list[int], stop: asyncio.Event, measure_from: list[float],
                      stats: dict[str, Any]) -> None:
    """Look at every room like the page's wall, fetching each picture that changed."""
    shown: dict[int, float] = {}
    limit = asyncio.Semaphore(8)

    async def fetch(room_id: int) -> None:
        async with limit, host.http.get(f"{host.base}/api/wall/{room_id}/thumb.jpg") as resp:
            body = await resp.read()
            if resp.status == 200 and time.monotonic() >= measure_from[0]:
                stats["thumbs"] += 1
                stats["bytes"] += len(body)

    while not stop.is_set():
        began = time.monotonic()
        has = {str(room): taken_at for room, taken_at in shown.items()}
        reply = await host.post("/api/wall/look", {"viewer": "bench", "rooms": room_ids, "has": has})
        measuring = began >= measure_from[0]
        fetches = []
        pictured = 0
        for room in reply["rooms"]:
            taken_at = room["taken_at"]
            if taken_at is not None:
                pictured += 1
                if measuring:
                    stats["age_max"] = max(stats["age_max"], reply["now"] - taken_at)
        if pictured == len(room_ids) and stats["all_pictured_s"] is None:
            stats["all_pictured_s"] = time.monotonic() - stats["started"]
        stats["missing"] = len(room_ids) - pictured
        for room in reply["rooms"]:
            taken_at = room["taken_at"]
            if taken_at is not None and shown.get(room["duty_room_id"]) != taken_at:
                shown[room["duty_room_id"]] = taken_at
                if "jpeg" in room:  # the page's way: newer pictures come in the look's answer
                    if measuring:
                        stats["thumbs"] += 1
                        stats["bytes"] += len(base64.b64decode(room["jpeg"]))
                else:
                    fetches.append(fetch(room["duty_room_id"]))
        await asyncio.gather(*fetches)
        try:
            await asyncio.wait_for(stop.wait(), max(0.1, LOOK_EVERY - (time.monotonic() - began)))
        except TimeoutError:
            pass


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    load_before = os.getloadavg()
    data = tempfile.mkdtemp(prefix="dutycall-wall-")
    cache = write_encoded(data, 400_000)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(args.server_log, "w") if args.server_log else None  # noqa: SIM115 - closed with the run
    server = await start_server(data, port, **({"stderr": log.fileno(), "log_level": "WARNING"} if log else {}))
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
                    sys.executable, ROLLCALL_WORKER, "--worker", base, created["room"], cache,
                    *tokens[start:start + args.per_worker], cwd=ROOT,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE))
            for worker in workers:
                assert (await asyncio.wait_for(worker.stdout.readline(), 180)).strip() == b"ready"
            # Every console connected, or (a busy machine drops a join now and then; the lean
            # workers do not retry) as many as connected within --connect-timeout: both measured
            # intervals see the same consoles, and the wall looks at every room all the same.
            deadline = time.monotonic() + args.connect_timeout
            while True:
                connected = sum(r["connected"] for r in (await host.get(f"/api/rollcalls/{rid}"))["rooms"])
                if connected == args.rooms or time.monotonic() > deadline:
                    break
                await asyncio.sleep(1)
            assert connected >= args.rooms * 0.9, f"only {connected} of {args.rooms} consoles connected"
            await asyncio.sleep(2.0)  # let the joins' keyframes and negotiations settle

            # Without a wall.
            cpu0, t0 = process_cpu_seconds(server.pid), time.monotonic()
            await asyncio.sleep(args.seconds)
            baseline = (process_cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)

            # With one wall viewer looking at every room.
            stop = asyncio.Event()
            measure_from = [time.monotonic() + args.warmup]
            stats: dict[str, Any] = {"thumbs": 0, "bytes": 0, "age_max": 0.0, "missing": 0,
                                     "started": time.monotonic(), "all_pictured_s": None}
            viewer = asyncio.ensure_future(wall_viewer(host, rooms, stop, measure_from, stats))
            await asyncio.sleep(args.warmup)
            cpu0, t0 = process_cpu_seconds(server.pid), time.monotonic()
            await asyncio.sleep(args.seconds)
            with_wall = (process_cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
            seconds = time.monotonic() - t0
            stop.set()
            await viewer
            connected_after = sum(r["connected"] for r in (await host.get(f"/api/rollcalls/{rid}"))["rooms"])
            await host.post("/api/wall/look", {"viewer": "bench", "rooms": []})
        return {
            "rooms": args.rooms, "connected": connected, "connected_after": connected_after,
            "wall_cpu": round(with_wall - baseline, 3),
            "tile_age_max_s": round(stats["age_max"], 2),
            "baseline_cpu": round(baseline, 3), "with_wall_cpu": round(with_wall, 3),
            "thumbs_per_s": round(stats["thumbs"] / seconds, 1),
            "thumb_bytes_mean": round(stats["bytes"] / stats["thumbs"]) if stats["thumbs"] else None,
            "rooms_without_picture": stats["missing"], "seconds": round(seconds, 1),
            "all_pictured_after_s": round(stats["all_pictured_s"], 1) if stats["all_pictured_s"] is not None else None,
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
        }
    finally:
        await stop_processes(workers, server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=20.0, help="each measured interval")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds the wall looks before its cost is measured (first pictures, the worker's start)")
    parser.add_argument("--connect-timeout", type=float, default=120.0,
                        help="how long to wait for every console to connect before measuring with those that did")
    parser.add_argument("--per-worker", type=int, default=25, help="consoles per worker process")
    parser.add_argument("--server-log", help="write the server's warnings and errors to this file")
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
