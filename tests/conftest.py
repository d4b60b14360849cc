from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from dutycall import db
from dutycall.client import sign_in
from dutycall.conference import aiortc_compat
from dutycall.config import Config
from dutycall.web import create_app
from dutycall.web.app import CONFERENCE
from dutycall.web.auth import DIRECTORY

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
    # Each test's archive beside its own database (never the repo's data/recordings, which tests
    # running at once would share and overwrite).
    if "recordings_dir" not in overrides:
        directory = os.path.dirname(database_url.removeprefix("sqlite:///")) if database_url.startswith("sqlite:///") \
            else tempfile.mkdtemp(prefix="dutycall-recordings-")
        overrides["recordings_dir"] = os.path.join(directory, "recordings")
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


# -- the directory's world: two districts with a street each, a duty room each, accounts ---------------

PASSWORD = "password-123"


@dataclass
class World:
    server: TestServer
    ids: dict[str, int]

    async def client(self, username: str | None, password: str = PASSWORD) -> Api:
        client = TestClient(self.server)
        await client.start_server()
        api = Api(client)
        if username:
            await api.sign_in(username, password)
        return api


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    async def sign_in(self, username: str, password: str) -> None:
        resp = await self.client.post("/api/session", json={"username": username, "password": password})
        assert resp.status == 200, await resp.text()
        self.csrf = (await resp.json())["csrf_token"]

    async def call(self, method: str, path: str, json=None, csrf: bool = True):
        headers = {"X-CSRF-Token": self.csrf} if csrf and self.csrf else {}
        resp = await self.client.request(method, path, json=json, headers=headers)
        body = await resp.json() if resp.content_type == "application/json" else await resp.read()
        return resp.status, body

    async def close(self) -> None:
        # TestClient.close() would stop the shared server too: close only our session.
        await self.client.session.close()


@pytest.fixture
async def world(database_url):
    """city → district A → street A1; city → district B → street B1; a room each; accounts."""
    app = create_app(make_config(database_url))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    ids: dict[str, int] = {"city": admin.unit_id}
    for code, name, kind, parent, phone in [
        ("A", "福田区", "district", "city", "0755-20001"), ("A1", "园岭街道", "street", "A", "0755-20011"),
        ("B", "罗湖区", "district", "city", "0755-30001"), ("B1", "东门街道", "street", "B", "0755-30011"),
    ]:
        unit = await directory.create_unit(admin, {"code": code, "name": name, "kind": kind, "parent_id": ids[parent]})
        ids[code] = unit["id"]
        room = await directory.create_room(admin, {"unit_id": unit["id"], "name": f"{name}值班室", "phone": phone})
        ids[f"room{code}"] = room["id"]
    for username, role, unit in [
        ("adminA", "admin", "A"), ("hostA", "host", "A"), ("officerA1", "duty_officer", "A1"),
        ("leaderA", "leader", "A"), ("viewerA", "viewer", "A"), ("adminB", "admin", "B"),
    ]:
        account = await directory.create_account(admin, {
            "username": username, "display_name": username, "password": PASSWORD, "role": role,
            "unit_id": ids[unit], "phone": "13800000000"})
        ids[username] = account["id"]
    yield World(server, ids)
    await server.close()
