// The leader's greeting page (/greetings): create a greeting (now or at a set time; every room in
// scope or chosen units), start it, go live (publish camera and microphone into its room), see
// how many rooms watch (pushed over the signalling socket: greeting_watching), bring one room
// up to reply (the floor) and return, end; the receipts with CSV/XLSX/PDF and the rooms that
// missed it. Buttons follow the role: viewers read. User text only through textContent.
"use strict";

const STARTERS = ["admin", "host", "leader"];
let greetings = [];
let current = null; // the greeting shown in the live panel / receipts
let live = null; // {signalling, peers, greetingId} while this page is in a greeting's room

function mayStart() {
  return Boolean(me && STARTERS.includes(me.role));
}

function statusLabel(status) {
  return t("gr_status_" + status);
}

async function loadUnits() {
  const units = await api("GET", "/api/units").catch(() => []);
  $("unit-picks").replaceChildren(...units.filter((u) => u.active !== false).map((unit) => {
    const box = el("input", { type: "checkbox", value: String(unit.id) });
    return el("label", {}, box, " ", unit.name);
  }));
}

async function loadList() {
  greetings = await api("GET", "/api/greetings");
  $("list").tBodies[0].replaceChildren(...greetings.map((g) => {
    const actions = el("td");
    const button = (key, action) => {
      const b = el("button", { type: "button", textContent: t(key) });
      b.dataset.i18n = key;
      b.dataset.action = action;
      b.addEventListener("click", () => act(g, action).catch((err) => showError(err.message)));
      actions.append(b, " ");
    };
    if (mayStart() && g.status === "scheduled") button("gr_start", "start");
    if (mayStart() && g.status === "live") button("gr_enter", "enter");
    if (mayStart() && g.status === "live") button("gr_end", "end");
    if (mayStart() && g.status === "scheduled") button("gr_cancel", "cancel");
    button("gr_receipts", "receipts");
    const row = el("tr", {}, el("td", { textContent: g.title }), el("td", { textContent: g.leader }),
      el("td", { textContent: statusLabel(g.status) }),
      el("td", { textContent: g.started_at ? zonedTime(g.started_at) : g.scheduled_at ? zonedTime(g.scheduled_at) : "—" }),
      el("td", { textContent: `${g.watching}/${g.targets}` }), actions);
    row.dataset.greetingId = g.id;
    row.dataset.status = g.status;
    return row;
  }));
}

async function act(g, action) {
  showError("");
  if (action === "receipts") return showReceipts(g.id);
  if (action === "enter") return goLive(g);
  const updated = await api("POST", `/api/greetings/${g.id}/${action}`);
  if (action === "start") await goLive(updated);
  if (action === "end") leaveLive();
  await loadList();
  if (action === "end") await showReceipts(g.id);
}

// Into the greeting's room: publish our camera and microphone full quality; the floor shows
// the room replying. Told over the socket how many rooms watch.
async function goLive(g) {
  if (live && live.greetingId === g.id) return;
  leaveLive();
  current = g;
  $("live-title").textContent = g.title;
  $("live-panel").hidden = false;
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: true, video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } },
  }).catch((err) => { showError(t("err_media") + err.message); return null; });
  const session = { greetingId: g.id, stream };
  const signalling = new Signalling({
    onConnecting: () => {},
    onOpen: async () => {
      try {
        const joined = await signalling.request("join", { room: g.room });
        peers.iceServers = joined.ice_servers || [];
        signalling.joined();
        if (stream) await peers.publish();
        await peers.subscribeFloor();
        await showReceipts(g.id);
      } catch (err) {
        showError(t("err_server") + err.message);
      }
    },
    onEvent: (msg) => onLiveEvent(msg),
    onDown: () => peers.closeAll(),
    stillSignedIn: async () => true,
    onAccessEnded: () => leaveLive(),
  });
  const peers = new Peers((type, fields) => signalling.request(type, fields), {
    wanted: () => live === session, startProfile: () => "full", onPublicationState: () => {},
  });
  peers.stream = stream;
  session.signalling = signalling;
  session.peers = peers;
  live = session;
  if (stream) new Tile("local", me.name, true).show(stream);
  signalling.start();
}

function leaveLive() {
  if (!live) return;
  const { signalling, peers, stream } = live;
  live = null;
  signalling.stop();
  peers.closeAll();
  if (stream) stream.getTracks().forEach((track) => track.stop());
  $("tiles").replaceChildren();
  $("live-panel").hidden = true;
}

