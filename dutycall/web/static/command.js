// The command seat (指挥席, /command): the host's one screen during a roll-call, and the wall of
// every room in the host's scope between roll-calls.
//
// ?rollcall=ID: the host joins the roll-call's conference room over the signalling socket, holds
// the floor subscription (the server switches it to whoever is called: the picture, large),
// publishes its own camera (small; the consoles subscribe to hosts, so the called room hears the
// host), follows the board (`rollcall_follow`, then pushed `rollcall_board` events) for the
// called room's name, the answer window's countdown and the wall's statuses. Clicking a tile calls
// that room. Without ?rollcall: the wall of every duty room in scope; clicking a tile spot-checks
// it: the host joins that room's standby room and watches its console.
//
// The wall never streams video: the page tells the server which rooms are on screen
// (POST /api/wall/look, renewed every 2 s) and shows each room's keyframe thumbnail, at most
// ~4 s old, with its age: newer pictures come in the look's answer (GET /api/wall/ID/thumb.jpg
// for one that did not). Parts: signalling.js (the socket),
// peers.js (connections), tiles.js (video tiles), common.js (sign-in, errors, the JSON API).
"use strict";

const params = new URLSearchParams(location.search);
const rollCallId = /^[0-9]{1,15}$/.test(params.get("rollcall") || "") ? Number(params.get("rollcall")) : null;
const VIEWER = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
const LOOK_EVERY_MS = 2000;

let board = null; // the roll-call's board, as last pushed
let clockSkew = 0; // server clock - our clock, seconds (from the board's and the wall's `now`)
let rooms = []; // [{duty_room_id, name}] on the wall, in order
let page = 0;
let looked = new Map(); // duty_room_id -> {taken_at, problems} from the last look
let spotRoom = null; // the duty room spot-checked on the seat (scope wall)
// The duty room whose picture the floor carries, as the server says (the join's snapshot, then
// every `rollcall_floor`; null: nobody). A room that answered keeps the floor until the next call,
// so the seat keeps naming it; an absence, a skip or an excuse empties it (its picture stops).
let floorRoom = null;

function setStatus(state) {
  const line = $("status");
  line.dataset.state = state;
  line.textContent = t("status_" + state);
}

const mayCall = () => Boolean(me && ["admin", "host"].includes(me.role));
const mayTalk = () => Boolean(me && ["admin", "host", "leader"].includes(me.role));
const serverNow = () => Date.now() / 1000 + clockSkew;

// -- the seat: signalling, our camera, the floor ------------------------------------------------

class Seat {
  constructor() {
    this.room = null; // the conference room we are in (or want to be in)
    this.wanted = false;
    this.stream = null;
    this.localTile = null;
    this.participants = new Map();
    this.signalling = new Signalling({
      onConnecting: () => setStatus("connecting"),
      onOpen: (ws) => this.connected(ws),
      onEvent: (msg) => this.onEvent(msg),
      onDown: () => { this.peers.closeAll(); if (this.wanted) setStatus("reconnecting"); },
      stillSignedIn: async () => {
        try {
          acceptSession(await api("GET", "/api/me"));
          return true;
        } catch (err) {
          return err.status !== 401;
        }
      },
      onAccessEnded: () => { this.stop(); showSignInForm("command"); },
    });
    this.peers = new Peers((type, fields) => this.signalling.request(type, fields), {
      wanted: () => this.wanted && this.room !== null,
      // Our own picture is a face in a corner of each console's screen: the small profile does.
      startProfile: () => "idle",
      onPublicationState: (state) => { if (this.localTile) this.localTile.setState(state); },
    });
  }

