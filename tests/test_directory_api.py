"""The directory over HTTP: sign-in, CSRF, lockout, audit, and role x route x scope."""

from __future__ import annotations

from .conftest import ADMIN_PASSWORD, PASSWORD  # the ``world`` fixture lives in conftest.py


async def test_sign_in_sign_out_and_csrf(world):
    anon = await world.client(None)
    status, body = await anon.call("GET", "/api/units")
    assert status == 401 and body["error"]["code"] == "not_signed_in"
    api = await world.client("adminA")
    status, me = await api.call("GET", "/api/me")
    assert status == 200 and me["principal"]["role"] == "admin"
    # A write without the CSRF header is refused and changes nothing.
    status, body = await api.call("POST", "/api/units", {"code": "X", "name": "x", "kind": "street",
                                                         "parent_id": world.ids["A"]}, csrf=False)
    assert status == 403 and body["error"]["code"] == "csrf"
    status, units = await api.call("GET", "/api/units")
    assert "X" not in [u["code"] for u in units]
    # The session cookie is HttpOnly and SameSite=Strict.
    resp = await anon.client.post("/api/session", json={"username": "adminA", "password": PASSWORD})
    set_cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie, set_cookie
    status, _ = await api.call("DELETE", "/api/session")
    assert status == 200
    status, _ = await api.call("GET", "/api/me")
    assert status == 401
    await anon.close()
    await api.close()


async def test_lockout_after_repeated_failures(world):
    api = await world.client(None)
    for _ in range(5):
        resp = await api.client.post("/api/session", json={"username": "viewerA", "password": "wrong-password"})
        assert resp.status == 401
    resp = await api.client.post("/api/session", json={"username": "viewerA", "password": PASSWORD})
    assert resp.status == 423
    assert (await resp.json())["error"]["code"] == "account_locked"
    # Unknown users get the same answer as a wrong password.
    resp = await api.client.post("/api/session", json={"username": "nobody", "password": PASSWORD})
    assert resp.status == 401 and "用户名或密码错误" in (await resp.json())["error"]["message"]
    await api.close()


async def test_bad_json_and_bad_fields_change_nothing(world):
    api = await world.client("admin", ADMIN_PASSWORD)
    resp = await api.client.post("/api/units", data=b"{not json", headers={"X-CSRF-Token": api.csrf,
                                                                          "Content-Type": "application/json"})
    assert resp.status == 422
    for bad in ({"code": "bad code!", "name": "x", "kind": "street", "parent_id": world.ids["A"]},
                {"code": "Z", "name": "", "kind": "street", "parent_id": world.ids["A"]},
                {"code": "Z", "name": "x", "kind": "planet", "parent_id": world.ids["A"]},
                {"code": "A", "name": "dup", "kind": "street", "parent_id": world.ids["A"]}):
        status, body = await api.call("POST", "/api/units", bad)
        assert status in (409, 422), body
    status, units = await api.call("GET", "/api/units")
    assert sorted(u["code"] for u in units) == ["A", "A1", "B", "B1", "city"]
    await api.close()


async def test_units_move_deactivate_keeps_history_and_audits(world):
    api = await world.client("admin", ADMIN_PASSWORD)
    ids = world.ids
    # A cycle is refused.
    status, body = await api.call("POST", f"/api/units/{ids['A']}/move", {"parent_id": ids["A1"]})
    assert status == 409
    status, moved = await api.call("POST", f"/api/units/{ids['A1']}/move", {"parent_id": ids["B"]})
    assert status == 200 and moved["parent_id"] == ids["B"]
    # District B's admin now sees A1 (moved into B) and district A's admin does not.
    admin_b = await world.client("adminB")
    status, units = await admin_b.call("GET", "/api/units")
    assert {"B", "B1", "A1"} == {u["code"] for u in units}
    status, _ = await api.call("POST", f"/api/units/{ids['B1']}/deactivate")
    assert status == 200
    status, active = await api.call("GET", "/api/units")
    assert "B1" not in [u["code"] for u in active]
    status, everything = await api.call("GET", "/api/units?include_inactive=1")
    assert "B1" in [u["code"] for u in everything]
    status, log = await api.call("GET", "/api/audit")
    actions = [(e["action"], e["target_type"]) for e in log]
    assert ("move", "unit") in actions and ("deactivate", "unit") in actions
    assert all(e["actor"] for e in log)
    await api.close()
    await admin_b.close()


