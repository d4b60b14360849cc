// The incident report form's pieces: the catalogue (groups, elements, choices, in the page's
// language), an input per element kind, reading a form into JSON, and the server's field errors
// shown next to their inputs. Server text only ever goes in through textContent.
"use strict";

let CAT = null; // GET /api/incident-catalogue, in the page's language
let ELEMENT = {}; // element name -> { name, label, kind, max_length, group }

async function loadCatalogue() {
  CAT = await api("GET", `/api/incident-catalogue?lang=${encodeURIComponent(LANG)}`);
  ELEMENT = {};
  for (const group of CAT.groups) {
    for (const element of group.elements) ELEMENT[element.name] = { ...element, group: group.code };
  }
}

// The label of a code in one of the catalogue's lists (levels, statuses, channels...); the code itself if unknown.
function catLabel(list, code) {
  const found = (CAT[list] || []).find((item) => item.code === code);
  return found ? found.label : code || "";
}

function subtypeLabel(code) {
  for (const category of CAT.categories) {
    const found = category.subtypes.find((s) => s.code === code);
    if (found) return found.label;
  }
  return code || "";
}

// Fills "{name}" placeholders of an interface string; the result goes into textContent only.
function fill(key, params = {}) {
  return t(key).replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// An instant as the duty office reads it: date and time to the minute, in the deployment's zone
// (the server's --timezone, as on the other pages; entered times still use this computer's).
const TIME_FORMAT = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false };

function localTime(iso) {
  return iso ? zonedTime(iso, TIME_FORMAT) : "—"; // the deployment's zone (--timezone), common.js
}

// A datetime-local value ("2026-12-02T09:30") read on the deployment's wall clock, as ISO 8601
// with its offset (i18n.js; not this browser's zone).
function toIsoWithOffset(value) {
  return zonedIso(value);
}

// An instant as a datetime-local value on the deployment's wall clock (i18n.js).
function toLocalInput(date) {
  return zonedInput(date);
}

function option(value, label, selected = false) {
  return el("option", { value, textContent: label, selected });
}

function choices(list, current, blank) {
  const options = blank === undefined ? [] : [option("", blank)];
  return options.concat(list.map((item) => option(item.code, item.label, item.code === current)));
}

// One labelled input for an element (or a plain field such as "channel"), with room for its error.
// `spec` is { name, label, kind, max_length }; kinds are the catalogue's plus "select" (give
// `options`) and "note" (a short free text).
function fieldInput(spec, { value, required = false, options } = {}) {
  const id = `f-${spec.name}-${Math.random().toString(36).slice(2, 8)}`;
  let input;
  switch (spec.kind) {
    case "long_text":
      input = el("textarea", { rows: 3, maxLength: spec.max_length || 4000 });
      break;
    case "people":
      input = el("input", { type: "number", min: 0, step: 1, inputMode: "numeric" });
      break;
    case "money":
      input = el("input", { type: "number", min: 0, step: 0.01, inputMode: "decimal" });
      break;
    case "latitude": case "longitude":
      input = el("input", { type: "number", step: "any", inputMode: "decimal" });
      break;
    case "instant":
      input = el("input", { type: "datetime-local", max: toLocalInput(new Date()) });
      break;
    case "phone":
      input = el("input", { type: "tel", maxLength: spec.max_length || 32, autocomplete: "off" });
      break;
    case "category":
      input = el("select", {}, ...choices(CAT.categories, value, t("inc_choose")));
      break;
    case "level":
      input = el("select", {}, ...choices(CAT.levels, value, t("inc_choose")));
      break;
    case "subtype":
      input = el("select", {});
      break;
    case "select": case "select-int":
      input = el("select", {}, ...options);
      break;
    default:
      input = el("input", { type: "text", maxLength: spec.max_length || 256 });
  }
  input.id = id;
  input.name = spec.name;
  if (value !== undefined && value !== null && input.tagName !== "SELECT") {
    input.value = spec.kind === "instant" ? toLocalInput(new Date(value)) : value;
  }
  const label = el("label", { htmlFor: id }, el("span", { textContent: spec.label }));
  const wrap = el("div", { className: "inc-field" + (spec.kind === "long_text" ? " wide" : "") },
    label, input, el("span", { className: "field-error", role: "alert" }));
  wrap.dataset.field = spec.name;
  wrap.dataset.kind = spec.kind;
  setRequired(wrap, required);
  return wrap;
}

function setRequired(wrap, required) {
  wrap.classList.toggle("required", required);
  wrap.querySelector("input, select, textarea").setAttribute("aria-required", required ? "true" : "false");
}

function elementInput(name, opts) {
  return fieldInput(ELEMENT[name], opts);
}

