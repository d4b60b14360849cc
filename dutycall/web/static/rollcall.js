// The host's roll-call page: pick rooms (unit tree, search, saved groups) with a live pre-check,
// run the roll-call on its board, plan weekly/monthly roll-calls, and open past ones.
//
// The board is pushed: the page follows the roll-call over the signalling socket
// (`rollcall_follow`, then a `rollcall_board` event after every change, presence included;
// docs/protocol.md) and reads it over HTTP only when a roll-call is opened. The roll-call shown
// is in the address (?id=N), so a reload lands back on it with its state from the server.
// Buttons follow the signed-in principal's permissions (GET /api/me) and the roll-call's phase.
"use strict";

let current = null; // roll-call id shown on the board
let following = false; // the socket follows `current`: its events keep the board up to date
let lastBoard = null;
let tree = null; // {units, rooms} of the picker
const picked = new Set(); // duty room ids ticked in the picker
let groups = [];
let plans = [];
let editingPlan = null; // the plan being edited, or null for a new one
let preview = null; // the last schedule preview: {dtstart, rrule, next}
let precheckTimer = null;
let precheckSeq = 0;
let precheckRooms = new Map(); // duty room id -> {duty_room_id, name, ready, problems}: what the pre-check shows

// The pre-check is pushed over the socket (rollcall_precheck); read over HTTP this often only
// while the socket is down.
const PRECHECK_FALLBACK_MS = 15000;
const WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
const KINDS = ["district", "street", "agency", "enterprise"];
// What each phase lets a host do (machine.TRANSITIONS); a finished roll-call offers nothing.
const PHASE_ACTIONS = {
  scheduled: ["start", "cancel"],
  running: ["call", "skip", "poll", "stop_poll", "finish", "cancel"],
  interrupted: ["start", "finish", "cancel"],
  finished: [], cancelled: [],
};

const may = (permission) => !!(me && me.permissions && me.permissions.includes(permission));
const isHost = () => may("rollcall.host");

