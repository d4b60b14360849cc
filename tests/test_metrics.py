"""/metrics: the Prometheus text format, who may read it, and counters that follow real media."""

from __future__ import annotations

import argparse
import gc

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from dutycall import config as config_mod
from dutycall.client import publish, sign_in, subscribe
from dutycall.conference.metrics import Totals
from dutycall.synthetic import EncodedColorTrack
from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.metrics import LISTENER

from .conftest import ADMIN_PASSWORD, make_config
from .utils import FrameReader, signalling, wait_for

TOKEN = "metrics-token-0123456789"


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample by (sample name, labels)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def scrape(url: str, cookies: dict | None = None, headers: dict | None = None) -> tuple[int, str, str]:
    async with aiohttp.ClientSession(cookies=cookies) as session:
        async with session.get(url, headers=headers) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def test_counters_follow_a_publisher_and_a_subscriber(server, ws_url):
    url = f"http://127.0.0.1:{server.port}/metrics"
    pub_client = await signalling(ws_url).connect()
    await pub_client.join("m1", "publisher")
    pub_pc, published = await publish(pub_client, video=EncodedColorTrack((200, 40, 40), codec="vp8"))
    sub_client = await signalling(ws_url).connect()
    await sub_client.join("m1", "subscriber")
    sub_pc, _, tracks = await subscribe(sub_client, published["publication_id"])
    reader = FrameReader(tracks["video"])
    await wait_for(lambda: reader.frames >= 10, timeout=30, what="10 frames at the subscriber")

    status, content_type, text = await scrape(url, cookies=server.cookies)
    assert status == 200, text
    assert content_type.startswith("text/plain; version=0.0.4")  # what Prometheus 2.x and 3.x read
    first = parse(text)
    assert value(first, "dutycall_metrics_walk_seconds") >= 0
    assert value(first, "dutycall_rooms") == 1
    assert value(first, "dutycall_participants") == 2
    assert value(first, "dutycall_publications") == 1
    assert value(first, "dutycall_subscriptions", type="publication") == 1
    assert value(first, "dutycall_subscriptions", type="floor") == 0
    assert value(first, "dutycall_published_tracks", kind="video") == 1
    assert value(first, "dutycall_subscriber_tracks", kind="video") == 1
    assert value(first, "dutycall_keyframe_requests_total", kind="video") >= 1  # the subscriber's first keyframe
    assert value(first, "dutycall_frames_received_total", kind="video") >= 10
    assert value(first, "dutycall_frames_forwarded_total", kind="video") >= 10
    # Present, with their reasons, even when nothing was dropped.
    assert ("dutycall_frames_dropped_total", frozenset({("kind", "video"), ("reason", "stale")})) in first
    assert value(first, "dutycall_event_loop_lag_last_seconds", worker="main") >= 0
    assert value(first, "dutycall_event_loop_lag_seconds_count", worker="main") >= 0
    assert value(first, "dutycall_worker_cpu_seconds_total", worker="main", mode="user") > 0
    assert value(first, "dutycall_event_loop_cpu_seconds_total", worker="main") > 0
    assert value(first, "process_cpu_seconds_total") > 0

    seen = reader.frames
    await wait_for(lambda: reader.frames >= seen + 10, timeout=30, what="10 more frames")
    await wait_for(lambda: server.conference.rooms["m1"].publications, timeout=5)
    status, _, text = await scrape(url, cookies=server.cookies)
    second = parse(text)
    for name in ("dutycall_frames_received_total", "dutycall_frames_forwarded_total",
                 "dutycall_rtp_packets_received_total", "dutycall_rtp_packets_sent_total"):
        assert value(second, name, kind="video") > value(first, name, kind="video"), name
    assert value(second, "dutycall_event_loop_lag_seconds_count", worker="main") >= 1

    # The subscriber leaves: its counts stay in the totals (counters never go down).
    await reader.stop()
    await sub_pc.close()
    await sub_client.close()
    await wait_for(lambda: server.conference.stats()["participants"] == 1, timeout=10, what="subscriber gone")
    gc.collect()
    status, _, text = await scrape(url, cookies=server.cookies)
    third = parse(text)
    assert value(third, "dutycall_participants") == 1
    assert value(third, "dutycall_subscriber_tracks", kind="video") == 0
    for name in ("dutycall_frames_forwarded_total", "dutycall_rtp_packets_sent_total",
                 "dutycall_frames_received_total"):
        assert value(third, name, kind="video") >= value(second, name, kind="video"), name

    await pub_pc.close()
    await pub_client.close()
    await wait_for(lambda: "m1" not in server.conference.rooms, timeout=10, what="room dropped")
    status, _, text = await scrape(url, cookies=server.cookies)
    last = parse(text)
    assert value(last, "dutycall_rooms") == 0
    assert value(last, "dutycall_frames_received_total", kind="video") >= value(third, "dutycall_frames_received_total",
                                                                                 kind="video")


@pytest.fixture
async def metrics_world(tmp_path):
    """A server with a metrics token and a separate metrics listener on a free loopback port, an
    admin, a viewer and a duty room's console."""
    app = create_app(make_config(f"sqlite:///{tmp_path}/m.sqlite3", metrics_token=TOKEN,
                                 metrics_address="127.0.0.1:0"))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    unit = await directory.create_unit(admin, {"code": "S", "name": "园岭街道", "kind": "street",
                                               "parent_id": admin.unit_id})
    room = await directory.create_room(admin, {"unit_id": unit["id"], "name": "园岭值班室", "phone": "0755-1"})
    await directory.create_account(admin, {"username": "viewer", "display_name": "viewer",
                                           "password": "password-123", "role": "viewer", "unit_id": unit["id"],
                                           "phone": "13800000000"})
    device = (await directory.create_device_credential(admin, room["id"]))["token"]
    base = f"http://127.0.0.1:{server.port}"
    yield app, base, {"admin": await sign_in(base, "admin", ADMIN_PASSWORD),
                      "viewer": await sign_in(base, "viewer", "password-123"),
                      "console": await sign_in(base, device_token=device)}
    await server.close()


