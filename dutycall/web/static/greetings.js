// The leader's greeting page (/greetings): create a greeting (now or at a set time; every room in
// scope or chosen units), start it, go live (publish camera and microphone into its room), see
// how many rooms watch (pushed over the signalling socket: greeting_watching), bring one room
// up to reply (the floor) and return, end; the receipts with CSV/XLSX/PDF and the rooms that
// missed it. Buttons follow the role: viewers read. User text only through textContent.
// A greeting may play a pre-recorded video (uploaded here, prepared once by the server) to every
// room, rooms joining late seeing it from the start or where it is; the leader then watches it
// here and goes on camera only if they choose (the rooms see them beside the video).
"use strict";

const STARTERS = ["admin", "host", "leader"];
let greetings = [];
let current = null; // the greeting shown in the live panel / receipts
let live = null; // {signalling, peers, greetingId} while this page is in a greeting's room
let mediaLabels = new Map(); // greeting video id -> its label (the videos this account may list)

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

// The greeting videos in scope: the ready ones may be chosen for a new greeting.
async function loadMedia() {
  const rows = await api("GET", "/api/greeting-media").catch(() => []);
  mediaLabels = new Map(rows.map((m) => [m.id, m.label]));
  const chosen = $("g-media").value;
  const none = $("g-media").options[0];
  $("g-media").replaceChildren(none, ...rows.filter((m) => m.status === "ready").map((m) => {
    const option = el("option", { value: String(m.id), textContent: `${m.label} (${Math.round(m.duration || 0)} s)` });
    return option;
  }));
  $("g-media").value = [...$("g-media").options].some((o) => o.value === chosen) ? chosen : "";
  return rows;
}

// The leaders a host may greet on behalf of (its scope's): "name · unit" in a select, never an id typed.
async function loadLeaders() {
  let rows;
  try {
    rows = await api("GET", "/api/greetings/leaders");
  } catch (err) {
    showError(err.message); // not "no leader": the list could not be read
    return [];
  }
  const pick = $("g-leader").options[0];
  pick.dataset.i18n = rows.length ? "gr_leader_pick" : "gr_no_leaders";
  pick.textContent = t(pick.dataset.i18n);
  $("g-leader").replaceChildren(pick, ...rows.map((leader) =>
    el("option", { value: String(leader.id), textContent: `${leader.name} · ${leader.unit}` })));
  if (rows.length === 1) $("g-leader").value = String(rows[0].id);
  return rows;
}

// Upload a video (the raw file as the body), then wait while the server prepares it.
async function uploadMedia(file) {
  const state = $("g-upload-state");
  state.textContent = t("gr_uploading");
  try {
    const row = await api("POST", `/api/greeting-media?label=${encodeURIComponent(file.name.slice(0, 64))}`, file, true);
    state.textContent = t("gr_preparing");
    for (;;) {
      const now = await api("GET", `/api/greeting-media/${row.id}`);
      if (now.status === "ready") {
        await loadMedia();
        $("g-media").value = String(row.id);
        state.textContent = t("gr_upload_ready");
        return;
      }
      if (now.status === "failed") {
        state.textContent = t("gr_upload_failed") + (now.failure || "");
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } catch (err) {
    state.textContent = "";
    showError(err.message);
  }
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
    // A recorded greeting says so beside its title: which video, and how late rooms see it.
    const title = el("td", { textContent: g.title });
    if (g.media_id) {
      const label = mediaLabels.get(g.media_id);
      const late = t(g.late_join === "start" ? "gr_late_start" : "gr_late_live");
      const kind = el("span", { className: "kind",
        textContent: `${label ? t("gr_kind_media_named").replace("{label}", () => label) : t("gr_kind_media")} · ${late}` });
      kind.dataset.kind = "media";
      title.append(" ", kind);
    }
    const row = el("tr", {}, title, el("td", { textContent: g.leader }),
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
  // A recorded greeting plays by itself: the leader watches it and goes on camera by choice.
  const stream = g.media_id ? null : await camera();
  const session = { greetingId: g.id, stream, participantId: null };
  $("live-camera").hidden = !g.media_id;
  const signalling = new Signalling({
    onConnecting: () => {},
    onOpen: async () => {
      try {
        const joined = await signalling.request("join", { room: g.room });
        peers.iceServers = joined.ice_servers || [];
        session.participantId = joined.participant_id;
        signalling.joined();
        if (peers.stream) await peers.publish();
        await peers.subscribeFloor();
        watchSources(session, (joined.room_info && joined.room_info.sources) || []);
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

function camera() {
  return navigator.mediaDevices.getUserMedia({
    audio: true, video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } },
  }).catch((err) => { showError(t("err_media") + err.message); return null; });
}

// The greeting's video (as the server names it) watched here too; our own camera is not.
function watchSources(session, sources) {
  for (const source of sources) {
    if (source.source === "media" && source.participant_id !== session.participantId) session.peers.subscribe(source);
  }
}

// A recorded greeting: the leader joins it on camera (every room sees them beside the video).
async function goOnCamera() {
  const session = live;
  if (!session || session.peers.stream) return;
  const stream = await camera();
  if (!stream || live !== session) return;
  session.stream = session.peers.stream = stream;
  new Tile("local", me.name, true).show(stream);
  $("live-camera").hidden = true;
  await session.peers.publish();
}

function leaveLive() {
  if (!live) return;
  const { signalling, peers } = live;
  const stream = live.stream;
  live = null;
  signalling.stop();
  peers.closeAll();
  $("live-camera").hidden = true;
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
    case "greeting_source":
      if (msg.greeting_id === live.greetingId) watchSources(live, msg.sources || []);
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
$("live-camera").addEventListener("click", () => goOnCamera().catch((err) => showError(err.message)));
$("g-file").addEventListener("change", () => {
  const file = $("g-file").files[0];
  if (file) uploadMedia(file).finally(() => { $("g-file").value = ""; });
});
$("live-end").addEventListener("click", () => {
  if (current) act(current, "end").catch((err) => showError(err.message));
});

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const body = { title: $("g-title").value.trim() };
  const unitIds = [...$("unit-picks").querySelectorAll("input:checked")].map((box) => Number(box.value));
  if (unitIds.length) body.unit_ids = unitIds;
  if ($("g-media").value) {
    body.media_id = Number($("g-media").value);
    body.late_join = $("g-late").value;
  }
  if (me.role !== "leader") {
    if (!$("g-leader").value) return showError(t("gr_leader_pick"));
    body.leader_account_id = Number($("g-leader").value);
  }
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
  if (mayStart()) await Promise.all([loadUnits(), loadMedia(), me.role === "leader" ? null : loadLeaders()]);
  await loadList().catch((err) => showError(err.message));
}

startPage("greetings", onSignedIn, () => {
  loadList().catch(() => {});
  if (current) showReceipts(current.id).catch(() => {});
});
