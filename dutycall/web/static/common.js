// Helpers shared by the signed-in pages (directory, roll-call): DOM, errors, the JSON API.
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

// JSON in and out; writes carry the CSRF token; a failure throws with the server's message
// (and, for a rejected upload, its row-level errors in err.rows).
async function api(method, path, body, raw) {
  const headers = {};
  if (me) headers["X-CSRF-Token"] = me.csrf;
  if (body !== undefined && !raw) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: raw ? body : body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error((data.error && data.error.message) || response.statusText);
    error.rows = (data.error && data.error.errors) || [];
    throw error;
  }
  return data;
}

// The sign-in of a signed-in page: shows the form until someone signs in (or is already),
// sets `me`, shows `main`, then calls `onSignedIn()`. The language button calls
// `onLanguage()` once someone is signed in.
function startPage(main, onSignedIn, onLanguage = onSignedIn) {
  async function accept(reply) {
    me = { ...reply.principal, csrf: reply.csrf_token };
    $("whoami").textContent = t("signed_in_as") + me.name;
    $("sign-in-form").hidden = true;
    $(main).hidden = false;
    showError("");
    await onSignedIn();
  }
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await accept(await api("POST", "/api/session", { username: $("username").value, password: $("password").value }));
    } catch (err) {
      showError(t("err_sign_in") + err.message);
    }
  });
  $("lang").addEventListener("click", () => {
    setLanguage(LANG === "en" ? "zh-CN" : "en");
    if (me) onLanguage();
  });
  applyLanguage();
  api("GET", "/api/me").then(accept, () => { $("sign-in-form").hidden = false; });
}
