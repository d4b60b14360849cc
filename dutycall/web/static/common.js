// Helpers shared by the signed-in pages (console, directory, roll-call, results): DOM, errors,
// the JSON API, sign-in.
"use strict";

const $ = (id) => document.getElementById(id);
let me = null; // the signed-in principal, with its CSRF token

function showError(text) {
  $("error").hidden = !text;
  $("error").textContent = text || "";
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

// JSON in and out; writes carry the CSRF token; a failure throws with the server's message, its
// HTTP status in err.status (and, for a rejected upload, its row-level errors in err.rows).
async function api(method, path, body, raw) {
  const headers = { "X-Dutycall-Lang": LANG }; // the server answers errors in the page's language
  if (me) headers["X-CSRF-Token"] = me.csrf;
  if (body !== undefined && !raw) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: raw ? body : body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    // The server's message is in the page's language; without one (a proxy's page), say so in it too.
    const error = new Error((data.error && data.error.message) || t("err_http").replace("{status}", String(response.status)));
    error.code = data.error && data.error.code;
    error.status = response.status;
    error.rows = (data.error && data.error.errors) || [];
    throw error;
  }
  return data;
}

// Takes a session reply (POST /api/session, GET /api/me...) as the signed-in principal.
function acceptSession(reply) {
  me = { ...reply.principal, csrf: reply.csrf_token };
  setZone(me.timezone); // times shown and typed are the deployment's (i18n.js)
  $("whoami").textContent = t("signed_in_as") + me.name;
}

// Every signed-in page can sign out: a page without its own 退出登录 (the console has one that
// asks first) gets one in its header, beside the language button, shown while signed in.
function signOutButton() {
  let button = $("sign-out");
  if (button) return null;
  button = el("button", { type: "button", id: "sign-out", className: "sign-out", hidden: true, textContent: t("sign_out") });
  button.dataset.i18n = "sign_out";
  button.addEventListener("click", async () => {
    await api("DELETE", "/api/session").catch(() => {});
    location.reload(); // sockets, timers and forms go with the page; it comes back at the sign-in form
  });
  $("lang").before(button);
  return button;
}

// Back to the sign-in form: signed out here, or the server ended this session's access.
function showSignInForm(main) {
  me = null;
  if ($("sign-out") && $("sign-out").classList.contains("sign-out")) $("sign-out").hidden = true;
  $(main).hidden = true;
  $("sign-in-form").hidden = false;
}

// The sign-in of a signed-in page: shows the form until someone signs in (or is already),
// sets `me`, shows `main`, then calls `onSignedIn({ resumed })`, where `resumed` says the
// session came from `firstSession()` (by default GET /api/me) when the page opened rather
// than from the form. The language button calls `onLanguage()` once someone is signed in.
function startPage(main, onSignedIn, onLanguage = onSignedIn, firstSession = () => api("GET", "/api/me")) {
  const signOut = signOutButton();
  async function accept(reply, resumed) {
    acceptSession(reply);
    if (signOut) signOut.hidden = false;
    $("sign-in-form").hidden = true;
    $("password").value = "";
    $(main).hidden = false;
    showError("");
    await onSignedIn({ resumed });
  }
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await accept(await api("POST", "/api/session", { username: $("username").value, password: $("password").value }), false);
    } catch (err) {
      showError(t("err_sign_in") + err.message);
    }
  });
  $("lang").addEventListener("click", () => {
    setLanguage(LANG === "en" ? "zh-CN" : "en");
    if (me) {
      $("whoami").textContent = t("signed_in_as") + me.name;
      onLanguage();
    }
  });
  applyLanguage();
  firstSession().then((reply) => accept(reply, true), () => { $("sign-in-form").hidden = false; });
}
