"""Soak benchmark: N simulated consoles through repeated roll-calls; does the server stay flat?

    python bench/soak.py --rooms 150 --minutes 20 [--json]

Each console (in worker processes, cheap: pre-encoded VP8 video, no microphone, no
decoding) behaves like console.js: it waits in its duty room's standby room
``standby-<id>`` publishing the small profile, moves into the roll-call's room on
``rollcall_invite`` (leave, join, publish, one floor subscription), answers "到" when it
rings, goes full quality when told, and goes back to standby on ``rollcall_ended``, on the
same socket. A host (HTTP, like the /rollcall page)
creates a roll-call of every room, waits for the pre-check, starts it, waits until every
console has arrived, lets the server poll every room with the given dwell and waits for
the end; then the next one, back to back, until the minutes are up.

The server's footprint (VmRSS and open descriptors of the server and its child processes,
such as the evidence worker; the median of a few samples) is taken after one warm-up
roll-call with every console back on standby, and again after the last roll-call once
everything has settled the same way. Prints ``rss_growth_pct``, ``fd_growth``, ``errors``
(request errors, console disconnects or failed connections, worker exceptions, calls not
answered, server tracebacks), ``answered`` (attendance read back from the server's board)
and ``expected`` (rooms x roll-calls), with ``server_cpu`` in core-seconds per second over
the soak. Targets: growth <= 5 % and <= 10 fds, no errors, answered == expected; ``--check``
makes the exit status say whether they were met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.common import ConsoleTrack, Host, read_encoded, start_server, write_encoded  # noqa: E402
from bench.fanout import free_port, process_cpu_seconds, stop_processes, wait_healthy  # noqa: E402

ANSWERED = ("on_time", "late")
ENDED = ("finished", "cancelled", "interrupted")
MAX_SAMPLES = 12  # error messages kept for the report


class Errors:
    """A count of everything that went wrong, with the first few messages."""

    def __init__(self) -> None:
        self.count = 0
        self.samples: list[str] = []

    def add(self, message: str, count: int = 1) -> None:
        """Record ``count`` errors described by ``message``."""
        self.count += count
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(message[:300])


# -- the server's footprint ----------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (the evidence worker, multiprocessing's helpers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


def footprint(pid: int) -> tuple[float, int, float]:
    """Resident memory (MiB) and open file descriptors of a process tree, and the resident
    memory of the child processes alone."""
    rss_kib, fds, children_kib = 0, 0, 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                kib = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            fds += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            continue  # it just exited
        rss_kib += kib
        children_kib += kib if p != pid else 0
    return rss_kib / 1024, fds, children_kib / 1024


async def sample_footprint(pid: int, count: int = 5, interval: float = 1.0) -> tuple[float, int, float]:
    """The median footprint over a few seconds (one sample catches a passing burst)."""
    samples = []
    for i in range(count):
        if i:
            await asyncio.sleep(interval)
        samples.append(footprint(pid))
    rss, fds, children = (statistics.median(values) for values in zip(*samples, strict=True))
    return rss, int(fds), children


async def watch_log(stream: asyncio.StreamReader, errors: Errors, counts: dict[str, int]) -> None:
    """Read the server's stderr to the end: each traceback is an error; count ERROR lines."""
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip()
        if text.startswith("Traceback"):
            counts["tracebacks"] += 1
            errors.add("server: Traceback")
        elif " ERROR " in text or " CRITICAL " in text:
            counts["error_lines"] += 1
            if counts["error_lines"] <= 3:
                errors.samples.append(("server log: " + text)[:300])  # not counted: context only
        elif " WARNING " in text:
            counts["warning_lines"] += 1


# -- worker: consoles that move between standby and roll-calls -----------------------------


