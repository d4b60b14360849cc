// The /incidents page: the list with its filters, the first-report form (初报), and the incident
// page (incident-detail.js), one at a time by address: /incidents, /incidents?new=1, /incidents?id=N.
"use strict";

const REPORTING_ROLES = ["admin", "host", "duty_officer"];
const FILTERS = ["status", "category", "level", "unit_id", "from", "to"];
let UNITS = []; // the units in scope, tree order, each with its depth

async function loadUnits() {
  const units = await api("GET", "/api/units");
  const depth = {};
  UNITS = units.map((unit) => {
    depth[unit.id] = unit.parent_id in depth ? depth[unit.parent_id] + 1 : 0;
    return { ...unit, depth: depth[unit.id] };
  });
}

function unitOptions(selected, blank) {
  const options = blank === undefined ? [] : [option("", blank)];
  return options.concat(UNITS.map((unit) => option(String(unit.id), "\u3000".repeat(unit.depth) + unit.name,
                                                   String(unit.id) === String(selected))));
}

// -- addresses -----------------------------------------------------------------------------------

function navigate(query) {
  const url = `/incidents${query ? `?${query}` : ""}`;
  if (location.pathname + location.search !== url) history.pushState(null, "", url);
  return render();
}

// Each render is numbered: an answer that arrives after a later render began (a slow list, an
// incident the user has already left) is dropped instead of redrawing the page under their hands.
let RENDERS = 0;
const current = (seq) => seq === RENDERS;

function render() {
  const seq = ++RENDERS;
  const params = new URLSearchParams(location.search);
  const id = params.get("id");
  if (params.has("new") && !REPORTING_ROLES.includes(me.role)) params.delete("new"); // a leader or viewer files nothing
  $("list-view").hidden = Boolean(id) || params.has("new");
  $("form-view").hidden = !params.has("new") || Boolean(id);
  $("detail-view").hidden = !id;
  showError("");
  if (id) {
    // Never show (and let anyone act on) the incident drawn last time while this one loads.
    $("detail").replaceChildren();
    return showIncident(id, seq);
  }
  if (params.has("new")) return showReportForm();
  return showList(params, seq);
}

window.addEventListener("popstate", () => { if (me) render(); });
// Links within the page change the view without reloading it.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href^='/incidents']");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(link.getAttribute("href").split("?")[1] || "");
});

// -- the list ------------------------------------------------------------------------------------

function fillFilters(params) {
  $("f-status").replaceChildren(...choices(CAT.statuses, params.get("status"), t("inc_all_open")));
  $("f-category").replaceChildren(...choices(CAT.categories, params.get("category"), t("inc_all")));
  $("f-level").replaceChildren(...choices(CAT.levels, params.get("level"), t("inc_all")));
  $("f-unit").replaceChildren(...unitOptions(params.get("unit_id"), t("inc_all")));
  $("f-from").value = params.get("from") || "";
  $("f-to").value = params.get("to") || "";
}

// 迟报 / 漏报 at a glance; the full finding (首报超时, 续报超时...) in the badge's title.
function flagBadges(kinds) {
  const badges = [];
  const late = kinds.filter((k) => k.startsWith("late_"));
  if (late.length) {
    badges.push(el("span", { className: "badge flag late", textContent: t("inc_badge_late"),
                             title: late.map((k) => catLabel("flags", k)).join("、") }));
  }
  if (kinds.includes("missed")) {
    badges.push(el("span", { className: "badge flag missed", textContent: t("inc_badge_missed"),
                             title: catLabel("flags", "missed") }));
  }
  return badges;
}

function levelBadge(level) {
  const badge = el("span", { className: "badge level", textContent: catLabel("levels", level) });
  badge.dataset.level = level;
  return badge;
}

function statusBadge(status) {
  const badge = el("span", { className: "badge status", textContent: catLabel("statuses", status) });
  badge.dataset.status = status;
  return badge;
}

function withLabel(key, ...content) {
  const td = el("td", {}, ...content);
  td.dataset.label = t(key);
  return td;
}

