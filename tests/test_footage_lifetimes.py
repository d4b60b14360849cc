"""Lifetimes and limits of live footage (security review, issue 10): a WHIP or field stream ends
when its token or link is revoked (even while its publish is being set up), expires, or when its
incident closes or merges; concurrent publishes cannot pass the caps or put two sessions on one
token; bodies are read only after the sender is known and only up to 64 KiB; a WHEP viewing ends
when its account's access changes."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
import pytest
from aiortc import RTCSessionDescription
from sqlalchemy import update

from dutycall.directory.models import Account, Unit, utcnow
from dutycall.incidents.models import Incident
from dutycall.media import field as field_module
from dutycall.media import ingest as ingest_module
from dutycall.media import whep as whep_module
from dutycall.media.ingest import IngestSession, token_hash
from dutycall.media.models import FieldLink, FootageSource
from dutycall.media.recording import Archive
from dutycall.web.field import FIELD
from dutycall.web.footage import INGEST, WHEP
from dutycall.web.keys import DIRECTORY, INCIDENTS, SERVICES

from .conftest import ADMIN_PASSWORD
from .test_field import make, phone_call, secret_of
from .test_recording import incident_report
from .test_whep import live_source, player_offer, whep_post
from .test_whip import Api, issue, publisher, rows, whip, whip_post  # noqa: F401  (whip: a fixture)
from .utils import wait_for


@pytest.fixture(autouse=True)
def patient(whip, monkeypatch):
    """Most publishers here answer no media (their offer is all they send): their sessions must not
    end by the conference's no-media timeout (15 s) on a slow machine before the test ends them."""
    monkeypatch.setattr(whip["app"][INGEST].conference.settings, "connect_timeout", 600.0)


async def offer_sdp() -> str:
    pc, _ = publisher()
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def claimed_link(whip: dict[str, Any], label: str = "手机") -> tuple[dict[str, Any], str, str]:
    """A field link of the fixture's incident, claimed: the link, its secret and the claim."""
    made = await make(whip["host"], whip["incident_id"], label=label)
    secret = secret_of(made["url"])
    status, body = await phone_call(whip["http"], whip["base"], "POST", "/api/field/claim", secret)
    assert status == 200, body
    return made, secret, body["claim"]


async def field_publish(whip: dict[str, Any], secret: str, claim: str, sdp: str) -> tuple[int, Any]:
    return await phone_call(whip["http"], whip["base"], "POST", "/api/field/publish", secret, claim,
                            data=sdp.encode(), headers={"Content-Type": "application/sdp"})


async def source_row(app: Any, source_id: int) -> FootageSource | None:
    source = (await rows(app, FootageSource, id=source_id))[0]
    return source if source.ended_at is not None else None


async def set_incident(app: Any, incident_id: int, **values: Any) -> None:
    async with app[SERVICES].sessionmaker.begin() as db:
        await db.execute(update(Incident).where(Incident.id == incident_id).values(**values))


# -- 1. revoke, expiry, incident close -------------------------------------------------------------


async def test_a_revoke_during_a_whip_publish_ends_the_session_it_set_up(whip, monkeypatch):
    app, iid, host = whip["app"], whip["incident_id"], whip["host"]
    issued = await issue(host, iid, label="enc")
    real_start = Archive.start
    revoked: dict[str, int] = {}

    async def revoke_meanwhile(self: Archive, publication: Any, source_id: int, incident_id: int) -> None:
        # The host revokes while the publish is between its token check and its session's registration.
        revoked["status"] = (await host.call("DELETE", f"/api/ingest-tokens/{issued['id']}"))[0]
        await real_start(self, publication, source_id, incident_id)

    monkeypatch.setattr(Archive, "start", revoke_meanwhile)
    resp = await whip_post(whip["http"], whip["base"], issued["token"], await offer_sdp())
    assert revoked["status"] == 200
    assert resp.status == 401, await resp.text()
    assert not app[INGEST].sessions, "the revoked token's session was left running"
    [source] = await rows(app, FootageSource, incident_id=iid)
    assert source.ended_at is not None and source.end_reason == "revoked"