async def test_who_may_read_the_metrics(metrics_world):
    app, base, cookies = metrics_world
    url = f"{base}/metrics"
    status, _, text = await scrape(url)
    assert status == 401, text
    assert (await scrape(url, cookies=cookies["viewer"]))[0] == 403
    assert (await scrape(url, cookies=cookies["console"]))[0] == 403
    status, _, text = await scrape(url, cookies=cookies["admin"])
    assert status == 200 and value(parse(text), "dutycall_rooms") == 0
    # The bearer token, in constant time; a wrong one is refused even beside an admin's cookie.
    assert (await scrape(url, headers={"Authorization": f"Bearer {TOKEN}x"}))[0] == 401
    assert (await scrape(url, headers={"Authorization": "Bearer"}))[0] == 401
    assert (await scrape(url, headers={"Authorization": f"Basic {TOKEN}"}))[0] == 401
    assert (await scrape(url, cookies=cookies["admin"], headers={"Authorization": "Bearer nope"}))[0] == 401
    status, _, text = await scrape(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "dutycall_event_loop_lag_last_seconds" in text


async def test_the_separate_address_serves_without_sign_in(metrics_world):
    app, base, _ = metrics_world
    addresses = app[LISTENER].addresses
    assert addresses and addresses[0][0] == "127.0.0.1"
    port = addresses[0][1]
    assert port != int(base.rsplit(":", 1)[1])
    status, content_type, text = await scrape(f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    samples = parse(text)
    assert value(samples, "dutycall_rooms") == 0
    # Only /metrics there: nothing of the application.
    assert (await scrape(f"http://127.0.0.1:{port}/api/session"))[0] == 404
    # The main port still asks who is reading.
    assert (await scrape(f"{base}/metrics"))[0] == 401


async def test_loop_lag_is_sampled(metrics_world):
    app, base, cookies = metrics_world

    async def count() -> float:
        status, _, text = await scrape(f"{base}/metrics", cookies=cookies["admin"])
        return value(parse(text), "dutycall_event_loop_lag_seconds_count", worker="main")

    before = await count()
    await wait_for(lambda: _more(count, before), timeout=10, what="a loop-lag sample")


async def test_garbage_collection_pauses_are_counted(metrics_world):
    """Each cyclic collection's pause reaches /metrics, by generation (a full one is forced here)."""
    import gc

    app, base, cookies = metrics_world

    async def full_collections() -> float:
        status, _, text = await scrape(f"{base}/metrics", cookies=cookies["admin"])
        return value(parse(text), "dutycall_gc_pause_seconds_count", worker="main", generation="2")

    before = await full_collections()
    gc.collect()
    assert await full_collections() >= before + 1


def test_start_up_objects_are_frozen_and_later_garbage_is_still_collected():
    import gc

    from dutycall import memory

    try:
        assert memory.freeze_startup_objects() > 1000  # at least the imported modules' objects
        cycle: list = []
        cycle.append(cycle)
        ref_count = len(gc.get_referrers(cycle))
        del cycle
        assert ref_count >= 1 and gc.collect() >= 1  # made after the freeze: still collected
    finally:
        gc.unfreeze()


async def _more(count, before: float) -> bool:
    return await count() > before


def _config(argv: list[str]) -> config_mod.Config:
    parser = argparse.ArgumentParser()
    config_mod.add_arguments(parser)
    return config_mod.from_args(parser.parse_args(argv))


def test_metrics_settings_are_checked_at_start(monkeypatch):
    monkeypatch.delenv("DUTYCALL_METRICS_ADDRESS", raising=False)
    monkeypatch.delenv("DUTYCALL_METRICS_TOKEN", raising=False)
    assert _config([]).metrics_address == "" and _config([]).metrics_token == ""
    assert _config(["--metrics-address", "127.0.0.1:9464"]).metrics_address == "127.0.0.1:9464"
    assert config_mod.split_address("[::1]:9464") == ("::1", 9464)
    for bad in ("9464", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", ":9464"):
        with pytest.raises(SystemExit):
            _config(["--metrics-address", bad])
    monkeypatch.setenv("DUTYCALL_METRICS_ADDRESS", "10.0.0.5:9464")
    monkeypatch.setenv("DUTYCALL_METRICS_TOKEN", TOKEN)
    config = _config([])
    assert config.metrics_address == "10.0.0.5:9464" and config.metrics_token == TOKEN
    monkeypatch.setenv("DUTYCALL_METRICS_TOKEN", "short")
    with pytest.raises(SystemExit):
        _config([])


class _Counted:
    def __init__(self, n: int) -> None:
        self.n = n


def test_totals_never_go_down_as_objects_come_and_go():
    totals = Totals(lambda obj: (obj.n,))
    a, b = _Counted(5), _Counted(7)
    assert totals.read([(a, ("video",)), (b, ("video",))]) == {("video",): [12]}
    a.n = 9  # counted after the scrape, then gone but still alive: its final count is read
    assert totals.read([(b, ("video",))]) == {("video",): [16]}
    b.n = 8
    del b  # gone and collected: its last scraped count (7) stays
    gc.collect()
    c = _Counted(1)
    assert totals.read([(c, ("audio",))]) == {("video",): [16], ("audio",): [1]}
    assert totals.read([]) == {("video",): [16], ("audio",): [1]}
