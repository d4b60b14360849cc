"""Archive benchmark: N streams published over WHIP into the real server and archived.

One run measures, in separate processes:

1. the server (``dutycall.server``, a fresh database and recordings directory) idle, for the
   window's length, before anything is published;
2. the same server while N publishers (lean aiortc clients in worker processes, ``--per-worker``
   each) stream a 1 Mbps 30 fps 640x360 video (VP8, or H264 with ``--codec h264``) with Opus
   audio to it over WHIP (RFC 9725, one ingest token each), each stream archived without
   re-encoding (WebM or fragmented MP4);
3. the baseline: decoding and re-encoding the same stream (video and audio) with PyAV, as a
   recorder that transcodes would, in a process of its own.

The publishers' media is encoded once (``PreEncodedTrack``: a 4 s loop, a keyframe at each
start) and only packetised by the clients, so they stay cheap. CPU is core-seconds per second:
the server process with all its threads and children (from /proc), the baseline's own process
time per second of stream.

    python bench/recording.py --streams 10
    python bench/recording.py --streams 10 --codec h264 --json

``server_cpu_per_stream`` is the loaded server minus the idle one, per stream;
``server_cpu_per_stream_gross`` does not subtract. Target: ``server_cpu_per_stream`` <= 0.02
(one core archives 50 feeds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import pathlib
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PASSWORD = "bench-password-1"
BITRATE = 1_000_000
WIDTH, HEIGHT, FPS = 640, 360, 30
LOOP_SECONDS = 4.0


# -- the stream, encoded once -------------------------------------------------------------------


def encode_stream(codec: str) -> dict[str, list[str]]:
    """The publishers' video (``codec``, 1 Mbps, 640x360, 30 fps, a 4 s loop) and Opus audio
    (20 ms packets of a tone with noise), hex-encoded for the workers."""
    import av
    import numpy as np

    from dutycall.synthetic import PreEncodedTrack

    video = PreEncodedTrack.encode(codec, WIDTH, HEIGHT, FPS, BITRATE, LOOP_SECONDS)
    encoder: Any = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format, encoder.bit_rate = 48000, "stereo", "s16", 32000
    encoder.open()
    rng = np.random.default_rng(1)
    audio: list[bytes] = []
    for i in range(int(LOOP_SECONDS * 50)):
        t = (np.arange(960) + i * 960) / 48000
        tone = (3000 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 300, 960)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48000, i * 960
        audio += [bytes(p) for p in encoder.encode(frame)]
    return {"video": [p.hex() for p in video], "audio": [p.hex() for p in audio]}


# -- worker: N WHIP publishers in one process ---------------------------------------------------


async def run_worker(base: str, encoded_path: str, codec: str) -> None:
    import aiohttp
    import av
    from aiortc import MediaStreamTrack, RTCRtpSender, RTCSessionDescription

    from dutycall.client import new_peer_connection
    from dutycall.conference import aiortc_compat
    from dutycall.synthetic import PreEncodedTrack

    aiortc_compat.set_host_addresses(["127.0.0.1"])
    tokens = json.loads(os.environ["DUTYCALL_BENCH_TOKENS"])
    with open(encoded_path) as f:
        encoded = json.load(f)
    video_packets = [bytes.fromhex(p) for p in encoded["video"]]
    audio_packets = [bytes.fromhex(p) for p in encoded["audio"]]

    class PreEncodedAudio(MediaStreamTrack):
        """Opus packets encoded once, every 20 ms."""

        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self._n = 0
            self._start: float | None = None

        async def recv(self) -> av.Packet:
            if self._start is None:
                self._start = time.monotonic()
            delay = self._start + self._n * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            packet = av.Packet(audio_packets[self._n % len(audio_packets)])
            packet.pts, packet.time_base = self._n * 960, fractions.Fraction(1, 48000)
            self._n += 1
            return packet

    peers = []
    async with aiohttp.ClientSession() as http:
        for token in tokens:
            pc = new_peer_connection()
            video = PreEncodedTrack(video_packets, fps=FPS)
            transceiver = pc.addTransceiver(video, direction="sendonly")
            transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                             if c.name.lower() in (codec, "rtx")])
            aiortc_compat.on_keyframe_request(transceiver.sender, video.request_keyframe)
            pc.addTransceiver(PreEncodedAudio(), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            async with http.post(f"{base}/api/whip", data=pc.localDescription.sdp.encode(),
                                 headers={"Content-Type": "application/sdp",
                                          "Authorization": f"Bearer {token}"}) as resp:
                answer = await resp.text()
                if resp.status != 201:
                    raise RuntimeError(f"WHIP: {resp.status} {answer[:200]}")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            peers.append(pc)
    print("ready", flush=True)
    await asyncio.Event().wait()  # until killed


# -- the baseline: decode and re-encode the same stream -----------------------------------------


def run_baseline(encoded_path: str, codec: str, seconds: float) -> None:
    """Decode ``seconds`` of the stream (video and audio) and encode it again, as fast as it
    goes; prints the process's CPU per second of stream."""
    import av

    with open(encoded_path) as f:
        encoded = json.load(f)
    video_packets = [bytes.fromhex(p) for p in encoded["video"]]
    audio_packets = [bytes.fromhex(p) for p in encoded["audio"]]
    frames = int(seconds * FPS)
    started = time.process_time()
    decoder: Any = av.CodecContext.create({"vp8": "vp8", "h264": "h264"}[codec], "r")
    decoder.thread_count = 1
    # The synthetic publisher's encoder (libvpx realtime cpu-used 8, or libx264 ultrafast
    # zerolatency: the cheapest settings), on one thread: libvpx's worker threads spin when the
    # machine is busy, which made the figure swing 0.2-1.3 core between runs.
    encoder = make_encoder(codec, WIDTH, HEIGHT, FPS, BITRATE, threads=1)
    out = 0
    for i in range(frames):
        for picture in decoder.decode(av.Packet(video_packets[i % len(video_packets)])):
            picture.pts, picture.time_base = i, encoder.time_base
            picture.pict_type = av.video.frame.PictureType.NONE
            out += sum(p.size for p in encoder.encode(picture))
    audio_decoder: Any = av.CodecContext.create("opus", "r")
    audio_encoder: Any = av.CodecContext.create("libopus", "w")
    audio_encoder.sample_rate, audio_encoder.layout, audio_encoder.format = 48000, "stereo", "s16"
    audio_encoder.bit_rate = 32000
    audio_encoder.open()
    for i in range(int(seconds * 50)):
        for sound in audio_decoder.decode(av.Packet(audio_packets[i % len(audio_packets)])):
            sound.pts = None
            out += sum(p.size for p in audio_encoder.encode(sound))
    cpu = time.process_time() - started
    print(json.dumps({"cpu_per_stream": cpu / seconds, "encoded_kbps": out * 8 / seconds / 1000}), flush=True)