class Console:
    """One simulated console, moving like console.js between standby and roll-call rooms."""

    def __init__(self, worker: Worker, duty_room_id: int, token: str) -> None:
        self.worker, self.duty_room_id, self.token = worker, duty_room_id, token
        self.standby = f"standby-{duty_room_id}"
        self.room = self.standby
        self.client: Any = None
        self.track: Any = None
        self.publication: Any = None  # (peer connection, publication id)
        self.floor: Any = None
        self.busy = True  # moving or (re)connecting

    @property
    def settled(self) -> bool:
        """On standby, published, the publication's connection up, nothing in progress."""
        return (not self.busy and self.room == self.standby and self.publication is not None
                and self.publication[0].connectionState == "connected")

    async def run(self) -> None:
        """Sign in and follow the server's events; reconnect like console.js if the socket drops."""
        from dutycall.client import SignallingClient, sign_in

        w = self.worker
        try:
            cookies = await sign_in(w.base, device_token=self.token)
        except Exception as exc:
            w.errors.add(f"room {self.duty_room_id}: sign-in: {exc!r}")
            return
        while not w.stopping:
            self.busy = True
            try:
                self.client = await SignallingClient(w.base.replace("http", "ws", 1) + "/ws", cookies=cookies).connect()
                await self.enter()
                await self.follow()
                if not w.stopping:
                    w.errors.add(f"room {self.duty_room_id}: signalling socket closed")
            except Exception as exc:
                if not w.stopping:
                    w.errors.add(f"room {self.duty_room_id} in {self.room}: {exc!r}")
            await self.teardown()
            if self.client is not None:
                with contextlib.suppress(Exception):
                    await self.client.close()
            if not w.stopping:
                await asyncio.sleep(1.0)

    async def follow(self) -> None:
        """Handle events one at a time (a move finishes before the next event) until the socket closes."""
        client = self.client
        seen_errors = 0
        while not client.ws.closed:
            try:
                event = await asyncio.wait_for(client.events.get(), 1.0)
            except TimeoutError:
                event = None
            for error in client.errors[seen_errors:]:
                self.worker.errors.add(f"room {self.duty_room_id}: server error event {error}")
            seen_errors = len(client.errors)
            if event is not None:
                await self.handle(event)

    async def handle(self, event: dict[str, Any]) -> None:
        """What console.js does with each event."""
        kind = event.get("type")
        if kind == "rollcall_invite":
            await self.move(event["room"])
        elif kind == "rollcall_ended":
            if self.room.startswith("rollcall-"):
                await self.move(self.standby)
        elif kind == "rollcall_ring":
            try:
                await self.client.request("rollcall_answer", roll_call_id=event["roll_call_id"],
                                          officer="值班员" + str(self.duty_room_id))
                self.worker.answers += 1
            except Exception as exc:
                self.worker.errors.add(f"room {self.duty_room_id}: answer: {exc!r}")
        elif kind == "publish_quality" and self.track is not None:
            self.track.set_profile(event.get("profile", "idle"))
        elif kind == "publication_removed" and self.publication and event.get("publication_id") == self.publication[1]:
            if event.get("reason") != "unpublished":
                # The server dropped our publication (media stalled): publish again, as console.js does.
                self.worker.republishes += 1
                await self.republish()
        elif kind == "_publication_failed" and self.publication and self.publication[0] is event["pc"]:
            self.worker.errors.add(f"room {self.duty_room_id}: publishing connection failed in {self.room}")
            with contextlib.suppress(Exception):
                await self.client.request("unpublish", publication_id=self.publication[1])
            await self.republish()

    async def move(self, room: str) -> None:
        """Same socket: leave, drop our connections, join ``room`` and publish there."""
        if room == self.room:
            return
        self.busy = True
        self.room = room
        self.worker.moves += 1
        old = self.take_connections()  # whatever the server says about these now is no reason to republish
        try:
            await self.client.request("leave")
        except Exception as exc:
            self.worker.errors.add(f"room {self.duty_room_id}: leave: {exc!r}")
        await close_all(old)
        await self.enter()

    async def enter(self) -> None:
        """Join the current room and publish; in a roll-call also hold the floor subscription."""
        from dutycall.client import subscribe
        from dutycall.conference import aiortc_compat

        self.busy = True
        await self.client.join(self.room, "")
        await self.publish()
        if self.room.startswith("rollcall-"):
            pc, _, _ = await subscribe(self.client, None, kinds=("video",), passthrough=True)
            self.floor = pc
            aiortc_compat.count_frames_only(pc, self.worker.floor_frame)
        self.busy = False

    async def publish(self) -> None:
        """Publish the camera (small profile) in the current room."""
        from dutycall.client import publish

        self.track = ConsoleTrack(self.worker.small, self.worker.full)
        pc, reply = await publish(self.client, video=self.track)
        self.publication = (pc, reply["publication_id"])

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "failed":
                self.client.events.put_nowait({"type": "_publication_failed", "pc": pc})

    async def republish(self) -> None:
        """Drop the publishing connection and publish again."""
        if self.publication is not None:
            pc, self.publication = self.publication[0], None
            await close_all([pc])
        await self.publish()

    def take_connections(self) -> list[Any]:
        """Forget our peer connections (to close them)."""
        pcs = [self.publication[0] if self.publication else None, self.floor]
        self.publication = self.floor = None
        return pcs

    async def teardown(self) -> None:
        """Close our peer connections."""
        await close_all(self.take_connections())


