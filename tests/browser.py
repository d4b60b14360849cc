"""Driving Debian's Chromium with Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import pathlib
import shutil

import av
import numpy as np

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
]


def write_y4m(path: pathlib.Path, rgb: tuple[int, int, int], width: int = 320, height: int = 240, frames: int = 10) -> pathlib.Path:
    """A fake camera: a solid colour, as a YUV4MPEG2 file Chromium can loop."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:, :] = rgb
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    planes = b"".join(
        bytes(np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)[:, : plane.width].tobytes())
        for plane in frame.planes
    )
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + planes)
    return path


async def launch(playwright, user_data: pathlib.Path, y4m: pathlib.Path | None = None, tz: str | None = None):
    """Chromium; ``tz`` runs it in that zone (its TZ), as a duty room's computer set elsewhere."""
    args = list(FLAGS)
    if y4m is not None:
        args.append(f"--use-file-for-fake-video-capture={y4m}")
    env = {**os.environ, "TZ": tz} if tz else None
    return await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, env=env)


# Mean colour of the centre of a <video>, read through a canvas in the page.
VIDEO_RGB_JS = """
(selector) => {
  const video = document.querySelector(selector);
  if (!video || video.videoWidth === 0 || video.readyState < 2) return null;
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(video, 0, 0);
  const w = canvas.width, h = canvas.height;
  const data = ctx.getImageData(w / 4, h / 4, w / 2, h / 2).data;
  let r = 0, g = 0, b = 0, n = 0;
  for (let i = 0; i < data.length; i += 4) { r += data[i]; g += data[i + 1]; b += data[i + 2]; n++; }
  return [Math.round(r / n), Math.round(g / n), Math.round(b / n), video.videoWidth, video.videoHeight];
}
"""