// The subtype select follows the category select within the same form (a follow-up that leaves
// the category alone chooses among the incident's own category's subtypes: `fallback`).
function linkSubtypes(form, current, fallback) {
  const category = form.querySelector('[data-field="category"] select');
  const subtype = form.querySelector('[data-field="subtype"] select');
  if (!category || !subtype) return;
  const refill = (keep) => {
    const chosen = CAT.categories.find((c) => c.code === (category.value || fallback));
    subtype.replaceChildren(option("", chosen ? t("inc_choose") : t("inc_choose_category_first")),
      ...(chosen ? chosen.subtypes.map((s) => option(s.code, s.label, s.code === keep)) : []));
    subtype.disabled = !chosen;
  };
  category.addEventListener("change", () => refill(null));
  refill(current);
}

// The form's values as the API wants them, and the inputs the browser could not read at all
// (a number field holding letters). Empty fields are left out: "not given".
function collect(form) {
  const data = {};
  const bad = [];
  for (const wrap of form.querySelectorAll(".inc-field[data-field]")) {
    const input = wrap.querySelector("input, select, textarea");
    const name = wrap.dataset.field;
    if (input.type === "checkbox") continue;
    if (input.validity && input.validity.badInput) {
      bad.push({ field: name, message: t("inc_bad_input") });
      continue;
    }
    const raw = input.value.trim();
    if (raw === "") continue;
    switch (wrap.dataset.kind) {
      case "people": case "integer":
        data[name] = Number(raw);
        if (!Number.isInteger(data[name])) bad.push({ field: name, message: t("inc_bad_integer") });
        break;
      case "money": case "latitude": case "longitude":
        data[name] = Number(raw);
        break;
      case "instant":
        data[name] = toIsoWithOffset(raw);
        break;
      case "select-int":
        data[name] = Number(raw);
        break;
      default:
        data[name] = raw;
    }
  }
  return { data, bad };
}

function clearErrors(form) {
  for (const wrap of form.querySelectorAll(".inc-field.invalid")) wrap.classList.remove("invalid");
  for (const span of form.querySelectorAll(".field-error")) span.textContent = "";
  const message = form.querySelector(".form-error");
  if (message) { message.textContent = ""; message.hidden = true; }
}

// A refused submission: the server's message at the top of the form, and each field it named
// marked next to its input (the first one scrolled into view).
function showFormError(form, message, rows = []) {
  clearErrors(form);
  let box = form.querySelector(".form-error");
  if (!box) {
    box = el("p", { className: "form-error error", role: "alert" });
    const heading = form.firstElementChild;
    if (heading && heading.tagName === "H3") heading.after(box); else form.prepend(box);
  }
  box.textContent = message;
  box.hidden = false;
  let first = null;
  for (const row of rows) {
    const wrap = form.querySelector(`.inc-field[data-field="${CSS.escape(String(row.field))}"]`);
    if (!wrap) continue;
    wrap.classList.add("invalid");
    const span = wrap.querySelector(".field-error");
    span.textContent = span.textContent ? `${span.textContent}；${row.message}` : row.message;
    first = first || wrap;
  }
  (first || box).scrollIntoView({ block: "center" });
}

// POSTs a form's body; on success calls `done(reply)`; a refusal is shown on the form itself.
async function submitForm(form, path, body, done) {
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    const reply = await api("POST", path, body);
    clearErrors(form);
    showError("");
    await done(reply);
  } catch (err) {
    showFormError(form, err.message, err.rows);
  } finally {
    if (button) button.disabled = false;
  }
}

// An element's value as read on the page: counts and money as numbers, instants in local time,
// codes as their labels.
function displayValue(name, value) {
  const element = ELEMENT[name];
  if (value === null || value === undefined) return "";
  switch (element && element.kind) {
    case "instant": return localTime(value);
    case "category": return catLabel("categories", value);
    case "subtype": return subtypeLabel(value);
    case "level": return catLabel("levels", value);
    case "money": return `${value}`;
    default: return String(value);
  }
}

// Elements grouped as the form groups them: a heading and a list of label/value pairs per group.
function elementsView(elements, { skip = [] } = {}) {
  const parts = [];
  for (const group of CAT.groups) {
    const rows = group.elements.filter((e) => !skip.includes(e.name) && elements[e.name] !== undefined && elements[e.name] !== null);
    if (!rows.length) continue;
    const list = el("dl", { className: "inc-elements" });
    for (const element of rows) {
      const dd = el("dd", { textContent: displayValue(element.name, elements[element.name]) });
      dd.dataset.element = element.name;
      list.append(el("dt", { textContent: element.label }), dd);
    }
    parts.push(el("div", { className: "inc-group" }, el("h4", { textContent: group.label }), list));
  }
  return parts;
}
