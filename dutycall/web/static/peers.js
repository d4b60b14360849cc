// The console's peer connections: the one registry of RTCPeerConnections, the one publication
// (camera and microphone) and the subscriptions (one per picture watched, or in a roll-call one
// floor subscription that shows whoever is called).
"use strict";

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

// An offer with its ICE candidates gathered (no trickle: the server answers once).
async function makeOffer(pc) {
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIceGathering(pc);
  return pc.localDescription.sdp;
}

// What removes a publication of ours on purpose (a move publishes in the next room itself).
const OUR_REMOVALS = ["unpublished", "left", "disconnected", "room_closed"];

class Peers {
  // request(type, fields) -> Promise<reply>: the signalling client's.
  // hooks: wanted() (is the console still meant to be connected), startProfile() (the profile a
  // new publication starts with), onPublicationState(state) (for the console's own tile).
  constructor(request, hooks) {
    this.request = request;
    this.hooks = hooks;
    this.iceServers = [];
    this.all = new Set(); // every RTCPeerConnection made and not yet closed
    this.stream = null; // what we publish, when we have a camera or microphone
    this.publication = null; // {pc, id}: the one publishing connection, once the server has it
    this.publishing = null; // the publish in flight (one at a time)
    this.subscriptions = new Map(); // publication_id (or "floor") -> {pc, tile, subscriptionId}
    this.profile = undefined; // the publish profile asked for last
    this.profileError = null; // why it could not be applied, if it could not
    // Bumped whenever the console leaves its room: anything begun before is stale and undone.
    this.epoch = 0;
  }

  newPeer(role) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    pc.dutycallRole = role;
    this.all.add(pc);
    return pc;
  }

  closePeer(pc) {
    if (!pc) return;
    // Its handlers go first: a connection we closed must not touch the tiles or republish.
    pc.onconnectionstatechange = null;
    pc.ontrack = null;
    this.all.delete(pc);
    try { pc.close(); } catch (err) { /* already closed */ }
  }

  // What each RTCPeerConnection still open is for ("publish", "floor", "subscribe").
  openRoles() {
    return [...this.all].filter((pc) => pc.signalingState !== "closed").map((pc) => pc.dutycallRole);
  }

  // Leaving the room (or losing the socket): every connection goes, and whatever is in flight
  // sees the new epoch and undoes itself.
  closeAll() {
    this.epoch += 1;
    if (this.publication) this.closePeer(this.publication.pc);
    this.publication = null;
    this.publishing = null; // a publish in flight sees the new epoch and closes its own connection
    for (const id of [...this.subscriptions.keys()]) this.drop(id);
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
      this.hooks.onPublicationState(pc.connectionState);
      if (pc.connectionState === "failed") {
        // ICE failed while signalling is up: start the publication over.
        this.request("unpublish", { publication_id: this.publication.id }).catch(() => {});
        this.closePeer(pc);
        this.publication = null;
        if (this.hooks.wanted()) this.publish().catch(() => {});
      }
    };
    const stale = () => epoch !== this.epoch || !this.hooks.wanted();
    try {
      const sdp = await makeOffer(pc);
      if (stale()) throw new Error("moved on");
      // Requests on one socket are handled in order: if we leave meanwhile, the server drops
      // this publication with the room.
      const reply = await this.request("publish", { sdp, label: "camera" });
      if (stale()) throw new Error("moved on");
      await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
      if (stale()) throw new Error("moved on");
      this.publication = { pc, id: reply.publication_id };
    } catch (err) {
      this.closePeer(pc);
      if (stale()) return;
      throw err;
    }
    this.hooks.onPublicationState(pc.connectionState);
    await this.applyProfile(this.hooks.startProfile());
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

  // The server removed a publication: ours (publish again unless we removed it ourselves), or
  // one we watch (its tile goes).
  publicationRemoved(msg) {
    if (this.publication && msg.publication_id === this.publication.id) {
      this.closePeer(this.publication.pc);
      this.publication = null;
      // The server dropped it (media stalled, connection failed): publish again. Not when we
      // left the room (a move publishes in the next room itself) or unpublished it ourselves.
      if (this.hooks.wanted() && this.stream && !OUR_REMOVALS.includes(msg.reason)) this.publish().catch(() => {});
    } else {
      this.drop(msg.publication_id);
    }
  }

  // The floor subscription: one tile showing whoever the roll-call has called. Its tile is made
  // at once (before the first await), so showFloor() can name it while it connects.
  async subscribeFloor() {
    const id = "floor";
    if (this.subscriptions.has(id)) return;
    const tile = new Tile(id, "—", false);
    tile.el.dataset.floorTile = "";
    await this.receive(id, tile, ["audio", "video"], (sdp) => this.request("subscribe_floor", { sdp }), "floor");
  }

  // Shows who has the floor on the floor tile, if there is one (dutyRoomId null: nobody).
  showFloor(dutyRoomId, name) {
    const entry = this.subscriptions.get("floor");
    if (!entry) return;
    entry.tile.nameEl.textContent = name;
    entry.tile.el.dataset.floorRoomId = dutyRoomId === null ? "" : dutyRoomId;
    if (dutyRoomId === null) entry.tile.el.dataset.floorEmpty = "";
    else delete entry.tile.el.dataset.floorEmpty;
  }

  // Watches one publication; `dutyRoomId` marks the tile of a duty room's console.
  async subscribe(publication, dutyRoomId) {
    const id = publication.publication_id;
    if (this.subscriptions.has(id)) return;
    const tile = new Tile(id, publication.name, false);
    tile.el.dataset.publicationId = id;
    if (dutyRoomId !== undefined) tile.el.dataset.dutyRoomId = dutyRoomId;
    await this.receive(id, tile, publication.kinds,
      (sdp) => this.request("subscribe", { publication_id: id, sdp }), "subscribe");
  }

  // A receiving connection for `tile`, negotiated through `ask(sdp)`; dropped if that fails.
  async receive(id, tile, kinds, ask, role) {
    const pc = this.newPeer(role);
    const entry = { pc, tile, subscriptionId: null };
    this.subscriptions.set(id, entry);
    for (const kind of kinds) pc.addTransceiver(kind, { direction: "recvonly" });
    const stream = new MediaStream();
    pc.ontrack = (event) => {
      stream.addTrack(event.track);
      tile.show(stream);
    };
    pc.onconnectionstatechange = () => tile.setState(pc.connectionState);
    try {
      const reply = await ask(await makeOffer(pc));
      entry.subscriptionId = reply.subscription_id;
      await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    } catch (err) {
      if (this.subscriptions.get(id) === entry) this.drop(id);
    }
  }

  drop(id) {
    const entry = this.subscriptions.get(id);
    if (!entry) return;
    this.subscriptions.delete(id);
    this.closePeer(entry.pc);
    entry.tile.remove();
  }
}
