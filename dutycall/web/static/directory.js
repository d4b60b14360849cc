// Units, duty rooms, contacts and the holiday roster, over the JSON API (/api/openapi.json).
"use strict";

let units = [];
// The unit tree is collapsed below the first level (a city has ~100 units); a branch opens by its
// ▸ button and stays open across reloads of the list.
const expanded = new Set();
let expandedOnce = false;
// Rows of the duty room and account tables shown before "show all" (a filter finds the rest).
const FIRST_ROWS = 8;

// An empty table says so, in a row spanning its columns.
function emptyRow(table) {
  const columns = table.querySelectorAll("thead th").length || 1;
  const row = el("tr", { className: "empty" }, el("td", { colSpan: columns, textContent: t("res_none") }));
  row.firstChild.dataset.i18n = "res_none";
  return row;
}

// Show the rows of a long table that match its filter, the first FIRST_ROWS unless "all" was asked.
function limitRows(table, filter, more) {
  const rows = [...table.querySelectorAll("tbody tr:not(.empty):not(.credentials)")];
  const query = filter.value.trim().toLowerCase();
  let shown = 0;
  for (const row of rows) {
    const match = !query || row.textContent.toLowerCase().includes(query);
    row.hidden = !match || (!more.dataset.all && shown >= FIRST_ROWS);
    if (match && !row.hidden) shown += 1;
    const details = row.nextElementSibling;
    if (details && details.classList.contains("credentials")) details.hidden = row.hidden || details.dataset.open !== "1";
  }
  const total = rows.filter((row) => !query || row.textContent.toLowerCase().includes(query)).length;
  more.hidden = Boolean(more.dataset.all) || total <= FIRST_ROWS;
  more.textContent = t("dir_show_all").replace("{n}", String(total));
}

function wireLimit(table, filter, more) {
  filter.addEventListener("input", () => limitRows(table, filter, more));
  more.addEventListener("click", () => { more.dataset.all = "1"; limitRows(table, filter, more); });
}

// Rows of collapsed branches are hidden; each row with children has its ▸/▾ button.
function showTree() {
  const byId = Object.fromEntries(units.map((u) => [u.id, u]));
  for (const row of $("units").querySelectorAll("tbody tr[data-unit-id]")) {
    let parent = byId[Number(row.dataset.parentId)];
    let visible = true;
    while (parent) {
      if (!expanded.has(parent.id)) visible = false;
      parent = byId[parent.parent_id];
    }
    row.hidden = !visible;
    const toggle = row.querySelector("button.toggle");
    if (toggle) {
      const open = expanded.has(Number(row.dataset.unitId));
      toggle.textContent = open ? "▾" : "▸";
      toggle.setAttribute("aria-expanded", String(open));
      toggle.title = t(open ? "dir_collapse" : "dir_expand");
    }
  }
}

async function load() {
  units = await api("GET", "/api/units?include_inactive=1");
  const rooms = await api("GET", "/api/rooms");
  const depth = {};
  for (const unit of units) depth[unit.id] = unit.parent_id in depth ? depth[unit.parent_id] + 1 : 0;
  const children = {};
  for (const unit of units) children[unit.parent_id] = (children[unit.parent_id] || 0) + 1;
  if (!expandedOnce) {
    // Opened: the top of the tree (the city and its districts, agencies...), nothing deeper.
    for (const unit of units) if (depth[unit.id] === 0) expanded.add(unit.id);
    expandedOnce = true;
  }
  const body = $("units").querySelector("tbody");
  body.replaceChildren();
  const admin = me.role === "admin";
  for (const unit of units) {
    const roomNames = rooms.filter((r) => r.unit_id === unit.id).map((r) => r.name).join("，");
    const actions = el("td");
    if (admin && unit.active) {
      actions.append(
        el("button", { textContent: t("rename"), className: "rename", onclick: () => rename(unit) }),
        el("button", { textContent: t("move"), className: "move", onclick: () => move(unit) }),
        el("button", { textContent: t("deactivate"), className: "deactivate", onclick: () => deactivate(unit) }),
      );
    }
    const name = el("td", { className: `depth-${Math.min(depth[unit.id], 3)}` });
    if (children[unit.id]) {
      name.append(el("button", { type: "button", className: "toggle", onclick: () => {
        if (expanded.has(unit.id)) expanded.delete(unit.id); else expanded.add(unit.id);
        showTree();
      } }), " ");
    }
    name.append(unit.name);
    const row = el("tr", { className: unit.active ? "" : "inactive" },
      el("td", { textContent: unit.code }),
      name,
      el("td", { textContent: t("kind_" + unit.kind) }),
      el("td", { textContent: roomNames }),
      actions);
    row.dataset.code = unit.code;
    row.dataset.unitId = unit.id;
    if (unit.parent_id !== null) row.dataset.parentId = unit.parent_id;
    body.append(row);
  }
  if (!units.length) body.append(emptyRow($("units")));
  $("expand-all").parentElement.hidden = !units.some((u) => children[u.id]); // nothing to fold
  showTree();
  for (const select of [$("new-unit-parent"), $("new-room-unit")]) {
    select.replaceChildren(...units.filter((u) => u.active).map((u) => el("option", { value: u.id, textContent: `${u.code} ${u.name}` })));
  }
  for (const form of document.querySelectorAll(".admin-only")) form.hidden = !admin;
  $("new-account-unit").replaceChildren(...units.filter((u) => u.active).map((u) => el("option", { value: u.id, textContent: `${u.code} ${u.name}` })));
  if (admin) await loadAdmin(rooms);
}

