// The duty-room console: join a room, publish camera and microphone, show everyone else, move
// between its standby room and roll-calls, ring and answer. The page's wiring; the parts are
// signalling.js (the socket), peers.js (connections), tiles.js (the grid), ringing.js (the call)
// and common.js (sign-in, errors, the JSON API). Protocol: docs/protocol.md. No build step.
"use strict";

// The standby room of a console signed in for a duty room, as the server names it in the
// session (null for a person's account). Room names are the server's: this page never makes one.
function standbyRoom() {
  return (me && me.standby_room) || null;
}

function setStatus(state) {
  const line = $("status");
  line.dataset.state = state;
  line.textContent = t("status_" + state);
}

class DutyConsole {
  constructor() {
    this.room = null;
    this.roomInfo = null; // what the server said of the room in `joined` (kind: rollcall, standby)
    this.name = null;
    this.wanted = false;
    this.stream = null;
    this.localTile = null;
    this.everConnected = false;
    this.participantId = null;
    this.participants = null; // participant_id -> what the server said of it, in this room
    this.floorRoomId = undefined; // the duty room with the floor (null: nobody; undefined: not told)
    this.onAccessEnded = () => {};
    this.signalling = new Signalling({
      onConnecting: () => setStatus(this.everConnected ? "reconnecting" : "connecting"),
      onOpen: (ws) => {
        this.join(ws);
        alerts.load(); // alerts raised while this console was away
        relays.load(); // footage relayed to it that is still on
      },
      onEvent: (msg) => this.onEvent(msg),
      onDown: () => {
        this.teardown();
        relays.disconnected();
        if (this.wanted) setStatus("reconnecting");
      },
      stillSignedIn: () => this.stillSignedIn(),
      onAccessEnded: () => this.onAccessEnded(),
    });
    const request = (type, fields) => this.signalling.request(type, fields);
    this.peers = new Peers(request, {
      wanted: () => this.wanted,
      // In a roll-call or on standby, start small until the server gives us the floor.
      startProfile: () => (this.roomInfo ? "idle" : "full"),
      onPublicationState: (state) => { if (this.localTile) this.localTile.setState(state); },
    });
    this.ringer = new Ringer(request);
  }

  // Where the console is, by name: a roll-call's title, a duty room's name (the server adds
  // them to `joined`), a meeting room's own name; never `rollcall-1` or `standby-3`.
  showRoomTitle() {
    const info = this.roomInfo;
    const kind = info ? ({ rollcall: "con_kind_rollcall", standby: "con_kind_standby" }[info.kind] || "") : "con_kind_meeting";
    const name = info ? info.title || "" : this.room || "";
    const text = this.room ? [kind ? t(kind) : "", name].filter(Boolean).join(t("con_sep")) : "";
    $("room-title").textContent = text;
    $("room-title").hidden = !text || !this.wanted;
  }

