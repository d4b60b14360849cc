// The host's roll-call page: pick rooms, run the roll-call, watch the live board.
"use strict";

let current = null; // roll-call id
let timer = null;

async function loadRooms() {
  const rooms = await api("GET", "/api/rooms");
  $("room-picker").replaceChildren(...rooms.map((room) => el("label", {},
    el("input", { type: "checkbox", value: room.id, checked: true, className: "pick" }), ` ${room.name}　`)));
}

async function command(action, body = {}) {
  try {
    render(await api("POST", `/api/rollcalls/${current}/${action}`, body));
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
    current = created.id;
    history.replaceState(null, "", `?id=${current}`);
    await refresh();
    clearInterval(timer);
    timer = setInterval(refresh, 1000); // the live board
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
  await loadRooms();
  const id = new URLSearchParams(location.search).get("id");
  if (id) {
    current = Number(id);
    await refresh();
    timer = setInterval(refresh, 1000);
  }
}, refresh);
