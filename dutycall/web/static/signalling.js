// The signalling client: one WebSocket to /ws, requests matched to their replies, events handed
// on, and reconnects with a backoff until the server says this session's access has ended.
// Protocol: docs/protocol.md.
"use strict";

// The server closes a socket with this code when its session no longer gives the same access
// (sign-out, revoked credential, password reset, deactivation, a changed role or unit).
const CLOSE_ACCESS_ENDED = 4001;

class Signalling {
  // hooks: onConnecting(), onOpen(ws), onEvent(msg), onDown() when a socket is lost,
  // stillSignedIn() -> Promise<boolean> (false only when the server says the session is over),
  // onAccessEnded() when it is.
  constructor(hooks) {
    this.hooks = hooks;
    this.ws = null;
    this.pending = new Map(); // request id -> {resolve, reject}
    this.nextId = 1;
    this.wanted = false;
    this.backoff = 500;
    this.opened = 0; // sockets opened so far (window.dutycallDebug reads it)
  }

  start() {
    this.wanted = true;
    if (!this.ws) this.connect();
  }

  stop() {
    this.wanted = false;
    const ws = this.ws;
    this.ws = null; // its close is ours: nothing to report, nothing to retry
    if (ws) ws.close();
    this.failPending();
  }

  // A join went through: the next loss starts the backoff over.
  joined() {
    this.backoff = 500;
  }

  connect() {
    this.hooks.onConnecting();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws?lang=${encodeURIComponent(LANG)}`);
    let opened = false;
    this.ws = ws;
    ws.onopen = () => {
      opened = true;
      this.opened += 1;
      this.hooks.onOpen(ws);
    };
    ws.onmessage = (event) => { if (ws === this.ws) this.receive(event.data); };
    ws.onclose = (event) => this.closed(ws, event.code, opened);
    ws.onerror = () => {};
  }

  async closed(ws, code, opened) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.failPending();
    this.hooks.onDown();
    if (!this.wanted) return;
    // Closed for ended access, or refused before it opened (401 when the session is gone):
    // ask whether we are still signed in before trying again, so that a console whose
    // credential was revoked stops instead of knocking at the server for ever. A 4001 for a
    // changed role or unit, with the session still good, reconnects as usual.
    if (code === CLOSE_ACCESS_ENDED || !opened) {
      const signedIn = await this.hooks.stillSignedIn();
      if (!this.wanted || this.ws) return; // stopped or restarted meanwhile
      if (!signedIn) {
        this.wanted = false;
        this.hooks.onAccessEnded();
        return;
      }
    }
    setTimeout(() => { if (this.wanted && !this.ws) this.connect(); }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, 5000);
  }

  // Every request still waiting for its reply fails (the socket is gone, or we left the room).
  failPending() {
    for (const { reject } of this.pending.values()) reject(new Error(t("err_connection_lost")));
    this.pending.clear();
  }

  // Sends a request and resolves with its reply (rejects with the server's error, or after 20 s).
  request(type, fields = {}) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new Error(t("err_not_connected")));
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(t("err_no_reply")));
      }, 20000);
      this.pending.set(id, {
        resolve: (msg) => { clearTimeout(timer); resolve(msg); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      });
      this.ws.send(JSON.stringify({ type, id, ...fields }));
    });
  }

  receive(text) {
    const msg = JSON.parse(text);
    if (msg.id !== undefined && this.pending.has(msg.id)) {
      const { resolve, reject } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.type === "error") {
        // The server says why in the page's language (/ws?lang=); the code is for code, not people.
        const error = new Error(msg.message || msg.code);
        error.code = msg.code;
        reject(error);
      } else {
        resolve(msg);
      }
      return;
    }
    this.hooks.onEvent(msg);
  }
}
