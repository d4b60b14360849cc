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
        "unit_id": ID, "duty_room_id": {"type": ["integer", "null"]},
        "standby_room": {"type": "string", "description": "a duty room's console only: where it waits"},
        "timezone": {"type": "string", "description": "the deployment's zone (IANA name): pages show times in it"},
        "permissions": {"type": "array", "items": TEXT,
                        "description": "what this principal may do (pages show only the buttons it may use)"}}},
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
    "IncidentSummary": {"type": "object", "properties": {
        "id": ID, "title": TEXT, "category": TEXT, "subtype": {"type": ["string", "null"]}, "level": TEXT,
        "status": {"enum": ["open", "final", "closed", "merged"]}, "unit_id": ID, "unit_name": TEXT, "place": TEXT,
        "occurred_at": {"type": "string", "format": "date-time"}, "reports": ID,
        "flags": {"type": "array", "items": {"enum": ["late_first", "late_written", "late_followup", "missed"]}}}},
    "Incident": {"type": "object", "properties": {
        "id": ID, "title": TEXT, "status": TEXT, "level": TEXT, "category": TEXT, "current": {"type": "object"},
        "reports": {"type": "array", "items": {"type": "object"}},
        "flags": {"type": "array", "items": {"type": "object"}},
        "instructions": {"type": "array", "items": {"type": "object"}},
        "notices": {"type": "array", "items": {"type": "object"}},
        "timeline": {"type": "array", "items": {"type": "object"}}, "may": {"type": "object"}}},
    "NotificationGroup": {"type": "object", "required": ["name", "template"], "properties": {
        "name": TEXT, "unit_id": ID, "categories": {"type": "array", "items": {"enum": [
            "natural", "accident", "health", "social"]}},
        "levels": {"type": "array", "items": {"enum": ["I", "II", "III", "IV", "unrated"]}}, "template": TEXT,
        "members": {"type": "array", "items": {"type": "object", "properties": {"name": TEXT, "phone": TEXT}}},
        "active": {"type": "boolean"}}},
    "ReportElements": {"type": "object", "description": "elements of incidents/catalog.py ELEMENTS by name",
                       "properties": {
        "stage": {"enum": ["followup", "final"]}, "channel": {"enum": ["phone", "written"]}, "unit_id": ID,
        "title": TEXT, "occurred_at": {"type": "string", "format": "date-time"},
        "learned_at": {"type": "string", "format": "date-time"}, "source": TEXT,
        "category": {"enum": ["natural", "accident", "health", "social"]}, "subtype": TEXT,
        "level": {"enum": ["I", "II", "III", "IV", "unrated"]}, "place": TEXT,
        "latitude": {"type": "number"}, "longitude": {"type": "number"}, "cause": TEXT, "course": TEXT,
        "deaths": {"type": "integer", "minimum": 0}, "injured": {"type": "integer", "minimum": 0},
        "missing": {"type": "integer", "minimum": 0}, "trapped": {"type": "integer", "minimum": 0},
        "economic_loss": {"type": "number", "minimum": 0}, "losses": TEXT, "measures": TEXT,
        "measures_effect": TEXT, "trend": TEXT, "suggestions": TEXT, "changes": TEXT, "outcome": TEXT,
        "aftermath": TEXT, "contact_name": TEXT, "contact_phone": TEXT, "reporter": TEXT}},
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
    ("get", "/api/console/rooms", "session",
     "Rooms the console may join, by name: open roll-calls in scope (title) and standby rooms in scope",
     None, {"type": "object", "properties": {"rollcalls": {"type": "array", "items": {"type": "object"}},
                                             "standby": {"type": "array", "items": {"type": "object"}}}}),
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
    ("get", "/api/rooms/{id}/device-credentials", "rooms",
     "The room's console credentials, newest first (id, label, created_at, last_used_at, revoked_at; never tokens)",
     None, {"type": "array", "items": {"type": "object"}}),
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
    ("get", "/api/rollcalls", "rollcalls",
     "Past and current roll-calls in your scope, newest first (?limit=, at most 200): title, host, rooms, "
     "answered/late/absent rates (of the rooms not excused; never called counts as absent), times in the "
     "deployment's zone", None, {"type": "array", "items": {"type": "object"}}),
    ("post", "/api/rollcalls/precheck", "rollcalls",
     "Before creating a roll-call: readiness of the rooms picked (all must be in your scope)",
     {"type": "object", "required": ["room_ids"], "properties": {"room_ids": {"type": "array", "items": ID}}},
     {"type": "array", "items": {"type": "object"}}),
    ("get", "/api/rollcall-picker", "rollcalls",
     "The room picker: active units (tree order, with pinyin keys) and duty rooms in your scope; hosts only", None,
     {"type": "object", "properties": {"units": {"type": "array", "items": {"type": "object"}},
                                       "rooms": {"type": "array", "items": {"type": "object"}}}}),
    ("get", "/api/room-groups", "rollcalls",
     "Saved room groups: your own and those shared at your unit, each with only the rooms in your scope", None,
     {"type": "array", "items": {"type": "object"}}),
    ("post", "/api/room-groups", "rollcalls",
     "Save a room group (a group of yours with the same name is replaced); every room must be in your scope",
     {"type": "object", "required": ["name", "room_ids"], "properties": {
         "name": TEXT, "room_ids": {"type": "array", "items": ID}, "shared": {"type": "boolean"}}},
     {"type": "object"}),
    ("delete", "/api/room-groups/{id}", "rollcalls", "Delete a room group of yours", None,
     {"type": "object", "properties": {"deleted": ID}}),
    ("post", "/api/plans/preview", "rollcalls",
     "The page's schedule form ({freq: weekly|monthly, weekdays: [MO..SU], monthday, time: HH:MM}, in the "
     "deployment's zone) as dtstart and rrule, or a given dtstart and rrule, with the next five occurrences",
     {"type": "object", "properties": {"schedule": {"type": "object"}, "dtstart": TEXT, "rrule": TEXT}},
     {"type": "object", "properties": {"dtstart": TEXT, "rrule": TEXT, "zone": TEXT,
                                       "next": {"type": "array", "items": {"type": "string", "format": "date-time"}}}}),
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
     "A host of the issuing side (the roll-call's unit, or the unit above an incident's), not of the notified unit, "
     "closes a responded notice", None, {"type": "object"}),
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
    # -- the wall's thumbnails (the command seat, /command) --------------------------------------------
    ("post", "/api/wall/look", "rollcalls",
     "The duty rooms a wall page has on screen now (at most 200; renewed every few seconds, a 10 s lease): the "
     "server takes a keyframe thumbnail of each every ~3 s while anyone looks. Rooms out of scope are dropped. "
     "Answers each room's latest picture time (taken_at, epoch seconds, null before the first) and what stops it "
     "taking part (problems: offline, no_video, no_audio), with the server's now. With has (room id -> the "
     "taken_at of the picture the page shows; {}: none), each room whose picture is newer also carries it (jpeg, "
     "base64): the wall's pictures come with its look. Accounts only",
     {"type": "object", "required": ["viewer", "rooms"], "properties": {
         "viewer": TEXT, "rooms": {"type": "array", "items": ID, "maxItems": 200},
         "has": {"type": "object", "additionalProperties": {"type": "number"}, "maxProperties": 200}}},
     {"type": "object"}),
    ("get", "/api/wall/{id}/thumb.jpg", "rollcalls",
     "A duty room's latest wall thumbnail (JPEG, at most 320x180, no-store, X-Taken-At); 404 out of scope or "
     "before the first picture", None, None),
    # -- incidents (突发事件信息报送) ----------------------------------------------------------------
    ("get", "/api/incident-catalogue", "incidents",
     "The report form: element groups, categories and subtypes, levels, channels, required elements per stage "
     "(labels in the request's language)", None, {"type": "object"}),
    ("get", "/api/incidents", "incidents",
     "Incidents in scope (and those an instruction addresses to your unit), newest first; filters: status, "
     "category, level, unit_id, from, to (local days YYYY-MM-DD). Accounts only.", None,
     {"type": "array", "items": _ref("IncidentSummary")}),
    ("post", "/api/incidents", "incidents",
     "A first report (初报) creating an incident: the form's elements by name, channel (phone|written), unit_id "
     "(default your own; a unit above the responsible one records it as 漏报). A missing or malformed element "
     "answers 422 listing each by field, named in the request's language.", _ref("ReportElements"),
     _ref("Incident")),
    ("get", "/api/incidents/{id}", "incidents",
     "One incident: current view, every report as filed, flags, instructions, notices, timeline, and what you "
     "may do (may)", None, _ref("Incident")),
    ("post", "/api/incidents/{id}/reports", "incidents",
     "A follow-up (stage=followup: changes and reporter required) or the final report (stage=final: cause, "
     "outcome, aftermath, casualties, economic_loss); earlier reports are never changed. 409 after the final "
     "report, on a closed or merged incident.", _ref("ReportElements"), _ref("Incident")),
    ("post", "/api/incidents/{id}/reports/{report_id}/verify", "incidents",
     "核报: mark a report verified through a channel (district|police|health|onsite) with a note; hosts",
     {"type": "object", "required": ["channel"], "properties": {
         "channel": {"enum": ["district", "police", "health", "onsite"]}, "verified": {"type": "boolean"},
         "note": TEXT}}, _ref("Incident")),
    ("post", "/api/incidents/{id}/close", "incidents", "Close an incident after its final report; hosts", None,
     _ref("Incident")),
    ("post", "/api/incidents/{id}/merge", "incidents",
     "Merge incidents of units under this one's unit into it (the same event reported by several units)",
     {"type": "object", "required": ["incident_ids"], "properties": {"incident_ids": {"type": "array", "items": ID}}},
     _ref("Incident")),
    ("post", "/api/incidents/{id}/instructions", "incidents",
     "领导批示: an instruction addressed to units in the leader's scope",
     {"type": "object", "required": ["text", "unit_ids"], "properties": {
         "text": TEXT, "unit_ids": {"type": "array", "items": ID}}}, _ref("Incident")),
    ("post", "/api/incidents/{id}/notices", "incidents",
     "督办: a host's supervision notice to the responsible unit (late|missed|wrong|other) with a deadline in days",
     {"type": "object", "required": ["outcome", "text"], "properties": {
         "outcome": {"enum": ["late", "missed", "wrong", "other"]}, "text": TEXT, "days": ID}}, _ref("Incident")),
    ("post", "/api/incident-instructions/{id}/acknowledge", "incidents",
     "签收: the addressed unit has read the instruction (an account of that unit)", None, _ref("Incident")),
    ("post", "/api/incident-instructions/{id}/feedback", "incidents",
     "反馈: the addressed unit reports back on the instruction",
     {"type": "object", "required": ["text"], "properties": {"text": TEXT}}, _ref("Incident")),
    ("get", "/api/incident-statistics", "incidents",
     "A month's incident figures in your scope (?month=YYYY-MM, default the current month, deployment zone): "
     "per category, level and district; per responsible unit due / on time / late / missed, the timeliness "
     "rate (on time ÷ due) and notices issued and answered; a 12-month trend. Accounts only.",
     None, {"type": "object"}),
    ("get", "/api/incident-statistics/trend.png", "incidents",
     "Incidents per month and the timeliness rate over the 12 months ending with ?month= (PNG chart)", None, None),
    ("get", "/api/incident-bulletin.pdf", "incidents", "The monthly bulletin (月度通报) as PDF (?month=)", None, None),
    ("get", "/api/incident-bulletin.xlsx", "incidents", "The monthly bulletin as XLSX, one sheet per table (?month=)",
     None, None),
    ("get", "/api/incidents/{id}/report.pdf", "incidents",
     "The printable incident information report form (突发事件信息报告表): the elements grouped as the paper "
     "form groups them, every report in order with its time, channel and verification", None, None),
    # -- live alerts (incidents/alerting.py) ---------------------------------------------------------
    ("get", "/api/alerts", "alerts",
     "A duty room console's unacknowledged incident alerts of the last 7 days, newest first (new ones also "
     "arrive over /ws as incident_alert). Consoles only.", None, {"type": "array", "items": {"type": "object"}}),
    ("post", "/api/alerts/{id}/acknowledge", "alerts",
     "确认收到: the console of the alert's duty room acknowledges it (the first click stands, on the timeline)",
     None, {"type": "object"}),
    ("get", "/api/notification-groups", "alerts", "Notification groups in your scope; hosts and administrators",
     None, {"type": "array", "items": _ref("NotificationGroup")}),
    ("post", "/api/notification-groups", "alerts",
     "A notification group: which incidents (categories, levels; empty: all) within your unit's subtree, its "
     "members and its message template ($title $level $category $unit $stage $time $place $deaths $injured "
     "$missing $text)", _ref("NotificationGroup"), _ref("NotificationGroup")),
    ("put", "/api/notification-groups/{id}", "alerts", "Change a notification group in your scope",
     _ref("NotificationGroup"), _ref("NotificationGroup")),
    ("get", "/api/webhook-deliveries", "alerts",
     "The alert webhook's log (?status=pending|delivered|failed): each delivery and every attempt",
     None, {"type": "array", "items": {"type": "object"}}),
    # -- incident footage (media/ingest.py, media/recording.py) ----------------------------------------
    ("post", "/api/incidents/{id}/ingest-tokens", "footage",
     "A WHIP ingest token for an incident (hosts in its unit's scope): a label and its validity in minutes "
     "(5-10080, default 1440); the token is shown only in this reply and stored as SHA-256",
     {"type": "object", "required": ["label"], "properties": {"label": TEXT, "minutes": ID}}, {"type": "object"}),
    ("get", "/api/incidents/{id}/ingest-tokens", "footage", "The incident's ingest tokens (never their values)",
     None, {"type": "array", "items": {"type": "object"}}),
    ("delete", "/api/ingest-tokens/{id}", "footage", "Revoke an ingest token; its live WHIP session ends now",
     None, {"type": "object"}),
    ("post", "/api/whip", "footage",
     "WHIP (RFC 9725): a device publishes an incident's footage. Authorization: Bearer <ingest token>, body an "
     "application/sdp offer; 201 with the SDP answer and Location (the session), recorded at once. 401 wrong, "
     "expired or revoked token; 400 bad offer; 415 not application/sdp; 503 recordings disk below its minimum",
     None, None),
    ("delete", "/api/whip/sessions/{session}", "footage",
     "End a WHIP session (the Location of its POST), with the same bearer token", None, None),
    ("patch", "/api/whip/sessions/{session}", "footage",
     "ICE trickle and restarts are not supported: always 405 (RFC 9725 allows it)", None, None),
    ("post", "/api/whep/{source}", "footage",
     "WHEP: watch a live footage source (media/whep.py). A signed-in account (session cookie and X-CSRF-Token) "
     "whose scope holds the source's incident; body a recvonly application/sdp offer; 201 with the SDP answer "
     "and Location (the viewing), the source's media forwarded without re-encoding. Audited: watched_live in "
     "the footage access record, footage_watched on the timeline when it ends. 404 unknown, out of scope or "
     "not live; 400 bad offer; 415 not application/sdp", None, None),
    ("delete", "/api/whep/sessions/{session}", "footage",
     "End a WHEP viewing (the Location of its POST): only the account that started it", None, None),
    ("patch", "/api/whep/sessions/{session}", "footage",
     "ICE trickle and restarts are not supported: always 405", None, None),
    # -- RTSP pull (media/rtsp.py, web/rtsp.py) --------------------------------------------------------
    ("post", "/api/incidents/{id}/rtsp-sources", "footage",
     "Pull an RTSP camera into the incident's footage room (hosts in its unit's scope): url (rtsp:// or "
     "rtsps:// with a host, else 400; a host outside the rtsp_allow networks/ports: 400 url_not_allowed; "
     "credentials in it are used but never returned: shown as rtsp://***@host) and label. At most 8 per incident "
     "and 16 per unit (429). H264 forwarded and archived without re-encoding; retried with back-off (1 s doubling "
     "to 30 s) while the camera is away; resumed after a server restart",
     {"type": "object", "required": ["url", "label"], "properties": {"url": TEXT, "label": TEXT}},
     {"type": "object"}),
    ("get", "/api/incidents/{id}/rtsp-sources", "footage",
     "The incident's RTSP sources (URLs masked): state connecting, live (publication_id, footage_source_id, "
     "live_since), retrying (next_attempt_at, last_error: unreachable, not_rtsp, auth_failed, timeout or ended) "
     "or stopped", None,
     {"type": "array", "items": {"type": "object"}}),
    ("delete", "/api/rtsp-sources/{id}", "footage",
     "Stop pulling an RTSP source: its live stream ends now and it is not resumed", None, {"type": "object"}),
    # -- pre-recorded greeting videos (media/playout.py, web/greeting_media.py) -------------------------
    ("post", "/api/greeting-media", "greetings",
     "Upload a leader's recorded greeting (leaders, hosts, administrators; ?label=): the MP4 or WebM as the raw "
     "body (X-Filename optional) or as the file field of multipart/form-data, at most 500 MB (413), streamed to "
     "disk. Not an MP4/WebM with a video stream, or damaged: 422 invalid_media, nothing stored. 201: status "
     "processing; prepared once (VP8 or H264 without B-frames and keyframes at most 2 s apart copied, Opus "
     "audio copied, other audio to Opus, other video to VP8 640x360 30 fps 1 Mbps with a 1 s GOP), then ready "
     "(sha256, duration, codecs) or failed (failure)",
     {"type": "string", "format": "binary"}, {"type": "object"}),
    ("get", "/api/greeting-media", "greetings",
     "Greeting videos uploaded in your unit's scope, newest first", None,
     {"type": "array", "items": {"type": "object"}}),
    ("get", "/api/greeting-media/{id}", "greetings",
     "One greeting video: status processing, ready or failed", None, {"type": "object"}),
    ("delete", "/api/greeting-media/{id}", "greetings",
     "Delete a greeting video and its prepared file (not while it is playing: 422)", None, {"type": "object"}),
    # -- live relay, playback, footage access (media/relay.py, media/playback.py, media/audit.py) ---------
    ("post", "/api/incidents/{id}/relays", "footage",
     "Relay a live source of the incident to chosen duty rooms' consoles and leaders (hosts in its scope; rooms "
     "and leaders in your scope or up the incident's chain). The connected ones get footage_relay over /ws "
     "(title, level, relay_id) and watch it with relay_watch {relay_id, sdp}; reached: how many were connected",
     {"type": "object", "required": ["source_id"], "properties": {
         "source_id": ID, "rooms": {"type": "array", "items": ID}, "accounts": {"type": "array", "items": ID}}},
     {"type": "object"}),
    ("get", "/api/incidents/{id}/relays", "footage",
     "The incident's relays, live and past: to whom, who is watching, when and why each stopped", None,
     {"type": "array", "items": {"type": "object"}}),
    ("delete", "/api/relays/{id}", "footage",
     "Stop a relay: its consoles get footage_relay_ended and close the panel", None, {"type": "object"}),
    ("get", "/api/relays", "footage",
     "The live relays sent to you (a console or leader): asked on connecting, as footage_relay events", None,
     {"type": "array", "items": {"type": "object"}}),
    ("get", "/api/incidents/{id}/footage", "footage",
     "The incident's footage sources, each with its archive segments (times, codec, size, SHA-256, media url)",
     None, {"type": "array", "items": {"type": "object"}}),
    ("get", "/api/footage/segments/{id}/media", "footage",
     "A segment's file (video/webm or video/mp4) with HTTP Range (206, Content-Range) for players; "
     "?download=1 as an attachment. Accounts whose scope holds the incident; every request audited (once a "
     "minute per account, segment and action); another site's request (Sec-Fetch-Site) 403", None, None),
    ("get", "/api/footage/sources/{id}/download", "footage",
     "A source's time range (?from=&to=, ISO 8601 with offset, at most 2 h, else 422) as one file, joined "
     "without re-encoding from the last keyframe at or before from. One in flight per account and two in all "
     "(429 with Retry-After); 503 when the recordings disk lacks room for it", None, None),
    ("get", "/api/incidents/{id}/footage-access", "footage",
     "Who watched live, relayed, played or downloaded the incident's footage, when and from which address "
     "(hosts in its scope), newest first; ?limit= (1-1000) and ?before=<id> page it, a Link rel=next header "
     "when there is more", None, {"type": "array", "items": {"type": "object"}}),
    # -- field streaming links (media/field.py, web/field.py) -------------------------------------------
    ("post", "/api/incidents/{id}/field-links", "footage",
     "A one-time field video link for an incident (hosts in its unit's scope): a label and its validity in "
     "minutes (5-1440, default 120). The reply's url (/field#<secret>, the secret in the fragment) and qr_svg "
     "(its QR code, an SVG data: URI) are shown only here; the secret is stored as SHA-256",
     {"type": "object", "required": ["label"], "properties": {"label": TEXT, "minutes": ID}}, {"type": "object"}),
    ("get", "/api/incidents/{id}/field-links", "footage",
     "The incident's field links (never their secrets): valid, claimed_at, live, revoked_at, expires_at", None,
     {"type": "array", "items": {"type": "object"}}),
    ("delete", "/api/field-links/{id}", "footage", "Revoke a field link; its live stream ends now", None,
     {"type": "object"}),
    ("post", "/api/field/claim", "footage",
     "The phone page (no account, no cookies) opens its link: X-Field-Link: <secret>. The first device claims it "
     "and gets its claim secret (claim, once); it sends it back as X-Field-Claim. Answers the incident's title "
     "and level only. 404 unknown link; 409 claimed by another device; 410 expired, revoked or incident closed",
     None, {"type": "object"}),
    ("get", "/api/field/state", "footage",
     "The claiming phone's view of its link (X-Field-Link, X-Field-Claim): live or not; 409/410 as claim", None,
     {"type": "object"}),
    ("post", "/api/field/publish", "footage",
     "The claiming phone publishes (X-Field-Link, X-Field-Claim; body an application/sdp offer): 201 with the "
     "SDP answer, recorded at once; a second publish replaces the first (a reconnect). 400 bad offer, 409, 410, "
     "415, 503 as above", None, None),
    ("delete", "/api/field/publish", "footage", "The claiming phone stops streaming (204)", None, None),
    # -- leadership greetings (慰问) ------------------------------------------------------------------
    ("get", "/api/greetings", "greetings", "Greetings in your scope, newest first", None,
     {"type": "array", "items": {"type": "object"}}),
    ("post", "/api/greetings", "greetings",
     "Create a greeting (leader, host on a leader's behalf, admin): every duty room in your scope, or the "
     "subtrees of unit_ids; scheduled_at (with UTC offset) starts it then, else it is started by hand; "
     "media_id (a ready greeting video in your scope, else 422) is played to every room, late_join says "
     "whether a room joining after it began sees it from the start or where it is",
     {"type": "object", "required": ["title"], "properties": {
         "title": TEXT, "leader_account_id": ID, "unit_ids": {"type": "array", "items": ID},
         "scheduled_at": {"type": ["string", "null"], "format": "date-time"},
         "media_id": {"type": ["integer", "null"]}, "late_join": {"type": "string", "enum": ["live", "start"]}}},
     {"type": "object"}),
    ("get", "/api/greetings/upcoming", "greetings",
     "Scheduled and live greetings: a console's of its own room, an account's in its scope", None,
     {"type": "array", "items": {"type": "object"}}),
    ("get", "/api/greetings/leaders", "greetings",
     "The leaders you may greet on behalf of (a leader: only yourself; a host or admin: the active leader "
     "accounts of your scope), by unit then name: id, name, unit", None,
     {"type": "array", "items": {"type": "object", "properties": {"id": ID, "name": TEXT, "unit": TEXT}}}),
    ("get", "/api/greetings/{id}", "greetings",
     "A greeting with its receipts (per room: first joined, seconds watched, joins, offline) and rooms watching",
     None, {"type": "object"}),
    ("post", "/api/greetings/{id}/{action}", "greetings",
     "start | end | cancel | reply {duty_room_id: a watching room, or null to return the floor}; "
     "an action the greeting's state does not allow answers 409", {"type": "object"}, {"type": "object"}),
    ("get", "/api/greetings/{id}/receipts.csv", "greetings", "The receipts as CSV (UTF-8 with BOM)", None, None),
    ("get", "/api/greetings/{id}/receipts.xlsx", "greetings",
     "The receipts as XLSX, rooms that missed it listed for follow-up", None, None),
    ("get", "/api/greetings/{id}/receipts.pdf", "greetings",
     "The receipts as PDF, rooms that missed it listed for follow-up", None, None),
    ("get", "/api/rooms/{id}/greetings.ics", "greetings", "A duty room's scheduled greetings as iCalendar",
     None, None),
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
                   "schema": DATE if p == "{date}" else TEXT if p in ("{action}", "{name}", "{session}") else ID}
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
                                "Errors: 401 not signed in, 403 role, 404 not in scope (or a malformed id in "
                                "the path), 409 conflict, 422 invalid (with field- or row-level errors), "
                                "423 locked, 429 too many attempts, 503 busy; `code` is stable, `message` is in "
                                "the request's language: ?lang=, else X-Dutycall-Lang, else the dutycall_lang "
                                "cookie, else Accept-Language; zh-CN by default, en available."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "dutycall_session"}},
        },
    }