def make_encoder(codec: str, width: int, height: int, fps: int, bitrate: int, threads: int = 0) -> Any:
    """``dutycall.synthetic.make_encoder``'s settings, with a thread count."""
    import av

    name = {"vp8": "libvpx", "h264": "libx264"}[codec]
    ctx: Any = av.CodecContext.create(name, "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base, ctx.framerate = fractions.Fraction(1, fps), fractions.Fraction(fps, 1)
    ctx.bit_rate, ctx.gop_size = bitrate, int(LOOP_SECONDS * fps)
    if threads:
        ctx.thread_count = threads
    if name == "libvpx":
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0"}
    else:
        ctx.profile = "Baseline"
        ctx.options = {"tune": "zerolatency", "preset": "ultrafast", "scenecut": "0", "repeat-headers": "1"}
    ctx.open()
    return ctx


# -- the run ------------------------------------------------------------------------------------


def recordings_bytes(directory: pathlib.Path) -> tuple[int, int]:
    """Bytes in the recordings directory, and how many segment files."""
    files = [p for p in directory.rglob("*") if p.suffix in (".webm", ".mp4")]
    return sum(p.stat().st_size for p in files if p.exists()), len(files)


async def server_phase(args: argparse.Namespace, data: pathlib.Path, encoded_path: pathlib.Path,
                       archive: bool = True) -> dict[str, Any]:
    """One server: idle for the window, then loaded with ``args.streams`` WHIP publishers (archived,
    or with ``archive`` False only ingested and forwarded: the archive's share is the difference)."""
    import datetime as dt

    import aiohttp

    from bench.common import Host
    from bench.fanout import free_port, process_cpu_seconds, stop_processes, wait_healthy

    name = "archive" if archive else "ingest_only"
    recordings = data / f"recordings-{name}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(data / f"server-{name}.log", "wb")
    if not archive:
        entry = [os.path.abspath(__file__), "--serve-without-archive"]
    elif args.profile:
        entry = ["-m", "cProfile", "-o", args.profile, "-m", args.server_module]
    else:
        entry = ["-m", args.server_module]
    server = await asyncio.create_subprocess_exec(
        sys.executable, *entry, "--host", "127.0.0.1", "--port", str(port),
        "--ice-addresses", "127.0.0.1", "--log-level", "WARNING",
        "--database-url", f"sqlite:///{data}/bench-{name}.sqlite3",
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=log,
        env={**os.environ, "DUTYCALL_ADMIN_PASSWORD": PASSWORD, "DUTYCALL_RECORDINGS_DIR": str(recordings),
             "DUTYCALL_RECORDING_MIN_FREE_MB": "0", "DUTYCALL_RECORDING_SEGMENT_SECONDS": str(args.segment_seconds)})
    workers: list[asyncio.subprocess.Process] = []
    result: dict[str, Any] = {}
    try:
        await wait_healthy(port, server)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            host = await Host(http, base).sign_in()
            now = dt.datetime.now(dt.UTC)
            incident = await host.post("/api/incidents", {
                "title": "基准测试：现场视频归档", "occurred_at": (now - dt.timedelta(minutes=15)).isoformat(),
                "learned_at": (now - dt.timedelta(minutes=10)).isoformat(), "source": "110 转警",
                "category": "accident", "subtype": "public_facility", "level": "III", "place": "东湖路 12 号",
                "course": "基准测试", "deaths": 0, "injured": 0, "missing": 0, "trapped": 0, "measures": "无",
                "contact_name": "王五", "contact_phone": "139 0000 0000", "reporter": "张三"})
            tokens = [(await host.post(f"/api/incidents/{incident['id']}/ingest-tokens",
                                       {"label": f"摄像机 {i + 1}", "minutes": 60}))["token"]
                      for i in range(args.streams)]

        # Idle, the window's length.
        await asyncio.sleep(2.0)
        cpu0, t0 = process_cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(args.seconds)
        idle = (process_cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)

        # N publishers over WHIP.
        for index in range(0, args.streams, args.per_worker):
            mine = tokens[index:index + args.per_worker]
            workers.append(await asyncio.create_subprocess_exec(
                sys.executable, os.path.abspath(__file__), "--worker", base, str(encoded_path), args.codec, cwd=ROOT,
                env={**os.environ, "DUTYCALL_BENCH_TOKENS": json.dumps(mine)},
                stdout=asyncio.subprocess.PIPE))
        for worker in workers:
            assert worker.stdout is not None
            line = await asyncio.wait_for(worker.stdout.readline(), 120)
            if line.strip() != b"ready":
                raise RuntimeError(f"worker failed to start: {line!r}")
        deadline = time.monotonic() + 60
        while archive and recordings_bytes(recordings)[1] < args.streams and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(args.warmup)
        bytes0, _ = recordings_bytes(recordings)
        cpu0, t0 = process_cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(args.seconds)
        cpu1, t1 = process_cpu_seconds(server.pid), time.monotonic()
        bytes1, files = recordings_bytes(recordings)
        loaded = (cpu1 - cpu0) / (t1 - t0)
        result.update({"idle": idle, "loaded": loaded, "per_stream": (loaded - idle) / args.streams,
                       "kbps_per_stream": (bytes1 - bytes0) * 8 / (t1 - t0) / 1000 / args.streams, "files": files})
    finally:
        await stop_processes(workers, server)
        log.close()
    server_log = (data / f"server-{name}.log").read_text(errors="replace")
    result["writer_behind_warnings"] = server_log.count("writer behind")
    result["server_errors"] = server_log.count(" ERROR ") + server_log.count("Traceback")
    return result


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    data = pathlib.Path(tempfile.mkdtemp(prefix="dutycall-bench-recording-"))
    encoded_path = data / "encoded.json"
    encoded = encode_stream(args.codec)
    encoded_path.write_text(json.dumps(encoded))
    stream_kbps = sum(len(p) // 2 for p in encoded["video"] + encoded["audio"]) * 8 / LOOP_SECONDS / 1000
    result: dict[str, Any] = {"streams": args.streams, "codec": args.codec, "seconds": args.seconds,
                              "cores": os.cpu_count(), "load_average_before": round(os.getloadavg()[0], 2)}
    archived = await server_phase(args, data, encoded_path)
    result.update({
        "server_idle_cpu": round(archived["idle"], 4),
        "server_cpu": round(archived["loaded"], 4),
        "server_cpu_per_stream": round(archived["per_stream"], 4),
        "server_cpu_per_stream_gross": round(archived["loaded"] / args.streams, 4),
        "archived_kbps_per_stream": round(archived["kbps_per_stream"], 1),
        "stream_kbps": round(stream_kbps, 1),
        # Below ~0.9 the publishers or the machine did not keep up: the CPU figures are not valid.
        "archived_fraction": round(archived["kbps_per_stream"] / stream_kbps, 3),
        "segment_files": archived["files"],
        "writer_behind_warnings": archived["writer_behind_warnings"],
        "server_errors": archived["server_errors"],
    })
    if args.ingest_only:
        ingested = await server_phase(args, data, encoded_path, archive=False)
        result["ingest_only_cpu_per_stream"] = round(ingested["per_stream"], 4)
        result["archive_share_per_stream"] = round(archived["per_stream"] - ingested["per_stream"], 4)
    result["load_average_after"] = round(os.getloadavg()[0], 2)

    # The baseline, in a process of its own.
    baseline = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), "--baseline", str(encoded_path), args.codec,
        str(args.baseline_seconds), cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    out, _ = await baseline.communicate()
    measured = json.loads(out.decode().strip().splitlines()[-1])
    result["baseline_cpu_per_stream"] = round(measured["cpu_per_stream"], 4)
    result["baseline_encoded_kbps"] = round(measured["encoded_kbps"], 1)
    result["baseline_over_server"] = (round(result["baseline_cpu_per_stream"] / result["server_cpu_per_stream"], 1)
                                      if result["server_cpu_per_stream"] > 0 else None)
    if args.keep:
        result["data"] = str(data)
    else:
        import shutil
        shutil.rmtree(data, ignore_errors=True)
    return result


def serve_without_archive(argv: list[str]) -> None:
    """The server with the archive's recording turned into a no-op (WHIP ingest, forwarding and
    the source rows as usual): what ingest alone costs."""
    from dutycall.media import recording
    from dutycall.server import main as serve

    async def no_recording(self: Any, publication: Any, source_id: int, incident_id: int) -> None:
        return None

    recording.Archive.start = no_recording  # type: ignore[assignment,method-assign]
    serve(argv)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        asyncio.run(run_worker(sys.argv[2], sys.argv[3], sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-without-archive":
        serve_without_archive(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--baseline":
        run_baseline(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=10, help="publishers (at most 32: the WHIP session limit)")
    parser.add_argument("--codec", choices=("vp8", "h264"), default="vp8")
    parser.add_argument("--seconds", type=float, default=20.0, help="each measuring window (idle, loaded)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--per-worker", type=int, default=5)
    parser.add_argument("--segment-seconds", type=float, default=60.0)
    parser.add_argument("--baseline-seconds", type=float, default=10.0, help="stream seconds the baseline transcodes")
    parser.add_argument("--ingest-only", action="store_true",
                        help="also measure a server that ingests without archiving (the archive's share)")
    parser.add_argument("--keep", action="store_true", help="keep the recordings and the server log")
    parser.add_argument("--profile", metavar="PATH", help="run the server under cProfile (its event loop's thread), "
                        "stats written to PATH when it stops")
    parser.add_argument("--server-module", default="dutycall.server",
                        help="what runs the server (an experiment's wrapper that patches it, then serves)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    if result["archived_fraction"] < 0.9:
        print(f"warning: only {result['archived_fraction']:.0%} of the streams' media was archived: the publishers "
              "or the machine did not keep up, the CPU figures are not valid", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:32} {value}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
