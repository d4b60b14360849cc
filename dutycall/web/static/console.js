// The duty-room console: join a room, publish camera and microphone, show everyone else.
// Protocol: docs/protocol.md. No build step: plain ES2020 in the browser.
"use strict";

const $ = (id) => document.getElementById(id);

// What the server may ask a console to publish. In a roll-call of 150-200 rooms every idle
// room sends a small, slow stream and only the called room sends full quality.
const PROFILES = {
  idle: { maxBitrate: 150000, maxHeight: 180, maxFramerate: 5 },
  full: { maxBitrate: 1200000, maxHeight: 360, maxFramerate: 30 },
};

function waitForIceGathering(pc, timeoutMs = 3000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// What a typed name may not hold (the server checks the same, and more): control characters,
// line breaks and the bidirectional overrides that make a name read backwards.
const UNSAFE_NAME = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ufffe\uffff]/;

function setStatus(state) {
  const el = $("status");
  el.dataset.state = state;
  el.textContent = t("status_" + state);
}

function showError(text) {
  const el = $("error");
  el.hidden = !text;
  el.textContent = text || "";
}

class Tile {
  constructor(key, name, local) {
    this.el = document.createElement("div");
    this.el.className = "tile";
    this.el.dataset.key = key;
    this.el.dataset.name = name;
    if (local) this.el.dataset.local = "";
    this.video = document.createElement("video");
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.muted = local;
    const label = document.createElement("div");
    label.className = "label";
    this.nameEl = document.createElement("span");
    this.nameEl.className = "name";
    this.nameEl.textContent = local ? `${name}（${t("me")}）` : name;
    this.stateEl = document.createElement("span");
    this.stateEl.className = "state";
    label.append(this.nameEl, this.stateEl);
    this.el.append(this.video, label);
    $("tiles").append(this.el);
    this.setState("new");
  }

  setState(state) {
    this.state = state;
    this.el.dataset.state = state;
    this.stateEl.dataset.state = state;
    this.stateEl.textContent = t("state_" + state);
  }

  show(stream) {
    if (this.video.srcObject !== stream) this.video.srcObject = stream;
    this.video.play().catch(() => {
      // Autoplay with sound needs a user gesture; show the picture muted rather than nothing.
      this.video.muted = true;
      this.video.play().catch(() => {});
    });
  }

  remove() { this.el.remove(); }
}

class DutyConsole {
  constructor() {
    this.ws = null;
    this.pending = new Map();
    this.nextId = 1;
    this.stream = null;
    this.localTile = null;
    this.publication = null; // {pc, id}: the one publishing connection, once the server has it
    this.publishing = null; // the publish in flight (one at a time)
    // Bumped whenever the console leaves its room: anything begun before is stale and undone.
    this.epoch = 0;
    // Every RTCPeerConnection made and not yet closed (window.dutycallDebug reads it).
    this.peers = new Set();
    this.subscriptions = new Map(); // publication_id -> {pc, tile, subscriptionId}
    this.participantId = null;
    this.iceServers = [];
    this.wanted = false;
    this.backoff = 500;
    this.everConnected = false;
    this.ringing = null;
    this.beeper = null;
    this.participants = null;
    this.answering = false;
  }