// "{name}" placeholders of a translated text.
function fmt(key, params = {}) {
  return t(key).replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

// An instant as the deployment's wall-clock time ("YYYY-MM-DD HH:MM", --timezone; i18n.js), not
// the browser's.
function localTime(iso) {
  return zonedStamp(iso);
}

function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`;
}

// A table body's rows, or one cell saying 暂无.
function fillTable(table, rows) {
  const body = table.querySelector("tbody");
  if (rows.length) {
    body.replaceChildren(...rows);
  } else {
    const columns = table.querySelectorAll("thead th").length;
    body.replaceChildren(el("tr", { className: "empty" }, el("td", { colSpan: columns, textContent: t("rp_empty") })));
  }
}

// A cell with its column's label (shown beside the value on a phone, where rows become cards).
function cell(table, index, props = {}, ...children) {
  const heading = table.querySelectorAll("thead th")[index];
  const td = el("td", props, ...children);
  if (heading) td.dataset.label = heading.textContent;
  return td;
}

function confirmed(text) {
  return window.confirm(text);
}

// -- the signalling socket and the board --------------------------------------------------------

const socket = new Signalling({
  onConnecting: () => {},
  onOpen: () => { follow(); if (tree) precheck(); },
  onEvent: (msg) => {
    if (msg.type === "rollcall_board" && msg.roll_call_id === current) render(msg.board);
    if (msg.type === "rollcall_precheck") precheckChanged(msg.rooms);
  },
  onDown: () => {
    following = false;
    if (tree) precheck(); // read over HTTP, slowly, until the socket is back
  },
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

// Open roll-call `id`: read its board once, then follow it; the address names it.
async function open(id) {
  current = id;
  following = false;
  lastBoard = null;
  const url = new URL(location.href);
  url.searchParams.set("id", String(id));
  history.replaceState(null, "", url);
  try {
    render(await api("GET", `/api/rollcalls/${id}`));
  } catch (err) {
    showError(err.message);
    return;
  }
  await follow();
  $("board-section").scrollIntoView({ block: "start" });
}

function closeBoard() {
  current = null;
  following = false;
  lastBoard = null;
  $("board-section").hidden = true;
  const url = new URL(location.href);
  url.searchParams.delete("id");
  history.replaceState(null, "", url);
  loadHistory();
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

// What the 在线 column says: the pre-check's answer for the room (connected anywhere, camera and
// microphone delivering), and whether its console is in the roll-call's room already.
function presence(room) {
  const problems = room.problems || [];
  if (problems.includes("offline")) return { key: "offline", text: t("rp_offline") };
  const parts = [room.connected ? t("rp_in_room") : t("yes")];
  for (const problem of problems) parts.push(t("rp_" + problem));
  return { key: room.connected ? "in_room" : problems.length ? "degraded" : "ready", text: parts.join(" · ") };
}

function render(board) {
  // A roll-call that starts or ends changes its line in the history below.
  if (lastBoard && lastBoard.id === board.id && lastBoard.phase !== board.phase) loadHistory();
  lastBoard = board;
  const table = $("board");
  $("board-section").hidden = false;
  $("board-title").textContent = board.title;
  $("phase").textContent = `（${t("ph_" + board.phase)}）`;
  $("phase").dataset.phase = board.phase;
  $("sheet-csv").href = `/api/rollcalls/${board.id}/sheet.csv`;
  $("sheet-xlsx").href = `/api/rollcalls/${board.id}/sheet.xlsx`;
  $("sheet-pdf").href = `/api/rollcalls/${board.id}/sheet.pdf`;
  $("command-link").href = `/command?rollcall=${board.id}`;
  const host = isHost();
  const allowed = host ? PHASE_ACTIONS[board.phase] || [] : [];
  for (const button of document.querySelectorAll(".controls button[data-action]")) {
    const action = button.dataset.action;
    let shown = allowed.includes(action);
    if (action === "poll") shown = shown && !board.polling;
    if (action === "stop_poll") shown = shown && board.polling;
    button.hidden = !shown;
  }
  const running = board.phase === "running";
  const counts = {};
  for (const room of board.rooms) counts[room.status] = (counts[room.status] || 0) + 1;
  const online = board.rooms.filter((room) => !(room.problems || []).includes("offline")).length;
  updateHistoryRates(board, counts);
  $("board-summary").textContent = fmt("rp_board_summary", {
    total: board.rooms.length, online, answered: (counts.on_time || 0) + (counts.late || 0),
    late: counts.late || 0, absent: (counts.absent || 0) + (counts.offline || 0),
  });
  fillTable(table, board.rooms.map((room) => {
    const actions = cell(table, 6);
    if (host && running && ["pending", "absent", "offline", "not_called"].includes(room.status)) {
      actions.append(el("button", { type: "button", textContent: t("rc_call"), className: "call",
        onclick: () => command("call", { room_id: room.duty_room_id }) }));
    }
    if (host && (running || board.phase === "scheduled" || board.phase === "interrupted")
        && !["on_time", "late", "excused"].includes(room.status)) {
      actions.append(el("button", { type: "button", textContent: t("rc_excuse"), className: "excuse", onclick: () => {
        const reason = prompt(t("rc_reason"));
        if (reason) command("excuse", { room_id: room.duty_room_id, reason });
      } }));
    }
    const shown = presence(room);
    const row = el("tr", { className: board.current === room.duty_room_id ? "calling" : "" },
      cell(table, 0, { textContent: room.name, className: "name" }),
      cell(table, 1, { textContent: t("st_" + room.status), className: "status" }),
      cell(table, 2, { textContent: shown.text, className: "presence" }),
      cell(table, 3, { textContent: room.officer || "", className: "officer" }),
      // Whether the person who answered is on the room's roster for the day (blank: no roster, no answer).
      cell(table, 4, { textContent: room.on_roster === true ? t("yes") : room.on_roster === false ? t("no") : "",
                       className: "on-roster" }),
      cell(table, 5, { textContent: room.evidence ? t("ev_" + room.evidence) : "" }),
      actions);
    row.dataset.roomId = room.duty_room_id;
    row.dataset.status = room.status;
    row.dataset.presence = shown.key;
    return row;
  }));
}

for (const button of document.querySelectorAll(".controls button[data-action]")) {
  button.addEventListener("click", () => {
    const action = button.dataset.action;
    if (action === "poll") {
      const dwell = Number(prompt(t("rc_dwell"), "10"));
      if (dwell > 0) command("poll", { dwell });
    } else if (action === "finish") {
      if (confirmed(t("rp_confirm_finish"))) command("finish");
    } else if (action === "cancel") {
      if (confirmed(t("rp_confirm_cancel"))) command("cancel");
    } else {
      command(action);
    }
  });
}
$("close-board").addEventListener("click", closeBoard);

// -- the room picker: the unit tree, search, all/none per branch, saved groups -------------------

function unitChildren() {
  const children = new Map();
  for (const unit of tree.units) {
    const list = children.get(unit.parent_id) || [];
    list.push(unit);
    children.set(unit.parent_id, list);
  }
  return children;
}

function roomsByUnit() {
  const rooms = new Map();
  for (const room of tree.rooms) {
    const list = rooms.get(room.unit_id) || [];
    list.push(room);
    rooms.set(room.unit_id, list);
  }
  return rooms;
}

// Every room id under a unit's <details>.
function branchBoxes(details) {
  return [...details.querySelectorAll("input.pick")];
}

function renderPicker() {
  const children = unitChildren();
  const rooms = roomsByUnit();
  function branch(unit, depth) {
    const box = el("input", { type: "checkbox", className: "branch" });
    box.dataset.unitId = unit.id;
    // Ticking the box picks the branch; clicking the name opens or closes it.
    const summary = el("summary", {}, box, el("span", { className: "unit-name", textContent: ` ${unit.name}` }));
    const details = el("details", { className: `unit kind-${unit.kind}`, open: depth < 1 }, summary);
    details.dataset.unitId = unit.id;
    details.dataset.search = `${unit.name} ${unit.pinyin || ""}`.toLowerCase();
    box.addEventListener("change", () => {
      for (const pick of branchBoxes(details)) {
        if (!pick.closest(".hidden-by-search")) setPicked(pick, box.checked);
      }
      pickedChanged();
    });
    const roomList = el("div", { className: "rooms" });
    for (const room of rooms.get(unit.id) || []) {
      const pick = el("input", { type: "checkbox", value: room.id, className: "pick", checked: picked.has(room.id) });
      pick.addEventListener("change", () => { setPicked(pick, pick.checked); pickedChanged(); });
      const label = el("label", { className: "room" }, pick, ` ${room.name}`);
      label.dataset.search = `${room.name} ${room.pinyin || ""}`.toLowerCase();
      roomList.append(label);
    }
    details.append(roomList);
    for (const child of children.get(unit.id) || []) details.append(branch(child, depth + 1));
    return details;
  }
  const roots = children.get(null) || [];
  const nodes = roots.map((unit) => branch(unit, 0));
  $("room-picker").replaceChildren(...(nodes.length ? nodes : [el("p", { className: "empty", textContent: t("rp_empty") })]));
  applySearch();
  pickedChanged();
}

function setPicked(box, on) {
  box.checked = on;
  const id = Number(box.value);
  if (on) picked.add(id); else picked.delete(id);
}

// Branch boxes show all (ticked), none, or some (indeterminate) of their rooms.
function refreshBranches() {
  for (const details of $("room-picker").querySelectorAll("details.unit")) {
    const boxes = branchBoxes(details);
    const on = boxes.filter((box) => box.checked).length;
    const branchBox = details.querySelector(":scope > summary input.branch");
    branchBox.checked = boxes.length > 0 && on === boxes.length;
    branchBox.indeterminate = on > 0 && on < boxes.length;
  }
}

function pickedChanged() {
  refreshBranches();
  $("picked-count").textContent = fmt("rp_picked", { n: picked.size });
  $("create-rollcall").disabled = picked.size === 0;
  precheck();
}

// Search by name, pinyin initials or full pinyin: a unit that matches shows all its rooms; a
// room that matches shows with its units. Nothing matched is hidden, never unticked.
function applySearch() {
  const query = $("picker-search").value.trim().toLowerCase();
  const all = $("room-picker").querySelectorAll("details.unit");
  for (const details of all) details.classList.remove("hidden-by-search");
  for (const label of $("room-picker").querySelectorAll("label.room")) label.classList.remove("hidden-by-search");
  if (!query) return;
  function visit(details, ancestorMatches) {
    const matches = ancestorMatches || details.dataset.search.includes(query);
    let any = matches;
    for (const label of details.querySelectorAll(":scope > .rooms > label.room")) {
      const shown = matches || label.dataset.search.includes(query);
      label.classList.toggle("hidden-by-search", !shown);
      any = any || shown;
    }
    for (const child of details.querySelectorAll(":scope > details.unit")) any = visit(child, matches) || any;
    details.classList.toggle("hidden-by-search", !any);
    if (any) details.open = true;
    return any;
  }
  for (const root of $("room-picker").querySelectorAll(":scope > details.unit")) visit(root, false);
}

$("picker-search").addEventListener("input", applySearch);
$("pick-all").addEventListener("click", () => {
  for (const box of $("room-picker").querySelectorAll("input.pick")) {
    if (!box.closest(".hidden-by-search")) setPicked(box, true);
  }
  pickedChanged();
});
$("pick-none").addEventListener("click", () => {
  for (const box of $("room-picker").querySelectorAll("input.pick")) {
    if (!box.closest(".hidden-by-search")) setPicked(box, false);
  }
  pickedChanged();
});

function renderGroups() {
  const items = groups.map((group) => {
    const apply = el("button", { type: "button", className: "group-apply", textContent: `${group.name} (${group.room_ids.length})`,
      onclick: () => {
        picked.clear();
        for (const id of group.room_ids) picked.add(id);
        for (const box of $("room-picker").querySelectorAll("input.pick")) box.checked = picked.has(Number(box.value));
        pickedChanged();
      } });
    const item = el("span", { className: "group" }, apply);
    item.dataset.groupId = group.id;
    if (group.mine) {
      item.append(el("button", { type: "button", className: "group-delete", textContent: "×", title: t("rp_delete"),
        onclick: async () => {
          if (!confirmed(fmt("rp_confirm_delete_group", { name: group.name }))) return;
          try {
            await api("DELETE", `/api/room-groups/${group.id}`);
            await loadGroups();
          } catch (err) { showError(err.message); }
        } }));
    }
    return item;
  });
  $("group-list").replaceChildren(...(items.length ? items : [el("span", { className: "empty", textContent: t("rp_empty") })]));
}

async function loadGroups() {
  groups = await api("GET", "/api/room-groups");
  renderGroups();
}

$("group-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!picked.size) { showError(t("rp_no_rooms_picked")); return; }
  try {
    await api("POST", "/api/room-groups", { name: $("group-name").value, room_ids: [...picked], shared: $("group-shared").checked });
    $("group-name").value = "";
    showError("");
    await loadGroups();
  } catch (err) { showError(err.message); }
});

// -- pre-check of the rooms picked, pushed while the page shows them -----------------------------
// Over the socket (rollcall_precheck_watch): the server answers the rooms' readiness, then sends
// each room whose readiness changes (a console leaving shows as offline at once). Read over HTTP,
// slowly, only while the socket is down; the socket's return watches again.

async function precheck() {
  clearTimeout(precheckTimer);
  precheckTimer = null;
  const seq = ++precheckSeq;
  const shown = isHost() && !$("new-section").hidden;
  const ids = shown ? [...picked] : [];
  const live = socket.ws && socket.ws.readyState === WebSocket.OPEN;
  if (!ids.length) {
    precheckRooms = new Map();
    if (shown) {
      $("precheck-summary").textContent = "";
      $("precheck").replaceChildren(el("li", { className: "empty", textContent: t("rp_no_rooms_picked") }));
    }
    if (live && isHost()) socket.request("rollcall_precheck_watch", { room_ids: [] }).catch(() => {});
    return;
  }
  let again = !live;
  try {
    const report = live ? (await socket.request("rollcall_precheck_watch", { room_ids: ids })).rooms
      : await api("POST", "/api/rollcalls/precheck", { room_ids: ids });
    if (seq !== precheckSeq) return;
    precheckRooms = new Map(report.map((r) => [r.duty_room_id, r]));
    renderPrecheck();
  } catch (err) {
    if (seq !== precheckSeq) return;
    if (live && !err.code) again = true; // no answer on the socket: try again later
    else showError(err.message);
  }
  if (again && seq === precheckSeq) precheckTimer = setTimeout(precheck, PRECHECK_FALLBACK_MS);
}

// A pushed change: the rooms whose readiness changed.
function precheckChanged(rooms) {
  for (const change of rooms) {
    const shown = precheckRooms.get(change.duty_room_id);
    if (shown) precheckRooms.set(change.duty_room_id, { ...shown, ready: change.ready, problems: change.problems });
  }
  renderPrecheck();
}

function renderPrecheck() {
  if ($("new-section").hidden) return;
  const report = [...precheckRooms.values()];
  const order = (r) => (r.ready ? 2 : r.problems.includes("offline") ? 0 : 1);
  report.sort((a, b) => order(a) - order(b));
  const ready = report.filter((r) => r.ready).length;
  $("precheck-summary").textContent = fmt("rp_precheck_summary", { ready, total: report.length });
  $("precheck").replaceChildren(...report.map((r) => {
    const state = r.ready ? "ready" : r.problems.includes("offline") ? "offline" : "degraded";
    const text = r.ready ? t("rp_ready") : r.problems.map((p) => t("rp_" + p)).join(" · ");
    const item = el("li", { className: state }, el("span", { className: "name", textContent: r.name }),
      el("span", { className: "state", textContent: text }));
    item.dataset.roomId = r.duty_room_id;
    item.dataset.state = state;
    return item;
  }));
}

$("new-rollcall").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!picked.size) { showError(t("rp_no_rooms_picked")); return; }
  try {
    const created = await api("POST", "/api/rollcalls", {
      title: $("rc-name").value, room_ids: [...picked],
      answer_window: Number($("rc-window").value), late_after: Number($("rc-late").value),
    });
    showError("");
    await open(created.id);
    loadHistory();
  } catch (err) {
    showError(err.message);
  }
});

// -- plans: a form that writes the RRULE, with the next five occurrences from the server --------

function planSchedule() {
  const freq = document.querySelector('input[name="plan-freq"]:checked').value;
  const schedule = { freq, time: $("plan-time").value };
  if (freq === "weekly") {
    schedule.weekdays = [...document.querySelectorAll("#plan-weekdays input:checked")].map((box) => box.value);
  } else {
    schedule.monthday = Number($("plan-monthday").value);
  }
  return schedule;
}

function describeSchedule(plan) {
  const s = plan.schedule;
  if (!s) return `${t("rp_custom")} ${plan.rrule || ""}`;
  if (s.freq === "weekly") {
    return fmt("rp_every_week", { days: s.weekdays.map((d) => t("rp_wd_" + d)).join("、"), time: s.time });
  }
  return fmt("rp_every_month", { day: s.monthday, time: s.time });
}

let previewSeq = 0;
async function refreshPreview() {
  const seq = ++previewSeq;
  const freq = document.querySelector('input[name="plan-freq"]:checked').value;
  $("plan-weekdays").hidden = freq !== "weekly";
  $("plan-monthday-label").hidden = freq !== "monthly";
  try {
    const result = await api("POST", "/api/plans/preview", { schedule: planSchedule() });
    if (seq !== previewSeq) return;
    preview = result;
    $("plan-rrule").textContent = result.rrule;
    $("plan-next").replaceChildren(...result.next.map((iso) => {
      const weekday = t("rp_wd_" + WEEKDAYS[zonedParts(iso).weekday]);
      const item = el("li", { textContent: `${localTime(iso)} ${fmt("rp_weekday", { d: weekday })}` });
      item.dataset.iso = iso;
      return item;
    }));
    $("plan-save").disabled = false;
  } catch (err) {
    if (seq !== previewSeq) return;
    preview = null;
    $("plan-rrule").textContent = "";
    $("plan-next").replaceChildren(el("li", { className: "bad", textContent: err.message }));
    $("plan-save").disabled = true;
  }
}

function resetPlanForm() {
  editingPlan = null;
  $("plan-form").reset();
  $("plan-form-title").textContent = t("rp_plan_new");
  $("plan-form-title").dataset.i18n = "rp_plan_new";
  $("plan-cancel-edit").hidden = true;
  refreshPreview();
}

function editPlan(plan) {
  editingPlan = plan;
  $("plan-form-title").textContent = `${t("rp_plan_edit")}：${plan.title}`;
  delete $("plan-form-title").dataset.i18n;
  $("plan-title").value = plan.title;
  $("plan-target").value = String(plan.target_unit_id);
  for (const box of document.querySelectorAll("#plan-kinds input")) box.checked = plan.target_kinds.includes(box.value);
  const s = plan.schedule || { freq: "weekly", weekdays: ["MO"], time: "09:00" };
  for (const radio of document.querySelectorAll('input[name="plan-freq"]')) radio.checked = radio.value === s.freq;
  for (const box of document.querySelectorAll("#plan-weekdays input")) box.checked = (s.weekdays || []).includes(box.value);
  $("plan-monthday").value = s.monthday || 1;
  $("plan-time").value = s.time;
  $("plan-window").value = plan.answer_window;
  $("plan-late").value = plan.late_after;
  $("plan-cancel-edit").hidden = false;
  refreshPreview();
  $("plan-form").scrollIntoView({ block: "start" });
}

function renderPlans(nextOf) {
  const table = $("plans");
  const unitName = new Map((tree ? tree.units : []).map((u) => [u.id, u.name]));
  fillTable(table, plans.map((plan) => {
    const toggle = el("button", { type: "button", className: plan.active ? "pause" : "resume",
      textContent: plan.active ? t("rp_pause") : t("rp_resume"),
      onclick: () => savePlanPatch(plan.id, { active: !plan.active }) });
    const remove = el("button", { type: "button", className: "delete", textContent: t("rp_delete"), onclick: async () => {
      if (!confirmed(fmt("rp_confirm_delete_plan", { title: plan.title }))) return;
      try {
        await api("DELETE", `/api/plans/${plan.id}`);
        if (editingPlan && editingPlan.id === plan.id) resetPlanForm();
        await loadPlans();
      } catch (err) { showError(err.message); }
    } });
    const row = el("tr", { className: plan.active ? "" : "paused" },
      cell(table, 0, { textContent: plan.title, className: "title" }),
      cell(table, 1, { textContent: describeSchedule(plan), className: "schedule" }),
      cell(table, 2, { textContent: unitName.get(plan.target_unit_id) || `#${plan.target_unit_id}` }),
      cell(table, 3, { textContent: plan.active ? localTime(nextOf.get(plan.id)) || "—" : "—", className: "next" }),
      cell(table, 4, { textContent: plan.active ? t("rp_active") : t("rp_paused"), className: "state" }),
      cell(table, 5, {}, el("button", { type: "button", className: "edit", textContent: t("rp_edit"), onclick: () => editPlan(plan) }),
        toggle, remove));
    row.dataset.planId = plan.id;
    row.dataset.active = String(plan.active);
    return row;
  }));
}