async def test_device_credential_signs_in_a_console_until_revoked(world):
    admin = await world.client("adminA")
    status, cred = await admin.call("POST", f"/api/rooms/{world.ids['roomA1']}/device-credentials", {"label": "PC-1"})
    assert status == 201 and cred["token"]
    console = await world.client(None)
    resp = await console.client.post("/api/device-session", json={"token": cred["token"]})
    assert resp.status == 200
    body = await resp.json()
    console.csrf = body["csrf_token"]
    assert body["principal"]["kind"] == "device" and body["principal"]["duty_room_id"] == world.ids["roomA1"]
    status, rooms = await console.call("GET", "/api/rooms")
    assert [r["id"] for r in rooms] == [world.ids["roomA1"]]
    status, _ = await console.call("GET", f"/api/rooms/{world.ids['roomA']}")
    assert status == 404
    status, _ = await console.call("POST", "/api/rooms", {"unit_id": world.ids["A1"], "name": "x"})
    assert status == 403
    # Revoking signs the console out at once.
    status, _ = await admin.call("POST", f"/api/device-credentials/{cred['id']}/revoke")
    assert status == 200
    status, _ = await console.call("GET", "/api/rooms")
    assert status == 401
    resp = await console.client.post("/api/device-session", json={"token": cred["token"]})
    assert resp.status == 401
    # Another district's admin cannot mint credentials for A's rooms.
    admin_b = await world.client("adminB")
    status, _ = await admin_b.call("POST", f"/api/rooms/{world.ids['roomA1']}/device-credentials", {})
    assert status == 404
    for api in (admin, console, admin_b):
        await api.close()


# Each route is tried by each role of district A, on A's own subtree and on district B's.
# Expected: status for (own, other).
READ_ALL = {"adminA": (200, 404), "hostA": (200, 404), "officerA1": (200, 404),
            "leaderA": (200, 404), "viewerA": (200, 404)}
ROSTER_WRITE = {"adminA": ("ok", 404), "hostA": ("ok", 404), "officerA1": ("ok", 404),
                "leaderA": (403, 403), "viewerA": (403, 403)}
SHIFT = {"leader_name": "王五", "leader_phone": "13900000000", "officers": [{"name": "张三", "phone": "13800000000"}]}
ADMIN_ONLY_WRITE = {"adminA": ("ok", 404), "hostA": (403, 403), "officerA1": (403, 403),
                    "leaderA": (403, 403), "viewerA": (403, 403)}