async def test_a_revoke_during_a_field_publish_ends_the_stream_it_set_up(whip, monkeypatch):
    app, host = whip["app"], whip["host"]
    made, secret, claim = await claimed_link(whip)
    real_start = Archive.start
    revoked: dict[str, int] = {}

    async def revoke_meanwhile(self: Archive, publication: Any, source_id: int, incident_id: int) -> None:
        revoked["status"] = (await host.call("DELETE", f"/api/field-links/{made['id']}"))[0]
        await real_start(self, publication, source_id, incident_id)

    monkeypatch.setattr(Archive, "start", revoke_meanwhile)
    status, body = await field_publish(whip, secret, claim, await offer_sdp())
    assert revoked["status"] == 200
    assert status == 410 and body["error"]["code"] == "link_gone", body
    assert not app[FIELD].sessions, "the revoked link's stream was left running"
    [source] = await rows(app, FootageSource, incident_id=whip["incident_id"])
    assert source.end_reason == "revoked"


async def test_an_incident_closed_during_a_whip_publish_ends_the_session(whip, monkeypatch):
    app, iid = whip["app"], whip["incident_id"]
    issued = await issue(whip["host"], iid, label="enc")
    real_start = Archive.start

    async def close_meanwhile(self: Archive, publication: Any, source_id: int, incident_id: int) -> None:
        await set_incident(app, iid, status="closed")
        await real_start(self, publication, source_id, incident_id)

    monkeypatch.setattr(Archive, "start", close_meanwhile)
    resp = await whip_post(whip["http"], whip["base"], issued["token"], await offer_sdp())
    assert resp.status == 403, await resp.text()
    assert not app[INGEST].sessions
    [source] = await rows(app, FootageSource, incident_id=iid)
    assert source.end_reason == "incident_closed"


async def test_a_whip_session_ends_when_its_token_expires(whip):
    app, iid = whip["app"], whip["incident_id"]
    issued = await issue(whip["host"], iid, minutes=5)
    resp = await whip_post(whip["http"], whip["base"], issued["token"], await offer_sdp())
    assert resp.status == 201
    [session] = app[INGEST].sessions.values()
    app[INGEST].clock = lambda: utcnow() + dt.timedelta(minutes=5, seconds=1)
    try:
        await wait_for(lambda: not app[INGEST].sessions, what="the sweep ended the expired token's session")
    finally:
        app[INGEST].clock = utcnow
    source = await wait_for(lambda: source_row(app, session.source_id))
    assert source.end_reason == "expired"


async def test_sweeps_end_streams_whose_link_or_token_was_revoked_or_whose_incident_closed(whip):
    """The sweeps as a backstop: rows changed behind the services' backs (another process, a
    missed revoke) still end the streams within a sweep."""
    app, iid = whip["app"], whip["incident_id"]
    sdp = await offer_sdp()
    made, secret, claim = await claimed_link(whip)
    status, _ = await field_publish(whip, secret, claim, sdp)
    assert status == 201
    [stream] = app[FIELD].sessions.values()
    async with app[SERVICES].sessionmaker.begin() as db:
        await db.execute(update(FieldLink).where(FieldLink.id == made["id"]).values(revoked_at=utcnow()))
    await wait_for(lambda: not app[FIELD].sessions, what="the field sweep ended the revoked link's stream")
    assert (await wait_for(lambda: source_row(app, stream.source_id))).end_reason == "revoked"

    _, secret, claim = await claimed_link(whip, label="手机 2")
    assert (await field_publish(whip, secret, claim, sdp))[0] == 201
    [stream] = app[FIELD].sessions.values()
    resp = await whip_post(whip["http"], whip["base"], (await issue(whip["host"], iid))["token"], sdp)
    assert resp.status == 201
    [session] = app[INGEST].sessions.values()
    await set_incident(app, iid, status="closed")
    await wait_for(lambda: not app[FIELD].sessions and not app[INGEST].sessions,
                   what="the sweeps ended the closed incident's streams")
    assert (await wait_for(lambda: source_row(app, stream.source_id))).end_reason == "incident_closed"
    assert (await wait_for(lambda: source_row(app, session.source_id))).end_reason == "incident_closed"