async function loadAdmin(rooms) {
  const roomRows = rooms.map((room) => {
    const cell = el("td");
    cell.append(el("button", {
      textContent: t("issue_link"), className: "issue-link",
      onclick: async () => {
        try {
          const credential = await api("POST", `/api/rooms/${room.id}/device-credentials`, { label: "console" });
          // The console waits on standby in its own room; it never names a free-form room.
          const link = `${location.origin}/?device=${credential.token}`;
          cell.replaceChildren(el("span", { textContent: t("link_once") }), el("code", { className: "link", textContent: link }));
        } catch (err) {
          showError(err.message);
        }
      },
    }));
    // Its consoles' credentials, each revocable (a stolen or replaced PC is signed out at once).
    const list = el("td", { colSpan: 3 });
    const details = el("tr", { className: "credentials", hidden: true }, list);
    cell.append(" ", el("button", { type: "button", textContent: t("dir_credentials"), className: "credentials",
      onclick: async () => {
        details.dataset.open = details.dataset.open === "1" ? "" : "1";
        details.hidden = details.dataset.open !== "1";
        if (!details.hidden) await showCredentials(room, list);
      } }));
    const row = el("tr", {}, el("td", { textContent: room.name }), el("td", { textContent: room.phone }), cell);
    row.dataset.roomId = room.id;
    details.dataset.roomId = room.id;
    return [row, details];
  }).flat();
  $("rooms").querySelector("tbody").replaceChildren(...(roomRows.length ? roomRows : [emptyRow($("rooms"))]));
  limitRows($("rooms"), $("rooms-filter"), $("rooms-more"));
  const accounts = await api("GET", "/api/accounts");
  const unitName = Object.fromEntries(units.map((u) => [u.id, u.name]));
  $("accounts").querySelector("tbody").replaceChildren(...accounts.map((account) => {
    const actions = el("td");
    if (account.active && account.id !== me.id) {
      actions.append(el("button", { textContent: t("disable"), className: "disable",
        onclick: () => {
          if (confirm(t("dir_confirm_disable").replace("{name}", `${account.display_name}（${account.username}）`))) {
            act(api("PATCH", `/api/accounts/${account.id}`, { active: false }));
          }
        } }));
    }
    const row = el("tr", { className: account.active ? "" : "inactive" },
      el("td", { textContent: account.username }), el("td", { textContent: account.display_name }),
      el("td", { textContent: t("role_" + account.role) }), el("td", { textContent: unitName[account.unit_id] || "" }),
      actions);
    row.dataset.username = account.username;
    return row;
  }));
  if (!accounts.length) $("accounts").querySelector("tbody").append(emptyRow($("accounts")));
  limitRows($("accounts"), $("accounts-filter"), $("accounts-more"));
}

async function showCredentials(room, list) {
  let credentials;
  try {
    credentials = await api("GET", `/api/rooms/${room.id}/device-credentials`);
  } catch (err) {
    list.replaceChildren(el("span", { className: "bad", textContent: err.message }));
    return;
  }
  const items = credentials.map((c) => {
    const state = c.revoked_at ? t("dir_revoked_at").replace("{at}", zonedTime(c.revoked_at))
      : c.last_used_at ? t("dir_used_at").replace("{at}", zonedTime(c.last_used_at)) : t("dir_unused");
    const item = el("li", {}, `${t("dir_issued_at").replace("{at}", zonedTime(c.created_at))}　${c.label || ""}　${state} `);
    item.dataset.credentialId = c.id;
    item.dataset.state = c.revoked_at ? "revoked" : "active";
    if (!c.revoked_at) {
      item.append(el("button", { type: "button", className: "revoke", textContent: t("dir_revoke"), onclick: async () => {
        if (!confirm(t("dir_confirm_revoke").replace("{room}", room.name))) return;
        try {
          await api("POST", `/api/device-credentials/${c.id}/revoke`);
          showError("");
        } catch (err) {
          showError(err.message);
        }
        await showCredentials(room, list);
      } }));
    }
    return item;
  });
  list.replaceChildren(el("ul", { className: "credential-list" },
    ...(items.length ? items : [el("li", { textContent: t("res_none") })])));
}

