"""The OpenAPI 3.1 description of the JSON API, served at /api/openapi.json.

Kept next to the routes by a test that fails when a route is missing here or a path
here has no route.
"""

from __future__ import annotations

import re
from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


ID = {"type": "integer"}
TEXT = {"type": "string"}
DATE = {"type": "string", "format": "date"}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": TEXT, "message": TEXT,
        "errors": {"type": "array", "items": {"type": "object"}}}}}},
    "Principal": {"type": "object", "properties": {
        "kind": {"enum": ["account", "device"]}, "id": ID, "name": TEXT,
        "role": {"enum": ["admin", "host", "duty_officer", "leader", "viewer", "console"]},
        "unit_id": ID, "duty_room_id": {"type": ["integer", "null"]}}},
    "SessionReply": {"type": "object", "properties": {"principal": _ref("Principal"), "csrf_token": TEXT}},
    "Unit": {"type": "object", "properties": {
        "id": ID, "code": TEXT, "name": TEXT,
        "kind": {"enum": ["city", "district", "street", "agency", "enterprise"]},
        "parent_id": {"type": ["integer", "null"]}, "active": {"type": "boolean"}, "sort_order": ID}},
    "DutyRoom": {"type": "object", "properties": {
        "id": ID, "unit_id": ID, "name": TEXT, "phone": TEXT, "location": TEXT, "active": {"type": "boolean"}}},
    "Account": {"type": "object", "properties": {
        "id": ID, "username": TEXT, "display_name": TEXT, "phone": TEXT, "role": TEXT, "unit_id": ID,
        "active": {"type": "boolean"}}},
    "Shift": {"type": "object", "properties": {
        "duty_room_id": ID, "date": DATE, "leader_name": TEXT, "leader_phone": TEXT, "note": TEXT,
        "officers": {"type": "array", "items": {"type": "object", "properties": {"name": TEXT, "phone": TEXT}}}}},
    "Contact": {"type": "object", "properties": {
        "type": {"enum": ["unit", "duty_room", "person"]}, "id": ID, "name": TEXT, "phone": TEXT, "unit_id": ID}},
}