  // What tests and the publish-quality checks read.
  get publication() { return this.peers.publication; }
  get profile() { return this.peers.profile; }
  get profileError() { return this.peers.profileError; }

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
        // The browser's own words are English whatever the page's language: say it in ours.
        const known = err && MESSAGES["zh-CN"][`media_${err.name}`] ? `media_${err.name}` : "media_other";
        showError(t(known));
      }
    }
    this.peers.stream = this.stream;
    if (this.stream && !this.localTile) {
      this.localTile = new Tile("local", name, true);
      this.localTile.show(this.stream);
    }
    this.signalling.start();
  }

  stop() {
    this.wanted = false;
    this.signalling.stop();
    this.teardown();
    this.ringer.stop();
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.peers.stream = null;
    if (this.localTile) this.localTile.remove();
    this.localTile = null;
    setStatus("idle");
    this.showRoomTitle();
  }

  // Whether the session still signs us in (a refused or ended socket asks before retrying);
  // a changed role or unit comes back as the new principal.
  async stillSignedIn() {
    try {
      acceptSession(await api("GET", "/api/me"));
      return true;
    } catch (err) {
      return err.status !== 401; // the server is down or restarting: keep trying
    }
  }

  // On a socket just opened (or after leaving a room on it): join the room, publish, subscribe.
  async join(ws) {
    const epoch = this.peers.epoch;
    const current = () => ws === this.signalling.ws && epoch === this.peers.epoch;
    try {
      let joined;
      try {
        joined = await this.signalling.request("join", { room: this.room });
      } catch (err) {
        // A console asked into a room that is not (or no longer) open to it: back to standby.
        if (current() && standbyRoom() && this.room !== standbyRoom()) {
          this.moveTo(standbyRoom());
          return;
        }
        throw err;
      }
      if (!current()) return; // moved on meanwhile
      this.roomInfo = joined.room_info || null;
      // In a greeting the server names what to watch (its video, the leader), never guessed.
      this.greetingSources = new Map(((this.roomInfo && this.roomInfo.sources) || []).map((s) => [s.publication_id, s]));
      this.showRoomTitle();
      // A duty room's console sits in its standby room or a roll-call only, never in a meeting
      // room (the "duty" of old links) where others could watch it.
      if (standbyRoom() && !this.roomInfo) {
        this.moveTo(standbyRoom());
        return;
      }
      if (this.localTile && joined.name) this.localTile.setName(joined.name);
      this.signalling.joined();
      this.everConnected = true;
      this.participantId = joined.participant_id;
      this.participants = new Map(joined.participants.map((p) => [p.participant_id, p]));
      // Joining a roll-call in progress: who has the floor already.
      const holder = joined.floor && this.participants.get(joined.floor.participant_id);
      if (holder && holder.duty_room_id !== undefined) this.floorRoomId = holder.duty_room_id;
      this.peers.iceServers = joined.ice_servers || [];
      relays.iceServers = this.peers.iceServers;
      setStatus("connected");
      showError("");
      if (this.stream) await this.peers.publish();
      if (!current()) return;
      greetingView.entered(this.roomInfo, this.participantId); // greeting.js: the leader full screen
      // In a roll-call, one floor subscription shows whoever is called; other consoles are
      // not subscribed one by one (150-200 of them would not fit), hosts and leaders are. In a
      // greeting the floor shows the room replying; the leader is subscribed by name.
      if (this.inRollCall() || this.inGreeting()) {
        this.peers.subscribeFloor();
        if (this.floorRoomId !== undefined) this.showFloor(this.floorRoomId);
      }
      for (const publication of joined.publications) this.subscribe(publication);
    } catch (err) {
      if (epoch === this.peers.epoch) showError(t("err_server") + err.message);
    }
  }

  // Leaving the room or losing the socket: every connection and request in flight goes.
  teardown() {
    this.floorRoomId = undefined;
    this.signalling.failPending();
    this.peers.closeAll();
  }

  onEvent(msg) {
    switch (msg.type) {
      case "participant_joined":
        if (this.participants) this.participants.set(msg.participant_id, msg);
        break;
      case "publication_added":
        this.subscribe(msg);
        break;
      case "publication_removed":
        this.peers.publicationRemoved(msg);
        break;
      case "subscription_closed":
        this.peers.drop(msg.publication_id);
        break;
      case "room_closed":
        this.teardown();
        break;
      case "error":
        showError(t("err_server") + msg.message);
        break;
      case "greeting_invite":
        // A leadership greeting of this duty room started: a short ring, then into its room.
        greetingView.invited(msg);
        this.moveTo(msg.room);
        break;
      case "greeting_watching":
        greetingView.watching(msg);
        break;
      case "greeting_source":
        // What this console watches changed: the leader published, the video (or our own copy
        // of it from the beginning) is here, or it played out.
        if (this.inGreeting(msg.greeting_id) && this.participantId) this.setGreetingSources(msg.sources || []);
        break;
      case "greeting_floor":
        this.floorRoomId = msg.duty_room_id;
        this.showFloor(msg.duty_room_id);
        greetingView.floor(msg, me && me.duty_room_id);
        break;
      case "greeting_ended":
        if (standbyRoom() && this.inGreeting(msg.greeting_id)) this.moveTo(standbyRoom());
        break;
      case "rollcall_invite":
        // A roll-call of this duty room started: go to its room at once.
        this.moveTo(msg.room);
        break;
      case "publish_quality":
        this.peers.applyProfile(msg.profile);
        break;
      case "rollcall_ring":
        this.ringer.ring(msg);
        break;
      case "rollcall_ring_stop":
        this.ringer.stopped(); // answered (the answer's reply says so) or missed: 未应答
        break;
      case "rollcall_ended":
        this.ringer.stopped();
        // Back to standby, ready for the next roll-call.
        if (standbyRoom() && this.inRollCall(msg.roll_call_id)) this.moveTo(standbyRoom());
        break;
      case "incident_alert":
        alerts.show(msg);
        break;
      case "footage_relay":
        relays.show(msg);
        break;
      case "footage_relay_ended":
        relays.close(msg.relay_id);
        break;
      case "footage_relay_watch_ended":
        relays.watchEnded(msg);
        break;
      case "rollcall_floor":
        // Kept: the floor tile may not exist yet (we are still publishing) and shows it when made.
        this.floorRoomId = msg.duty_room_id;
        this.showFloor(msg.duty_room_id);
        markFloorTiles(msg.duty_room_id);
        break;
      default:
        break;
    }
  }

  async moveTo(room) {
    if (room === this.room || !this.signalling.ws) return;
    this.room = room;
    this.roomInfo = null;
    $("room").value = room;
    this.showRoomTitle();
    localStorage.setItem("dutycall.room", room);
    // A reload (power cut, browser restart) must land here, not in the room the page was opened with.
    const params = new URLSearchParams(location.search);
    if (params.has("room")) {
      params.set("room", room);
      history.replaceState(null, "", `${location.pathname}?${params}`);
    }
    // Same socket: leave, drop our connections, join the new room and publish there.
    await this.signalling.request("leave").catch(() => {});
    this.teardown();
    await this.join(this.signalling.ws);
  }

  // In a leadership greeting's room (that greeting's, if an id is given).
  inGreeting(greetingId) {
    const info = this.roomInfo;
    return Boolean(info && info.kind === "greeting" && (greetingId === undefined || info.greeting_id === greetingId));
  }

  // In a roll-call's room (that roll-call's, if an id is given), as the server said at join.
  inRollCall(rollCallId) {
    const info = this.roomInfo;
    return Boolean(info && info.kind === "rollcall" && (rollCallId === undefined || info.roll_call_id === rollCallId));
  }

  // The duty room a participant is the console of (undefined for a person's account).
  dutyRoomOf(participantId) {
    const participant = this.participants && this.participants.get(participantId);
    return participant ? participant.duty_room_id : undefined;
  }

  subscribe(publication) {
    if (publication.participant_id === this.participantId) return;
    const dutyRoomId = this.dutyRoomOf(publication.participant_id);
    // Consoles are seen on the floor, in a roll-call and in a greeting alike.
    if ((this.inRollCall() || this.inGreeting()) && dutyRoomId !== undefined) return;
    // In a greeting only the sources the server named (a late joiner's own copy of the video is
    // in the room beside the shared one, and a host may be there too).
    const source = this.inGreeting() ? this.greetingSources.get(publication.publication_id) : null;
    if (this.inGreeting() && !source) return;
    this.peers.subscribe(publication, dutyRoomId);
    const entry = this.peers.subscriptions.get(publication.publication_id);
    if (source && entry) entry.tile.el.dataset.greetingSource = source.source;
    if (source) greetingView.sources(this.greetingSources);
  }

  // A greeting's sources now: watch each one named, drop any watched that no longer is.
  setGreetingSources(sources) {
    this.greetingSources = new Map(sources.map((s) => [s.publication_id, s]));
    for (const id of [...this.peers.subscriptions.keys()]) {
      if (id !== "floor" && !this.greetingSources.has(id)) this.peers.drop(id);
    }
    for (const source of sources) this.subscribe(source);
    greetingView.sources(this.greetingSources);
  }

  showFloor(dutyRoomId) {
    let name = "—";
    for (const participant of (this.participants || new Map()).values()) {
      if (participant.duty_room_id === dutyRoomId) name = participant.name;
    }
    this.peers.showFloor(dutyRoomId, name);
  }
}

