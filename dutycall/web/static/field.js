// The field streaming page: a responder's phone, no account, opened from a one-time link
// (/field#<secret>: the secret stays in the fragment, never sent to the server but in a header).
// The first page that opens a link claims it (its claim secret is kept in localStorage); it shows
// the incident's title and level, picks the rear camera, and publishes (an SDP offer POSTed,
// answered by the server). It keeps streaming through a brief network drop: it watches the peer
// connection and the server's view of it, and publishes again by itself, backing off.
"use strict";

const $ = (id) => document.getElementById(id);
const SECRET = decodeURIComponent(location.hash.slice(1));
const CLAIM_KEY = `dutycall.field.claim.${SECRET.slice(0, 16)}`;
const POLL_MS = 3000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

const state = {
  claim: localStorage.getItem(CLAIM_KEY) || "",
  info: null, // what the server says of the link (incident title and level, expiry)
  iceServers: [],
  stream: null, // the camera (and microphone)
  facing: "environment",
  pc: null,
  wanted: false, // the responder pressed 开始直播 and not 结束直播
  startedAt: 0, // when streaming first started (the elapsed time runs across reconnects)
  publishedAt: 0, // when the current publication was answered
  attempt: 0, // reconnection attempts since the last good connection
  retryTimer: 0,
  publishing: false,
  ended: false, // refused for good (expired, revoked, another device)
  wakeLock: null,
  message: null, // [key, detail] shown under the buttons
};

function fill(key, params = {}) {
  return t(key).replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// On the deployment's clock (the claim reply names its zone; i18n.js), not the phone's.
function localTime(iso) {
  return zonedTime(iso, { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}

// Every call carries the link and the claim in headers, and no cookies (no account, no CSRF).
async function call(method, path, body, type) {
  const headers = { "X-Field-Link": SECRET, "X-Dutycall-Lang": LANG };
  if (state.claim) headers["X-Field-Claim"] = state.claim;
  if (body !== undefined) headers["Content-Type"] = type || "application/json";
  const response = await fetch(path, { method, headers, body, credentials: "omit", cache: "no-store" });
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    const error = new Error((data.error && data.error.message) || response.statusText);
    error.status = response.status;
    throw error;
  }
  return response;
}

function say(key, detail = "") {
  state.message = key ? [key, detail] : null;
  $("message").textContent = key ? t(key) + detail : "";
}

// Refused for good: the message from the server, in the page's language; streaming stops.
function refuse(err) {
  state.ended = true;
  state.wanted = false;
  clearTimeout(state.retryTimer);
  closePeer();
  stopCamera();
  $("refused").textContent = err.message;
  $("refused").hidden = false;
  $("refused").dataset.status = err.status || "";
  for (const id of ["stage", "controls", "hint", "expires"]) $(id).hidden = true;
  $("live").hidden = true;
  say("");
  document.body.dataset.state = "refused";
}

function isFinal(err) {
  return [404, 409, 410].includes(err.status);
}

function drawInfo() {
  const info = state.info;
  if (!info) return;
  $("incident").hidden = false;
  $("incident-title").textContent = info.incident.title;
  $("level").textContent = t(`alert_level_${info.incident.level}`);
  $("level").dataset.level = info.incident.level;
  $("expires").textContent = fill("fld_expires", { at: localTime(info.expires_at) });
}

async function open() {
  applyLanguage();
  if (!SECRET) {
    refuse({ message: t("fld_no_link"), status: 404 });
    return;
  }
  try {
    const reply = await (await call("POST", "/api/field/claim")).json();
    if (reply.claim) {
      state.claim = reply.claim;
      localStorage.setItem(CLAIM_KEY, reply.claim);
    }
    state.info = reply;
    setZone(reply.timezone);
    state.iceServers = reply.ice_servers || [];
  } catch (err) {
    if (isFinal(err)) refuse(err);
    else say("fld_error", err.message);
    return;
  }
  drawInfo();
  for (const id of ["stage", "controls", "hint"]) $(id).hidden = false;
  document.body.dataset.state = "ready";
  setInterval(poll, POLL_MS);
  setInterval(tick, 1000);
}

// -- the camera ------------------------------------------------------------------------------------

async function camera(facing) {
  const video = { facingMode: { ideal: facing }, width: { ideal: 1280 }, height: { ideal: 720 } };
  const tries = [{ video, audio: true }, { video: true, audio: true }, { video, audio: false }, { video: true, audio: false }];
  let last;
  for (const constraints of tries) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

function stopCamera() {
  if (state.stream) for (const track of state.stream.getTracks()) track.stop();
  state.stream = null;
  $("preview").srcObject = null;
}

async function switchCamera() {
  if (!state.stream) return;
  const facing = state.facing === "environment" ? "user" : "environment";
  let fresh;
  try {
    fresh = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { exact: facing } } });
  } catch (err) {
    try {
      fresh = await navigator.mediaDevices.getUserMedia({ video: { facingMode: facing } });
    } catch (err2) {
      say("fld_no_camera", err2.message);
      return;
    }
  }
  const track = fresh.getVideoTracks()[0];
  const old = state.stream.getVideoTracks()[0];
  if (state.pc) {
    const sender = state.pc.getSenders().find((s) => s.track && s.track.kind === "video");
    if (sender) await sender.replaceTrack(track);
  }
  if (old) {
    state.stream.removeTrack(old);
    old.stop();
  }
  state.stream.addTrack(track);
  state.facing = facing;
  $("preview").srcObject = state.stream;
}