  async camera() {
    if (this.stream || !mayTalk()) return;
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: { ideal: 640 }, height: { ideal: 360 } } });
    } catch (err) {
      showError(t("err_media") + err.message); // still watch
      return;
    }
    this.peers.stream = this.stream;
    this.localTile = new Tile("local", me.name, true);
    this.localTile.show(this.stream);
    $("mute").hidden = false;
    this.showMuted();
  }

  toggleMute() {
    if (!this.stream) return;
    for (const track of this.stream.getAudioTracks()) track.enabled = !track.enabled;
    this.showMuted();
  }

  muted() {
    return Boolean(this.stream && this.stream.getAudioTracks().every((track) => !track.enabled));
  }

  showMuted() {
    $("mute").textContent = t(this.muted() ? "cmd_unmute" : "cmd_mute");
    $("mute").dataset.muted = this.muted() ? "1" : "0";
  }

  async enter(room) {
    this.room = room;
    this.wanted = true;
    await this.camera();
    if (!this.signalling.ws) {
      this.signalling.start();
      return;
    }
    await this.signalling.request("leave").catch(() => {});
    this.peers.closeAll();
    await this.connected(this.signalling.ws);
  }

  async leaveRoom() {
    this.room = null;
    await this.signalling.request("leave").catch(() => {});
    this.peers.closeAll();
  }

  stop() {
    this.wanted = false;
    this.signalling.stop();
    this.peers.closeAll();
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    this.stream = null;
    if (this.localTile) this.localTile.remove();
    this.localTile = null;
  }

  // A socket just opened (or we moved): join our room, publish, watch; follow the board.
  async connected(ws) {
    const epoch = this.peers.epoch;
    const current = () => ws === this.signalling.ws && epoch === this.peers.epoch;
    if (rollCallId !== null) followBoard();
    if (!this.room) { setStatus("connected"); return; }
    try {
      const joined = await this.signalling.request("join", { room: this.room });
      if (!current()) return;
      this.signalling.joined();
      setStatus("connected");
      this.participants = new Map(joined.participants.map((p) => [p.participant_id, p]));
      const holder = joined.floor && this.participants.get(joined.floor.participant_id);
      floorRoom = holder && typeof holder.duty_room_id === "number" ? holder.duty_room_id : null;
      this.peers.iceServers = joined.ice_servers || [];
      if (this.stream) await this.peers.publish();
      if (!current()) return;
      if (rollCallId !== null) {
        await this.peers.subscribeFloor();
        showCalled();
      } else {
        for (const publication of joined.publications) this.watch(publication);
      }
    } catch (err) {
      if (current()) showError(t("err_server") + err.message);
    }
  }

  // On a spot-check: the console of the room we look at (nobody else's picture).
  watch(publication) {
    const participant = this.participants.get(publication.participant_id);
    if (!participant || participant.duty_room_id !== spotRoom) return;
    if (!publication.kinds.includes("video")) return;
    this.peers.subscribe(publication, spotRoom);
  }

  onEvent(msg) {
    switch (msg.type) {
      case "participant_joined":
        this.participants.set(msg.participant_id, msg);
        break;
      case "publication_added":
        if (rollCallId === null) this.watch(msg);
        break;
      case "publication_removed":
        this.peers.publicationRemoved(msg);
        break;
      case "subscription_closed":
        this.peers.drop(msg.publication_id);
        break;
      case "rollcall_board":
        if (msg.roll_call_id === rollCallId) renderBoard(msg.board);
        break;
      case "rollcall_floor":
        if (msg.roll_call_id === rollCallId) floorRoom = typeof msg.duty_room_id === "number" ? msg.duty_room_id : null;
        showCalled();
        break;
      case "room_closed":
        this.peers.closeAll();
        break;
      default:
        break;
    }
  }
}

const seat = new Seat();

async function followBoard() {
  try {
    const reply = await seat.signalling.request("rollcall_follow", { roll_call_id: rollCallId });
    renderBoard(reply.board);
  } catch (err) {
    showError(err.message);
  }
}

// -- the roll-call: the board, the called room, the countdown ------------------------------------

// A board older than the one shown (a lower seq: the server numbers boards as it takes their
// state) is ignored: a command's own reply (rendered so the seat does not depend on the push
// alone) can arrive after a newer pushed board.
function renderBoard(next) {
  if (board && board.id === next.id && typeof next.seq === "number" && next.seq < board.seq) return;
  board = next;
  if (typeof board.now === "number") clockSkew = board.now - Date.now() / 1000;
  $("seat-title").textContent = board.title;
  $("phase").textContent = t("ph_" + board.phase);
  $("phase").dataset.phase = board.phase;
  document.title = `${board.title} · ${t("cmd_title")}`;
  const running = board.phase === "running";
  $("next").hidden = !mayCall() || !running;
  $("skip").hidden = !mayCall() || !running || board.current === null;
  $("start").hidden = !mayCall() || !["scheduled", "interrupted"].includes(board.phase);
  $("board-link").hidden = false;
  $("board-link").href = `/rollcall?id=${board.id}`;
  const known = rooms.map((room) => room.duty_room_id).join(",");
  rooms = board.rooms.map((room) => ({ duty_room_id: room.duty_room_id, name: room.name }));
  if (rooms.map((room) => room.duty_room_id).join(",") !== known) renderWall();
  else updateTiles();
  showCalled();
}

function calledRoom() {
  if (!board || board.current === null || board.current === undefined) return null;
  return board.rooms.find((room) => room.duty_room_id === board.current) || null;
}