async def close_all(pcs: list[Any]) -> None:
    """Close peer connections (None: nothing to close)."""
    for pc in pcs:
        if pc is not None:
            with contextlib.suppress(Exception):
                await pc.close()


class Worker:
    """The consoles of one worker process and what they counted."""

    def __init__(self, base: str, cache: str) -> None:
        self.base = base
        self.small, self.full = read_encoded(cache)
        self.errors = Errors()
        self.stopping = False
        self.answers = self.moves = self.republishes = self.floor_frames = 0
        self.consoles: list[Console] = []

    def floor_frame(self, _rtp_timestamp: int) -> None:
        self.floor_frames += 1

    def report(self) -> dict[str, Any]:
        """What the parent asks for between roll-calls and at the end."""
        return {"consoles": len(self.consoles), "settled": sum(c.settled for c in self.consoles),
                "errors": self.errors.count, "error_samples": self.errors.samples, "answers": self.answers,
                "moves": self.moves, "republishes": self.republishes, "floor_frames": self.floor_frames}


async def run_worker(base: str, cache: str, rooms: list[str]) -> None:
    """Run the consoles (``duty_room_id:token`` each); answer ``status`` lines, end on ``stop``."""
    from dutycall.conference import aiortc_compat

    aiortc_compat.set_host_addresses(["127.0.0.1"])
    worker = Worker(base, cache)
    for entry in rooms:
        room_id, token = entry.split(":", 1)
        worker.consoles.append(Console(worker, int(room_id), token))
    tasks = [asyncio.ensure_future(console.run()) for console in worker.consoles]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while (await reader.readline()).strip() not in (b"", b"stop"):
        print(json.dumps(worker.report()), flush=True)
    worker.stopping = True
    for console in worker.consoles:
        await console.teardown()
        if console.client is not None:
            with contextlib.suppress(Exception):
                await console.client.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(worker.report()), flush=True)


# -- the host and the soak -----------------------------------------------------------------


