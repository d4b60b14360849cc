// Incident alerts on a duty room's console: a new report or a leader's instruction is shown at
// once, with a tone, until someone in the room clicks 确认收到 (the server records the click).
// New alerts come over the signalling socket (`incident_alert`); those raised while the console
// was away are fetched when it (re)connects. Every text from the server goes in as textContent.
"use strict";

class IncidentAlerts {
  constructor() {
    this.cards = new Map(); // receipt_id -> card element
    this.audio = null;
    this.beeper = null;
  }

  // A console only: the unacknowledged alerts of the last days.
  async load() {
    if (!me || me.kind !== "device") return;
    try {
      const pending = await api("GET", "/api/alerts");
      for (const alert of pending.reverse()) this.show(alert);
    } catch (err) {
      /* shown again on the next connect; a live alert still arrives over the socket */
    }
  }

  show(alert) {
    if (alert.acknowledged_at || this.cards.has(alert.receipt_id)) return;
    const box = $("alerts");
    const kind = alert.kind === "instruction" ? t("alert_instruction")
      : (alert.stage_code === "followup" ? t("alert_followup").replace("{n}", alert.number)
        : t("alert_stage_" + (alert.stage_code || "initial")));
    const level = t("alert_level_" + alert.level_code) || alert.level;
    const category = t("alert_category_" + alert.category_code) || alert.category;
    const card = el("section", { className: "alert", role: "alertdialog" },
      el("strong", { className: "alert-kind", textContent: kind }),
      el("h2", { className: "alert-title", textContent: alert.title }),
      el("p", { className: "alert-meta", textContent: [category, level, alert.unit, alertTime(alert.at)]
        .filter(Boolean).join(" · ") }),
      el("p", { className: "alert-text", textContent: alert.text || "" }),
      el("p", { className: "alert-from", textContent: t("alert_from") + (alert.from || "") }));
    card.dataset.receipt = alert.receipt_id;
    const button = el("button", { type: "button", className: "alert-ack", textContent: t("alert_ack") });
    button.addEventListener("click", () => this.acknowledge(alert.receipt_id, button));
    card.append(button);
    box.prepend(card);
    box.hidden = false;
    this.cards.set(alert.receipt_id, card);
    this.beep();
  }

  async acknowledge(receiptId, button) {
    button.disabled = true;
    try {
      await api("POST", `/api/alerts/${receiptId}/acknowledge`);
      const card = this.cards.get(receiptId);
      if (card) card.remove();
      this.cards.delete(receiptId);
      if (this.cards.size === 0) {
        $("alerts").hidden = true;
        this.quiet();
      }
    } catch (err) {
      button.disabled = false;
      showError(t("err_server") + err.message);
    }
  }

  relabel() {
    for (const card of this.cards.values()) card.querySelector(".alert-ack").textContent = t("alert_ack");
  }

  // Two short high tones every three seconds while an alert waits: unlike the roll-call ring.
  beep() {
    try {
      const context = this.audio || (this.audio = new AudioContext());
      const once = () => {
        for (const offset of [0, 0.25]) {
          const osc = context.createOscillator();
          const gain = context.createGain();
          osc.frequency.value = 1320;
          gain.gain.value = 0.2;
          osc.connect(gain).connect(context.destination);
          osc.start(context.currentTime + offset);
          osc.stop(context.currentTime + offset + 0.15);
        }
      };
      once();
      if (!this.beeper) this.beeper = setInterval(once, 3000);
    } catch (err) {
      /* no audio device: the visible alert remains */
    }
  }

  quiet() {
    if (this.beeper) clearInterval(this.beeper);
    this.beeper = null;
  }
}

// An instant as the duty room reads it, to the minute, in the deployment's zone (common.js).
function alertTime(iso) {
  if (!iso) return "";
  return zonedTime(iso, { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}