function onLiveEvent(msg) {
  if (!live) return;
  switch (msg.type) {
    case "greeting_watching":
      $("live-count").textContent = String(msg.watching);
      $("live-targets").textContent = String(msg.targets);
      showReceipts(live.greetingId).catch(() => {});
      break;
    case "greeting_floor":
      $("return-floor").hidden = msg.duty_room_id === null;
      showReceipts(live.greetingId).catch(() => {});
      break;
    case "greeting_ended":
      leaveLive();
      loadList().catch(() => {});
      break;
    default:
      break;
  }
}

async function showReceipts(greetingId) {
  const detail = await api("GET", `/api/greetings/${greetingId}`);
  current = detail;
  $("receipts-section").hidden = false;
  $("receipts-title").textContent = detail.title;
  $("live-count").textContent = String(detail.watching);
  $("live-targets").textContent = String(detail.targets);
  $("return-floor").hidden = detail.floor_room_id === null || !mayStart();
  for (const kind of ["csv", "xlsx", "pdf"]) $(`${kind}-link`).href = `/api/greetings/${greetingId}/receipts.${kind}`;
  $("receipts").tBodies[0].replaceChildren(...detail.receipts.map((r) => {
    const state = r.watching ? (detail.floor_room_id === r.duty_room_id ? "gr_speaking" : "gr_watching_now")
      : r.offline ? "gr_offline" : "gr_left";
    const actions = el("td");
    if (mayStart() && detail.status === "live" && r.watching && detail.floor_room_id !== r.duty_room_id) {
      const b = el("button", { type: "button", textContent: t("gr_reply") });
      b.dataset.i18n = "gr_reply";
      b.dataset.roomId = r.duty_room_id;
      b.addEventListener("click", () => reply(r.duty_room_id).catch((err) => showError(err.message)));
      actions.append(b);
    }
    const row = el("tr", {}, el("td", { textContent: r.unit }), el("td", { textContent: r.room }),
      el("td", { textContent: t(state) }), el("td", { textContent: r.first_joined_at ? zonedTime(r.first_joined_at) : "—" }),
      el("td", { textContent: String(r.watched_seconds) }), el("td", { textContent: String(r.joins) }), actions);
    row.dataset.roomId = r.duty_room_id;
    row.dataset.watching = String(r.watching);
    row.dataset.offline = String(r.offline);
    return row;
  }));
  const missed = detail.receipts.filter((r) => r.offline);
  $("missed").replaceChildren(...(missed.length ? missed.map((r) => el("li", { textContent: `${r.unit} ${r.room}` }))
    : [el("li", { textContent: t("gr_none") })]));
}

async function reply(dutyRoomId) {
  if (!current) return;
  await api("POST", `/api/greetings/${current.id}/reply`, { duty_room_id: dutyRoomId });
  await showReceipts(current.id);
}

$("return-floor").addEventListener("click", () => reply(null).catch((err) => showError(err.message)));
$("live-end").addEventListener("click", () => {
  if (current) act(current, "end").catch((err) => showError(err.message));
});

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const body = { title: $("g-title").value.trim() };
  const unitIds = [...$("unit-picks").querySelectorAll("input:checked")].map((box) => Number(box.value));
  if (unitIds.length) body.unit_ids = unitIds;
  if (me.role !== "leader") body.leader_account_id = Number($("g-leader").value);
  const when = document.querySelector('input[name="g-when"]:checked').value;
  if (when === "at") {
    // Typed on the deployment's wall clock (i18n.js), not the browser's; sent with its offset.
    const at = zonedIso($("g-at").value);
    if (!at) return showError(t("gr_at"));
    body.scheduled_at = at;
  }
  try {
    await api("POST", "/api/greetings", body);
    $("g-title").value = "";
    await loadList();
  } catch (err) {
    showError(err.message);
  }
});

async function onSignedIn() {
  $("create-section").hidden = !mayStart();
  $("g-leader-label").hidden = !mayStart() || me.role === "leader";
  if (mayStart()) await loadUnits();
  await loadList().catch((err) => showError(err.message));
}

startPage("greetings", onSignedIn, () => {
  loadList().catch(() => {});
  if (current) showReceipts(current.id).catch(() => {});
});
