"""Rooms, participants, publications, subscriptions, forwarding and signalling.

Knows nothing of roll-calls, HTTP or the database.
"""

from . import aiortc_compat  # noqa: F401  (installs the aiortc patches first)
from .conference import Conference
from .errors import ConferenceError
from .settings import ConferenceSettings

__all__ = ["Conference", "ConferenceError", "ConferenceSettings"]
