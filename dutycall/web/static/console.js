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
    this.publication = null; // {pc, id}
    this.subscriptions = new Map(); // publication_id -> {pc, tile, subscriptionId}
    this.participantId = null;
    this.iceServers = [];
    this.wanted = false;
    this.backoff = 500;
    this.everConnected = false;
    this.ringing = null;
    this.beeper = null;
    this.participants = null;
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
    try {
      const joined = await this.request("join", { room: this.room });
      if (ws !== this.ws) return;
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
      // In a roll-call, one floor subscription shows whoever is called; other consoles are
      // not subscribed one by one (150-200 of them would not fit), hosts and leaders are.
      if (this.inRollCall()) this.subscribeFloor();
      for (const publication of joined.publications) this.subscribe(publication);
    } catch (err) {
      showError(t("err_server") + err.message);
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
    this.floorRoomId = undefined;
    for (const { reject } of this.pending.values()) reject(new Error("connection lost"));
    this.pending.clear();
    if (this.publication) this.publication.pc.close();
    this.publication = null;
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
          // The server dropped our publication (e.g. media stalled): publish again.
          this.publication.pc.close();
          this.publication = null;
          if (this.wanted && this.stream && msg.reason !== "unpublished") this.publish().catch(() => {});
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
        this.ring(msg.roll_call_id);
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

  ring(rollCallId) {
    this.ringing = rollCallId;
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

  async answer() {
    if (this.ringing === null) return;
    try {
      await this.request("rollcall_answer", { roll_call_id: this.ringing, officer: principal ? principal.name : "" });
      this.stopRinging();
    } catch (err) {
      showError(t("err_server") + err.message);
    }
  }

  async publish() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    for (const track of this.stream.getTracks()) {
      // A roll-call needs a face that can be recognised more than it needs smooth motion: when
      // the CPU or the network is short, lower the frame rate and keep the resolution.
      if (track.kind === "video") track.contentHint = "detail";
      pc.addTransceiver(track, { direction: "sendonly", streams: [this.stream] });
    }
    pc.onconnectionstatechange = () => {
      if (this.localTile) this.localTile.setState(pc.connectionState);
      if (pc.connectionState === "failed" && this.publication && this.publication.pc === pc) {
        // ICE failed while signalling is up: start the publication over.
        this.request("unpublish", { publication_id: this.publication.id }).catch(() => {});
        pc.close();
        this.publication = null;
        if (this.wanted) this.publish().catch(() => {});
      }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc);
    let reply;
    try {
      reply = await this.request("publish", { sdp: pc.localDescription.sdp, label: "camera" });
    } catch (err) {
      pc.close();
      throw err;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    this.publication = { pc, id: reply.publication_id };
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
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
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
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
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
    entry.pc.close();
    entry.tile.remove();
  }
}

const dutyConsole = new DutyConsole();
window.dutyConsole = dutyConsole;

document.addEventListener("languagechange", () => {
  if (principal) $("whoami").textContent = t("signed_in_as") + principal.name;
  setStatus($("status").dataset.state || "idle");
  for (const tile of document.querySelectorAll(".tile")) {
    const state = tile.querySelector(".state");
    state.textContent = t("state_" + state.dataset.state);
  }
});

$("lang").addEventListener("click", () => setLanguage(LANG === "en" ? "zh-CN" : "en"));
$("answer").addEventListener("click", () => dutyConsole.answer());

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
  // ?room=... joins at once. A duty-room console with no room given waits in its standby
  // room, seen by the pre-check and reachable by roll-call invitations, day and night.
  const room = params.get("room") || standbyRoom();
  if (room) {
    $("room").value = room;
    $("join-form").requestSubmit();
  }
})();