async function showList(params, seq) {
  $("new-incident").hidden = !REPORTING_ROLES.includes(me.role);
  fillFilters(params);
  const query = new URLSearchParams();
  for (const name of FILTERS) if (params.get(name)) query.set(name, params.get(name));
  let incidents;
  try {
    incidents = await api("GET", `/api/incidents?${query}`);
  } catch (err) {
    if (!current(seq)) return;
    showError(err.message);
    incidents = [];
  }
  if (!current(seq)) return;
  $("incident-list").querySelector("tbody").replaceChildren(...incidents.map((incident) => {
    const category = catLabel("categories", incident.category) +
      (incident.subtype ? ` · ${subtypeLabel(incident.subtype)}` : "");
    const row = el("tr", {},
      withLabel("inc_col_occurred", localTime(incident.occurred_at)),
      withLabel("inc_col_title", el("a", { href: `/incidents?id=${incident.id}`, textContent: incident.title, className: "title" })),
      withLabel("inc_col_unit", incident.unit_name),
      withLabel("inc_col_category", category),
      withLabel("inc_col_level", levelBadge(incident.level)),
      withLabel("inc_col_status", statusBadge(incident.status)),
      withLabel("inc_col_reports", String(incident.reports)),
      withLabel("inc_col_flags", ...flagBadges(incident.flags)));
    row.dataset.incidentId = incident.id;
    row.cells[0].className = "when";
    row.cells[6].className = "reports";
    row.cells[7].className = "flags";
    return row;
  }));
  $("list-empty").hidden = incidents.length > 0;
}

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = new URLSearchParams();
  for (const name of FILTERS) {
    const value = $("filters").elements[name].value;
    if (value) query.set(name, value);
  }
  navigate(query.toString());
});
$("filters").addEventListener("reset", (event) => {
  event.preventDefault();
  navigate("");
});
$("new-incident").addEventListener("click", () => navigate("new=1"));

// -- the first report (初报) ----------------------------------------------------------------------

// Elements the first report does not ask for: what changed (follow-ups) and the outcome (终报).
const NOT_INITIAL = ["changes"];

function initialRequired(level) {
  const names = [...CAT.required.initial];
  if (CAT.serious_levels.includes(level)) names.push(...CAT.required_serious_initial);
  return names;
}

function markRequired(form, names) {
  for (const wrap of form.querySelectorAll(".inc-field[data-field]")) {
    if (wrap.dataset.field in ELEMENT) setRequired(wrap, names.includes(wrap.dataset.field));
  }
}

function showReportForm() {
  const form = $("report-form");
  // Rebuilt in the new language keeps what was typed.
  const kept = {};
  for (const input of form.querySelectorAll("input, select, textarea")) if (input.name) kept[input.name] = input.value;
  const required = initialRequired(kept.level || "");
  const fieldsets = [];
  for (const group of CAT.groups) {
    if (group.code === "final") continue;
    const fieldset = el("fieldset", { className: "inc-group" }, el("legend", { textContent: group.label }));
    fieldset.dataset.group = group.code;
    for (const element of group.elements) {
      if (NOT_INITIAL.includes(element.name)) continue;
      fieldset.append(elementInput(element.name, { required: required.includes(element.name) }));
    }
    if (group.code === "basics") {
      const unit = fieldInput({ name: "unit_id", label: t("inc_unit"), kind: "select-int" },
                              { options: unitOptions(me.unit_id), required: true });
      const select = unit.querySelector("select");
      select.disabled = UNITS.length < 2; // a street reports for itself only
      // Recording a unit below one's own counts as that unit's 漏报: say so before it is filed.
      const note = el("span", { className: "field-note", textContent: t("inc_unit_missed_hint") });
      const showNote = () => { note.hidden = select.value === "" || Number(select.value) === me.unit_id; };
      select.addEventListener("change", showNote);
      unit.append(note);
      fieldset.append(unit);
      queueMicrotask(showNote); // after the kept value is put back
    }
    if (group.code === "contacts") {
      fieldset.append(fieldInput({ name: "channel", label: t("inc_channel"), kind: "select" },
                                 { options: CAT.channels.map((c) => option(c.code, c.label)), required: true }));
    }
    fieldsets.push(fieldset);
  }
  form.replaceChildren(...fieldsets, el("div", { className: "inc-actions" },
    el("button", { type: "submit", className: "primary", textContent: t("inc_submit_initial") }),
    el("a", { href: "/incidents", className: "back", textContent: t("inc_cancel") })));
  for (const [name, value] of Object.entries(kept)) {
    const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (input && value !== "") input.value = value;
  }
  linkSubtypes(form, kept.subtype);
  if (!kept.learned_at) form.elements.learned_at.value = toLocalInput(new Date());
  if (!kept.reporter) form.elements.reporter.value = me.name;
  form.elements.level.addEventListener("change", () => markRequired(form, initialRequired(form.elements.level.value)));
}

$("report-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = $("report-form");
  const { data, bad } = collect(form);
  if (bad.length) {
    showFormError(form, t("inc_fix_fields"), bad);
    return;
  }
  submitForm(form, "/api/incidents", data, (created) => {
    form.replaceChildren();
    return navigate(`id=${created.id}`);
  });
});

// -- the page ------------------------------------------------------------------------------------

async function start({ resumed }) {
  try {
    await Promise.all([loadCatalogue(), loadUnits()]);
  } catch (err) {
    showError(err.message);
    return;
  }
  if (!resumed) $("report-form").replaceChildren();
  await render();
}

async function relanguage() {
  try {
    await loadCatalogue();
  } catch (err) {
    showError(err.message);
    return;
  }
  await render();
}

startPage("incidents", start, relanguage);
