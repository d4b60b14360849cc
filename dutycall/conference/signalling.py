"""The signalling protocol (docs/protocol.md): JSON messages in, replies and events out.

Transport-agnostic: the web layer feeds text frames to :meth:`SignallingPeer.handle_text`
and delivers what ``send`` is given. Every request is answered, either with its
reply or with an ``error``; a request that fails changes nothing.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from ..messages import DEFAULT_LANGUAGE, Msg
from .conference import Conference
from .errors import ConferenceError, InvalidRequest, InvalidState, NotFound
from .lifecycle import CloseReason
from .participant import Participant
from .room import Room
from .sdp import parse_offer

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 128 * 1024
ROOM_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
LABEL_RE = re.compile(r"^[\w.\-]{1,32}$")
VIDEO_CODECS = ("VP8", "H264")

Send = Callable[[dict[str, Any]], None]


def _text_field(msg: dict[str, Any], key: str, max_len: int, required: bool = True) -> str | None:
    value = msg.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("conference.text_field", key=key)
    value = value.strip()
    if len(value) > max_len or any(ord(ch) < 32 for ch in value):
        raise InvalidRequest("conference.text_length", key=key, max=max_len)
    return value


class SignallingPeer:
    """One client's signalling connection: at most one room membership at a time."""

    def __init__(
        self, conference: Conference, send: Send, client_ice_servers: list[dict[str, Any]] | None = None,
        identity: dict[str, Any] | None = None,
        extensions: dict[str, Callable[[SignallingPeer, dict[str, Any]], Awaitable[dict[str, Any]]]] | None = None,
        may_join: Callable[[str], Awaitable[bool]] | None = None,
        tag: str | None = None,
        shown: dict[str, Any] | None = None,
        room_info: Callable[[str], dict[str, Any] | None] | None = None,
        lang: str = DEFAULT_LANGUAGE,
    ) -> None:
        """``identity`` is who the transport authenticated (its ``name`` is shown to others);
        without one, the client's own ``name`` is used (tests of the protocol alone). ``tag``
        and ``shown`` are the layer above's (see :class:`Participant`), given to each join;
        so is ``room_info``: what that layer says of a room, sent in ``joined`` (the client
        learns what a room is for from the server instead of reading its name). ``lang`` is the
        language of error messages (the page's that opened the socket)."""
        self.conference = conference
        self.lang = lang
        self.identity = identity
        self.tag = tag
        self.shown = shown
        #: Asked before joining a room (the layers above own room-level permissions).
        self.may_join = may_join
        self.room_info = room_info
        self._send = send
        self.client_ice_servers = client_ice_servers or []
        self.participant: Participant | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "join": self._join,
            "publish": self._publish,
            "unpublish": self._unpublish,
            "subscribe": self._subscribe,
            "subscribe_floor": self._subscribe_floor,
            "unsubscribe": self._unsubscribe,
            "leave": self._leave,
            "ping": self._ping,
        }
        # Message types of the layers above (e.g. answering a roll-call); ours take precedence.
        for name, extension in (extensions or {}).items():
            self._handlers.setdefault(name, functools.partial(extension, self))

    # -- entry points ----------------------------------------------------------------

    async def handle_text(self, text: str) -> None:
        """Handle one text frame; always answers, never raises."""
        request_id: Any = None
        msg_type: Any = None
        try:
            if len(text.encode("utf-8", "replace")) > MAX_MESSAGE_BYTES:
                raise InvalidRequest("conference.message_too_large", max=MAX_MESSAGE_BYTES)
            try:
                msg = json.loads(text)
            except (ValueError, RecursionError) as exc:
                raise InvalidRequest("conference.malformed_json", detail=str(exc)[:200]) from exc
            if not isinstance(msg, dict):
                raise InvalidRequest("conference.not_object")
            request_id = msg.get("id")
            if request_id is not None and not (
                isinstance(request_id, (int, str)) and not isinstance(request_id, bool) and len(str(request_id)) <= 64
            ):
                request_id = None
                raise InvalidRequest("conference.bad_id")
            msg_type = msg.get("type")
            handler = self._handlers.get(msg_type) if isinstance(msg_type, str) else None
            if handler is None:
                raise InvalidRequest("conference.unknown_type", type=str(msg_type)[:64])
            reply = await handler(msg)
        except ConferenceError as exc:
            self.send_error(exc.code, exc.msg, request_id, msg_type)
            return
        except Exception as exc:  # never let one request take the connection down
            logger.exception("signalling request %r failed", msg_type)
            self.send_error("internal_error", Msg("error.signalling_internal", kind=type(exc).__name__),
                            request_id, msg_type)
            return
        if request_id is not None:
            reply["id"] = request_id
        self._send(reply)

    def handle_binary(self) -> None:
        self.send_error("invalid_request", Msg("conference.binary"), None, None)

    def send_error(self, code: str, message: Msg, request_id: Any, msg_type: Any) -> None:
        error: dict[str, Any] = {"type": "error", "code": code, "message": message.render(self.lang)}
        if request_id is not None:
            error["id"] = request_id
        if isinstance(msg_type, str) and len(msg_type) <= 64:
            error["request"] = msg_type
        self._send(error)

    @property
    def room_name(self) -> str | None:
        """The room this client is in now, or None."""
        participant = self.participant
        return participant.room_name if participant is not None and not participant.closed else None

    async def close(self, reason: CloseReason | str = CloseReason.DISCONNECTED) -> None:
        """The transport is gone: leave the room. Idempotent."""
        participant, self.participant = self.participant, None
        if participant is not None:
            await participant.room.leave(participant, CloseReason(reason))
            self.conference.forget_if_empty(participant.room)

    # -- handlers --------------------------------------------------------------------

    def _require(self) -> tuple[Participant, Room]:
        if self.participant is None or self.participant.closed:
            self.participant = None
            raise InvalidState("conference.join_first")
        return self.participant, self.participant.room

    async def _join(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self.participant is not None and not self.participant.closed:
            raise InvalidState("conference.already_in_room", room=self.participant.room.name)
        room_name = _text_field(msg, "room", 64)
        assert room_name is not None
        if not ROOM_RE.match(room_name):
            raise InvalidRequest("conference.room_name")
        if self.may_join is not None and not await self.may_join(room_name):
            raise NotFound("conference.room_not_open", room=room_name)
        name: str | None
        if self.identity is not None:
            name = str(self.identity.get("name") or "?")[:64]
        else:
            name = _text_field(msg, "name", 64)
        assert name is not None
        room = self.conference.room(room_name)
        self.participant = room.join(name, self._send, self.identity, self.tag, self.shown)
        reply = {
            "type": "joined",
            "protocol": PROTOCOL_VERSION,
            "participant_id": self.participant.id,
            "name": self.participant.name,
            "ice_servers": self.client_ice_servers,
            **room.snapshot(),
        }
        if self.room_info is not None:
            reply["room_info"] = self.room_info(room_name)
        return reply

    async def _publish(self, msg: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._require()
        label = _text_field(msg, "label", 32, required=False) or "camera"
        if not LABEL_RE.match(label):
            raise InvalidRequest("conference.label")
        video_codec = msg.get("video_codec")
        if video_codec is not None and (not isinstance(video_codec, str) or video_codec.upper() not in VIDEO_CODECS):
            raise InvalidRequest("conference.video_codec", codecs=", ".join(VIDEO_CODECS))
        offer = parse_offer(msg.get("sdp"), "publish")
        publication, sdp = await room.publish(
            participant, offer, label, video_codec.upper() if video_codec else None
        )
        return {"type": "published", "sdp": sdp, **publication.describe()}

    async def _unpublish(self, msg: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._require()
        publication_id = _text_field(msg, "publication_id", 64)
        publication = participant.publications.get(publication_id or "")
        if publication is None:
            raise NotFound("conference.no_own_publication", id=publication_id)
        await room.unpublish(publication, CloseReason.UNPUBLISHED)
        return {"type": "unpublished", "publication_id": publication.id}

    async def _subscribe(self, msg: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._require()
        publication_id = msg.get("publication_id")
        room.get_publication(publication_id)  # a clear not_found before looking at the SDP
        offer = parse_offer(msg.get("sdp"), "subscribe")
        subscription, sdp = await room.subscribe(participant, publication_id, offer)
        return {
            "type": "subscribed",
            "subscription_id": subscription.id,
            "publication_id": subscription.publication.id,
            "sdp": sdp,
        }

    async def _subscribe_floor(self, msg: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._require()
        offer = parse_offer(msg.get("sdp"), "subscribe")
        subscription, sdp = await room.subscribe_floor(participant, offer)
        floor = room.floor
        return {"type": "subscribed", "subscription_id": subscription.id, "floor": True, "sdp": sdp,
                "publication_id": floor.id if floor else None}

    async def _unsubscribe(self, msg: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._require()
        subscription_id = _text_field(msg, "subscription_id", 64)
        subscription = participant.subscriptions.get(subscription_id or "")
        if subscription is None:
            raise NotFound("conference.no_own_subscription", id=subscription_id)
        await room.unsubscribe(subscription, CloseReason.UNSUBSCRIBED)
        return {"type": "unsubscribed", "subscription_id": subscription.id}

    async def _leave(self, msg: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._require()
        await self.close(CloseReason.LEFT)
        return {"type": "left", "room": room.name}

    async def _ping(self, msg: dict[str, Any]) -> dict[str, Any]:
        return {"type": "pong"}
