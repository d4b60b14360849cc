// Units, duty rooms, contacts and the holiday roster, over the JSON API (/api/openapi.json).
"use strict";

let units = [];

async function load() {
  units = await api("GET", "/api/units?include_inactive=1");
  const rooms = await api("GET", "/api/rooms");
  const depth = {};
  for (const unit of units) depth[unit.id] = unit.parent_id in depth ? depth[unit.parent_id] + 1 : 0;
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
    const row = el("tr", { className: unit.active ? "" : "inactive" },
      el("td", { textContent: unit.code }),
      el("td", { textContent: unit.name, className: `depth-${Math.min(depth[unit.id], 3)}` }),
      el("td", { textContent: t("kind_" + unit.kind) }),
      el("td", { textContent: roomNames }),
      actions);
    row.dataset.code = unit.code;
    body.append(row);
  }
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
    const row = el("tr", {}, el("td", { textContent: room.name }), el("td", { textContent: room.phone }), cell);
    row.dataset.roomId = room.id;
    return row;
  });
  $("rooms").querySelector("tbody").replaceChildren(...roomRows);
  const accounts = await api("GET", "/api/accounts");
  const unitName = Object.fromEntries(units.map((u) => [u.id, u.name]));
  $("accounts").querySelector("tbody").replaceChildren(...accounts.map((account) => {
    const actions = el("td");
    if (account.active && account.id !== me.id) {
      actions.append(el("button", { textContent: t("disable"), className: "disable",
        onclick: () => act(api("PATCH", `/api/accounts/${account.id}`, { active: false })) }));
    }
    const row = el("tr", { className: account.active ? "" : "inactive" },
      el("td", { textContent: account.username }), el("td", { textContent: account.display_name }),
      el("td", { textContent: t("role_" + account.role) }), el("td", { textContent: unitName[account.unit_id] || "" }),
      actions);
    row.dataset.username = account.username;
    return row;
  }));
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
  act(api("POST", `/api/units/${unit.id}/deactivate`));
}

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
    $("roster-messages").replaceChildren(...report.map((r) => el("li", {
      className: r.submitted ? "" : "bad", textContent: `${r.code} ${r.name}：${t(r.submitted ? "submitted" : "not_submitted")}`,
    })));
  } catch (err) {
    showError(err.message);
  }
});

startPage("directory", load);