function showCalled() {
  const room = calledRoom();
  $("called").hidden = !room;
  $("seat-empty").hidden = rollCallId !== null || spotRoom !== null;
  if (!room) {
    // Between calls a room that answered still has the floor: its name and how its call ended.
    // An emptied floor shows no picture (the last frame would stay, frozen, as if live).
    const last = board && floorRoom !== null ? board.rooms.find((r) => r.duty_room_id === floorRoom) : null;
    if (last) seat.peers.showFloor(last.duty_room_id, `${last.name} · ${t("st_" + last.status)}`);
    else seat.peers.showFloor(null, "—");
    return;
  }
  $("called-name").textContent = room.name;
  seat.peers.showFloor(room.duty_room_id, room.name);
  tickCountdown();
}

// The answer window counting down on the seat: from when the room was called, on the server's clock.
function tickCountdown() {
  const room = calledRoom();
  const countdown = $("countdown");
  if (!room || typeof room.called_at !== "number" || board.phase !== "running") {
    countdown.textContent = "";
    delete countdown.dataset.left;
    return;
  }
  const elapsed = serverNow() - room.called_at;
  const left = Math.max(0, Math.ceil(board.answer_window - elapsed));
  countdown.dataset.left = left;
  if (elapsed > board.late_after) countdown.dataset.late = "";
  else delete countdown.dataset.late;
  countdown.textContent = t("cmd_left").replace("{s}", left);
}

// -- the wall ----------------------------------------------------------------------------------

function perPage() {
  return Number($("per-page").value);
}

function pageRooms() {
  return rooms.slice(page * perPage(), (page + 1) * perPage());
}

// A tile's status: the roll-call's outcome (or who has the floor), else whether its console is
// there at all; `problem` adds what is missing (no video, offline) when it matters.
function tileStatus(roomId) {
  const seen = looked.get(roomId);
  const problems = seen ? seen.problems : [];
  if (board) {
    const room = board.rooms.find((r) => r.duty_room_id === roomId);
    if (room) {
      if (board.current === roomId && board.phase === "running") return { status: "speaking", label: t("floor") };
      if (room.status === "pending" && problems.includes("offline")) return { status: "offline", label: t("st_offline") };
      return { status: room.status, label: t("st_" + room.status) };
    }
  }
  if (!seen) return { status: "unknown", label: "…" };
  if (problems.includes("offline")) return { status: "offline", label: t("st_offline") };
  return { status: "ready", label: t("cmd_online") };
}

function renderWall() {
  const pages = Math.max(1, Math.ceil(rooms.length / perPage()));
  page = Math.min(page, pages - 1);
  $("page-no").textContent = `${page + 1} / ${pages}`;
  $("prev-page").disabled = page === 0;
  $("next-page").disabled = page >= pages - 1;
  $("wall-empty").hidden = rooms.length > 0;
  const shown = pageRooms();
  $("wall-grid").style.setProperty("--cols", Math.ceil(Math.sqrt(perPage())));
  $("wall-grid").replaceChildren(...shown.map((room) => {
    const tile = el("button", { type: "button", className: "wall-tile" },
      el("img", { alt: "" }),
      el("div", { className: "meta" },
        el("span", { className: "room", textContent: room.name }),
        el("span", { className: "badge" }),
        el("span", { className: "problem" }),
        el("span", { className: "age" })));
    tile.dataset.roomId = room.duty_room_id;
    tile.title = room.name;
    tile.addEventListener("click", () => tileClicked(room));
    return tile;
  }));
  updateTiles();
  look();
}

function updateTiles() {
  const callable = rollCallId === null ? mayTalk() : mayCall() && board && board.phase === "running";
  for (const tile of document.querySelectorAll(".wall-tile")) {
    const roomId = Number(tile.dataset.roomId);
    const { status, label } = tileStatus(roomId);
    tile.dataset.status = status;
    tile.querySelector(".badge").textContent = label;
    const seen = looked.get(roomId);
    const noVideo = seen && !seen.problems.includes("offline") && seen.problems.includes("no_video");
    tile.querySelector(".problem").textContent = noVideo ? t("ev_no_video") : "";
    tile.dataset.noVideo = noVideo ? "1" : "0";
    if (callable) tile.dataset.callable = "";
    else delete tile.dataset.callable;
    if (spotRoom === roomId) tile.dataset.watching = "";
    else delete tile.dataset.watching;
    // The picture, fetched again only when the server has a newer one.
    const img = tile.querySelector("img");
    const takenAt = seen ? seen.taken_at : null;
    if (takenAt !== null && takenAt !== undefined && img.dataset.takenAt !== String(takenAt)) {
      img.dataset.takenAt = String(takenAt);
      // The look's answer carries each newer picture; one it left out is fetched on its own.
      img.src = seen.jpeg ? `data:image/jpeg;base64,${seen.jpeg}` : `/api/wall/${roomId}/thumb.jpg?t=${takenAt}`;
    }
    showAge(tile);
  }
}

