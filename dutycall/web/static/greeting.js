// A leadership greeting (慰问) on the duty-room console: the console rings briefly when a greeting
// pulls it in, then shows the leader full screen with sound; a room brought up to reply shows on
// the floor inset. console.js moves the console between rooms and calls these hooks; the
// server names the room and says what it is (room_info.kind "greeting"). No user text here goes
// through innerHTML: titles and names are set with textContent.
"use strict";

class GreetingView {
  constructor() {
    this.info = null; // the greeting's room_info while the console is in its room
    this.audio = null;
    this.soundTimer = null;
    this.participantId = null;
    this.box = el("div", { id: "greeting", className: "greeting", hidden: true });
    this.box.setAttribute("role", "status");
    this.heading = el("strong", { className: "greeting-title" });
    this.watchingEl = el("span", { className: "greeting-watching" });
    this.soundButton = el("button", { type: "button", id: "greeting-sound", className: "greeting-sound", hidden: true });
    this.soundButton.dataset.i18n = "gr_enable_sound";
    this.soundButton.addEventListener("click", () => this.enableSound());
    this.box.append(this.heading, this.watchingEl, this.soundButton);
    // Scheduled greetings of this duty room, shown while it waits on standby.
    this.upcoming = el("div", { id: "greeting-upcoming", className: "greeting-upcoming", hidden: true });
    this.upcomingList = [];
    document.body.append(this.box, this.upcoming);
    this.relabel();
  }

  // A greeting asks this console in: a short ring (two tones), then console.js moves it there.
  invited(msg) {
    this.title = msg.title || "";
    this.leader = msg.leader || "";
    this.ring();
  }

  ring() {
    try {
      const context = this.audio || (this.audio = new AudioContext());
      for (const offset of [0, 0.5]) {
        const osc = context.createOscillator();
        const gain = context.createGain();
        osc.frequency.value = 660;
        gain.gain.value = 0.2;
        osc.connect(gain).connect(context.destination);
        osc.start(context.currentTime + offset);
        osc.stop(context.currentTime + offset + 0.3);
      }
    } catch (err) {
      /* no audio device: the picture still comes */
    }
  }

  // Called by console.js with what the server said of each room joined (null: not a managed room).
  entered(roomInfo, participantId) {
    this.participantId = participantId;
    if (!roomInfo || roomInfo.kind !== "greeting") {
      this.left();
      if (roomInfo && roomInfo.kind === "standby") this.loadUpcoming();
      return;
    }
    this.upcoming.hidden = true;
    this.info = roomInfo;
    this.title = roomInfo.title || this.title || "";
    this.leader = roomInfo.leader || this.leader || "";
    document.body.dataset.greeting = "";
    this.box.hidden = false;
    this.watchingEl.textContent = "";
    this.relabel();
    // Autoplay with sound may be refused (no gesture on this page yet): offer one click.
    if (!this.soundTimer) this.soundTimer = setInterval(() => this.checkSound(), 1000);
  }

  // What the server named to watch: with a recorded video, it is full screen and the leader (if
  // there too) an inset.
  sources(sources) {
    const media = [...sources.values()].some((s) => s.source === "media");
    if (media) document.body.dataset.greetingMedia = "";
    else delete document.body.dataset.greetingMedia;
  }

  left() {
    this.info = null;
    delete document.body.dataset.greeting;
    delete document.body.dataset.greetingMedia;
    delete document.body.dataset.greetingFloor;
    this.box.hidden = true;
    this.soundButton.hidden = true;
    if (this.soundTimer) clearInterval(this.soundTimer);
    this.soundTimer = null;
  }

  inGreeting(greetingId) {
    return Boolean(this.info && (greetingId === undefined || this.info.greeting_id === greetingId));
  }

  watching(msg) {
    if (!this.inGreeting(msg.greeting_id)) return;
    this.watchingEl.dataset.count = msg.watching;
    this.watchingEl.dataset.targets = msg.targets;
    this.relabel();
  }

  // A room replies (dutyRoomId) or the floor returns to the leader (null). Our own room's reply
  // is not played back to us (it would echo through the microphone).
  floor(msg, ownRoomId) {
    if (!this.inGreeting(msg.greeting_id)) return;
    if (msg.duty_room_id === null || msg.duty_room_id === undefined) delete document.body.dataset.greetingFloor;
    else document.body.dataset.greetingFloor = msg.duty_room_id;
    const floorVideo = document.querySelector(".tile[data-floor-tile] video");
    if (floorVideo) floorVideo.muted = msg.duty_room_id === ownRoomId;
  }

  // The greeting's picture: a source the server named (its video first, else the leader's).
  leaderVideo() {
    return document.querySelector('.tile[data-greeting-source="media"] video') ||
      document.querySelector(".tile[data-publication-id]:not([data-duty-room-id]) video");
  }

  checkSound() {
    const video = this.leaderVideo();
    this.soundButton.hidden = !(video && (video.muted || video.paused));
  }

  enableSound() {
    for (const video of document.querySelectorAll(".tile:not([data-local]) video")) {
      if (video.closest("[data-floor-tile]") && document.body.dataset.greetingFloor === String(dutyRoomOfMe())) continue;
      video.muted = false;
      video.play().catch(() => {});
    }
    if (this.audio && this.audio.state === "suspended") this.audio.resume().catch(() => {});
    this.checkSound();
  }

  async loadUpcoming() {
    try {
      this.upcomingList = (await api("GET", "/api/greetings/upcoming")).filter((g) => g.status === "scheduled" && g.scheduled_at);
    } catch (err) {
      this.upcomingList = [];
    }
    this.relabel();
  }

  relabel() {
    this.upcoming.hidden = !this.upcomingList.length || Boolean(this.info);
    this.upcoming.textContent = this.upcomingList.length ? t("gr_upcoming") + this.upcomingList.map(
      (g) => `${zonedTime(g.scheduled_at, { dateStyle: "short", timeStyle: "short" })} ${g.leader} ${g.title}`).join("；") : "";
    this.heading.textContent = t("gr_console_title").replace("{leader}", this.leader || "").replace("{title}", this.title || "");
    this.soundButton.textContent = t("gr_enable_sound");
    const count = this.watchingEl.dataset.count;
    this.watchingEl.textContent = count === undefined ? "" :
      t("gr_watching").replace("{n}", count).replace("{total}", this.watchingEl.dataset.targets);
  }
}

// The duty room this console is signed in for (null for a person's account).
function dutyRoomOfMe() {
  return (me && me.duty_room_id) || null;
}

const greetingView = new GreetingView();
