"""HTTP routes, the signalling WebSocket, pages and static browser code. Imports no aiortc."""

from .app import create_app

__all__ = ["create_app"]
