from __future__ import annotations

import pytest

from dutycall.conference import aiortc_compat
from dutycall.config import Config
from dutycall.web import create_app
from dutycall.web.app import CONFERENCE

# Tests only ever talk over loopback: advertise 127.0.0.1 on both sides.
aiortc_compat.set_host_addresses(["127.0.0.1"])


@pytest.fixture
async def server(aiohttp_server):
    app = create_app(Config(host="127.0.0.1", ice_addresses=["127.0.0.1"], media_timeout=3.0))
    srv = await aiohttp_server(app, host="127.0.0.1")
    srv.conference = app[CONFERENCE]
    yield srv


@pytest.fixture
def ws_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"
