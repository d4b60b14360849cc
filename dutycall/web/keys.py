"""Every typed key of the application's shared state, in one place (aiohttp's ``web.AppKey``).

The domain services come from one :class:`~dutycall.services.Services` object built from the
configuration; the web layer adds its own: live sockets, meeting rooms, sign-in limits.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ..conference import Conference
from ..config import Config
from ..directory.roster import Roster
from ..directory.service import Directory
from ..incidents.alerting import Alerting
from ..incidents.service import Incidents
from ..rollcall.coordinator import RollCallCoordinator
from ..rollcall.plans import Plans
from ..rollcall.results import Results
from ..rollcall.statistics import Statistics
from ..services import Services
from ..supervision.service import Supervision
from .limits import SignInLimiter
from .live import LiveSockets
from .meetings import FreeRooms

SERVICES = web.AppKey("services", Services)
CONFIG = web.AppKey("config", Config)
ENGINE = web.AppKey("engine", AsyncEngine)
DIRECTORY = web.AppKey("directory", Directory)
ROSTER = web.AppKey("roster", Roster)
CONFERENCE = web.AppKey("conference", Conference)
COORDINATOR = web.AppKey("rollcall_coordinator", RollCallCoordinator)
PLANS = web.AppKey("rollcall_plans", Plans)
RESULTS = web.AppKey("rollcall_results", Results)
STATISTICS = web.AppKey("rollcall_statistics", Statistics)
SUPERVISION = web.AppKey("supervision", Supervision)
INCIDENTS = web.AppKey("incidents", Incidents)
ALERTING = web.AppKey("alerting", Alerting)

SECURE_COOKIES = web.AppKey("secure_cookies", bool)
SIGN_IN_LIMITER = web.AppKey("sign_in_limiter", SignInLimiter)
LIVE_SOCKETS = web.AppKey("live_sockets", LiveSockets)
FREE_ROOMS = web.AppKey("free_rooms", FreeRooms)
#: Leave-the-room tasks of dropped sockets, awaited before the conference closes.
CLEANUPS = web.AppKey("cleanups", set[asyncio.Task[Any]])