const alerts = new IncidentAlerts();
const dutyConsole = new DutyConsole();
const relays = new RelayPanels((type, fields) => dutyConsole.signalling.request(type, fields));
window.dutyConsole = dutyConsole;
// For tests and for whoever debugs a console from the browser's developer tools.
window.dutycallDebug = {
  // What each RTCPeerConnection still open is for ("publish", "floor", "subscribe").
  openPeerConnections: () => dutyConsole.peers.openRoles(),
  publicationId: () => (dutyConsole.publication ? dutyConsole.publication.id : null),
  // How many signalling sockets this page has opened (a reconnect opens one more).
  socketsOpened: () => dutyConsole.signalling.opened,
};

// Back to the sign-in form, with `message` (if any) saying why.
function signedOut(message) {
  showSignInForm("join-form");
  $("join").hidden = false;
  $("leave").hidden = true;
  if (message !== undefined) showError(message);
}

// The server ended this session (close code 4001, then GET /api/me says 401): stop, and say so
// rather than reconnect. A duty room's console is told its credential no longer works.
dutyConsole.onAccessEnded = () => {
  const device = Boolean(me && me.kind === "device");
  dutyConsole.stop();
  signedOut(t(device ? "err_device" : "err_session_ended"));
};

// Where to go when opened: where asked (a reload mid roll-call lands back in it), else a duty
// room's console goes to its standby room. The server says what the room is when the console
// joins it; a console that finds itself refused or in a meeting room goes to standby (join).
function startingRoom(requested) {
  return requested || standbyRoom();
}

