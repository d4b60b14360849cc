"use strict";
// The incident page's 设备接入 section (hosts): footage from devices rather than phones.
// - WHIP tokens: an encoder or a drone publishes with a bearer token (RFC 9725); the token is shown
//   once, with the endpoint to give the device; tokens can be revoked, which ends their stream.
// - RTSP cameras: the server pulls an IP camera's or a CCTV platform's RTSP stream into the incident
//   (its password never comes back from the server), with the pull's state; a pull can be stopped.
// Uses incident-fields.js (fieldInput, submitForm, fill, localTime) and common.js (api, el, t).

const DEVICE_ROLES = ["admin", "host"];

function devicesSection(incident) {
  if (!me || !DEVICE_ROLES.includes(me.role)) return "";
  const open = !["closed", "merged"].includes(incident.status);
  const tokens = el("ul", { className: "inc-whip-tokens" });
  const made = el("div", { className: "inc-whip-made" });
  const cameras = el("ul", { className: "inc-rtsp-sources" });
  const node = section("inc_devices",
    el("h4", { textContent: t("inc_whip") }),
    el("p", { className: "inc-hint", textContent: t("inc_whip_hint") }),
    open ? whipForm(incident, tokens, made) : "", made, tokens,
    el("h4", { textContent: t("inc_rtsp") }),
    el("p", { className: "inc-hint", textContent: t("inc_rtsp_hint") }),
    open ? rtspForm(incident, cameras) : "", cameras);
  node.classList.add("inc-devices");
  loadWhipTokens(incident.id, tokens);
  loadRtspSources(incident.id, cameras);
  return node;
}

function smallForm(className, fields, submitKey) {
  const form = el("form", { className: `inc-form ${className}`, noValidate: true }, ...fields,
    el("div", { className: "inc-actions" }, el("button", { type: "submit", textContent: t(submitKey) })));
  form.style.maxWidth = "40em";
  return form;
}

async function fillList(list, path, row, emptyKey) {
  let items;
  try {
    items = await api("GET", path);
  } catch (err) {
    list.replaceChildren(el("li", { className: "inc-empty", textContent: err.message }));
    return;
  }
  list.replaceChildren(...(items.length ? items.map(row)
    : [el("li", { className: "inc-empty", textContent: t(emptyKey) })]));
}

async function confirmThen(key, action, reload) {
  if (!confirm(t(key))) return;
  try {
    await action();
    showError("");
  } catch (err) {
    showError(err.message);
  }
  reload();
}

// -- WHIP tokens ---------------------------------------------------------------------------------------

function whipForm(incident, list, made) {
  const label = fieldInput({ name: "label", label: t("inc_whip_label"), kind: "text", max_length: 64 }, { required: true });
  const hours = fieldInput({ name: "hours", label: t("inc_whip_hours"), kind: "integer" }, { value: 24, required: true });
  Object.assign(hours.querySelector("input"), { type: "number", min: 1, max: 168, step: 1 });
  const form = smallForm("inc-whip-form", [label, hours], "inc_whip_make");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitForm(form, `/api/incidents/${incident.id}/ingest-tokens`,
               { label: form.elements.label.value, minutes: Number(form.elements.hours.value) * 60 }, (token) => {
      form.elements.label.value = "";
      showMadeToken(made, token);
      loadWhipTokens(incident.id, list);
    });
  });
  return form;
}

// The token just issued, shown this once (the server keeps only its hash).
function showMadeToken(holder, token) {
  const endpoint = new URL(token.whip_url, location.href).href;
  const copyable = (value, className) => {
    const input = el("input", { className, value, readOnly: true });
    Object.assign(input.style, { width: "100%", maxWidth: "40em" });
    input.addEventListener("focus", () => input.select());
    return input;
  };
  holder.replaceChildren(
    el("p", { className: "inc-hint", textContent: t("inc_whip_once") }),
    el("label", {}, t("inc_whip_endpoint"), copyable(endpoint, "inc-whip-endpoint")),
    el("label", {}, t("inc_whip_token"), copyable(token.token, "inc-whip-token")),
    el("p", { className: "meta", textContent: `${token.label} · ${fill("inc_field_expires", { at: localTime(token.expires_at) })}` }));
  holder.dataset.tokenId = token.id;
}