function showAge(tile) {
  const img = tile.querySelector("img");
  const age = tile.querySelector(".age");
  if (!img.dataset.takenAt) {
    age.textContent = t("cmd_no_picture");
    delete tile.dataset.age;
    return;
  }
  const seconds = Math.max(0, Math.round(serverNow() - Number(img.dataset.takenAt)));
  tile.dataset.age = seconds;
  age.textContent = t("cmd_age").replace("{s}", seconds);
}

let looking = false;
async function look() {
  if (looking || !me) return;
  looking = true;
  try {
    const ids = document.hidden ? [] : pageRooms().map((room) => room.duty_room_id);
    // The pictures shown (by when they were taken): the answer brings only newer ones.
    const has = {};
    for (const img of $("wall-grid").querySelectorAll(".wall-tile img[data-taken-at]")) {
      const tile = img.closest(".wall-tile");
      if (tile && tile.dataset.roomId) has[tile.dataset.roomId] = Number(img.dataset.takenAt);
    }
    const reply = await api("POST", "/api/wall/look", { viewer: VIEWER, rooms: ids, has });
    if (!board) clockSkew = reply.now - Date.now() / 1000;
    looked = new Map(reply.rooms.map((room) => [room.duty_room_id, room]));
    updateTiles();
    const total = rooms.length;
    $("wall-summary").textContent = t("cmd_rooms").replace("{n}", total);
  } catch (err) {
    if (err.status === 401) showSignInForm("command");
    else if (err.status === 429) $("wall-summary").textContent = err.message; // too many walls open
  } finally {
    looking = false;
  }
}

async function tileClicked(room) {
  if (rollCallId !== null) {
    // Calling a room: the coordinator's call with that room (hosts only, while running).
    if (!mayCall() || !board || board.phase !== "running") return;
    try {
      renderBoard(await api("POST", `/api/rollcalls/${rollCallId}/call`, { room_id: room.duty_room_id }));
      showError("");
    } catch (err) {
      showError(err.message);
    }
    return;
  }
  if (!mayTalk()) return;
  // A spot-check: join the room's standby room (as the host's scope allows) and watch its console.
  spotRoom = room.duty_room_id;
  $("seat-title").textContent = `${t("cmd_spot")} · ${room.name}`;
  $("seat-empty").hidden = true;
  $("leave-spot").hidden = false;
  updateTiles();
  try {
    await seat.enter(`standby-${room.duty_room_id}`);
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

async function endSpot() {
  spotRoom = null;
  $("leave-spot").hidden = true;
  $("seat-title").textContent = t("cmd_scope_title");
  $("seat-empty").hidden = false;
  updateTiles();
  await seat.leaveRoom();
}

async function command(action, body = {}) {
  try {
    renderBoard(await api("POST", `/api/rollcalls/${rollCallId}/${action}`, body));
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

// -- wiring ------------------------------------------------------------------------------------

$("mute").addEventListener("click", () => seat.toggleMute());
$("next").addEventListener("click", () => command("call"));
$("skip").addEventListener("click", () => command("skip"));
$("start").addEventListener("click", () => command("start"));
$("leave-spot").addEventListener("click", () => endSpot());
$("per-page").addEventListener("change", () => { page = 0; renderWall(); });
$("prev-page").addEventListener("click", () => { page = Math.max(0, page - 1); renderWall(); });
$("next-page").addEventListener("click", () => { page += 1; renderWall(); });
document.addEventListener("visibilitychange", () => look());

setInterval(() => look(), LOOK_EVERY_MS);
setInterval(() => {
  tickCountdown();
  for (const tile of document.querySelectorAll(".wall-tile")) showAge(tile);
}, 1000);

function relabel() {
  setStatus($("status").dataset.state || "idle");
  if (board) renderBoard(board);
  else $("seat-title").textContent = spotRoom === null ? t("cmd_scope_title") : $("seat-title").textContent;
  seat.showMuted();
  relabelTiles();
  updateTiles();
}

setStatus("idle");
startPage("command", async () => {
  if (rollCallId !== null) {
    $("seat-empty").hidden = true;
    // The board first over HTTP (a host out of scope learns it here), then the seat joins.
    try {
      renderBoard(await api("GET", `/api/rollcalls/${rollCallId}`));
    } catch (err) {
      showError(err.message);
      return;
    }
    await seat.enter(board.room);
  } else {
    $("seat-title").textContent = t("cmd_scope_title");
    const all = await api("GET", "/api/rooms");
    rooms = all.map((room) => ({ duty_room_id: room.id, name: room.name }));
    renderWall();
  }
}, relabel);

// Tests and whoever debugs the page from the browser's developer tools.
window.dutycallDebug = {
  openPeerConnections: () => seat.peers.openRoles(),
  socketsOpened: () => seat.signalling.opened,
  viewer: VIEWER,
};
