// The console's video grid: one tile per picture (its own camera, each subscription, the floor),
// with a name and a connection state in the page's language.
"use strict";

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
    this.local = local;
    this.setName(name);
    this.stateEl = document.createElement("span");
    this.stateEl.className = "state";
    label.append(this.nameEl, this.stateEl);
    this.el.append(this.video, label);
    $("tiles").append(this.el);
    this.setState("new");
  }

  // The name shown (the console's own tile says it is this console's).
  setName(name) {
    this.nameEl.textContent = this.local ? `${name}（${t("me")}）` : name;
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

// Outlines the tiles of the duty room that has the floor (null: nobody has it).
function markFloorTiles(dutyRoomId) {
  for (const tile of document.querySelectorAll(".tile")) delete tile.dataset.floor;
  if (dutyRoomId === null || dutyRoomId === undefined) return;
  for (const tile of document.querySelectorAll(`.tile[data-duty-room-id="${dutyRoomId}"]`)) tile.dataset.floor = "";
}

// Every tile's state again, in the language just chosen.
function relabelTiles() {
  for (const tile of document.querySelectorAll(".tile")) {
    const state = tile.querySelector(".state");
    state.textContent = t("state_" + state.dataset.state);
  }
}