function loadWhipTokens(incidentId, list) {
  return fillList(list, `/api/incidents/${incidentId}/ingest-tokens`, (token) => whipRow(incidentId, token, list), "inc_whip_none");
}

function whipRow(incidentId, token, list) {
  const state = token.revoked_at ? t("inc_field_revoked") : !token.valid ? t("inc_field_expired") : t("inc_whip_valid");
  const used = token.last_used_at ? fill("inc_whip_used", { at: localTime(token.last_used_at) }) : t("inc_whip_unused");
  const item = el("li", {},
    el("strong", { textContent: token.label }), " · ",
    el("span", { className: "state", textContent: state }), " · ",
    el("span", { className: "meta", textContent: `${used} · ${fill("inc_field_expires", { at: localTime(token.expires_at) })}` }));
  if (token.valid) {
    item.append(" ", el("button", { type: "button", className: "revoke", textContent: t("inc_field_revoke"),
      onclick: () => confirmThen("inc_whip_revoke_confirm", () => api("DELETE", `/api/ingest-tokens/${token.id}`), () => {
        const made = list.parentNode && list.parentNode.querySelector(".inc-whip-made");
        if (made && made.dataset.tokenId === String(token.id)) made.replaceChildren();
        loadWhipTokens(incidentId, list);
      }) }));
  }
  item.dataset.tokenId = token.id;
  item.dataset.state = token.revoked_at ? "revoked" : token.valid ? "valid" : "expired";
  return item;
}

// -- RTSP cameras --------------------------------------------------------------------------------------

function rtspForm(incident, list) {
  const label = fieldInput({ name: "label", label: t("inc_rtsp_label"), kind: "text", max_length: 64 }, { required: true });
  const url = fieldInput({ name: "url", label: t("inc_rtsp_url"), kind: "text", max_length: 1024 }, { required: true });
  const input = url.querySelector("input");
  Object.assign(input, { placeholder: "rtsp://user:password@192.0.2.10:554/stream1", autocomplete: "off", spellcheck: false });
  const form = smallForm("inc-rtsp-form", [label, url], "inc_rtsp_add");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitForm(form, `/api/incidents/${incident.id}/rtsp-sources`,
               { label: form.elements.label.value, url: form.elements.url.value }, () => {
      form.elements.label.value = "";
      form.elements.url.value = "";  // it may carry the camera's password: do not leave it on screen
      loadRtspSources(incident.id, list);
    });
  });
  return form;
}

function loadRtspSources(incidentId, list) {
  return fillList(list, `/api/incidents/${incidentId}/rtsp-sources`, (source) => rtspRow(incidentId, source, list), "inc_rtsp_none");
}

function rtspState(source) {
  switch (source.state) {
    case "live": return fill("inc_rtsp_live", { at: localTime(source.live_since) });
    case "retrying": return fill("inc_rtsp_retrying", { at: localTime(source.next_attempt_at), attempts: source.attempts });
    case "stopped": return fill("inc_rtsp_stopped", { at: localTime(source.stopped_at) });
    default: return t("inc_rtsp_connecting");
  }
}

function rtspRow(incidentId, source, list) {
  const item = el("li", {},
    el("strong", { textContent: source.label }), " · ",
    el("span", { className: "state", textContent: rtspState(source) }), " · ",
    el("code", { className: "meta", textContent: source.url }));
  if (source.state !== "stopped") {
    item.append(" ", el("button", { type: "button", className: "stop", textContent: t("inc_rtsp_stop"),
      onclick: () => confirmThen("inc_rtsp_stop_confirm", () => api("DELETE", `/api/rtsp-sources/${source.id}`),
        () => loadRtspSources(incidentId, list)) }));
  }
  item.dataset.sourceId = source.id;
  item.dataset.state = source.state;
  return item;
}
