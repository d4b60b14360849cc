"""A Python signalling client with aiortc peers: for tests, benchmarks and smoke checks.

It speaks the same protocol as the browser console (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any

import aiohttp
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from .conference import aiortc_compat

logger = logging.getLogger(__name__)


class SignallingError(Exception):
    """The server answered a request with an error."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply.get('code')}: {reply.get('message')}")
        self.reply = reply
        self.code = reply.get("code")


class SignallingClient:
    """One WebSocket to the server: requests with replies, and a queue of events."""

    def __init__(self, url: str, cookies: dict[str, str] | None = None) -> None:
        self.url = url
        self.cookies = cookies or {}
        self._session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.errors: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None
        self.participant_id: str | None = None

    async def connect(self) -> SignallingClient:
        self._session = aiohttp.ClientSession(cookies=self.cookies)
        self.ws = await self._session.ws_connect(self.url, max_msg_size=4 * 1024 * 1024)
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            future = self._pending.pop(data.get("id"), None) if "id" in data else None
            if future is not None and not future.done():
                future.set_result(data)
            elif data.get("type") == "error":
                self.errors.append(data)
            else:
                await self.events.put(data)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("signalling closed"))

    async def send_raw(self, text: str | bytes) -> None:
        assert self.ws is not None
        if isinstance(text, bytes):
            await self.ws.send_bytes(text)
        else:
            await self.ws.send_str(text)

    async def request(self, type: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """Send a request and return its reply; raise SignallingError on an error reply."""
        assert self.ws is not None
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self.ws.send_json({"type": type, "id": request_id, **fields})
        reply = await asyncio.wait_for(future, timeout)
        if reply.get("type") == "error":
            raise SignallingError(reply)
        return reply

    async def join(self, room: str, name: str) -> dict[str, Any]:
        reply = await self.request("join", room=room, name=name)
        self.participant_id = reply["participant_id"]
        return reply

    async def wait_event(self, type: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        """The next event of ``type`` whose fields equal ``match``; others are dropped."""

        async def find() -> dict[str, Any]:
            while True:
                event = await self.events.get()
                if event.get("type") == type and all(event.get(k) == v for k, v in match.items()):
                    return event

        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (TimeoutError, Exception):
                self._reader.cancel()
        if self._session is not None:
            await self._session.close()


async def sign_in(base_url: str, username: str | None = None, password: str | None = None,
                  device_token: str | None = None) -> dict[str, str]:
    """Sign in (an account, or a console's device credential); returns the session cookie."""
    async with aiohttp.ClientSession() as session:
        if device_token is not None:
            resp = await session.post(f"{base_url}/api/device-session", json={"token": device_token})
        else:
            resp = await session.post(f"{base_url}/api/session", json={"username": username, "password": password})
        if resp.status != 200:
            raise SignallingError((await resp.json()).get("error", {}))
        return {"dutycall_session": resp.cookies["dutycall_session"].value}


def new_peer_connection() -> RTCPeerConnection:
    """A client peer connection that contacts no STUN server (aiortc's default is public)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def publish(
    client: SignallingClient,
    video: MediaStreamTrack | None = None,
    audio: MediaStreamTrack | None = None,
    video_codec: str | None = None,
    label: str | None = None,
) -> tuple[RTCPeerConnection, dict[str, Any]]:
    """Publish tracks; keyframe requests reach ``video.request_keyframe`` if it has one."""
    pc = new_peer_connection()
    if audio is not None:
        pc.addTransceiver(audio, direction="sendonly")
    if video is not None:
        transceiver = pc.addTransceiver(video, direction="sendonly")
        if video_codec:
            caps = RTCRtpSender.getCapabilities("video").codecs
            transceiver.setCodecPreferences(
                [c for c in caps if c.name.lower() in (video_codec.lower(), "rtx")]
            )
        if hasattr(video, "request_keyframe"):
            aiortc_compat.on_keyframe_request(transceiver.sender, video.request_keyframe)
    await pc.setLocalDescription(await pc.createOffer())
    fields: dict[str, Any] = {"sdp": pc.localDescription.sdp}
    if video_codec:
        fields["video_codec"] = video_codec
    if label:
        fields["label"] = label
    try:
        reply = await client.request("publish", **fields)
    except Exception:
        await pc.close()
        raise
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
    return pc, reply


async def subscribe(
    client: SignallingClient, publication_id: str | None, kinds: tuple[str, ...] = ("video",),
    passthrough: bool = False,
) -> tuple[RTCPeerConnection, dict[str, Any], dict[str, MediaStreamTrack]]:
    """Subscribe to a publication (None: to the room's floor); returns the connection, the reply
    and the tracks by kind.

    With ``passthrough`` the tracks yield encoded packets instead of decoded frames
    (cheap load clients).
    """
    pc = new_peer_connection()
    for kind in kinds:
        pc.addTransceiver(kind, direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        if publication_id is None:  # the floor: whoever the server gives it to
            reply = await client.request("subscribe_floor", sdp=pc.localDescription.sdp)
        else:
            reply = await client.request("subscribe", publication_id=publication_id, sdp=pc.localDescription.sdp)
    except Exception:
        await pc.close()
        raise
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
    if passthrough:
        # The receivers start once both descriptions are set; mark them just before.
        aiortc_compat.mark_passthrough(pc)
    tracks = {t.receiver.track.kind: t.receiver.track for t in pc.getTransceivers() if t.receiver.track}
    return pc, reply, tracks