def _routes(ids):
    own_unit = ids["A1"]
    other_unit = ids["B1"]
    return [
        ("GET room", lambda u: ("GET", f"/api/rooms/{u['room']}", None), READ_ALL),
        ("GET rooms of unit", lambda u: ("GET", f"/api/rooms?unit_id={u['unit']}", None), READ_ALL),
        ("GET roster", lambda u: ("GET", f"/api/roster?room_id={u['room']}&start=2027-02-10&end=2027-02-11", None),
         READ_ALL),
        ("GET roster.ics", lambda u: ("GET", f"/api/rooms/{u['room']}/roster.ics", None), READ_ALL),
        ("PUT shift", lambda u: ("PUT", f"/api/roster/{u['room']}/2027-02-10", SHIFT), ROSTER_WRITE),
        ("move unit", lambda u: ("POST", f"/api/units/{u['unit']}/move", {"parent_id": u["parent"]}), ADMIN_ONLY_WRITE),
        ("PATCH unit", lambda u: ("PATCH", f"/api/units/{u['unit']}", {"name": "改名"}), ADMIN_ONLY_WRITE),
        ("POST room", lambda u: ("POST", "/api/rooms", {"unit_id": u["unit"], "name": "新值班室"}), ADMIN_ONLY_WRITE),
        ("PATCH room", lambda u: ("PATCH", f"/api/rooms/{u['room']}", {"phone": "123"}), ADMIN_ONLY_WRITE),
        ("POST unit", lambda u: ("POST", "/api/units", {"code": f"N{u['unit']}", "name": "新街道", "kind": "street",
                                                        "parent_id": u["unit"]}), ADMIN_ONLY_WRITE),
        ("device credential", lambda u: ("POST", f"/api/rooms/{u['room']}/device-credentials", {}), ADMIN_ONLY_WRITE),
        ("PATCH account", lambda u: ("PATCH", f"/api/accounts/{u['account']}", {"phone": "1"}), ADMIN_ONLY_WRITE),
        ("POST account", lambda u: ("POST", "/api/accounts", {"username": f"new{u['unit']}", "display_name": "新人",
                                                              "password": PASSWORD, "role": "viewer",
                                                              "unit_id": u["unit"]}), ADMIN_ONLY_WRITE),
        ("deactivate room", lambda u: ("POST", f"/api/rooms/{u['room']}/deactivate", None), ADMIN_ONLY_WRITE),
    ], own_unit, other_unit


async def test_scope_table_every_role_every_route(world):
    ids = world.ids
    routes, _, _ = _routes(ids)
    own = {"unit": ids["A1"], "room": ids["roomA1"], "account": ids["officerA1"], "parent": ids["A"]}
    other = {"unit": ids["B1"], "room": ids["roomB1"], "account": ids["adminB"], "parent": ids["B"]}
    failures = []
    apis = {username: await world.client(username) for username in READ_ALL}
    # Route by route (deactivation comes last), each role in turn, own scope then the other's.
    for name, build, expected in routes:
        for username, api in apis.items():
            for which, target, want in (("own", own, expected[username][0]), ("other", other, expected[username][1])):
                method, path, body = build(target)
                status, reply = await api.call(method, path, body)
                ok = (200 <= status < 300) if want == "ok" else status == want
                if not ok:
                    failures.append(f"{username} {name} {which}: {status} (wanted {want}) {reply}")
    for username, api in apis.items():
        # Listings never show another district.
        status, units = await api.call("GET", "/api/units")
        assert status == 200 and not {"B", "B1"} & {u["code"] for u in units}, (username, units)
        status, rooms = await api.call("GET", "/api/rooms")
        assert ids["roomB1"] not in [r["id"] for r in rooms]
        status, _ = await api.call("GET", "/api/accounts")
        assert status == (200 if username == "adminA" else 403)
        status, _ = await api.call("GET", "/api/audit")
        assert status == (200 if username == "adminA" else 403)
        await api.close()
    assert not failures, "\n".join(failures)
    # Nothing in district B changed.
    admin_b = await world.client("adminB")
    status, room = await admin_b.call("GET", f"/api/rooms/{ids['roomB1']}")
    assert room["phone"] == "0755-30011" and room["active"]
    status, units = await admin_b.call("GET", "/api/units")
    assert [u["name"] for u in units if u["code"] == "B1"] == ["东门街道"]
    await admin_b.close()


async def test_contacts_by_name_pinyin_initials_and_phone(world):
    api = await world.client("admin", ADMIN_PASSWORD)
    for q, expected in (("ftq", "福田区"), ("futian", "福田区"), ("园岭", "园岭街道值班室"), ("ylj", "园岭街道"),
                        ("0755-30011", "东门街道值班室")):
        status, results = await api.call("GET", f"/api/contacts?q={q}")
        assert status == 200
        assert expected in [r["name"] for r in results], (q, results)
    viewer = await world.client("viewerA")
    status, results = await viewer.call("GET", "/api/contacts?q=dmj")
    assert results == []  # 东门街道 is district B's
    await api.close()
    await viewer.close()
