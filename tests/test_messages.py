"""Every message a user sees is in Simplified Chinese by default and in English on request:
the catalogue is complete, no error is raised with finished text, and each edge (HTTP API,
field-level errors, the signalling socket) answers in the reader's language."""

from __future__ import annotations

import ast
import importlib
import json
import pathlib
import pkgutil

import aiohttp

import dutycall
from dutycall import errors
from dutycall.messages import CATALOGUE, EN, LANGUAGES, ZH, Msg, from_accept_language, parameters, pick, render

ROOT = pathlib.Path(dutycall.__file__).parent
#: Names an error may take besides its message's parameters.
OPTIONS = {"errors", "field"}


# -- the catalogue ------------------------------------------------------------------------------

def _import_all() -> None:
    """Every module of the package (migrations aside): packages register their messages on import."""
    for module in pkgutil.walk_packages([str(ROOT)], prefix="dutycall."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)


def test_every_message_has_both_languages_with_the_same_parameters():
    _import_all()
    assert CATALOGUE
    for key, texts in CATALOGUE.items():
        assert set(texts) == set(LANGUAGES), key
        assert all(texts[lang].strip() for lang in LANGUAGES), key
        assert parameters(texts[ZH]) == parameters(texts[EN]), key
        # Both render with every parameter given (no positional or malformed fields).
        values = {name: "x" for name in parameters(texts[ZH])}
        for lang in LANGUAGES:
            assert "{" not in render(key, values, lang), (key, lang)


def test_chinese_texts_are_chinese_and_english_texts_are_not():
    _import_all()
    for key, texts in CATALOGUE.items():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in texts[ZH]) or key == "sdp.version", key
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in texts[EN].replace("2027春节", "")), key


def test_language_choice():
    assert pick("en-GB") == EN and pick("zh-Hans-CN") == ZH and pick("fr") is None and pick(None) is None
    assert from_accept_language("fr-FR, en;q=0.8, zh-CN;q=0.9") == ZH
    assert from_accept_language("en-US,en;q=0.9,zh;q=0.1") == EN
    assert from_accept_language("de, fr;q=0.5") is None
    assert from_accept_language("zh;q=0, en;q=0.1") == EN
    assert from_accept_language("en;q=banana") is None
    # Parameters that are messages render in the same language; user text goes in as it is.
    nested = Msg("roster.row", row=3, problem=Msg("roster.row_date", value="{0}<b>"))
    assert nested.render(ZH) == "第3行：日期“{0}<b>”无效，应为 YYYY-MM-DD"
    assert nested.render(EN) == 'Row 3: date "{0}<b>" is not valid; use YYYY-MM-DD'
    assert render("no.such.key", {}, EN) == "no.such.key"


# -- no finished text at raise sites ----------------------------------------------------------