async def test_closing_or_merging_an_incident_ends_its_whip_and_field_streams_at_once(whip):
    app, iid, http, base = whip["app"], whip["incident_id"], whip["http"], whip["base"]
    incidents = app[INCIDENTS]
    _, admin = await app[DIRECTORY].sign_in("admin", ADMIN_PASSWORD)
    sdp = await offer_sdp()
    # Closing: the incident is final (its 终报 filed), the host closes it.
    assert (await whip_post(http, base, (await issue(whip["host"], iid))["token"], sdp)).status == 201
    _, secret, claim = await claimed_link(whip)
    assert (await field_publish(whip, secret, claim, sdp))[0] == 201
    await set_incident(app, iid, status="final")
    await incidents.close(admin, iid)
    assert not app[INGEST].sessions and not app[FIELD].sessions, "closing the incident left its streams live"
    assert {s.end_reason for s in await rows(app, FootageSource, incident_id=iid)} == {"incident_closed"}
    # Merging: the merged incident's streams end; the target's go on.
    target = (await incidents.create(admin, incident_report()))["id"]
    merged = (await incidents.create(admin, incident_report()))["id"]
    for incident_id in (target, merged):
        token = (await issue(whip["host"], incident_id, label=f"enc {incident_id}"))["token"]
        assert (await whip_post(http, base, token, sdp)).status == 201
    await incidents.merge(admin, target, {"incident_ids": [merged]})
    assert [s.incident_id for s in app[INGEST].sessions.values()] == [target]
    assert [s.end_reason for s in await rows(app, FootageSource, incident_id=merged)] == ["incident_closed"]


# -- 2. caps and one session per token under concurrent requests -----------------------------------


async def test_concurrent_whip_posts_with_one_token_leave_one_session(whip):
    app, iid = whip["app"], whip["incident_id"]
    issued = await issue(whip["host"], iid, label="enc")
    sdp = await offer_sdp()
    most = 0
    original = app[INGEST].sessions

    class Counting(dict):  # type: ignore[type-arg]
        def __setitem__(self, key: Any, value: Any) -> None:
            nonlocal most
            super().__setitem__(key, value)
            most = max(most, len(self))

    app[INGEST].sessions = Counting(original)
    try:
        answers = await asyncio.gather(*(whip_post(whip["http"], whip["base"], issued["token"], sdp)
                                         for _ in range(6)))
        print("statuses", [r.status for r in answers], "most live at once", most)
        assert all(r.status == 201 for r in answers)
        assert len(app[INGEST].sessions) == 1 and most == 1, f"{most} sessions of one token live at once"
    finally:
        app[INGEST].sessions = dict(app[INGEST].sessions)


async def test_concurrent_whip_posts_cannot_pass_the_caps(whip, monkeypatch):
    app, iid, http, base = whip["app"], whip["incident_id"], whip["http"], whip["base"]
    sdp = await offer_sdp()
    monkeypatch.setattr(ingest_module, "MAX_SESSIONS", 2)
    tokens = [(await issue(whip["host"], iid, label=f"enc {n}"))["token"] for n in range(4)]
    made: list[str] = []  # every session registered (one whose peer never connects can end before we look)

    class Recording(dict):  # type: ignore[type-arg]
        def __setitem__(self, key: Any, value: Any) -> None:
            made.append(key)
            super().__setitem__(key, value)

    app[INGEST].sessions = Recording(app[INGEST].sessions)
    answers = await asyncio.gather(*(whip_post(http, base, token, sdp) for token in tokens))
    assert sorted(r.status for r in answers) == [201, 201, 429, 429]
    assert len(made) == 2 and len(app[INGEST].sessions) <= 2, made
    for session in list(app[INGEST].sessions.values()):
        await app[INGEST]._end(session, "deleted")
    # Per incident: one incident cannot take every session of the server.
    monkeypatch.setattr(ingest_module, "MAX_SESSIONS", 32)
    monkeypatch.setattr(ingest_module, "MAX_SESSIONS_PER_INCIDENT", 2, raising=False)
    answers = await asyncio.gather(*(whip_post(http, base, token, sdp) for token in tokens[:3]))
    assert sorted(r.status for r in answers) == [201, 201, 429]
    other = (await app[INCIDENTS].create((await app[DIRECTORY].sign_in("admin", ADMIN_PASSWORD))[1],
                                         incident_report()))["id"]
    resp = await whip_post(http, base, (await issue(whip["host"], other, label="other"))["token"], sdp)
    assert resp.status == 201, "another incident still has room"


