"""Helpers shared by the tests: waiting on conditions and reading received media."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from dutycall.client import SignallingClient

#: Session cookies of the test servers, by signalling URL (filled by the server fixture).
AUTH: dict[str, dict[str, str]] = {}


def signalling(ws_url: str) -> SignallingClient:
    """A signalling client signed in to the test server at ``ws_url``."""
    return SignallingClient(ws_url, cookies=AUTH.get(ws_url))


async def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``condition`` until it is truthy and return its value; fail after a generous deadline.

    ``condition`` may be a plain function or an async one (its result is awaited: a database
    read, a browser query). It is tried once more at the deadline, so a slow machine that
    overslept the last interval does not fail a condition that holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        last_try = time.monotonic() >= deadline
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if last_try:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


class FrameReader:
    """Reads a track in the background, counting frames and keeping the last picture's colour."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.frames = 0
        self.first_frame_at: float | None = None
        self.last_frame_at: float | None = None
        self.last_rgb: tuple[int, int, int] | None = None
        self.size: tuple[int, int] | None = None
        self.ended = False
        self.started_at = time.monotonic()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.track.recv()
                now = time.monotonic()
                if self.first_frame_at is None:
                    self.first_frame_at = now
                self.last_frame_at = now
                self.frames += 1
                if self.track.kind == "video" and hasattr(frame, "to_ndarray"):
                    if self.frames % 5 == 1:
                        rgb = frame.to_ndarray(format="rgb24")
                        h, w = rgb.shape[:2]
                        centre = rgb[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
                        self.last_rgb = tuple(int(v) for v in centre.reshape(-1, 3).mean(axis=0))
                        self.size = (w, h)
        except MediaStreamError:
            self.ended = True

    def frames_since(self, count: int) -> int:
        return self.frames - count

    async def stop(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass


def close_colour(rgb: tuple[int, int, int] | None, expected: tuple[int, int, int], tolerance: int = 30) -> bool:
    return rgb is not None and all(abs(a - b) <= tolerance for a, b in zip(rgb, expected))


def mean_rgb(image: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(v) for v in image.reshape(-1, 3).mean(axis=0))  # type: ignore[return-value]
