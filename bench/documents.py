"""What big document jobs (XLSX exports) cost the event loop that forwards media.

Four large roll-call sheets are rendered at once (the real ``render_sheet_xlsx``), by each
strategy in turn, while the event loop does what the media loop does: wake on timers and
read datagrams. A sender in another process sends a timestamped datagram every 2 ms; the
loop notes how late each one is read, and how late a 2 ms timer fires. Strategies:

- ``thread``: every job in its own worker thread at once (``asyncio.to_thread``; the old way)
- ``thread-1``, ``thread-2``: worker threads, at most 1 or 2 jobs at a time (a semaphore)
- ``process-1``, ``process-2``: a pool of 1 or 2 worker processes (no GIL shared with the loop)

    python -m bench.documents [--rows 20000] [--jobs 4] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from dutycall.rollcall.results import render_sheet_xlsx

SENDER = """
import socket, struct, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
port, seconds = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + seconds
next_at = time.monotonic()
while (now := time.monotonic()) < end:
    sock.sendto(struct.pack("d", now) + bytes(1100), ("127.0.0.1", port))
    next_at += 0.002
    time.sleep(max(0.0, next_at - time.monotonic()))
"""


def sheet_rows(n: int) -> list[list[Any]]:
    return [[f"福田区第{i // 50}街道", f"值班室{i}", "按时应答", f"张三{i}", "是", "2024-05-01 09:00:00",
             "已核验", "备注：" + "值班" * 10] for i in range(n)]


def render(rows: list[list[Any]]) -> int:
    return len(render_sheet_xlsx("压力测试点名", rows))


class Probe(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.delays: list[float] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        import struct

        self.delays.append(time.monotonic() - struct.unpack("d", data[:8])[0])


async def ticks(stop: asyncio.Event, lateness: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.002)
        lateness.append(time.perf_counter() - start - 0.002)


def summary(values: list[float]) -> dict[str, float]:
    values = sorted(values) or [0.0]
    return {"p50_ms": round(1000 * statistics.median(values), 2),
            "p99_ms": round(1000 * values[int(0.99 * (len(values) - 1))], 2),
            "max_ms": round(1000 * values[-1], 2)}


async def measure(jobs: Callable[[], Awaitable[Any]] | None, settle: float = 1.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    transport, probe = await loop.create_datagram_endpoint(Probe, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    sender = subprocess.Popen([sys.executable, "-c", SENDER, str(port), "600"])
    stop, lateness = asyncio.Event(), []  # type: ignore[var-annotated]
    await asyncio.sleep(0.5)  # the sender is running
    probe.delays.clear()
    ticker = asyncio.ensure_future(ticks(stop, lateness))
    start = time.perf_counter()
    if jobs is not None:
        await jobs()
    else:
        await asyncio.sleep(settle * 3)
    elapsed = time.perf_counter() - start
    stop.set()
    await ticker
    sender.kill()
    sender.wait()
    transport.close()
    return {"jobs_s": round(elapsed, 2), "datagram": summary(probe.delays), "timer": summary(lateness)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = sheet_rows(args.rows)
    results: dict[str, Any] = {"rows": args.rows, "jobs": args.jobs}

    results["idle"] = await measure(None)

    async def threads(limit: int | None) -> None:
        gate = asyncio.Semaphore(limit or args.jobs)

        async def one() -> None:
            async with gate:
                await asyncio.to_thread(render, rows)

        await asyncio.gather(*(one() for _ in range(args.jobs)))

    for name, limit in (("thread", None), ("thread-1", 1), ("thread-2", 2)):
        results[name] = await measure(lambda limit=limit: threads(limit))  # type: ignore[misc]

    for workers in (1, 2):
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            await asyncio.gather(*(loop.run_in_executor(pool, render, rows[:10]) for _ in range(workers)))
            warm = time.perf_counter() - started

            async def processes(pool: concurrent.futures.Executor = pool,
                                loop: asyncio.AbstractEventLoop = loop) -> None:
                await asyncio.gather(*(loop.run_in_executor(pool, render, rows) for _ in range(args.jobs)))

            results[f"process-{workers}"] = {**await measure(processes), "pool_start_s": round(warm, 2)}

    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"{args.jobs} XLSX sheets of {args.rows} rows at once; lateness of 2 ms timers and of datagrams every 2 ms")
    print(f"{'strategy':<10} {'jobs s':>7} {'timer p50/p99/max ms':>24} {'datagram p50/p99/max ms':>26}")
    for name, r in results.items():
        if isinstance(r, dict):
            t, d = r["timer"], r["datagram"]
            print(f"{name:<10} {r['jobs_s']:>7} {t['p50_ms']:>8}/{t['p99_ms']}/{t['max_ms']:<8} "
                  f"{d['p50_ms']:>10}/{d['p99_ms']}/{d['max_ms']}")


if __name__ == "__main__":
    asyncio.run(main())