// -- publishing ------------------------------------------------------------------------------------

function closePeer() {
  if (state.pc) {
    state.pc.onconnectionstatechange = null;
    state.pc.close();
  }
  state.pc = null;
}

function gathered(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms);
  });
}

async function publish() {
  if (!state.wanted || state.ended || state.publishing) return;
  state.publishing = true;
  clearTimeout(state.retryTimer);
  closePeer();
  const pc = new RTCPeerConnection({ iceServers: state.iceServers });
  state.pc = pc;
  try {
    for (const track of state.stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [state.stream] });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 2000);
    const response = await call("POST", "/api/field/publish", pc.localDescription.sdp, "application/sdp");
    const answer = await response.text();
    if (state.pc !== pc) return; // stopped or replaced meanwhile
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    state.publishedAt = Date.now();
    pc.onconnectionstatechange = () => watch(pc);
    watch(pc);
  } catch (err) {
    if (state.pc !== pc) return;
    if (isFinal(err)) {
      refuse(err);
      return;
    }
    retry();
  } finally {
    state.publishing = false;
  }
}

// The connection's state: connected resets the back-off; failed or closed publishes again at
// once; disconnected for a few seconds does too (a brief blip often comes back by itself).
function watch(pc) {
  if (state.pc !== pc) return;
  const s = pc.connectionState;
  document.body.dataset.connection = s;
  if (s === "connected") {
    state.attempt = 0;
    showLive(true);
  } else if (s === "failed" || s === "closed") {
    retry();
  } else if (s === "disconnected") {
    showLive(false);
    setTimeout(() => { if (state.pc === pc && pc.connectionState === "disconnected") retry(); }, 2500);
  }
}

function retry() {
  if (!state.wanted || state.ended) return;
  showLive(false);
  closePeer();
  clearTimeout(state.retryTimer);
  const delay = BACKOFF_MS[Math.min(state.attempt, BACKOFF_MS.length - 1)];
  state.attempt += 1;
  state.retryTimer = setTimeout(publish, delay);
}

// The server's view: the link still valid (else streaming ends, e.g. revoked), and our
// publication still there (else it dropped on the way: publish again).
async function poll() {
  if (state.ended) return;
  let reply;
  try {
    reply = await (await call("GET", "/api/field/state")).json();
  } catch (err) {
    if (isFinal(err)) refuse(err);
    return; // the network: the peer connection's state says what to do
  }
  state.info = { ...state.info, ...reply };
  drawInfo();
  const settled = state.pc && state.pc.connectionState === "connected" && Date.now() - state.publishedAt > POLL_MS;
  if (state.wanted && !reply.live && settled && !state.publishing) retry();
}

function showLive(live) {
  $("live").hidden = !live;
  $("net").hidden = live || !state.wanted;
  $("net").textContent = t("fld_reconnecting");
  document.body.dataset.state = live ? "live" : state.wanted ? "reconnecting" : "ready";
  if (live) say("");
}

function tick() {
  if (!state.startedAt) return;
  const seconds = Math.floor((Date.now() - state.startedAt) / 1000);
  const h = Math.floor(seconds / 3600);
  const mm = String(Math.floor((seconds % 3600) / 60)).padStart(2, "0");
  const ss = String(seconds % 60).padStart(2, "0");
  $("elapsed").textContent = h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

async function start() {
  $("start").disabled = true;
  say("fld_connecting");
  try {
    state.stream = await camera(state.facing);
  } catch (err) {
    say("fld_no_camera", err.message || String(err));
    $("start").disabled = false;
    return;
  }
  $("preview").srcObject = state.stream;
  state.wanted = true;
  state.attempt = 0;
  state.startedAt = Date.now();
  tick();
  $("start").hidden = true;
  $("stop").hidden = false;
  $("switch").hidden = !state.stream.getVideoTracks().length;
  $("hint").hidden = true;
  if ("wakeLock" in navigator) navigator.wakeLock.request("screen").then((lock) => { state.wakeLock = lock; }, () => {});
  await publish();
}

async function stop() {
  state.wanted = false;
  clearTimeout(state.retryTimer);
  closePeer();
  stopCamera();
  state.startedAt = 0;
  showLive(false);
  $("start").hidden = false;
  $("start").disabled = false;
  $("stop").hidden = true;
  $("switch").hidden = true;
  if (state.wakeLock) state.wakeLock.release().catch(() => {});
  say("fld_stopped");
  try {
    await call("DELETE", "/api/field/publish");
  } catch (err) {
    if (isFinal(err) && err.status !== 404) refuse(err);
  }
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
$("switch").addEventListener("click", switchCamera);
$("lang").addEventListener("click", () => setLanguage(LANG === "en" ? "zh-CN" : "en"));
document.addEventListener("languagechange", () => {
  drawInfo();
  $("net").textContent = t("fld_reconnecting");
  if (state.message) say(...state.message);
});
window.addEventListener("hashchange", () => location.reload());
open();
