"""The OpenAPI document describes exactly the routes the server has."""

from __future__ import annotations

from dutycall.web import create_app

from .conftest import make_config


async def test_openapi_matches_the_routes(aiohttp_client, tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path}/o.sqlite3"))
    client = await aiohttp_client(app)
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    routed = {
        (r.method, r.resource.canonical) for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/")
        and r.method != "HEAD" and r.resource.canonical != "/api/openapi.json"
    }
    assert described == routed, (described - routed, routed - described)
