"""Rooms, participants, publications, subscriptions, forwarding and signalling.

Knows nothing of roll-calls, HTTP or the database. Other packages use only the names in
``__all__``; the modules behind them are this package's own business.

Public, for the layers above:

- :class:`Conference`: ``room(name)`` / ``find_room(name)`` / ``is_occupied(name)``;
  ``participants(room)``; ``participants_where(match)`` (by identity);
  ``participants_tagged(tag, room=None)`` (the ``tag`` a caller gave
  a participant at join, e.g. "duty_room:12"); ``publication_of(tag, room=None)``;
  ``notify_tagged(tag, message, room=None)``; ``broadcast(room, message)``;
  ``set_floor(room, publication)``; the hooks ``on_participant_joined`` /
  ``on_participant_left`` and ``on_published`` / ``on_unpublished`` (lists of callbacks);
  ``stats()``; ``close()``.
- :class:`Participant`: ``id``, ``name``, ``tag``, ``identity``, ``room_name``, ``closed``,
  ``notify(message)``, ``first_publication()``, ``is_live(kind)``; ``publications`` and
  ``subscriptions`` are read-only views.
- :class:`Publication`: ``id``, ``participant``, ``kinds``, ``codecs``, ``video_codec``,
  ``codec_name(kind)``, ``is_live(kind)``, ``last_frame_at(kind)``, ``forwarder(kind)`` and
  ``tap(kind)`` (a keyframe-gated subscriber track for snapshots), ``next_keyframe(timeout)``.
- :func:`is_live`, :func:`video_codec`, :func:`identity_of`; :func:`codec_preferences` (our
  codecs for an offer of our own, e.g. an in-process RTSP publisher); :class:`ConferenceCounters`
  (what ``/metrics`` reads); :class:`CloseReason` (the protocol's reason strings);
  :class:`Forwarder` (what a publication forwards with) and :func:`register_forwarding`.
- :class:`SignallingPeer`: one client's protocol session (``participant``, ``room_name``).
- :func:`parse_offer` (an SDP offer checked before aiortc sees it, as :class:`Offer`): for
  publishers that do not speak the signalling protocol (WHIP ingest), with ``Room.join`` and
  ``Room.publish``.
- :class:`ConferenceSettings`, :class:`ConferenceError` and the errors of ``errors``.
"""

from typing import Any

from . import aiortc_compat  # noqa: F401  (installs the aiortc patches first)
from .conference import Conference
from .errors import ConferenceError, InvalidRequest, InvalidState, LimitExceeded, NotFound, SdpError, UnsupportedCodec
from .forwarding import Forwarder, ForwarderFactory, register_forwarding
from .lifecycle import CloseReason
from .metrics import ConferenceCounters, Label
from .participant import Participant
from .peer import codec_preferences
from .publication import Publication
from .room import Room
from .sdp import Offer, parse_offer
from .settings import ConferenceSettings
from .signalling import SignallingPeer
from .subscription import FloorSubscription, Subscription


def is_live(target: Publication | Participant, kind: str, within: float = 3.0) -> bool:
    """``target`` (a publication, or any publication of a participant) delivered ``kind``
    media in the last ``within`` seconds."""
    return target.is_live(kind, within)


def identity_of(participant: Participant) -> dict[str, Any]:
    """A copy of the identity the caller gave ``participant`` at join (who it is, for audits)."""
    return dict(participant.identity)


def video_codec(publication: Publication) -> str | None:
    """The publication's video MIME type ("video/VP8", "video/H264"); None without video."""
    return publication.video_codec


__all__ = [
    "CloseReason",
    "Conference",
    "ConferenceCounters",
    "ConferenceError",
    "ConferenceSettings",
    "FloorSubscription",
    "Forwarder",
    "ForwarderFactory",
    "InvalidRequest",
    "Label",
    "InvalidState",
    "LimitExceeded",
    "NotFound",
    "Offer",
    "Participant",
    "Publication",
    "Room",
    "SdpError",
    "SignallingPeer",
    "Subscription",
    "UnsupportedCodec",
    "codec_preferences",
    "identity_of",
    "is_live",
    "parse_offer",
    "register_forwarding",
    "video_codec",
]