async function loadPlans() {
  plans = await api("GET", "/api/plans");
  const nextOf = new Map();
  await Promise.all(plans.filter((p) => p.active).map(async (plan) => {
    try {
      const upcoming = await api("GET", `/api/plans/${plan.id}/upcoming`);
      if (upcoming.length) nextOf.set(plan.id, upcoming[0]);
    } catch (err) { /* shown as — */ }
  }));
  renderPlans(nextOf);
}

async function savePlanPatch(id, body) {
  try {
    await api("PATCH", `/api/plans/${id}`, body);
    showError("");
    await loadPlans();
  } catch (err) { showError(err.message); }
}

$("plan-form").addEventListener("input", () => refreshPreview());
$("plan-form").addEventListener("change", () => refreshPreview());
$("plan-cancel-edit").addEventListener("click", resetPlanForm);
$("plan-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await refreshPreview();
  if (!preview) return;
  const body = {
    title: $("plan-title").value, target_unit_id: Number($("plan-target").value),
    target_kinds: [...document.querySelectorAll("#plan-kinds input:checked")].map((box) => box.value),
    dtstart: preview.dtstart, rrule: preview.rrule,
    answer_window: Number($("plan-window").value), late_after: Number($("plan-late").value),
  };
  try {
    if (editingPlan) await api("PATCH", `/api/plans/${editingPlan.id}`, body);
    else await api("POST", "/api/plans", body);
    showError("");
    resetPlanForm();
    await loadPlans();
  } catch (err) { showError(err.message); }
});