async def test_concurrent_field_publishes_cannot_pass_the_caps_or_share_a_link(whip, monkeypatch):
    app = whip["app"]
    sdp = await offer_sdp()
    _, secret, claim = await claimed_link(whip)
    answers = await asyncio.gather(*(field_publish(whip, secret, claim, sdp) for _ in range(4)))
    assert [status for status, _ in answers] == [201] * 4
    assert len(app[FIELD].sessions) == 1
    monkeypatch.setattr(field_module, "MAX_SESSIONS_PER_INCIDENT", 2, raising=False)
    links = [await claimed_link(whip, label=f"手机 {n}") for n in range(2)]
    answers = await asyncio.gather(*(field_publish(whip, s, c, sdp) for _, s, c in links))
    assert sorted(status for status, _ in answers) == [201, 429]
    assert len(app[FIELD].sessions) == 2
    for session in list(app[FIELD].sessions.values()):
        await app[FIELD]._end(session, "deleted")
    monkeypatch.setattr(field_module, "MAX_SESSIONS", 1)
    answers = await asyncio.gather(*(field_publish(whip, s, c, sdp) for _, s, c in links))
    assert sorted(status for status, _ in answers) == [201, 429]


async def test_concurrent_whep_viewings_cannot_pass_the_caps(whip, monkeypatch):
    app, host = whip["app"], whip["host"]
    source_pc, source_id, _, _ = await live_source(whip)
    players = [await player_offer(("video",)) for _ in range(3)]
    try:
        monkeypatch.setattr(whep_module, "MAX_VIEWINGS_PER_ACCOUNT", 2)
        answers = await asyncio.gather(*(whep_post(host, f"/api/whep/{source_id}", p.localDescription.sdp)
                                         for p in players))
        assert sorted(r.status for r in answers) == [201, 201, 429]
        assert len(app[WHEP].viewings) == 2
        for viewing in list(app[WHEP].viewings.values()):
            await app[WHEP]._end(viewing, "deleted")
        monkeypatch.setattr(whep_module, "MAX_VIEWINGS_PER_ACCOUNT", 8)
        monkeypatch.setattr(whep_module, "MAX_VIEWINGS", 1)
        answers = await asyncio.gather(*(whep_post(host, f"/api/whep/{source_id}", p.localDescription.sdp)
                                         for p in players[:2]))
        assert sorted(r.status for r in answers) == [201, 429]
    finally:
        for player in players:
            await player.close()
        await source_pc.close()


# -- 3. bodies ------------------------------------------------------------------------------------


async def test_a_field_publish_checks_the_link_before_it_looks_at_the_body(whip):
    http, base = whip["http"], whip["base"]
    _, secret, claim = await claimed_link(whip)
    # An unknown link or another device's claim: refused before the body's type or text is looked at.
    status, _ = await phone_call(http, base, "POST", "/api/field/publish", "nope", data=b"{}",
                                 headers={"Content-Type": "application/json"})
    assert status == 404
    status, _ = await phone_call(http, base, "POST", "/api/field/publish", secret, "forged", data=b"\xff\xfe",
                                 headers={"Content-Type": "application/sdp"})
    assert status == 409
    # The claiming phone: at most 64 KiB of offer.
    status, body = await phone_call(http, base, "POST", "/api/field/publish", secret, claim,
                                    data=b"v=0\r\n" + b"a=x-pad\r\n" * 8000, headers={"Content-Type": "application/sdp"})
    assert status == 413 and body["error"]["code"] == "too_large"


