"""Tunables of the conference layer, filled from the server configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer

from .forwarding import ForwarderFactory, forwarder_factory


@dataclass
class ConferenceSettings:
    """How rooms forward media and how long they wait for peers."""

    #: Local addresses advertised as ICE host candidates (empty: all of the host's own).
    ice_addresses: list[str] = field(default_factory=list)
    #: STUN/TURN servers the *server's* peer connections use (not the browsers').
    #: Empty by default: aiortc would otherwise contact a public STUN server.
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    #: "passthrough": publishers' receivers yield encoded packets, forwarded as they are. Any
    #: other name decodes, and needs a forwarder registered under it (``register_forwarding``):
    #: "transcode" is the benchmark's MediaRelay baseline (bench/transcoding.py).
    forwarding: str = "passthrough"
    #: Makes each published track's forwarder; None: the one registered for ``forwarding``.
    forwarder_factory: ForwarderFactory | None = None
    #: A publication whose media stops for this long is removed.
    media_timeout: float = 3.0
    #: A publication that never delivers media is removed after this long.
    connect_timeout: float = 15.0
    #: Minimum time between two keyframe requests sent to one publisher.
    keyframe_interval: float = 0.25
    max_participants_per_room: int = 500
    max_publications_per_participant: int = 4
    max_subscriptions_per_participant: int = 64
    #: Media worker processes holding subscribers' connections (workers.py); 0: all in this one.
    media_workers: int = 0

    @property
    def passthrough(self) -> bool:
        """Publishers' receivers yield encoded packets (the SFU), not decoded frames."""
        return self.forwarding == "passthrough"

    def make_forwarder(self) -> ForwarderFactory:
        """The forwarder factory in use; ValueError if ``forwarding`` names none."""
        return self.forwarder_factory or forwarder_factory(self.forwarding)

    def rtc_configuration(self) -> RTCConfiguration:
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in self.ice_servers
        ]
        return RTCConfiguration(iceServers=servers)
