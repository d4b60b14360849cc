"""Broadcast benchmark (issue 13, leadership greetings): one 640x360 30 fps leader to N standby
consoles through the real server.

    python bench/broadcast.py --subscribers 150 --json
    python bench/broadcast.py -n 200 --server-args "--log-level ERROR"

The leader and the consoles are bench/fanout.py's lean clients, not copies: the leader loops
pre-encoded VP8 whose every frame ends with its send time (``time.monotonic_ns()``); each
console (one duty room's device credential, N of them in worker processes of 10) joins the room
over the real signalling, subscribes to the leader's publication and reads the stamp off each
frame's marker packet on arrival, on the same clock (no decoding, no jitter buffer). The room is
a plain conference room the consoles are invited to (what a greeting's room is to the
conference); ``--server-args`` passes extra flags to the server (e.g. media workers).

Frames and time are counted over the same instants: the window is the frames the leader *sent*
between two instants, and each console's ``min_fps`` counts those of them it received (within a
grace of 2 s) over that same window. ``server_cpu`` is core-seconds per second of the server
process (all its threads and children, from /proc) over the window.

Baseline, measured in the same run: by default the same server with ONE console
(``baseline_server_cpu``, and ``cpu_per_subscriber`` = the difference over N-1: what the fan-out
costs per console, to extrapolate to 200); ``--baseline transcode`` measures instead the
decode-once, re-encode-per-subscriber relay of stock aiortc (bench/transcoding.py) at the same N
(slow: N encoders); ``--baseline none`` skips it.

The leader's keyframe is capped as a browser caps its own (``--keyframe-cap``, bench/fanout.py;
``0`` for the uncapped ~110 KB keyframe of the figures before the option).

The machine's load average (1 min, from /proc/loadavg) is reported before and after: on a
shared machine the figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.fanout import KEYFRAME_CAP_HELP, baseline_delivered, keyframe_cap_arg, leader_packets, measure  # noqa: E402


def load_average() -> float:
    """The machine's 1-minute load average."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    server_args = tuple(shlex.split(args.server_args))
    packets, sizes = leader_packets(args.bitrate, args.keyframe_cap)
    load_before = load_average()
    main = await measure("passthrough", args.subscribers, args.per_worker, args.seconds, packets,
                         server_args=server_args)
    load_after = load_average()
    result: dict[str, Any] = {
        "subscribers": args.subscribers,
        "server_cpu": round(main["server_cpu"], 4),
        "min_fps": round(main["min_fps"], 2),
        "mean_fps": round(main["mean_fps"], 2),
        "publisher_fps": round(main["publisher_fps"], 2),
        "frames_delivered_pct": round(main["frames_delivered_pct"], 2),
        "latency_p50_ms": main["latency_p50_ms"],
        "latency_p99_ms": main["latency_p99_ms"],
        "packets_out_per_s": round(main["packets_out_per_s"], 1),
        "us_per_packet": round(main["us_per_packet"], 1) if main["us_per_packet"] else None,
        "publications_removed": main["publications_removed"],
        **sizes,
        "seconds": args.seconds,
        "load_avg_before": load_before,
        "load_avg_after": load_after,
        "cpus": os.cpu_count(),
        "server_args": list(server_args),
        "baseline": args.baseline,
    }
    if args.baseline == "none":
        return result
    if args.baseline == "transcode":
        base = await measure("transcode", args.subscribers, args.per_worker, args.seconds, packets,
                             server_args=server_args)
        result["baseline_server_cpu"] = round(base["server_cpu"], 4)
        result["baseline_min_fps"] = round(base["min_any_fps"], 2)
        delivered = baseline_delivered(base, main["publisher_fps"])
        result["ratio"] = round(main["server_cpu"] / base["server_cpu"], 4) if delivered else None
    else:
        base = await measure("passthrough", 1, 1, args.seconds, packets, server_args=server_args)
        result["baseline_server_cpu"] = round(base["server_cpu"], 4)
        result["baseline_min_fps"] = round(base["min_fps"], 2)
        result["baseline_latency_p50_ms"] = base["latency_p50_ms"]
        if args.subscribers > 1:
            result["cpu_per_subscriber"] = round(
                (main["server_cpu"] - base["server_cpu"]) / (args.subscribers - 1), 5)
    result["load_avg_end"] = load_average()
    return result


def print_table(result: dict[str, Any]) -> None:
    for key, value in result.items():
        print(f"{key:26}{value!s:>20}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--subscribers", "-n", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window")
    parser.add_argument("--per-worker", type=int, default=10, help="consoles per worker process")
    parser.add_argument("--bitrate", type=int, default=700_000, help="the leader's bitrate (bps)")
    parser.add_argument("--keyframe-cap", type=keyframe_cap_arg, default=900, metavar="PCT", help=KEYFRAME_CAP_HELP)
    parser.add_argument("--baseline", choices=("one", "transcode", "none"), default="one",
                        help="one console on the same server (default), the transcoding relay at N, or none")
    parser.add_argument("--server-args", default="", help="extra server flags, one shell-quoted string")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
