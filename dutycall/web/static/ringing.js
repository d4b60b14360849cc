// Ringing and answering a roll-call's call: the alert with the room's rostered people as
// one-click answers, 其他人员 (someone else, by name), and the ring tone.
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
    $("ring").hidden = false;
    this.beep();
  }

  stop() {
    this.ringing = null;
    $("ring").hidden = true;
    if (this.beeper) clearInterval(this.beeper);
    this.beeper = null;
  }

  // The words the stylesheet shows when nobody is rostered, in the page's language.
  relabel() {
    $("rostered").dataset.none = t("ring_none");
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
    } catch (err) {
      showError(t("err_server") + err.message);
    } finally {
      this.answering = false;
    }
  }
}