function buildPlanForm() {
  $("plan-weekdays").replaceChildren($("plan-weekdays").querySelector("legend"), ...WEEKDAYS.map((day) =>
    el("label", {}, el("input", { type: "checkbox", value: day, checked: day === "MO" }), ` ${t("rp_wd_" + day)}`)));
  $("plan-kinds").replaceChildren($("plan-kinds").querySelector("legend"), ...KINDS.map((kind) =>
    el("label", {}, el("input", { type: "checkbox", value: kind }), ` ${t("kind_" + kind)}`)));
  const chosen = $("plan-target").value;
  // In tree order, each unit indented under its parent.
  const depth = new Map();
  for (const unit of tree ? tree.units : []) depth.set(unit.id, unit.parent_id === null ? 0 : (depth.get(unit.parent_id) || 0) + 1);
  $("plan-target").replaceChildren(...(tree ? tree.units : []).map((unit) =>
    el("option", { value: unit.id, textContent: "\u3000".repeat(depth.get(unit.id)) + unit.name })));
  if (chosen) $("plan-target").value = chosen;
}

// -- history ------------------------------------------------------------------------------------

async function loadHistory() {
  let listed;
  try {
    listed = await api("GET", "/api/rollcalls?limit=50");
  } catch (err) {
    showError(err.message);
    return;
  }
  const table = $("history");
  fillTable(table, listed.map((rc) => {
    const openButton = el("button", { type: "button", className: "open", textContent: t("rp_open"), onclick: () => open(rc.id) });
    const links = ["csv", "xlsx", "pdf"].map((kind) =>
      el("a", { href: `/api/rollcalls/${rc.id}/sheet.${kind}`, textContent: kind.toUpperCase(), className: `sheet-${kind}` }));
    const row = el("tr", {},
      cell(table, 0, { textContent: localTime(rc.at), className: "when" }),
      cell(table, 1, { textContent: rc.title, className: "title" }),
      cell(table, 2, { textContent: rc.host, className: "host" }),
      cell(table, 3, { textContent: String(rc.rooms), className: "rooms" }),
      cell(table, 4, { textContent: percent(rc.answered_rate), className: "answered-rate" }),
      cell(table, 5, { textContent: percent(rc.late_rate), className: "late-rate" }),
      cell(table, 6, { textContent: percent(rc.absent_rate), className: "absent-rate" }),
      cell(table, 7, { textContent: t("ph_" + rc.phase), className: "phase" }),
      cell(table, 8, { className: "links" }, openButton, ...links));
    row.dataset.rollcallId = rc.id;
    row.dataset.phase = rc.phase;
    return row;
  }));
}