# (method, path, tag, summary, request schema or None, 2xx response schema or None)
ROUTES: list[tuple[str, str, str, str, Any, Any]] = [
    ("post", "/api/session", "session", "Sign in with username and password (sets the session cookie)",
     {"type": "object", "required": ["username", "password"], "properties": {"username": TEXT, "password": TEXT}},
     _ref("SessionReply")),
    ("post", "/api/device-session", "session", "Sign a duty-room console in with its device credential",
     {"type": "object", "required": ["token"], "properties": {"token": TEXT}}, _ref("SessionReply")),
    ("delete", "/api/session", "session", "Sign out", None, None),
    ("get", "/api/me", "session", "Who is signed in", None, _ref("SessionReply")),
    ("get", "/api/units", "units", "Units in your scope, in tree order (?include_inactive=1)", None, _array("Unit")),
    ("post", "/api/units", "units", "Create a unit under a parent in your scope", _ref("Unit"), _ref("Unit")),
    ("patch", "/api/units/{id}", "units", "Edit a unit's name, code, kind or order", _ref("Unit"), _ref("Unit")),
    ("post", "/api/units/{id}/move", "units", "Move a unit (and its subtree) under another parent",
     {"type": "object", "properties": {"parent_id": ID}}, _ref("Unit")),
    ("post", "/api/units/{id}/deactivate", "units", "Deactivate a unit (history is kept)", None, _ref("Unit")),
    ("post", "/api/units/{id}/activate", "units", "Reactivate a unit", None, _ref("Unit")),
    ("get", "/api/rooms", "rooms", "Duty rooms in your scope (?unit_id=)", None, _array("DutyRoom")),
    ("post", "/api/rooms", "rooms", "Create a duty room", _ref("DutyRoom"), _ref("DutyRoom")),
    ("get", "/api/rooms/{id}", "rooms", "One duty room", None, _ref("DutyRoom")),
    ("patch", "/api/rooms/{id}", "rooms", "Edit or move a duty room", _ref("DutyRoom"), _ref("DutyRoom")),
    ("post", "/api/rooms/{id}/deactivate", "rooms", "Deactivate a duty room", None, _ref("DutyRoom")),
    ("post", "/api/rooms/{id}/device-credentials", "rooms",
     "Issue a console credential for the room; the token is returned once",
     {"type": "object", "properties": {"label": TEXT}},
     {"type": "object", "properties": {"id": ID, "duty_room_id": ID, "token": TEXT, "label": TEXT}}),
    ("post", "/api/device-credentials/{id}/revoke", "rooms", "Revoke a console credential (signs it out)", None, None),
    ("post", "/api/conference-rooms/{name}/invites", "conference",
     "Invite an account or a duty room's console into a free-form meeting room (command staff)",
     {"type": "object", "properties": {"account_id": ID, "duty_room_id": ID}}, None),
    ("get", "/api/rooms/{id}/roster.ics", "roster", "The room's roster as an iCalendar feed", None, None),
    ("get", "/api/accounts", "accounts", "Accounts in your scope", None, _array("Account")),
    ("post", "/api/accounts", "accounts", "Create an account (argon2-hashed password)", _ref("Account"),
     _ref("Account")),
    ("patch", "/api/accounts/{id}", "accounts", "Edit, disable or reset the password of an account",
     _ref("Account"), _ref("Account")),
    ("get", "/api/audit", "audit", "Audit log of your scope, newest first (?limit=)", None,
     {"type": "array", "items": {"type": "object"}}),
    ("get", "/api/contacts", "contacts", "Search units, rooms and people by name, pinyin or phone (?q=)",
     None, _array("Contact")),
    ("get", "/api/roster", "roster", "Shifts (?room_id=&start=&end=)", None, _array("Shift")),
    ("put", "/api/roster/{room_id}/{date}", "roster", "Set one room's shift on one date", _ref("Shift"), _ref("Shift")),
    ("get", "/api/roster/template.xlsx", "roster", "Holiday roster template (?period=&start=&end=)", None, None),
    ("post", "/api/roster/upload", "roster",
     "Upload a filled template (XLSX body, ?period=); all rows saved or none, with row-level errors",
     None, {"type": "object", "properties": {"saved": ID, "units": ID, "period": TEXT}}),
    ("get", "/api/roster/status", "roster", "Which units have submitted for a period (?period=)", None,
     {"type": "array", "items": {"type": "object"}}),
    ("get", "/api/roster/handbook.pdf", "roster", "Holiday duty handbook PDF (?period=&start=&end=)", None, None),
    ("post", "/api/rollcalls", "rollcalls", "Create a roll-call (or a spot-check of one room) of rooms in your scope",
     {"type": "object", "required": ["room_ids"], "properties": {
         "title": TEXT, "room_ids": {"type": "array", "items": ID}, "answer_window": {"type": "number"},
         "late_after": {"type": "number"}, "kind": {"enum": ["adhoc", "spot_check"]}}},
     {"type": "object", "properties": {"id": ID, "room": TEXT}}),
    ("get", "/api/rollcalls/{id}/precheck", "rollcalls",
     "Which target rooms are ready: console connected, camera and microphone delivering", None,
     {"type": "array", "items": {"type": "object"}}),
    ("get", "/api/plans/{id}/precheck", "rollcalls", "Pre-check of a plan's rooms before it fires", None,
     {"type": "array", "items": {"type": "object"}}),
    ("get", "/api/rollcalls/{id}/sheet.csv", "rollcalls", "The roll-call's sheet as CSV (UTF-8 with BOM)", None, None),
    ("get", "/api/rollcalls/{id}/sheet.xlsx", "rollcalls", "The roll-call's sheet as XLSX", None, None),
    ("get", "/api/rollcalls/{id}/sheet.pdf", "rollcalls",
     "The roll-call's sheet as PDF: summary, rows and each answer's snapshot", None, None),
    ("get", "/api/statistics", "statistics",
     "Monthly attendance per unit and per district (?month=YYYY-MM); accounts only, not consoles",
     None, {"type": "object"}),
    ("get", "/api/statistics/trend.png", "statistics", "Daily attendance rate of a month as a PNG chart (?month=)",
     None, None),
    ("get", "/api/notices", "notices",
     "Supervision notices in your scope (a console: its own room's), each with may_respond and may_close", None,
     {"type": "array", "items": {"type": "object"}}),
    ("post", "/api/notices/{id}/respond", "notices",
     "The unit's written response (an account of the notified unit only)",
     {"type": "object", "required": ["response"], "properties": {"response": TEXT}}, {"type": "object"}),
    ("post", "/api/notices/{id}/close", "notices",
     "A host of the roll-call's side, not of the notified unit, closes a responded notice", None, {"type": "object"}),
    ("get", "/api/plans", "rollcalls", "Roll-call plans in your scope", None,
     {"type": "array", "items": {"type": "object"}}),
    ("post", "/api/plans", "rollcalls",
     "Create a plan: target unit subtree and kinds, dtstart (with UTC offset), RFC 5545 rrule and/or dates, "
     "answer window, late threshold, custom order, focus points",
     {"type": "object", "required": ["title", "target_unit_id", "dtstart"], "properties": {
         "title": TEXT, "target_unit_id": ID, "target_kinds": {"type": "array", "items": TEXT},
         "dtstart": {"type": "string", "format": "date-time"}, "rrule": TEXT,
         "dates": {"type": "array", "items": {"type": "string", "format": "date-time"}},
         "answer_window": {"type": "number"}, "late_after": {"type": "number"},
         "custom_order": {"type": "array", "items": ID}, "focus_points": TEXT}}, {"type": "object"}),
    ("get", "/api/plans/{id}/upcoming", "rollcalls", "The plan's next occurrences", None,
     {"type": "array", "items": {"type": "string", "format": "date-time"}}),
    ("patch", "/api/plans/{id}", "rollcalls",
     "Edit a plan (any field of create; active=false pauses it). A new schedule, or resuming, starts from now: "
     "past occurrences are not fired late. No plan recurs more often than hourly",
     {"type": "object", "properties": {
         "title": TEXT, "target_unit_id": ID, "target_kinds": {"type": "array", "items": TEXT},
         "dtstart": {"type": "string", "format": "date-time"}, "rrule": {"type": ["string", "null"]},
         "dates": {"type": "array", "items": {"type": "string", "format": "date-time"}},
         "answer_window": {"type": "number"}, "late_after": {"type": "number"},
         "custom_order": {"type": "array", "items": ID}, "focus_points": TEXT, "active": {"type": "boolean"}}},
     {"type": "object"}),
    ("delete", "/api/plans/{id}", "rollcalls",
     "Delete a plan; the roll-calls it already fired keep their records", None,
     {"type": "object", "properties": {"deleted": ID}}),
    ("get", "/api/rooms/{id}/rollcalls.ics", "rollcalls", "A duty room's upcoming roll-calls as iCalendar",
     None, None),
    ("get", "/api/rollcalls/{id}", "rollcalls", "The live attendance board", None, {"type": "object"}),
    ("post", "/api/rollcalls/{id}/{action}", "rollcalls",
     "start | call {room_id?} | skip | excuse {room_id, reason} | poll {dwell} | stop_poll | finish | cancel; "
     "an action the roll-call's state does not allow answers 409", {"type": "object"}, {"type": "object"}),
]


