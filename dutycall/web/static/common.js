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