class Soak:
    """Drives roll-calls as a host and keeps the score."""

    def __init__(self, args: argparse.Namespace, host: Host, rooms: list[int],
                 workers: list[asyncio.subprocess.Process], errors: Errors) -> None:
        self.args, self.host, self.rooms, self.workers, self.errors = args, host, rooms, workers, errors
        self.roll_calls = self.expected = self.answered = 0
        self.outcomes: dict[str, int] = {}
        self.worker_errors = 0  # as of the last report

    async def until(self, what: str, check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
        """Wait (polling each second) until ``check()``; an error if it never holds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if await check():
                    return True
            except Exception as exc:
                self.errors.add(f"{what}: {exc!r}")
                return False
            if time.monotonic() > deadline:
                self.errors.add(f"{what}: not after {timeout:.0f} s")
                return False
            await asyncio.sleep(1.0)

    async def worker_reports(self, command: bytes = b"status\n") -> list[dict[str, Any]]:
        reports = []
        for worker in self.workers:
            assert worker.stdin is not None and worker.stdout is not None
            worker.stdin.write(command)
            await worker.stdin.drain()
            line = await asyncio.wait_for(worker.stdout.readline(), 60)
            if not line:
                raise RuntimeError(f"worker {worker.pid} exited ({worker.returncode})")
            reports.append(json.loads(line))
        return reports

    async def settle(self) -> dict[str, Any]:
        """Wait until every console is back on standby, published, and the server holds exactly
        one publication and one participant per room and nothing else; returns /healthz."""
        health: dict[str, Any] = {}

        async def settled() -> bool:
            nonlocal health
            reports = await self.worker_reports()
            self.worker_errors = sum(r["errors"] for r in reports)
            health = await self.host.get("/healthz")
            n = len(self.rooms)
            return (sum(r["settled"] for r in reports) == n and health.get("publications") == n
                    and health.get("participants") == n and health.get("subscriptions", 0) == 0)

        await self.until("consoles back on standby", settled, 60 + len(self.rooms))
        await asyncio.sleep(self.args.settle_seconds)  # evidence, notices, closing connections
        return health

    async def roll_call(self) -> None:
        """One roll-call of every room, as a careful host runs it; counts what was recorded."""
        n = len(self.rooms)
        self.roll_calls += 1
        self.expected += n
        try:
            created = await self.host.post("/api/rollcalls", {
                "title": f"压力测试 {self.roll_calls}", "room_ids": self.rooms,
                "answer_window": self.args.answer_window, "late_after": self.args.answer_window / 2})
        except Exception as exc:
            self.errors.add(f"create roll-call: {exc!r}", n)
            return
        path = f"/api/rollcalls/{created['id']}"
        board: dict[str, Any] = {}

        async def ready() -> bool:
            # The simulated consoles have no microphone: "no_audio" is expected, nothing else.
            return all(set(r["problems"]) <= {"no_audio"} for r in await self.host.get(path + "/precheck"))

        async def arrived() -> bool:
            nonlocal board
            board = await self.host.get(path)
            return all(r["connected"] for r in board["rooms"])

        async def ended() -> bool:
            nonlocal board
            board = await self.host.get(path)
            return board["phase"] in ENDED

        try:
            await self.until("pre-check", ready, 60 + n / 2)
            await self.host.post(path + "/start", {})
            await self.until("consoles in the roll-call", arrived, 60 + n)
            await self.host.post(path + "/poll", {"dwell": self.args.dwell})
            if not await self.until("roll-call end", ended, 60 + n * (self.args.dwell + 5)):
                with contextlib.suppress(Exception):  # it may have ended meanwhile: the board says
                    await self.host.post(path + "/cancel", {})
                await self.until("roll-call cancelled", ended, 30)
        except Exception as exc:
            self.errors.add(f"roll-call {created['id']}: {exc!r}")
        for room in board.get("rooms", []):
            self.outcomes[room["status"]] = self.outcomes.get(room["status"], 0) + 1
        answered = sum(1 for room in board.get("rooms", []) if room["status"] in ANSWERED)
        self.answered += answered
        print(f"roll-call {self.roll_calls}: {answered}/{n} answered, "
              f"{self.errors.count + self.worker_errors} errors so far",
              file=sys.stderr, flush=True)
        if answered < n:
            statuses = sorted({r["status"] for r in board.get("rooms", []) if r["status"] not in ANSWERED})
            self.errors.add(f"roll-call {created['id']}: {n - answered} of {n} not answered ({statuses})", n - answered)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    data = tempfile.mkdtemp(prefix="dutycall-soak-")
    cache = write_encoded(data, args.bitrate)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await start_server(data, port, stderr=asyncio.subprocess.PIPE, log_level="WARNING")
    errors = Errors()
    log_counts = {"tracebacks": 0, "error_lines": 0, "warning_lines": 0}
    assert server.stderr is not None
    log_task = asyncio.ensure_future(watch_log(server.stderr, errors, log_counts))
    workers: list[asyncio.subprocess.Process] = []
    try:
        await wait_healthy(port, server)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            host = await Host(http, base).sign_in()
            rooms, tokens = await host.create_rooms(args.rooms)
            pairs = [f"{room}:{token}" for room, token in zip(rooms, tokens, strict=True)]
            for start in range(0, args.rooms, args.per_worker):
                workers.append(await asyncio.create_subprocess_exec(
                    sys.executable, os.path.abspath(__file__), "--worker", base, cache,
                    *pairs[start:start + args.per_worker], cwd=ROOT,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE))
            for worker in workers:
                assert worker.stdout is not None
                if (await asyncio.wait_for(worker.stdout.readline(), 120)).strip() != b"ready":
                    raise RuntimeError("a worker failed to start")
            soak = Soak(args, host, rooms, workers, errors)
            await soak.settle()
            for _ in range(args.warmup):
                await soak.roll_call()
                await soak.settle()
            rss0, fds0, children0 = await sample_footprint(server.pid)
            trend = []
            cpu0, t0 = process_cpu_seconds(server.pid), time.monotonic()
            while True:
                await soak.roll_call()
                await soak.settle()
                trend.append(round(footprint(server.pid)[0], 1))
                if time.monotonic() - t0 >= args.minutes * 60:
                    break
            cpu1, t1 = process_cpu_seconds(server.pid), time.monotonic()
            rss1, fds1, children1 = await sample_footprint(server.pid)
            health = await host.get("/healthz")
        reports = await soak.worker_reports(b"stop\n")
        for report in reports:
            errors.count += report["errors"]
            errors.samples += report["error_samples"][:max(0, MAX_SAMPLES - len(errors.samples))]
    finally:
        await stop_processes(workers, server)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(log_task, 10)
        shutil.rmtree(data, ignore_errors=True)
    return {
        "rooms": args.rooms, "minutes": round((t1 - t0) / 60, 1), "roll_calls": soak.roll_calls,
        "warmup_roll_calls": args.warmup, "expected": soak.expected, "answered": soak.answered,
        "errors": errors.count, "rss_start_mb": round(rss0, 1), "rss_end_mb": round(rss1, 1),
        "rss_growth_pct": round((rss1 - rss0) / rss0 * 100, 2), "fds_start": fds0, "fds_end": fds1,
        "fd_growth": fds1 - fds0, "children_rss_start_mb": round(children0, 1),
        "children_rss_end_mb": round(children1, 1), "rss_after_each_mb": trend,
        "server_cpu": round((cpu1 - cpu0) / (t1 - t0), 3),
        "publications_end": health.get("publications"), "participants_end": health.get("participants"),
        "subscriptions_end": health.get("subscriptions"), "outcomes": soak.outcomes,
        "answers_sent": sum(r["answers"] for r in reports), "moves": sum(r["moves"] for r in reports),
        "republishes": sum(r["republishes"] for r in reports),
        "floor_frames": sum(r["floor_frames"] for r in reports), "server_tracebacks": log_counts["tracebacks"],
        "server_error_lines": log_counts["error_lines"], "server_warning_lines": log_counts["warning_lines"],
        "dwell": args.dwell, "cpus": os.cpu_count(), "error_samples": errors.samples,
        # The server inherits this environment: 0 turns its periodic malloc_trim off (dutycall/memory.py).
        "malloc_trim_interval": os.environ.get("DUTYCALL_MALLOC_TRIM_INTERVAL", "default"),
        "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX", "default"),
    }


def targets_met(result: dict[str, Any]) -> bool:
    """Memory and descriptors flat, no errors, nothing lost."""
    return (result["rss_growth_pct"] <= 5 and result["fd_growth"] <= 10 and result["errors"] == 0
            and result["answered"] == result["expected"] and result["publications_end"] == result["rooms"])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        asyncio.run(run_worker(sys.argv[2], sys.argv[3], sys.argv[4:]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="how long to run roll-calls back to back after the warm-up (the last one finishes)")
    parser.add_argument("--dwell", type=float, default=1.0,
                        help="polling: seconds between one answer and the next call")
    parser.add_argument("--answer-window", type=float, default=30.0, help="seconds a called room has to answer")
    parser.add_argument("--warmup", type=int, default=1, help="roll-calls before the baseline footprint is taken")
    parser.add_argument("--settle-seconds", type=float, default=3.0,
                        help="pause after every console is back on standby (evidence, notices, closing connections)")
    parser.add_argument("--per-worker", type=int, default=25, help="consoles per worker process")
    parser.add_argument("--bitrate", type=int, default=400_000, help="the called room's full-quality bitrate")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the targets are met")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    result["targets_met"] = targets_met(result)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for key, value in result.items():
            if key != "error_samples":
                print(f"{key:24}{value}")
        for sample in result["error_samples"]:
            print(f"  {sample}")
    if args.check and not result["targets_met"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