def _error_class_names() -> set[str]:
    """Every DutycallError subclass in the package (each module imported, migrations aside)."""
    _import_all()
    names: set[str] = set()
    todo: list[type] = [errors.DutycallError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _is_text(node: ast.AST) -> bool:
    """A finished text: a string literal, an f-string, or text glued with +."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_text(node.left) or _is_text(node.right)
    return False


def _check_key(node: ast.Call, where: str, problems: list[str]) -> None:
    """The call's first argument names a catalogue key and its keywords are that message's parameters."""
    if not node.args:
        problems.append(f"{where}: no message key")
        return
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        if first.value not in CATALOGUE:
            problems.append(f"{where}: {first.value!r} is not in the catalogue")
            return
        given = {k.arg for k in node.keywords if k.arg is not None}
        wanted = parameters(CATALOGUE[first.value][ZH])
        # An error's ``field`` also fills a {field} parameter; ``errors`` never does.
        missing, extra = wanted - (given - {"errors"}), given - OPTIONS - wanted
        if not any(k.arg is None for k in node.keywords) and (missing or extra):
            problems.append(f"{where}: {first.value!r} takes {sorted(wanted)}, given {sorted(given)}")
    elif isinstance(first, ast.JoinedStr):
        # Msg(f"roster.col.{label}"): some key must start with the literal prefix.
        prefix = first.values[0].value if isinstance(first.values[0], ast.Constant) else ""
        if not prefix or not any(key.startswith(str(prefix)) for key in CATALOGUE):
            problems.append(f"{where}: a computed key with no catalogue prefix")
    elif _is_text(first):
        problems.append(f"{where}: finished text instead of a catalogue key")


#: Where the message goes in the edges' own answers: error_response(request, status, code,
#: message), error_body(request, code, message), SignallingPeer.send_error(code, message, ...).
MESSAGE_ARGUMENT = {"error_response": 3, "error_body": 2, "send_error": 1}


def test_no_user_visible_text_is_raised_or_answered_outside_the_catalogue():
    error_classes = _error_class_names()
    assert {"Invalid", "NotFound", "IllegalEvent", "SdpError", "TooManyAttempts"} <= error_classes
    problems: list[str] = []
    checked = 0
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT.parent)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call):
                name = _callee(node)
                if name in error_classes or name == "Msg":
                    _check_key(node, where, problems)
                    checked += 1
                elif name in MESSAGE_ARGUMENT:
                    # The message argument is a Msg, never text.
                    index = MESSAGE_ARGUMENT[name]
                    if len(node.args) > index and _is_text(node.args[index]):
                        problems.append(f"{where}: {name} with finished text")
                elif name and name.startswith("HTTP") and any(
                        k.arg == "text" and _is_text(k.value) for k in node.keywords):
                    problems.append(f"{where}: {name} with a finished text body")
            elif isinstance(node, ast.Dict):
                # Field- and row-level errors: {"field": ..., "message": Msg(...)}.
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value == "message" and _is_text(value):
                        problems.append(f"{where}: a 'message' holding finished text")
    assert checked > 150, checked  # the scan sees the raise sites
    assert not problems, "\n".join(problems)


def test_the_scan_catches_finished_text():
    """The scan above would fail on each of these."""
    samples = {
        'raise Invalid("sign in first")': True,
        'raise NotFound(f"no unit {x!r}")': True,
        'raise Invalid("field.required", field="a", name="a")': False,
        'raise Invalid("field.required", field="a")': True,  # a parameter missing
        'error_response(request, 403, "csrf", "wrong token")': True,
        'errors.append({"row": 1, "message": "第1行：错误"})': True,
        'raise Invalid(exc.msg)': False,
    }
    for source, bad in samples.items():
        problems: list[str] = []
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and _callee(node) in ("Invalid", "NotFound"):
                _check_key(node, "sample", problems)
            elif isinstance(node, ast.Call) and _callee(node) == "error_response":
                if _is_text(node.args[MESSAGE_ARGUMENT["error_response"]]):
                    problems.append("sample")
            elif isinstance(node, ast.Dict):
                problems += ["sample" for k, v in zip(node.keys, node.values)
                             if isinstance(k, ast.Constant) and k.value == "message" and _is_text(v)]
        assert bool(problems) == bad, (source, problems)


# -- the edges answer in the reader's language -------------------------------------------------

def _han(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


async def _ask(server, method: str, path: str, lang: str | None, how: str, body=None, cookies=None):
    """One request with the language chosen ``how``: default, query, cookie, header or Accept-Language."""
    url = f"http://127.0.0.1:{server.port}{path}"
    headers: dict[str, str] = {}
    jar = dict(server.cookies if cookies is None else cookies)
    if how == "query" and lang:
        url += ("&" if "?" in url else "?") + f"lang={lang}"
    elif how == "cookie" and lang:
        jar["dutycall_lang"] = lang
    elif how == "header" and lang:
        headers["X-Dutycall-Lang"] = lang
    elif how == "accept" and lang:
        headers["Accept-Language"] = f"fr;q=0.9, {lang};q=0.8"
    if body is not None:
        headers["Content-Type"] = "application/json"
    async with aiohttp.ClientSession(cookies=jar) as session:
        if jar.get("dutycall_session") and method != "GET":
            me = await (await session.get(f"http://127.0.0.1:{server.port}/api/me")).json()
            headers["X-CSRF-Token"] = me["csrf_token"]
        resp = await session.request(method, url, headers=headers,
                                     data=json.dumps(body) if body is not None else None)
        return resp.status, await resp.json()


async def _both(server, method, path, body=None, cookies=None, status=None, code=None):
    """The same request in Chinese (by default) and in English by every way of asking; returns them."""
    st, zh = await _ask(server, method, path, None, "default", body, cookies)
    assert (st, zh["error"]["code"]) == (status, code), (st, zh)
    assert _han(zh["error"]["message"]), zh
    answers = {}
    for how in ("query", "cookie", "header", "accept"):
        st, en = await _ask(server, method, path, "en", how, body, cookies)
        assert (st, en["error"]["code"]) == (status, code), (how, st, en)
        assert not _han(en["error"]["message"]) and en["error"]["message"], (how, en)
        answers[how] = en
    # Accept-Language preferring Chinese among what we speak gives Chinese.
    st, zh_again = await _ask(server, method, path, "zh-CN", "accept", body, cookies)
    assert zh_again["error"]["message"] == zh["error"]["message"]
    return zh, answers["query"]


async def test_directory_errors_and_their_field_errors_follow_the_language(server):
    bad = {"username": "no spaces allowed", "display_name": "x", "password": "long-enough-1", "role": "host",
           "unit_id": 1}
    zh, en = await _both(server, "POST", "/api/accounts", bad, status=422, code="invalid")
    assert zh["error"]["message"] == CATALOGUE["directory.username_format"][ZH]
    assert en["error"]["message"] == CATALOGUE["directory.username_format"][EN]
    assert zh["error"]["errors"] == [{"field": "username", "message": CATALOGUE["directory.username_format"][ZH]}]
    assert en["error"]["errors"] == [{"field": "username", "message": CATALOGUE["directory.username_format"][EN]}]
    zh, en = await _both(server, "PATCH", "/api/accounts/987654", {"display_name": "x"}, status=404, code="not_found")
    assert "987654" in zh["error"]["message"] and "987654" in en["error"]["message"]


async def test_rollcall_errors_follow_the_language(server):
    zh, en = await _both(server, "GET", "/api/rollcalls/987654", status=404, code="not_found")
    assert en["error"]["message"] == "No roll-call 987654 in your scope"
    zh, en = await _both(server, "POST", "/api/rollcalls", {"title": "t" * 200, "room_ids": [1]},
                         status=422, code="invalid")
    assert zh["error"]["errors"][0]["field"] == "title" and _han(zh["error"]["errors"][0]["message"])
    assert not _han(en["error"]["errors"][0]["message"])


async def test_web_edge_errors_follow_the_language(server):
    # Not signed in, a missing CSRF token, a body that is not JSON.
    await _both(server, "GET", "/api/me", cookies={}, status=401, code="not_signed_in")
    status, body = await _ask(server, "GET", "/api/units", "en", "query", cookies={})
    assert status == 401 and body["error"]["message"] == "Please sign in first"
    async with aiohttp.ClientSession(cookies=server.cookies) as session:
        for headers, expect in (({}, "缺少或错误"), ({"Accept-Language": "en"}, "Missing or wrong")):
            resp = await session.post(f"http://127.0.0.1:{server.port}/api/units", json={}, headers=headers)
            body = await resp.json()
            assert resp.status == 403 and body["error"]["code"] == "csrf", body
            assert body["error"]["message"].startswith(expect), body
    await _both(server, "POST", "/api/rollcalls", [1], status=422, code="invalid")


async def test_a_malformed_id_in_any_path_is_404(server):
    """One rule on every route: a path whose id is malformed names nothing (404, ``not_found``)."""
    app_routes = [(r.method, r.resource.canonical) for r in server.app.router.routes()
                  if r.resource is not None and "{id}" in r.resource.canonical and r.method != "HEAD"]
    assert len(app_routes) >= 20, app_routes
    for method, template in app_routes:
        for bad in ("abc", "1.5", "+1", "99999999999999999999"):
            path = template.replace("{id}", bad).replace("{action}", "start").replace("{report_id}", "1")
            status, body = await _ask(server, method, path, None, "default",
                                      {} if method in ("POST", "PATCH", "PUT") else None)
            assert status == 404 and body["error"]["code"] == "not_found", (method, path, status, body)
    # And the room_id of a roster path; a well-formed id out of scope is 404 too.
    status, body = await _ask(server, "PUT", "/api/roster/x/2027-02-10", "en", "query", {})
    assert status == 404 and body["error"]["message"].startswith("room_id in the address"), body
    status, body = await _ask(server, "GET", "/api/rooms/987654", None, "default")
    assert status == 404 and body["error"]["code"] == "not_found"
    # An unknown roll-call action is 404 as well, in the reader's language.
    await _both(server, "POST", "/api/rollcalls/1/explode", {}, status=404, code="not_found")


async def test_signalling_errors_use_the_language_of_the_page_that_opened_the_socket(server):
    url = f"ws://127.0.0.1:{server.port}/ws"
    cases = [(url, {}, True), (url + "?lang=en", {}, False), (url, {"dutycall_lang": "en"}, False),
             (url + "?lang=zh-CN", {"dutycall_lang": "en"}, True)]
    for address, extra, chinese in cases:
        async with aiohttp.ClientSession(cookies={**server.cookies, **extra}) as session:
            async with session.ws_connect(address) as ws:
                await ws.send_str(json.dumps({"type": "explode", "id": 1}))
                await ws.send_str(json.dumps({"type": "join", "room": "no room!", "id": 2}))
                await ws.send_str(json.dumps({"type": "rollcall_answer", "roll_call_id": 5, "id": 3}))
                replies = {}
                while len(replies) < 3:
                    msg = json.loads((await ws.receive(timeout=10)).data)
                    if msg.get("type") == "error":
                        replies[msg["id"]] = msg
        assert [replies[i]["code"] for i in (1, 2, 3)] == ["invalid_request", "invalid_request", "invalid_state"]
        for reply in replies.values():
            assert _han(reply["message"]) == chinese, (address, extra, reply)
        if not chinese:
            assert replies[1]["message"] == 'Unknown message type "explode"'
            assert replies[3]["message"] == "Join the roll-call's room first"