async def chunked_post(session: aiohttp.ClientSession, url: str, headers: dict[str, str], size: int) -> int:
    async def body() -> Any:
        for _ in range(size // 8192):
            yield b"a=x-pad:" + b"0" * 8183 + b"\n"

    resp = await session.post(url, data=body(), headers={"Content-Type": "application/sdp", **headers})
    await resp.read()
    return resp.status


async def test_offers_beyond_64_kib_are_refused_with_413(whip):
    app, base, http, host = whip["app"], whip["base"], whip["http"], whip["host"]
    token = (await issue(host, whip["incident_id"]))["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    # Declared (Content-Length) and undeclared (chunked) bodies, WHIP, WHEP and field.
    resp = await whip_post(http, base, token, "v=0\r\n" + "a=x-pad\r\n" * 8000)
    assert resp.status == 413
    assert await chunked_post(http, f"{base}/api/whip", bearer, 100 * 1024) == 413
    _, secret, claim = await claimed_link(whip)
    assert await chunked_post(http, f"{base}/api/field/publish", {"X-Field-Link": secret, "X-Field-Claim": claim},
                              100 * 1024) == 413
    source_pc, source_id, _, _ = await live_source(whip)
    try:
        assert await chunked_post(host.session, f"{base}/api/whep/{source_id}", {"X-CSRF-Token": host.csrf},
                                  100 * 1024) == 413
        assert not app[WHEP].viewings
    finally:
        await source_pc.close()


# -- 4. WHEP viewings and access changes ----------------------------------------------------------


async def test_a_whep_viewing_ends_when_its_account_moves_out_of_scope_or_signs_out(whip):
    app, base, host = whip["app"], whip["base"], whip["host"]
    source_pc, source_id, _, _ = await live_source(whip)
    officer = await Api(base).sign_in("officer", "password-1")
    players = [await player_offer(("video",)) for _ in range(2)]
    try:
        resp = await whep_post(officer, f"/api/whep/{source_id}", players[0].localDescription.sdp)
        assert resp.status == 201, await resp.text()
        await players[0].setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
        [account] = await rows(app, Account, username="officer")
        [district] = await rows(app, Unit, code="D2")
        _, admin = await app[DIRECTORY].sign_in("admin", ADMIN_PASSWORD)
        # The officer is moved to a district that does not hold the incident.
        await app[DIRECTORY].update_account(admin, account.id, {"unit_id": district.id})
        await wait_for(lambda: not app[WHEP].viewings, what="the moved account's viewing ended")
        resp = await whep_post(host, f"/api/whep/{source_id}", players[1].localDescription.sdp)
        assert resp.status == 201
        await players[1].setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
        # The host signs out.
        signed_out = await host.session.delete(f"{base}/api/session", headers={"X-CSRF-Token": host.csrf})
        assert signed_out.status in (200, 204)
        await wait_for(lambda: not app[WHEP].viewings, what="the signed-out account's viewing ended")
    finally:
        for player in players:
            await player.close()
        await officer.close()
        await source_pc.close()
    from .test_whip import timeline
    again = await Api(base).sign_in("admin", ADMIN_PASSWORD)
    try:
        watched = [e for e in await timeline(again, whip["incident_id"]) if e["kind"] == "footage_watched"]
    finally:
        await again.close()
    assert [e["reason"] for e in watched] == ["access_ended", "access_ended"]


# -- 5. constant-time token comparison -------------------------------------------------------------


async def test_whip_delete_compares_the_token_in_constant_time(whip, monkeypatch):
    ingest = whip["app"][INGEST]
    compared: list[tuple[Any, Any]] = []
    real = ingest_module.hmac.compare_digest if hasattr(ingest_module, "hmac") else None
    assert real is not None, "ingest.py does not use hmac"

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(ingest_module.hmac, "compare_digest", spy)
    fake = IngestSession("s", 1, token_hash("right"), whip["incident_id"], 1, "x", None, None,  # type: ignore[arg-type]
                         utcnow())
    ingest.sessions["s"] = fake
    try:
        try:
            await ingest.delete("s", "wrong")
        except Exception as exc:
            assert type(exc).__name__ == "BadToken"
        else:
            raise AssertionError("a wrong token ended the session")
    finally:
        ingest.sessions.pop("s", None)
    assert compared == [(token_hash("wrong"), token_hash("right"))]
