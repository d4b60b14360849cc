"""What the roll-call benchmarks share: the console media, a fresh server with duty rooms, a host."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from dutycall.synthetic import PreEncodedTrack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "bench-password-1"


def write_encoded(data: str, bitrate: int) -> str:
    """Encode the consoles' two profiles once (small 320x180 5 fps, full 640x360 30 fps) into a
    file the worker processes read; returns its path."""
    cache = os.path.join(data, "encoded.json")
    with open(cache, "w") as f:
        json.dump({"small": [p.hex() for p in PreEncodedTrack.encode("vp8", 320, 180, 5, 120_000, seconds=4)],
                   "full": [p.hex() for p in PreEncodedTrack.encode("vp8", 640, 360, 30, bitrate, seconds=4)]}, f)
    return cache


def read_encoded(cache: str) -> tuple[list[bytes], list[bytes]]:
    """The small and full profiles' packets written by ``write_encoded``."""
    with open(cache) as f:
        encoded = json.load(f)
    return [bytes.fromhex(p) for p in encoded["small"]], [bytes.fromhex(p) for p in encoded["full"]]


class ConsoleTrack(PreEncodedTrack):
    """A console's camera: the small profile until the server gives it the floor."""

    def __init__(self, small: list[bytes], full: list[bytes]) -> None:
        super().__init__(small, fps=5)
        self._small, self._full = small, full

    def set_profile(self, name: str) -> None:
        """Like a browser's setParameters: the next frame is of the new profile, at once."""
        self._packets = self._full if name == "full" else self._small
        self.request_keyframe()
        self.set_rate(30 if name == "full" else 5)


async def start_server(data: str, port: int, stderr: int = asyncio.subprocess.DEVNULL,
                       log_level: str = "ERROR") -> asyncio.subprocess.Process:
    """A dutycall server on 127.0.0.1:``port`` with a fresh SQLite database in ``data``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dutycall.server", "--host", "127.0.0.1", "--port", str(port),
        "--ice-addresses", "127.0.0.1", "--database-url", database_url(data), "--log-level", log_level,
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        env={**os.environ, "DUTYCALL_ADMIN_PASSWORD": PASSWORD})


def database_url(data: str) -> str:
    """The benchmark server's database."""
    return f"sqlite:///{data}/rollcall.sqlite3"


class Host:
    """The administrator signed in over HTTP, as a host's page is: JSON in and out, CSRF on writes."""

    def __init__(self, http: Any, base: str) -> None:
        self.http, self.base = http, base
        self.csrf: dict[str, str] = {}
        self.unit_id: int | None = None

    async def sign_in(self) -> Host:
        """Sign in as the administrator."""
        reply = await self.post("/api/session", {"username": "admin", "password": PASSWORD})
        self.csrf = {"X-CSRF-Token": reply["csrf_token"]}
        self.unit_id = reply["principal"]["unit_id"]
        return self

    async def get(self, path: str) -> Any:
        """GET a JSON resource; raises on an error status."""
        async with self.http.get(self.base + path) as resp:
            return await _json(resp)

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST JSON; raises on an error status."""
        async with self.http.post(self.base + path, headers=self.csrf, json=body) as resp:
            return await _json(resp)

    async def create_rooms(self, count: int) -> tuple[list[int], list[str]]:
        """``count`` duty rooms in the administrator's unit, each with a device credential:
        their ids and the consoles' tokens."""
        rooms, tokens = [], []
        for i in range(count):
            room = await self.post("/api/rooms", {"unit_id": self.unit_id, "name": f"值班室{i + 1:03d}"})
            rooms.append(room["id"])
            tokens.append((await self.post(f"/api/rooms/{room['id']}/device-credentials", {}))["token"])
        return rooms, tokens


async def _json(resp: Any) -> Any:
    if resp.status >= 400:
        raise RuntimeError(f"{resp.method} {resp.url.path}: {resp.status} {(await resp.text())[:200]}")
    return await resp.json()