  newPeer(role) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    pc.dutycallRole = role;
    this.peers.add(pc);
    return pc;
  }

  closePeer(pc) {
    if (!pc) return;
    // Its handlers go first: a connection we closed must not touch the tiles or republish.
    pc.onconnectionstatechange = null;
    pc.ontrack = null;
    this.peers.delete(pc);
    try { pc.close(); } catch (err) { /* already closed */ }
  }

  async start(room, name) {
    this.room = room;
    this.name = name; // shown until the server says who we are (our account or duty room)
    this.wanted = true;
    showError("");
    if (!this.stream) {
      try {
        this.stream = await navigator.mediaDevices.getUserMedia({
          audio: true,
          video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } },
        });
      } catch (err) {
        // Still join: a console without a camera can watch and be seen as present.
        showError(t("err_media") + err.message);
      }
    }
    if (this.stream && !this.localTile) {
      this.localTile = new Tile("local", name, true);
      this.localTile.show(this.stream);
    }
    this.connect();
  }

  stop() {
    this.wanted = false;
    if (this.ws) this.ws.close();
    this.teardown();
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    this.stream = null;
    if (this.localTile) this.localTile.remove();
    this.localTile = null;
    setStatus("idle");
  }

  connect() {
    setStatus(this.everConnected ? "reconnecting" : "connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => this.onOpen(ws);
    ws.onmessage = (event) => this.onMessage(event.data);
    ws.onclose = () => this.onClose(ws);
    ws.onerror = () => {};
  }

  async onOpen(ws) {
    const epoch = this.epoch;
    try {
      const joined = await this.request("join", { room: this.room });
      if (ws !== this.ws || epoch !== this.epoch) return; // moved on meanwhile
      if (this.localTile && joined.name) this.localTile.nameEl.textContent = `${joined.name}（${t("me")}）`;
      this.backoff = 500;
      this.everConnected = true;
      this.participantId = joined.participant_id;
      this.participants = new Map(joined.participants.map((p) => [p.participant_id, p]));
      // Joining a roll-call in progress: who has the floor already.
      const holder = joined.floor && this.participants.get(joined.floor.participant_id);
      if (holder && holder.duty_room_id !== undefined) this.floorRoomId = holder.duty_room_id;
      this.iceServers = joined.ice_servers || [];
      setStatus("connected");
      showError("");
      if (this.stream) await this.publish();
      if (ws !== this.ws || epoch !== this.epoch) return;
      // In a roll-call, one floor subscription shows whoever is called; other consoles are
      // not subscribed one by one (150-200 of them would not fit), hosts and leaders are.
      if (this.inRollCall()) this.subscribeFloor();
      for (const publication of joined.publications) this.subscribe(publication);
    } catch (err) {
      if (epoch === this.epoch) showError(t("err_server") + err.message);
    }
  }

  onClose(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.teardown();
    if (!this.wanted) return;
    setStatus("reconnecting");
    setTimeout(() => { if (this.wanted && !this.ws) this.connect(); }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, 5000);
  }

  teardown() {
    this.epoch += 1;
    this.floorRoomId = undefined;
    for (const { reject } of this.pending.values()) reject(new Error("connection lost"));
    this.pending.clear();
    if (this.publication) this.closePeer(this.publication.pc);
    this.publication = null;
    this.publishing = null; // a publish in flight sees the new epoch and closes its own connection
    for (const id of [...this.subscriptions.keys()]) this.dropSubscription(id);
  }

  request(type, fields = {}) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new Error("not connected"));
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${type}: no reply`));
      }, 20000);
      this.pending.set(id, {
        resolve: (msg) => { clearTimeout(timer); resolve(msg); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      });
      this.ws.send(JSON.stringify({ type, id, ...fields }));
    });
  }

  onMessage(text) {
    const msg = JSON.parse(text);
    if (msg.id !== undefined && this.pending.has(msg.id)) {
      const { resolve, reject } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.type === "error") reject(new Error(`${msg.code}: ${msg.message}`));
      else resolve(msg);
      return;
    }
    switch (msg.type) {
      case "participant_joined":
        if (this.participants) this.participants.set(msg.participant_id, msg);
        break;
      case "publication_added":
        this.subscribe(msg);
        break;
      case "publication_removed":
        if (this.publication && msg.publication_id === this.publication.id) {
          this.closePeer(this.publication.pc);
          this.publication = null;
          // The server dropped it (media stalled, connection failed): publish again. Not when we
          // left the room (a move publishes in the next room itself) or unpublished it ourselves.
          const ours = ["unpublished", "left", "disconnected", "room_closed"].includes(msg.reason);
          if (this.wanted && this.stream && !ours) this.publish().catch(() => {});
        } else {
          this.dropSubscription(msg.publication_id);
        }
        break;
      case "subscription_closed":
        this.dropSubscription(msg.publication_id);
        break;
      case "room_closed":
        this.teardown();
        break;
      case "error":
        showError(t("err_server") + msg.message);
        break;
      case "rollcall_invite":
        // A roll-call of this duty room started: go to its room at once.
        this.moveTo(msg.room);
        break;
      case "publish_quality":
        this.applyProfile(msg.profile);
        break;
      case "rollcall_ring":
        this.ring(msg);
        break;
      case "rollcall_ring_stop":
        this.stopRinging();
        break;
      case "rollcall_ended":
        this.stopRinging();
        // Back to standby, ready for the next roll-call.
        if (standbyRoom() && this.inRollCall()) this.moveTo(standbyRoom());
        break;
      case "rollcall_floor":
        // Kept: the floor tile may not exist yet (we are still publishing) and shows it when made.
        this.floorRoomId = msg.duty_room_id;
        this.showFloor(msg.duty_room_id);
        for (const tile of document.querySelectorAll(".tile")) delete tile.dataset.floor;
        if (msg.duty_room_id !== null) {
          for (const tile of document.querySelectorAll(`.tile[data-duty-room-id="${msg.duty_room_id}"]`)) tile.dataset.floor = "";
        }
        break;
      default:
        break;
    }
  }

  async applyProfile(name) {
    if (!PROFILES[name]) return;
    this.profile = name;
    if (!this.publication) return;
    for (const sender of this.publication.pc.getSenders()) {
      if (!sender.track || sender.track.kind !== "video") continue;
      const { maxBitrate, maxHeight, maxFramerate } = PROFILES[name];
      const height = sender.track.getSettings().height || maxHeight;
      const parameters = sender.getParameters();
      if (!parameters.encodings || !parameters.encodings.length) parameters.encodings = [{}];
      Object.assign(parameters.encodings[0], {
        maxBitrate, maxFramerate, scaleResolutionDownBy: Math.max(1, height / maxHeight),
      });
      try {
        await sender.setParameters(parameters);
        this.profileError = null;
      } catch (err) {
        // Keep going with the previous profile; say why, for the operator and for tests.
        this.profileError = String(err);
        console.warn("publish profile", name, "not applied:", err);
      }
    }
  }

  async moveTo(room) {
    if (room === this.room || !this.ws) return;
    this.room = room;
    $("room").value = room;
    localStorage.setItem("dutycall.room", room);
    // A reload (power cut, browser restart) must land here, not in the room the page was opened with.
    const params = new URLSearchParams(location.search);
    if (params.has("room")) {
      params.set("room", room);
      history.replaceState(null, "", `${location.pathname}?${params}`);
    }
    // Same socket: leave, drop our connections, join the new room and publish there.
    await this.request("leave").catch(() => {});
    this.teardown();
    await this.onOpen(this.ws);
  }

  ring(msg) {
    this.ringing = msg.roll_call_id;
    // Whoever is rostered in this room for the shift answers with one click; anyone else types a name.
    const people = Array.isArray(msg.rostered) ? msg.rostered : [];
    $("rostered").replaceChildren(...people.map((person) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "answer-as";
      button.dataset.name = person.name;
      const role = document.createElement("span");
      role.className = "role";
      role.dataset.i18n = person.role === "leader" ? "ring_leader" : "ring_officer";
      role.textContent = t(role.dataset.i18n);
      button.append(person.name, role);
      button.addEventListener("click", () => this.answer(person.name));
      return button;
    }));
    $("rostered").dataset.none = t("ring_none");
    $("other-name").value = "";
    $("ring").hidden = false;
    this.beep();
  }

  stopRinging() {
    this.ringing = null;
    $("ring").hidden = true;
    if (this.beeper) clearInterval(this.beeper);
    this.beeper = null;
  }

  beep() {
    // A ring tone from WebAudio: no file to fetch, works offline.
    try {
      const context = this.audio || (this.audio = new AudioContext());
      const once = () => {
        const osc = context.createOscillator();
        const gain = context.createGain();
        osc.frequency.value = 880;
        gain.gain.value = 0.2;
        osc.connect(gain).connect(context.destination);
        osc.start();
        osc.stop(context.currentTime + 0.4);
      };
      once();
      if (!this.beeper) this.beeper = setInterval(once, 1200);
    } catch (err) {
      /* no audio device: the visible alert remains */
    }
  }

  // Answer "到" as the person named (the server records who, and whether they are rostered).
  async answer(name) {
    if (this.ringing === null || this.answering) return;
    const officer = (name || "").trim();
    if (!officer || officer.length > 64 || UNSAFE_NAME.test(officer)) {
      showError(t("err_officer"));
      return;
    }
    this.answering = true;
    try {
      await this.request("rollcall_answer", { roll_call_id: this.ringing, officer });
      this.stopRinging();
      showError("");
    } catch (err) {
      showError(t("err_server") + err.message);
    } finally {
      this.answering = false;
    }
  }

  // One publishing connection at a time: a publish asked for while one is in flight joins it.
  publish() {
    if (!this.publishing) {
      const attempt = this.publishOnce().finally(() => {
        if (this.publishing === attempt) this.publishing = null;
      });
      this.publishing = attempt;
    }
    return this.publishing;
  }

  async publishOnce() {
    const epoch = this.epoch;
    if (this.publication) return; // already publishing here
    const pc = this.newPeer("publish");
    for (const track of this.stream.getTracks()) {
      // A roll-call needs a face that can be recognised more than it needs smooth motion: when
      // the CPU or the network is short, lower the frame rate and keep the resolution.
      if (track.kind === "video") track.contentHint = "detail";
      pc.addTransceiver(track, { direction: "sendonly", streams: [this.stream] });
    }
    pc.onconnectionstatechange = () => {
      // Only the current publication speaks for the local tile.
      if (!this.publication || this.publication.pc !== pc) return;
      if (this.localTile) this.localTile.setState(pc.connectionState);
      if (pc.connectionState === "failed") {
        // ICE failed while signalling is up: start the publication over.
        this.request("unpublish", { publication_id: this.publication.id }).catch(() => {});
        this.closePeer(pc);
        this.publication = null;
        if (this.wanted) this.publish().catch(() => {});
      }
    };
    const stale = () => epoch !== this.epoch || !this.wanted;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIceGathering(pc);
      if (stale()) throw new Error("moved on");
      // Requests on one socket are handled in order: if we leave meanwhile, the server drops
      // this publication with the room.
      const reply = await this.request("publish", { sdp: pc.localDescription.sdp, label: "camera" });
      if (stale()) throw new Error("moved on");
      await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
      if (stale()) throw new Error("moved on");
      this.publication = { pc, id: reply.publication_id };
    } catch (err) {
      this.closePeer(pc);
      if (stale()) return;
      throw err;
    }
    if (this.localTile) this.localTile.setState(pc.connectionState);
    // In a roll-call or on standby, start small until the server gives us the floor.
    await this.applyProfile(this.inRollCall() || this.room.startsWith("standby-") ? "idle" : "full");
  }

  inRollCall() {
    return this.room.startsWith("rollcall-");
  }

  isConsole(participantId) {
    const participant = this.participants && this.participants.get(participantId);
    return Boolean(participant && participant.duty_room_id !== undefined);
  }

  async subscribeFloor() {
    const id = "floor";
    if (this.subscriptions.has(id)) return;
    const tile = new Tile(id, "—", false);
    tile.el.dataset.floorTile = "";
    const pc = this.newPeer("floor");
    const entry = { pc, tile, subscriptionId: null };
    this.subscriptions.set(id, entry);
    if (this.floorRoomId !== undefined) this.showFloor(this.floorRoomId);
    for (const kind of ["audio", "video"]) pc.addTransceiver(kind, { direction: "recvonly" });
    const stream = new MediaStream();
    pc.ontrack = (event) => {
      stream.addTrack(event.track);
      tile.show(stream);
    };
    pc.onconnectionstatechange = () => tile.setState(pc.connectionState);
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIceGathering(pc);
      const reply = await this.request("subscribe_floor", { sdp: pc.localDescription.sdp });
      entry.subscriptionId = reply.subscription_id;
      await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    } catch (err) {
      if (this.subscriptions.get(id) === entry) this.dropSubscription(id);
    }
  }

  showFloor(dutyRoomId) {
    const entry = this.subscriptions.get("floor");
    if (!entry) return;
    let name = "—";
    for (const participant of (this.participants || new Map()).values()) {
      if (participant.duty_room_id === dutyRoomId) name = participant.name;
    }
    entry.tile.nameEl.textContent = name;
    entry.tile.el.dataset.floorRoomId = dutyRoomId === null ? "" : dutyRoomId;
  }

  async subscribe(publication) {
    const id = publication.publication_id;
    if (publication.participant_id === this.participantId || this.subscriptions.has(id)) return;
    if (this.inRollCall() && this.isConsole(publication.participant_id)) return;
    const tile = new Tile(id, publication.name, false);
    tile.el.dataset.publicationId = id;
    const owner = this.participants && this.participants.get(publication.participant_id);
    if (owner && owner.duty_room_id !== undefined) tile.el.dataset.dutyRoomId = owner.duty_room_id;
    const pc = this.newPeer("subscribe");
    const entry = { pc, tile, subscriptionId: null };
    this.subscriptions.set(id, entry);
    for (const kind of publication.kinds) pc.addTransceiver(kind, { direction: "recvonly" });
    const stream = new MediaStream();
    pc.ontrack = (event) => {
      stream.addTrack(event.track);
      tile.show(stream);
    };
    pc.onconnectionstatechange = () => tile.setState(pc.connectionState);
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIceGathering(pc);
      const reply = await this.request("subscribe", { publication_id: id, sdp: pc.localDescription.sdp });
      entry.subscriptionId = reply.subscription_id;
      await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    } catch (err) {
      if (this.subscriptions.get(id) === entry) this.dropSubscription(id);
    }
  }

  dropSubscription(publicationId) {
    const entry = this.subscriptions.get(publicationId);
    if (!entry) return;
    this.subscriptions.delete(publicationId);
    this.closePeer(entry.pc);
    entry.tile.remove();
  }
}

const dutyConsole = new DutyConsole();
window.dutyConsole = dutyConsole;
// For tests and for whoever debugs a console from the browser's developer tools.
window.dutycallDebug = {
  // What each RTCPeerConnection still open is for ("publish", "floor", "subscribe").
  openPeerConnections: () => [...dutyConsole.peers].filter((pc) => pc.signalingState !== "closed")
    .map((pc) => pc.dutycallRole),
  publicationId: () => (dutyConsole.publication ? dutyConsole.publication.id : null),
};

document.addEventListener("languagechange", () => {
  if (principal) $("whoami").textContent = t("signed_in_as") + principal.name;
  $("rostered").dataset.none = t("ring_none");
  setStatus($("status").dataset.state || "idle");
  for (const tile of document.querySelectorAll(".tile")) {
    const state = tile.querySelector(".state");
    state.textContent = t("state_" + state.dataset.state);
  }
});

$("lang").addEventListener("click", () => setLanguage(LANG === "en" ? "zh-CN" : "en"));
$("other-form").addEventListener("submit", (event) => {
  event.preventDefault();
  dutyConsole.answer($("other-name").value);
});

let principal = null;

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (principal && principal.csrf) headers["X-CSRF-Token"] = principal.csrf;
  const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
  return data;
}

function showSignedIn(me) {
  principal = { ...me.principal, csrf: me.csrf_token };
  $("sign-in-form").hidden = true;
  $("join-form").hidden = false;
  $("whoami").textContent = t("signed_in_as") + principal.name;
}

// The standby room of a console signed in for a duty room (null for a person's account).
function standbyRoom() {
  return principal && principal.kind === "device" && principal.duty_room_id ? `standby-${principal.duty_room_id}` : null;
}

// Where to go when opened: a duty room's console only ever sits in its standby room or a
// roll-call (a reload mid roll-call lands back in it), never in a free-form room such as the
// "duty" of old links, where others could watch it. A person's account goes where asked.
function startingRoom(requested) {
  const standby = standbyRoom();
  if (!standby) return requested;
  return requested && (requested === standby || /^rollcall-\d+$/.test(requested)) ? requested : standby;
}

async function signedIn() {
  // A console opened with ?device=TOKEN trades it for a long-lived session, then forgets it.
  const params = new URLSearchParams(location.search);
  const device = params.get("device");
  if (device) {
    params.delete("device");
    history.replaceState(null, "", location.pathname + (params.toString() ? `?${params}` : ""));
    try {
      showSignedIn(await api("POST", "/api/device-session", { token: device }));
      return true;
    } catch (err) {
      showError(t("err_device"));
    }
  }
  try {
    showSignedIn(await api("GET", "/api/me"));
    return true;
  } catch (err) {
    $("sign-in-form").hidden = false;
    $("join-form").hidden = true;
    return false;
  }
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    showSignedIn(await api("POST", "/api/session", { username: $("username").value, password: $("password").value }));
    showError("");
    $("password").value = "";
  } catch (err) {
    showError(t("err_sign_in") + err.message);
  }
});

$("sign-out").addEventListener("click", async () => {
  dutyConsole.stop();
  await api("DELETE", "/api/session").catch(() => {});
  principal = null;
  $("join").hidden = false;
  $("leave").hidden = true;
  $("sign-in-form").hidden = false;
  $("join-form").hidden = true;
});

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("room").value.trim();
  if (!room || !principal) return;
  localStorage.setItem("dutycall.room", room);
  $("join").hidden = true;
  $("leave").hidden = false;
  dutyConsole.start(room, principal.name);
});

$("leave").addEventListener("click", () => {
  dutyConsole.stop();
  $("join").hidden = false;
  $("leave").hidden = true;
});

(async function init() {
  applyLanguage();
  setStatus("idle");
  const params = new URLSearchParams(location.search);
  $("room").value = params.get("room") || localStorage.getItem("dutycall.room") || "";
  if (!(await signedIn())) return;
  // ?room=... joins at once. A duty-room console waits in its standby room, seen by the
  // pre-check and reachable by roll-call invitations, day and night.
  const room = startingRoom(params.get("room"));
  if (standbyRoom() && params.has("room") && params.get("room") !== room) {
    params.delete("room");
    history.replaceState(null, "", location.pathname + (params.toString() ? `?${params}` : ""));
  }
  if (room) {
    $("room").value = room;
    $("join-form").requestSubmit();
  }
})();