$("new-account").addEventListener("submit", (event) => {
  event.preventDefault();
  act(api("POST", "/api/accounts", {
    username: $("new-account-username").value, display_name: $("new-account-name").value,
    password: $("new-account-password").value, role: $("new-account-role").value,
    unit_id: Number($("new-account-unit").value),
  }).then(() => { $("new-account-password").value = ""; }));
});

async function act(promise) {
  try {
    await promise;
    showError("");
    await load();
  } catch (err) {
    showError(err.message);
  }
}

function rename(unit) {
  const name = prompt(t("new_name"), unit.name);
  if (name) act(api("PATCH", `/api/units/${unit.id}`, { name }));
}

function move(unit) {
  const code = prompt(t("new_parent"));
  const parent = units.find((u) => u.code === code);
  if (parent) act(api("POST", `/api/units/${unit.id}/move`, { parent_id: parent.id }));
}

function deactivate(unit) {
  if (!confirm(t("dir_confirm_deactivate").replace("{name}", unit.name))) return;
  act(api("POST", `/api/units/${unit.id}/deactivate`));
}

wireLimit($("rooms"), $("rooms-filter"), $("rooms-more"));
wireLimit($("accounts"), $("accounts-filter"), $("accounts-more"));
$("expand-all").addEventListener("click", () => { for (const u of units) expanded.add(u.id); showTree(); });
$("collapse-all").addEventListener("click", () => {
  expanded.clear();
  for (const u of units) if (u.parent_id === null || !units.some((p) => p.id === u.parent_id)) expanded.add(u.id);
  showTree();
});
document.addEventListener("languagechange", () => { if (me) showTree(); });

$("new-unit").addEventListener("submit", (event) => {
  event.preventDefault();
  act(api("POST", "/api/units", {
    parent_id: Number($("new-unit-parent").value), code: $("new-unit-code").value,
    name: $("new-unit-name").value, kind: $("new-unit-kind").value,
  }));
});

$("new-room").addEventListener("submit", (event) => {
  event.preventDefault();
  act(api("POST", "/api/rooms", {
    unit_id: Number($("new-room-unit").value), name: $("new-room-name").value, phone: $("new-room-phone").value,
  }));
});

let searchTimer = null;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const q = $("search").value.trim();
    const results = q ? await api("GET", `/api/contacts?q=${encodeURIComponent(q)}`).catch(() => []) : [];
    if (q && !results.length) {
      $("results").replaceChildren(el("li", { textContent: t("res_none") }));
      return;
    }
    $("results").replaceChildren(...results.map((r) => el("li", {
      textContent: `${t("type_" + r.type)}　${r.name}${r.unit_name ? "（" + r.unit_name + "）" : ""}　${r.phone || ""}`,
    })));
  }, 150);
});

function rosterQuery() {
  return `period=${encodeURIComponent($("period").value)}&start=${$("start").value}&end=${$("end").value}`;
}

$("download-template").addEventListener("click", () => { location.href = `/api/roster/template.xlsx?${rosterQuery()}`; });
$("download-handbook").addEventListener("click", () => { location.href = `/api/roster/handbook.pdf?${rosterQuery()}`; });

$("upload-roster").addEventListener("click", async () => {
  const file = $("roster-file").files[0];
  if (!file) return;
  const list = $("roster-messages");
  try {
    const result = await api("POST", `/api/roster/upload?period=${encodeURIComponent($("period").value)}`, file, true);
    list.replaceChildren(el("li", { textContent: t("saved") + result.saved }));
  } catch (err) {
    list.replaceChildren(el("li", { className: "bad", textContent: err.message }),
      ...err.rows.map((row) => el("li", { className: "bad", textContent: row.message })));
  }
});

$("show-status").addEventListener("click", async () => {
  try {
    const report = await api("GET", `/api/roster/status?period=${encodeURIComponent($("period").value)}`);
    if (!report.length) $("roster-messages").replaceChildren(el("li", { textContent: t("res_none") }));
    else $("roster-messages").replaceChildren(...report.map((r) => el("li", {
      className: r.submitted ? "" : "bad", textContent: `${r.code} ${r.name}：${t(r.submitted ? "submitted" : "not_submitted")}`,
    })));
  } catch (err) {
    showError(err.message);
  }
});

startPage("directory", load);
