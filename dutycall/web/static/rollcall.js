// The host's roll-call page: pick rooms, run the roll-call, watch the live board. The board is
// pushed: the page follows the roll-call over the signalling socket (`rollcall_follow`, then a
// `rollcall_board` event after every change; docs/protocol.md) and reads it over HTTP only when
// a roll-call is opened, or while the socket is down.
"use strict";

let current = null; // roll-call id
let following = false; // the socket follows `current`: its events keep the board up to date

// The signalling socket, opened once signed in; it follows the current roll-call on every
// (re)connect, and the follow's reply carries the board as it is then.
const socket = new Signalling({
  onConnecting: () => {},
  onOpen: () => follow(),
  onEvent: (msg) => {
    if (msg.type === "rollcall_board" && msg.roll_call_id === current) render(msg.board);
  },
  onDown: () => { following = false; },
  stillSignedIn: async () => {
    try {
      acceptSession(await api("GET", "/api/me"));
      return true;
    } catch (err) {
      return err.status !== 401;
    }
  },
  onAccessEnded: () => showSignInForm("host"),
});

async function follow() {
  const id = current;
  if (id === null || !socket.ws || socket.ws.readyState !== WebSocket.OPEN) return;
  following = false;
  try {
    const reply = await socket.request("rollcall_follow", { roll_call_id: id });
    if (id !== current) return;
    following = true;
    render(reply.board);
  } catch (err) {
    if (id === current) showError(err.message);
  }
}

// Open roll-call `id`: read its board once, then follow it.
async function open(id) {
  current = id;
  following = false;
  await refresh();
  await follow();
}

async function loadRooms() {
  const rooms = await api("GET", "/api/rooms");
  $("room-picker").replaceChildren(...rooms.map((room) => el("label", {},
    el("input", { type: "checkbox", value: room.id, checked: true, className: "pick" }), ` ${room.name}　`)));
}

async function command(action, body = {}) {
  try {
    const board = await api("POST", `/api/rollcalls/${current}/${action}`, body);
    // While following, the pushed board (read after the commit) is at least as new as this
    // reply (read before it); render the reply only when no push will come.
    if (!following) render(board);
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

function render(board) {
  $("board-section").hidden = false;
  $("phase").textContent = `（${t("ph_" + board.phase)}）`;
  $("phase").dataset.phase = board.phase;
  $("sheet-csv").href = `/api/rollcalls/${board.id}/sheet.csv`;
  $("sheet-xlsx").href = `/api/rollcalls/${board.id}/sheet.xlsx`;
  $("sheet-pdf").href = `/api/rollcalls/${board.id}/sheet.pdf`;
  $("board").querySelector("tbody").replaceChildren(...board.rooms.map((room) => {
    const actions = el("td", {},
      el("button", { textContent: t("rc_call"), className: "call", onclick: () => command("call", { room_id: room.duty_room_id }) }),
      el("button", { textContent: t("rc_excuse"), className: "excuse", onclick: () => {
        const reason = prompt(t("rc_reason"));
        if (reason) command("excuse", { room_id: room.duty_room_id, reason });
      } }));
    const row = el("tr", { className: board.current === room.duty_room_id ? "calling" : "" },
      el("td", { textContent: room.name }),
      el("td", { textContent: t("st_" + room.status), className: "status" }),
      el("td", { textContent: room.connected ? t("yes") : t("no") }),
      el("td", { textContent: room.officer || "", className: "officer" }),
      // Whether the person who answered is on the room's roster for the day (blank: no roster, no answer).
      el("td", { textContent: room.on_roster === true ? t("yes") : room.on_roster === false ? t("no") : "",
                 className: "on-roster" }),
      el("td", { textContent: room.evidence ? t("ev_" + room.evidence) : "" }),
      actions);
    row.dataset.roomId = room.duty_room_id;
    row.dataset.status = room.status;
    return row;
  }));
}

async function refresh() {
  if (current === null) return;
  try {
    render(await api("GET", `/api/rollcalls/${current}`));
  } catch (err) {
    showError(err.message);
  }
}

$("new-rollcall").addEventListener("submit", async (event) => {
  event.preventDefault();
  const roomIds = [...document.querySelectorAll(".pick:checked")].map((box) => Number(box.value));
  try {
    const created = await api("POST", "/api/rollcalls", {
      title: $("rc-name").value, room_ids: roomIds,
      answer_window: Number($("rc-window").value), late_after: Number($("rc-late").value),
    });
    history.replaceState(null, "", `?id=${created.id}`);
    await open(created.id);
  } catch (err) {
    showError(err.message);
  }
});

for (const button of document.querySelectorAll(".controls button")) {
  button.addEventListener("click", () => {
    const action = button.dataset.action;
    if (action === "poll") {
      const dwell = Number(prompt(t("rc_dwell"), "10"));
      if (dwell > 0) command("poll", { dwell });
    } else {
      command(action);
    }
  });
}

startPage("host", async () => {
  socket.start();
  await loadRooms();
  const id = new URLSearchParams(location.search).get("id");
  if (id) await open(Number(id)); // a reload lands back on the board it showed
}, refresh);

// Tests and whoever debugs the page: how many sockets it opened, whether it follows the board.
window.dutycallDebug = { socketsOpened: () => socket.opened, following: () => following };