def spec() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path, tag, summary, request, response in ROUTES:
        operation: dict[str, Any] = {
            "tags": [tag], "summary": summary,
            "responses": {
                "200": {"description": "OK", **({"content": {"application/json": {"schema": response}}}
                                               if response else {})},
                "default": {"description": "Error", "content": {"application/json": {"schema": _ref("Error")}}},
            },
        }
        params = [{"name": p.strip("{}"), "in": "path", "required": True,
                   "schema": DATE if p == "{date}" else TEXT if p in ("{action}", "{name}") else ID}
                  for p in path.split("/") if p.startswith("{")]
        # Query parameters are named in the summary, "(?name=&other=)": declared, so clients and
        # the fuzzer (tests/test_fuzz.py) know them.
        params += [{"name": name, "in": "query", "required": False, "schema": TEXT}
                    for query in re.findall(r"\?([a-z_]+=[^)\s;]*(?:&[a-z_]+=[^)\s;]*)*)", summary)
                    for name in re.findall(r"([a-z_]+)=", query)]
        if params:
            operation["parameters"] = params
        if request is not None:
            operation["requestBody"] = {"content": {"application/json": {"schema": request}}}
        if path not in ("/api/session", "/api/device-session") or method == "delete":
            operation["security"] = [{"session": []}]
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "dutycall API", "version": "1",
                 "description": "Writes need the X-CSRF-Token header from the sign-in reply. "
                                "Errors: 401 not signed in, 403 role, 404 not in scope, 409 conflict, "
                                "422 invalid (with row-level errors), 423 locked, 429 too many attempts, 503 busy."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "dutycall_session"}},
        },
    }
