// Ringing and answering a roll-call's call: the alert with the room's rostered people as
// one-click answers, 其他人员 (someone else, by name), the ring tone and a countdown of the answer
// window; afterwards the console says how it went: 已应答 with the time (the deployment's zone)
// and who, or 未应答.
"use strict";

// What a typed name may not hold (the server checks the same, and more): control characters,
// line breaks and the bidirectional overrides that make a name read backwards.
const UNSAFE_NAME = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ufffe\uffff]/;

class Ringer {
  // request(type, fields) -> Promise<reply>: the signalling client's.
  constructor(request) {
    this.request = request;
    this.ringing = null; // the roll-call calling us, while it rings
    this.answering = false;
    this.beeper = null;
    this.audio = null;
    this.counter = null; // the countdown's interval
    this.stoppedWhileAnswering = false; // the server stopped ringing while our answer was in flight
    this.outcome = null; // { state: "answered" | "missed", time, who }: shown until the next ring
    $("other-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.answer($("other-name").value);
    });
    this.relabel();
  }

  ring(msg) {
    this.ringing = msg.roll_call_id;
    // Whoever is rostered in this room for the shift answers with one click; anyone else types a name.
    const people = Array.isArray(msg.rostered) ? msg.rostered : [];
    $("rostered").replaceChildren(...people.map((person) => {
      const role = el("span", { className: "role" });
      role.dataset.i18n = person.role === "leader" ? "ring_leader" : "ring_officer";
      role.textContent = t(role.dataset.i18n);
      const button = el("button", { type: "button", className: "answer-as" }, person.name, role);
      button.dataset.name = person.name;
      button.addEventListener("click", () => this.answer(person.name));
      return button;
    }));
    this.relabel();
    $("other-name").value = "";
    this.stoppedWhileAnswering = false;
    this.showOutcome(null);
    $("ring").hidden = false;
    this.countdown(Number(msg.answer_window) || 0);
    this.beep();
  }

  // Seconds left to answer, counted down on the alert (the server's window decides; this shows it).
  countdown(seconds) {
    if (this.counter) clearInterval(this.counter);
    const until = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      $("ring-countdown").dataset.left = String(left);
      $("ring-countdown").textContent = t("ring_countdown").replace("{n}", String(left));
    };
    tick();
    this.counter = seconds > 0 ? setInterval(tick, 500) : null;
    $("ring-countdown").hidden = seconds <= 0;
  }

  // The alert goes (answered, or the console leaves); nothing is said about the outcome.
  stop() {
    this.ringing = null;
    $("ring").hidden = true;
    if (this.beeper) clearInterval(this.beeper);
    this.beeper = null;
    if (this.counter) clearInterval(this.counter);
    this.counter = null;
  }

  // The server stopped ringing us (rollcall_ring_stop, or the roll-call ended): unless our
  // answer is on its way (its reply decides), the call was missed.
  stopped() {
    if (this.ringing === null) return;
    if (this.answering) {
      this.stoppedWhileAnswering = true;
      return;
    }
    this.stop();
    this.showOutcome({ state: "missed" });
  }

  // 已应答 23:39:49（张三） or 未应答, in the page's language; null hides it.
  showOutcome(outcome) {
    this.outcome = outcome;
    const line = $("answer-state");
    line.hidden = !outcome;
    if (!outcome) return;
    line.dataset.state = outcome.state;
    line.textContent = outcome.state === "answered"
      ? t("con_answered_at").replace("{time}", outcome.time).replace("{who}", outcome.who)
      : t("con_missed");
  }

  // The words the stylesheet shows when nobody is rostered, in the page's language.
  relabel() {
    $("rostered").dataset.none = t("ring_none");
    if (this.outcome) this.showOutcome(this.outcome);
    if (this.ringing !== null && $("ring-countdown").dataset.left !== undefined) {
      $("ring-countdown").textContent = t("ring_countdown").replace("{n}", $("ring-countdown").dataset.left);
    }
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
      this.stop();
      showError("");
      this.showOutcome({ state: "answered", time: zonedTime(Date.now(), { timeStyle: "medium" }), who: officer });
    } catch (err) {
      if (this.stoppedWhileAnswering) {
        // Too late: the window closed (or the roll-call ended) while the answer was on its way.
        this.stop();
        this.showOutcome({ state: "missed" });
      } else {
        showError(t("err_server") + err.message);
      }
    } finally {
      this.answering = false;
    }
  }
}