// The history line of the roll-call on the board follows its pushed board (rates so far), as
// GET /api/rollcalls computes them: of the rooms not excused; never called counts as absent.
function updateHistoryRates(board, counts) {
  const row = document.querySelector(`#history tr[data-rollcall-id="${board.id}"]`);
  if (!row) return;
  const expected = board.rooms.length - (counts.excused || 0);
  const rate = (n) => percent(expected ? n / expected : null);
  row.querySelector("td.answered-rate").textContent = rate((counts.on_time || 0) + (counts.late || 0));
  row.querySelector("td.late-rate").textContent = rate(counts.late || 0);
  row.querySelector("td.absent-rate").textContent = rate((counts.absent || 0) + (counts.offline || 0) + (counts.not_called || 0));
}

// -- the page -----------------------------------------------------------------------------------

async function loadHostParts() {
  tree = await api("GET", "/api/rollcall-picker");
  renderPicker();
  buildPlanForm();
  await Promise.all([loadGroups(), refreshPreview()]);
  await loadPlans();
}

async function onSignedIn() {
  const host = isHost();
  $("new-section").hidden = !host;
  $("plans-section").hidden = !host;
  socket.start();
  const tasks = [loadHistory()];
  if (host) tasks.push(loadHostParts().catch((err) => showError(err.message)));
  await Promise.all(tasks);
  const id = new URLSearchParams(location.search).get("id");
  if (id && /^\d+$/.test(id)) await open(Number(id)); // a reload lands back on the board it showed
}

function onLanguage() {
  if (lastBoard) render(lastBoard);
  if (tree) {
    buildPlanForm();
    if (editingPlan) editPlan(editingPlan); else refreshPreview();
    renderGroups();
    loadPlans();
    pickedChanged();
  }
  loadHistory();
}

startPage("host", onSignedIn, onLanguage);

// Tests and whoever debugs the page: how many sockets it opened, whether it follows the board,
// and that the board is never polled (no timer reads it).
window.dutycallDebug = { socketsOpened: () => socket.opened, following: () => following,
  precheckPolling: () => precheckTimer !== null };
