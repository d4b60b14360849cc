"""Footage of incidents: the sources that streamed (a WHIP encoder, later RTSP and field phones),
the archive's segments with their hashes, and the tokens devices ingest with."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base
from ..directory.models import utcnow
from ..incidents import models as incident_models  # noqa: F401  (the incidents table footage refers to)

Timestamp = DateTime(timezone=True)


class IngestToken(Base):
    """A bearer token a host issued for one incident: a device (encoder, drone) publishes with it
    over WHIP until it expires or is revoked. Only its SHA-256 is stored."""

    __tablename__ = "ingest_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    #: The incident's unit path when issued (scope of the token's management).
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class FootageSource(Base):
    """One stream that reached the server for an incident: a WHIP session (later an RTSP pull,
    a field phone), from when it started publishing to when it stopped."""

    __tablename__ = "footage_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    #: "whip" (an encoder or drone), "test" (tests and tools); later "rtsp" and "field".
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(64))
    ingest_token_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_tokens.id"))
    #: The conference room it was published in.
    room: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    #: Why it ended ("deleted", "media_timeout", "revoked", "server_stopped", "lost" after a crash).
    end_reason: Mapped[str | None] = mapped_column(String(32))


class FootageSegment(Base):
    """One file of the archive: a bounded stretch of a source, written without re-encoding.

    ``status`` is "recording" while it is written, "complete" once closed and hashed, and
    "recovered" when a crash cut it short and the next start found it and finished its row.
    """

    __tablename__ = "footage_segments"
    __table_args__ = (UniqueConstraint("source_id", "number", name="uq_footage_segment_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("footage_sources.id"), index=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    #: 1, 2, 3... within the source.
    number: Mapped[int] = mapped_column(Integer)
    #: Relative to the recordings directory.
    path: Mapped[str] = mapped_column(String(256), unique=True)
    container: Mapped[str] = mapped_column(String(8))
    video_codec: Mapped[str | None] = mapped_column(String(16))
    audio_codec: Mapped[str | None] = mapped_column(String(16))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    ended_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    #: Seconds of media in the file (its last packet's end), known once it is finished.
    duration: Mapped[float | None] = mapped_column(Float)
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="recording", index=True)


class FieldLink(Base):
    """A one-time link a host made for a responder's phone to stream an incident's scene
    (``media/field.py``). Only the SHA-256 of its secret is stored, and of the claim secret the
    first phone that opened it keeps (no other device may use it after)."""

    __tablename__ = "field_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    #: The incident's unit path when made (scope of the link's management).
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    #: SHA-256 of the claim secret of the phone that opened it first; None until one did.
    claim_sha256: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_published_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class FootageRelay(Base):
    """A live source relayed by a host to chosen consoles (duty rooms) and leaders (accounts),
    from when it was started until it was stopped (by a host, or because its source ended)."""

    __tablename__ = "footage_relays"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("footage_sources.id"), index=True)
    #: The incident's unit path when started (scope of the relay's management).
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    started_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, index=True)
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    #: "stopped" (a host), "source_ended", "server_stopped".
    end_reason: Mapped[str | None] = mapped_column(String(32))


class FootageRelayTarget(Base):
    """One console (duty room) or leader (account) a relay was sent to."""

    __tablename__ = "footage_relay_targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    relay_id: Mapped[int] = mapped_column(ForeignKey("footage_relays.id"), index=True)
    duty_room_id: Mapped[int | None] = mapped_column(ForeignKey("duty_rooms.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


class FootageAccess(Base):
    """Who watched, relayed, played or downloaded which footage, when, and from which address.

    ``action``: "watched_live" (a relayed console or leader, or an account in the footage room),
    "relayed" (a host started a relay), "played" (a segment served to a player), "downloaded"
    (a segment, or a source's time range ``range_from``..``range_to``)."""

    __tablename__ = "footage_access"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("footage_sources.id"))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("footage_segments.id"))
    relay_id: Mapped[int | None] = mapped_column(ForeignKey("footage_relays.id"))
    action: Mapped[str] = mapped_column(String(16))
    #: "account" or "device" (a duty room's console), and which.
    principal_kind: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    duty_room_id: Mapped[int | None] = mapped_column(ForeignKey("duty_rooms.id"))
    #: The name shown at the time (an account's display name, a console's duty room).
    who: Mapped[str] = mapped_column(String(128))
    range_from: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    range_to: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    client_address: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, index=True)


class RtspSource(Base):
    """An RTSP URL (an IP camera, a drone, a CCTV platform's output) the server pulls for an incident
    until a host stops it; each connection that delivers becomes a :class:`FootageSource`.

    ``url`` may hold credentials (``rtsp://user:pass@host/...``): stored as given, never returned,
    logged or shown (``media/rtsp.py`` masks them). ``state`` is the last one reached: "connecting",
    "live", "retrying" or "stopped"; rows not "stopped" are pulled again when the server starts."""

    __tablename__ = "rtsp_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    #: The incident's unit path when added (scope of the source's management).
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    label: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(1024))
    state: Mapped[str] = mapped_column(String(16), default="connecting", index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    stopped_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


class GreetingMedia(Base):
    """A leader's pre-recorded greeting (an uploaded MP4/WebM) prepared once into a playable file
    ``<recordings>/greetings/<path>`` (``media/playout.py``): "processing", then "ready" with its
    SHA-256, duration and codecs, or "failed" with the reason. Scoped by the uploader's unit."""

    __tablename__ = "greeting_media"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    #: The uploader's unit path (scope of the video's management).
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    label: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="processing")
    failure: Mapped[str | None] = mapped_column(String(300))
    original_name: Mapped[str | None] = mapped_column(String(200))
    original_bytes: Mapped[int] = mapped_column(BigInteger)
    #: The prepared file's name under the greetings directory ("12.webm", "13.mp4").
    path: Mapped[str | None] = mapped_column(String(64))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    duration: Mapped[float | None] = mapped_column(Float)
    video_codec: Mapped[str | None] = mapped_column(String(16))
    audio_codec: Mapped[str | None] = mapped_column(String(16))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    #: Whether preparation re-encoded anything (and why); False: remuxed as uploaded.
    transcoded: Mapped[bool] = mapped_column(Boolean, default=False)
    transcode_reason: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    ready_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
