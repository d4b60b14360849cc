from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from dutycall import db
from dutycall.client import sign_in
from dutycall.conference import aiortc_compat
from dutycall.config import Config
from dutycall.web import create_app
from dutycall.web.app import CONFERENCE

from .utils import AUTH

# Tests only ever talk over loopback: advertise 127.0.0.1 on both sides.
aiortc_compat.set_host_addresses(["127.0.0.1"])

ADMIN_PASSWORD = "admin-password-1"
#: Set to a PostgreSQL URL to run the database tests there too (CI does).
POSTGRES_URL = os.environ.get("DUTYCALL_TEST_DATABASE_URL")


async def reset_postgres(url: str) -> None:
    engine = db.make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def make_config(database_url: str, **overrides) -> Config:
    return Config(host="127.0.0.1", ice_addresses=["127.0.0.1"], media_timeout=3.0,
                  database_url=database_url, admin_password=ADMIN_PASSWORD, **overrides)


@pytest.fixture(params=["sqlite"] + (["postgresql"] if POSTGRES_URL else []))
async def database_url(request, tmp_path):
    if request.param == "postgresql":
        await reset_postgres(POSTGRES_URL)
        return POSTGRES_URL
    return f"sqlite:///{tmp_path}/dutycall.sqlite3"


@pytest.fixture
async def server(aiohttp_server, tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path}/dutycall.sqlite3"))
    srv = await aiohttp_server(app, host="127.0.0.1")
    srv.conference = app[CONFERENCE]
    srv.cookies = await sign_in(f"http://127.0.0.1:{srv.port}", "admin", ADMIN_PASSWORD)
    AUTH[f"ws://127.0.0.1:{srv.port}/ws"] = srv.cookies
    yield srv
    AUTH.pop(f"ws://127.0.0.1:{srv.port}/ws", None)


@pytest.fixture
def ws_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"
