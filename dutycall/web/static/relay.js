// Relayed on-scene footage on a console (a duty room's, or a leader's): a host sends a live source
// of an incident to chosen consoles (`footage_relay` over the signalling socket; those sent while
// the console was away are fetched when it connects). Each relay opens a panel with the incident's
// title and level and plays the source, watched over the same socket (`relay_watch`: the server
// subscribes to that one source on this console's behalf); several panels at once. The panel
// closes when the relay stops (`footage_relay_ended`). Every text from the server is textContent.
"use strict";

class RelayPanels {
  constructor(request) {
    this.request = request; // the console's signalling request(type, fields)
    this.panels = new Map(); // relay_id -> { node, pc, video, state }
    this.iceServers = [];
    this.box = null;
  }

  container() {
    if (!this.box) {
      this.box = el("div", { id: "relays", className: "relays" });
      Object.assign(this.box.style, { position: "fixed", right: "12px", bottom: "12px", zIndex: 50,
        display: "flex", flexDirection: "column", gap: "8px", maxHeight: "95vh", overflowY: "auto" });
      document.body.append(this.box);
    }
    return this.box;
  }

  // When the console (re)connects: the relays sent to it that are still on.
  async load() {
    if (!me) return;
    // Only panels open before the request can be judged by its reply: a relay that starts while the
    // request is in flight arrives as an event and must not be closed by the older list.
    const before = new Set(this.panels.keys());
    let relays = [];
    try {
      relays = await api("GET", "/api/relays");
    } catch (err) {
      return;
    }
    const live = new Set(relays.map((r) => r.relay_id));
    for (const id of before) if (this.panels.has(id) && !live.has(id)) this.close(id);
    for (const relay of relays) {
      const panel = this.panels.get(relay.relay_id);
      if (!panel) this.show(relay);
      else this.watch(relay.relay_id); // the socket was new: watch again over it
    }
  }

  show(relay) {
    if (this.panels.has(relay.relay_id)) return;
    const level = t("alert_level_" + relay.level);
    const video = el("video", { autoplay: true, muted: true, playsInline: true });
    Object.assign(video.style, { width: "400px", maxWidth: "40vw", background: "#000", display: "block" });
    const state = el("p", { className: "relay-state", textContent: t("relay_connecting") });
    const close = el("button", { type: "button", className: "relay-close", textContent: t("relay_close") });
    close.addEventListener("click", () => this.close(relay.relay_id, true));
    const node = el("section", { className: "relay-panel", role: "region" },
      el("strong", { className: "relay-heading", textContent: t("relay_heading") }),
      el("h2", { className: "relay-title", textContent: relay.title }),
      el("p", { className: "relay-meta", textContent: [level.startsWith("alert_level_") ? relay.level : level,
        relay.source_label].filter(Boolean).join(" · ") }),
      video, state, close);
    Object.assign(node.style, { background: "#1d2733", color: "#fff", padding: "8px", borderRadius: "6px",
      border: "2px solid #d33" });
    node.dataset.relay = relay.relay_id;
    this.container().prepend(node);
    this.panels.set(relay.relay_id, { node, video, state, pc: null });
    this.watch(relay.relay_id);
  }

  async watch(relayId) {
    const panel = this.panels.get(relayId);
    if (!panel) return;
    if (panel.pc) panel.pc.close();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    panel.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.addEventListener("track", (event) => {
      stream.addTrack(event.track);
      panel.video.srcObject = stream;
      panel.state.textContent = "";
    });
    try {
      await makeOffer(pc);
      const reply = await this.request("relay_watch", { relay_id: relayId, sdp: pc.localDescription.sdp });
      if (panel.pc !== pc) return;
      await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    } catch (err) {
      if (panel.pc === pc) panel.state.textContent = err.message || String(err);
    }
  }

  // The watch ended but the relay may not have (our connection dropped): try again once it is on.
  watchEnded(msg) {
    const panel = this.panels.get(msg.relay_id);
    if (!panel || msg.reason === "relay_ended") return;
    panel.state.textContent = t("relay_connecting");
    setTimeout(() => this.watch(msg.relay_id), 2000);
  }

  close(relayId, asked = false) {
    const panel = this.panels.get(relayId);
    if (!panel) return;
    this.panels.delete(relayId);
    if (panel.pc) panel.pc.close();
    panel.node.remove();
    if (asked) this.request("relay_unwatch", { relay_id: relayId }).catch(() => {});
  }

  // The signalling socket went down: the watches went with it (panels stay; load() rewatches).
  disconnected() {
    for (const panel of this.panels.values()) {
      if (panel.pc) panel.pc.close();
      panel.pc = null;
      panel.state.textContent = t("relay_connecting");
    }
  }
}
