"""dutycall.memory: freed native memory goes back to the system; the trimmer starts and stops cleanly."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from dutycall import memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def threads_named(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_trim_gives_back_memory_freed_below_the_top_of_the_heap():
    # 100k small blocks freed, but the last one kept: free() alone cannot shrink the heap
    # past it, as after a burst of connections whose buffers are interleaved with live ones.
    libc = memory.glibc()
    assert libc is not None
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    memory.trim()
    blocks = [libc.malloc(1000) for _ in range(100_000)]
    for block in blocks:
        ctypes.memset(block, 1, 1000)  # resident, as a used buffer is
    pinned = libc.malloc(1000)
    for block in blocks:
        libc.free(block)
    try:
        held = memory.resident_bytes()
        result = memory.trim_and_measure()
        assert result.rss_before >= held - 2**20
        given_back = held - result.rss_after
        assert given_back > 60 * 2**20, f"only {given_back / 2**20:.1f} MB given back of ~95 MB freed"
        assert result.seconds < 5
    finally:
        libc.free(pinned)


async def test_the_trimmer_trims_in_its_own_thread_and_stops_cleanly():
    trimmer = memory.MemoryTrimmer(interval=0.05)
    trimmer.start()
    assert trimmer.running
    deadline = time.monotonic() + 30
    while trimmer.trims < 3:
        assert time.monotonic() < deadline, "the trimmer never trimmed"
        await asyncio.sleep(0.02)
    assert trimmer.last is not None and trimmer.last.rss_after > 0
    assert len(threads_named("malloc-trim")) == 1
    await trimmer.close()
    assert not trimmer.running
    assert threads_named("malloc-trim") == []
    await trimmer.close()  # idempotent
    trims = trimmer.trims
    await asyncio.sleep(0.2)
    assert trimmer.trims == trims


async def test_interval_zero_turns_it_off_and_bad_intervals_are_refused(monkeypatch):
    monkeypatch.setenv(memory.INTERVAL_VARIABLE, "0")
    async with memory.trimming(memory.interval_from_env()) as trimmer:
        assert trimmer is None
    monkeypatch.delenv(memory.INTERVAL_VARIABLE)
    assert memory.interval_from_env() == memory.DEFAULT_INTERVAL
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv(memory.INTERVAL_VARIABLE, bad)
        with pytest.raises(SystemExit, match=memory.INTERVAL_VARIABLE):
            memory.interval_from_env()
    with pytest.raises(ValueError):
        memory.MemoryTrimmer(interval=0)


@pytest.mark.slow
def test_the_server_trims_while_it_runs_and_stops_cleanly(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, memory.INTERVAL_VARIABLE: "0.2", "DUTYCALL_ADMIN_PASSWORD": "memory-test-password-1"}
    command = [sys.executable, "-m", "dutycall.server", "--host", "127.0.0.1", "--port", str(port),
               "--database-url", f"sqlite:///{tmp_path}/db.sqlite3", "--log-level", "DEBUG"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stderr or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while sum("dutycall.memory: malloc_trim:" in line for line in lines) < 2:
            assert server.poll() is None, "".join(lines[-30:])
            assert time.monotonic() < deadline, "the server never trimmed"
            time.sleep(0.1)
        server.send_signal(signal.SIGINT)
        assert server.wait(60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    reader.join(10)
    log = "".join(lines)
    assert "Traceback" not in log and "malloc_trim failed" not in log

    # A bad interval stops the start with a clear message, before anything listens.
    bad = subprocess.run(command, cwd=ROOT, env={**env, memory.INTERVAL_VARIABLE: "soon"}, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0 and memory.INTERVAL_VARIABLE in bad.stderr
