"""The domain services of one server, built from its configuration: what the app is made of.

``web.create_app`` installs these under typed keys (``web/keys.py``); tests and tools can
build them without HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from . import db, timezone
from .conference import Conference, ConferenceSettings
from .config import Config
from .directory.roster import Roster
from .directory.service import Directory
from .incidents.alerting import Alerting, WebhookSettings
from .incidents.deadlines import parse_deadlines
from .incidents.service import Incidents
from .rollcall.coordinator import RollCallCoordinator
from .rollcall.plans import Plans
from .rollcall.results import Results
from .rollcall.statistics import Statistics
from .supervision.service import Supervision


@dataclass
class Services:
    """Everything a server holds besides HTTP: the database, the directory, the SFU, roll-calls,
    supervision notices and incidents."""

    config: Config
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    directory: Directory
    roster: Roster
    conference: Conference
    coordinator: RollCallCoordinator
    plans: Plans
    results: Results
    statistics: Statistics
    supervision: Supervision
    incidents: Incidents
    alerting: Alerting


def build_services(config: Config) -> Services:
    """Wire the services together (nothing starts yet: the app's cleanup contexts do that)."""
    timezone.set_zone(config.timezone)  # the deployment's zone, for every time shown
    engine = db.make_engine(config.database_url)
    sessionmaker = db.make_sessionmaker(engine)
    conference = Conference(ConferenceSettings(
        ice_addresses=config.ice_addresses,
        ice_servers=config.server_ice_servers,
        forwarding=config.forwarding,
        media_timeout=config.media_timeout,
        media_workers=config.media_workers,
    ))
    coordinator = RollCallCoordinator(sessionmaker, conference, evidence_gap=config.evidence_gap)
    results = Results(sessionmaker)
    coordinator.on_finished = results.issue_notices
    supervision = Supervision(sessionmaker)
    alerting = Alerting(sessionmaker, conference, WebhookSettings(
        url=config.alert_webhook_url, secret=config.alert_webhook_secret, backoff=config.alert_webhook_backoff,
        max_attempts=config.alert_webhook_attempts))
    incidents = Incidents(sessionmaker, supervision, parse_deadlines(config.incident_deadlines), alerting=alerting)
    return Services(
        config=config, engine=engine, sessionmaker=sessionmaker, directory=Directory(sessionmaker),
        roster=Roster(sessionmaker), conference=conference, coordinator=coordinator,
        plans=Plans(sessionmaker, coordinator), results=results, statistics=Statistics(sessionmaker),
        supervision=supervision, incidents=incidents, alerting=alerting,
    )
