// Supervision notices (a unit responds, the host closes) and monthly attendance statistics.
"use strict";

function localTime(iso) {
  return zonedTime(iso); // the deployment's zone (common.js), not the browser's
}

async function act(path, body) {
  try {
    await api("POST", path, body);
    showError("");
  } catch (err) {
    showError(err.message);
  }
  await loadNotices();
}

async function loadNotices() {
  const notices = await api("GET", "/api/notices");
  $("notices").querySelector("tbody").replaceChildren(...notices.map((notice) => {
    const actions = el("td", {});
    // The server says what this user may do with each notice: the notified unit responds,
    // a host above it closes. The buttons only mirror that; the server checks again.
    if (notice.may_respond) {
      actions.append(el("button", { textContent: t("res_respond"), className: "respond", onclick: () => {
        const response = prompt(t("res_response_prompt"), notice.response || "");
        if (response) act(`/api/notices/${notice.id}/respond`, { response });
      } }));
    }
    if (notice.may_close) {
      actions.append(el("button", { textContent: t("res_close"), className: "close",
                                    onclick: () => {
                                      if (confirm(t("res_confirm_close"))) act(`/api/notices/${notice.id}/close`);
                                    } }));
    }
    const row = el("tr", {},
      // A roll-call's notice names its duty room; an incident's, the incident (and links to it).
      notice.room_name || !notice.incident_id ? el("td", { textContent: notice.room_name || notice.subject || "" })
        : el("td", {}, el("a", { href: `/incidents?id=${notice.incident_id}`, textContent: notice.subject || `#${notice.incident_id}` })),
      el("td", { textContent: MESSAGES["zh-CN"]["st_" + notice.outcome] ? t("st_" + notice.outcome) : notice.outcome }),
      el("td", { textContent: localTime(notice.deadline) }),
      el("td", { textContent: t("no_" + notice.status) + (notice.overdue ? t("res_overdue") : ""), className: "state" }),
      el("td", { textContent: notice.response || "" }),
      actions);
    row.dataset.noticeId = notice.id;
    row.dataset.status = notice.status;
    return row;
  }));
  if (!notices.length) {
    $("notices").querySelector("tbody").replaceChildren(el("tr", { className: "empty" },
      el("td", { colSpan: 6, textContent: t("res_none") })));
  }
}

function percent(rate) {
  return rate === null ? "—" : `${(rate * 100).toFixed(1)}%`;
}

function statsTable(table, rows) {
  // Counts, then rates: "On time" once (a count), the rate says it is one.
  const head = el("tr", {}, ...["res_unit", "res_col_on_time", "st_late", "st_absent", "st_offline", "st_excused",
                                "res_col_rate", "res_col_on_time_rate"].map((key) => el("th", { textContent: t(key) })));
  const body = rows.length ? rows.map((row) => el("tr", {},
    el("td", { textContent: row.name }),
    ...["on_time", "late", "absent", "offline", "excused"].map((key) => el("td", { textContent: row[key] })),
    el("td", { textContent: percent(row.attendance_rate), className: "rate" }),
    el("td", { textContent: percent(row.on_time_rate) }))) : [el("tr", { className: "empty" },
    el("td", { colSpan: 8, textContent: t("res_none") }))];
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
}

async function loadStatistics() {
  const month = $("month").value;
  try {
    const stats = await api("GET", `/api/statistics?month=${encodeURIComponent(month)}`);
    statsTable($("districts"), stats.districts);
    statsTable($("units"), stats.units);
    $("trend").src = `/api/statistics/trend.png?month=${encodeURIComponent(month)}`;
    $("trend").alt = `${t("res_trend")} ${stats.month}`;
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

// Opened early in a month with nothing counted yet, the page shows the month before (once).
async function loadLatestStatistics() {
  await loadStatistics();
  if ($("districts").querySelector("tr.empty") && $("units").querySelector("tr.empty")) {
    const [year, month] = $("month").value.split("-").map(Number);
    const before = new Date(Date.UTC(year, month - 2, 1));
    $("month").value = `${before.getUTCFullYear()}-${String(before.getUTCMonth() + 1).padStart(2, "0")}`;
    await loadStatistics();
  }
}

$("month-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loadStatistics();
});

// This month on the deployment's calendar (--timezone, i18n.js): set once the session reply has
// named the zone (a browser elsewhere would open on another month around midnight).
function thisMonth() {
  const now = zonedParts(Date.now());
  return `${now.year}-${String(now.month).padStart(2, "0")}`;
}
let monthSet = false;
$("month").value = thisMonth();
// A duty-room console sees its own room's notices; statistics are the host side's (the server refuses them).
startPage("results", () => {
  if (!monthSet) $("month").value = thisMonth();
  monthSet = true;
  $("stats").hidden = me.kind === "device";
  return Promise.all([loadNotices(), me.kind === "device" ? null : loadLatestStatistics()]);
});