// The session the page opens with: a console opened with ?device=TOKEN trades it for a
// long-lived session, then forgets it; otherwise whatever session the browser already has.
async function firstSession() {
  const params = new URLSearchParams(location.search);
  const device = params.get("device");
  if (device) {
    params.delete("device");
    history.replaceState(null, "", location.pathname + (params.toString() ? `?${params}` : ""));
    try {
      return await api("POST", "/api/device-session", { token: device });
    } catch (err) {
      showError(t("err_device"));
    }
  }
  return api("GET", "/api/me");
}

// Signed in. Opened with a session already, join at once: ?room=... (a console is held to its
// standby room and roll-calls), else a duty room's console waits in its standby room, seen by
// the pre-check and reachable by roll-call invitations, day and night. Signed in with the
// form, the join button does it.
async function onSignedIn({ resumed }) {
  const room = resumed ? startingRoom(new URLSearchParams(location.search).get("room")) : null;
  if (room) $("room").value = room;
  await loadRoomChoices();
  if (room) $("join-form").requestSubmit();
}

// A signed-in person (a host, a leader) picks a room by name: the roll-calls in their scope that
// are open and their scope's duty rooms (a spot-check on standby), or types a meeting room's name.
// A duty room's console has nothing to pick: it goes where the server sends it.
const OTHER_ROOM = "";
async function loadRoomChoices() {
  const device = Boolean(me && me.kind === "device");
  $("room-field").hidden = device;
  $("room-pick-field").hidden = true;
  if (!me || device) return;
  let rooms;
  try {
    rooms = await api("GET", "/api/console/rooms");
  } catch (err) {
    return; // the free-text field stays
  }
  const group = (label, items, text) => {
    const node = el("optgroup", { label: t(label) });
    node.dataset.i18nLabel = label;
    if (!items.length) node.append(el("option", { disabled: true, textContent: t("con_none") }));
    for (const item of items) node.append(el("option", { value: item.room, textContent: text(item) }));
    return node;
  };
  const other = el("option", { value: OTHER_ROOM, textContent: t("con_pick_other") });
  other.dataset.i18n = "con_pick_other";
  $("room-pick").replaceChildren(
    group("con_pick_rollcalls", rooms.rollcalls, (r) => `${r.title}（${t("con_phase_" + r.phase)}）`),
    group("con_pick_standby", rooms.standby, (r) => r.name),
    other);
  const current = $("room").value.trim();
  const known = [...$("room-pick").options].some((o) => o.value && o.value === current);
  const first = [...$("room-pick").options].find((o) => o.value && !o.disabled);
  $("room-pick").value = known ? current : current || !first ? OTHER_ROOM : first.value;
  pickRoom();
  $("room-pick-field").hidden = false;
}

function pickRoom() {
  const other = $("room-pick").value === OTHER_ROOM;
  $("room-field").hidden = !other;
  if (!other) $("room").value = $("room-pick").value;
}
$("room-pick").addEventListener("change", () => {
  pickRoom();
  if ($("room-pick").value === OTHER_ROOM) $("room").focus();
});

document.addEventListener("languagechange", () => {
  dutyConsole.ringer.relabel();
  dutyConsole.showRoomTitle();
  if (me && me.kind !== "device" && !$("room-pick-field").hidden) loadRoomChoices(); // its names, in the new language
  alerts.relabel();
  setStatus($("status").dataset.state || "idle");
  relabelTiles();
});

// A duty room's console that leaves or signs out drops off standby (and, signed out, needs a new
// link): it asks first, so a stray click at 3 a.m. does not take the room offline.
function confirmedOnConsole(key) {
  return !(me && me.kind === "device") || window.confirm(t(key));
}

$("sign-out").addEventListener("click", async () => {
  if (!confirmedOnConsole("con_confirm_sign_out")) return;
  dutyConsole.stop();
  await api("DELETE", "/api/session").catch(() => {});
  signedOut();
});

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("room").value.trim();
  if (!room || !me) return;
  localStorage.setItem("dutycall.room", room);
  $("join").hidden = true;
  $("leave").hidden = false;
  dutyConsole.start(room, me.name);
});

$("leave").addEventListener("click", () => {
  if (!confirmedOnConsole("con_confirm_leave")) return;
  dutyConsole.stop();
  $("join").hidden = false;
  $("leave").hidden = true;
});

setStatus("idle");
$("room").value = new URLSearchParams(location.search).get("room") || localStorage.getItem("dutycall.room") || "";
startPage("join-form", onSignedIn, () => {}, firstSession);
