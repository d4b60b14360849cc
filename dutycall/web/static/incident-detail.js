// One incident: its headline, the current (folded) view, every report as filed with its 核报,
// flags, instructions with each unit's 签收 and 反馈, supervision notices, the timeline; and the
// forms the server's `may` allows (续报, 终报, 核报, 批示, 督办, 合并, 关闭). Every reply of a
// write is the incident again, drawn afresh.
"use strict";

let INCIDENT = null; // the incident on screen, as GET /api/incidents/{id} gave it

function reportName(report) {
  if (report.stage === "followup") return fill("inc_followup_n", { n: report.number });
  return catLabel("stages", report.stage);
}

function section(key, ...children) {
  const node = el("section", { className: "inc-section" }, el("h3", { textContent: t(key) }), ...children);
  node.dataset.section = key;
  return node;
}

function pairs(list) {
  const dl = el("dl", { className: "inc-elements" });
  for (const [key, value] of list) if (value) dl.append(el("dt", { textContent: t(key) }), el("dd", {}, value));
  return dl;
}

async function showIncident(id, seq = RENDERS) {
  let incident;
  try {
    incident = await api("GET", `/api/incidents/${encodeURIComponent(id)}`);
  } catch (err) {
    if (!current(seq)) return;
    INCIDENT = null;
    $("detail").replaceChildren();
    showError(err.message);
    return;
  }
  if (current(seq)) drawIncident(incident);
}

function drawIncident(incident) {
  INCIDENT = incident;
  const detail = $("detail");
  detail.dataset.incidentId = incident.id;
  detail.dataset.status = incident.status;
  detail.replaceChildren(
    headline(incident),
    actionBar(incident),
    el("div", { id: "action-form" }),
    incident.flags.length ? section("inc_flags", flagList(incident.flags)) : "",
    // What asks something of the reader (签收, 反馈, 回复) comes before the long report texts.
    section("inc_instructions", ...instructionsView(incident)),
    section("inc_notices", noticesView(incident)),
    section("inc_current", ...elementsView(incident.current)),
    section("inc_reports", ...incident.reports.map((report, i) =>
      reportView(report, incident, i === incident.reports.length - 1))),
    incident.merged.length ? section("inc_merged", mergedList(incident.merged)) : "",
    (incident.alerts || []).length ? section("inc_alerts", alertsView(incident)) : "",
    fieldLinksSection(incident),
    devicesSection(incident),
    footageSection(incident),
    section("inc_timeline", timelineView(incident)));
}

// -- alerts: which duty rooms were shown each report or instruction, and who acknowledged ----------

function alertsView(incident) {
  return el("ul", { className: "inc-alerts" }, ...incident.alerts.map((alert) => {
    const what = alert.kind === "instruction" ? t("inc_alert_instruction") : t("inc_alert_report");
    const rooms = alert.rooms.map((room) => {
      const state = room.acknowledged_at ? fill("inc_alert_acked", { at: localTime(room.acknowledged_at) })
        : room.delivered_at ? t("inc_alert_shown") : t("inc_alert_waiting");
      return el("li", { className: room.acknowledged_at ? "acked" : "pending", textContent: `${room.name}：${state}` });
    });
    return el("li", {}, el("span", { textContent: `${localTime(alert.at)} ${what}` }), el("ul", {}, ...rooms));
  }));
}

// -- headline ------------------------------------------------------------------------------------

function headline(incident) {
  const category = catLabel("categories", incident.category) + (incident.subtype ? ` · ${subtypeLabel(incident.subtype)}` : "");
  const merged = incident.merged_into_id
    ? el("a", { href: `/incidents?id=${incident.merged_into_id}`, textContent: `#${incident.merged_into_id}` }) : "";
  return el("div", { className: "inc-headline" },
    el("h2", { className: "inc-title", textContent: incident.title }),
    el("div", { className: "inc-badges" }, levelBadge(incident.level), statusBadge(incident.status),
       el("span", { className: "badge category", textContent: category }), ...flagBadges(incident.flags.map((f) => f.kind))),
    pairs([["inc_no", `#${incident.id}`], ["inc_col_unit", incident.unit_name],
           ["inc_recorded_by", incident.recorded_by_unit !== incident.unit_name ? incident.recorded_by_unit : ""],
           ["inc_place", incident.place], ["inc_occurred", localTime(incident.occurred_at)],
           ["inc_learned", localTime(incident.learned_at)],
           ["inc_final_at", incident.final_at ? localTime(incident.final_at) : ""],
           ["inc_closed_at", incident.closed_at ? localTime(incident.closed_at) : ""], ["inc_merged_into", merged]]));
}

function flagList(flags) {
  return el("ul", { className: "inc-flags" }, ...flags.map((flag) => {
    const item = el("li", {},
      el("strong", { textContent: catLabel("flags", flag.kind) }), " ",
      fill("inc_flag_due", { due: localTime(flag.due_at), detected: localTime(flag.detected_at) }),
      flag.met_at ? ` ${fill("inc_flag_met", { at: localTime(flag.met_at) })}` : "");
    item.dataset.kind = flag.kind;
    return item;
  }));
}

// -- actions -------------------------------------------------------------------------------------

const ACTIONS = [
  ["report", "followup", "inc_act_followup"], ["report", "final", "inc_act_final"],
  ["instruct", "instruct", "inc_act_instruct"], ["supervise", "supervise", "inc_act_supervise"],
  ["merge", "merge", "inc_act_merge"], ["close", "close", "inc_act_close"],
];

function actionBar(incident) {
  const bar = el("div", { className: "controls inc-actions-bar" });
  for (const [permission, action, key] of ACTIONS) {
    if (!incident.may[permission]) continue;
    const button = el("button", { type: "button", textContent: t(key) });
    button.dataset.action = action;
    button.addEventListener("click", () => openAction(action));
    bar.append(button);
  }
  return bar;
}

function openAction(action) {
  const holder = $("action-form");
  if (holder.dataset.action === action) {
    holder.replaceChildren();
    delete holder.dataset.action;
    return;
  }
  if (action === "close") {
    if (!confirm(t("inc_close_confirm"))) return;
    post(`/api/incidents/${INCIDENT.id}/close`);
    return;
  }
  holder.dataset.action = action;
  const builders = { followup: followupForm, final: finalForm, instruct: instructForm, supervise: superviseForm,
                     merge: mergeForm };
  Promise.resolve(builders[action](INCIDENT)).then((form) => {
    form.classList.add("inc-form");
    form.dataset.form = action;
    form.noValidate = true;
    holder.replaceChildren(form);
    const first = form.querySelector("textarea, input:not([type=checkbox]), select");
    if (first) first.focus();
  });
}

// A write without a form (close, 签收): the reply is the incident; a refusal goes to the page's error line.
async function post(path, body) {
  try {
    drawIncident(await api("POST", path, body));
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

function actionForm(title, fields, submitKey, onSubmit) {
  const form = el("form", {}, el("h3", { textContent: t(title) }), ...fields,
    el("div", { className: "inc-actions" },
      el("button", { type: "submit", className: "primary", textContent: t(submitKey) }),
      el("button", { type: "button", textContent: t("inc_cancel"), onclick: () => openAction($("action-form").dataset.action) })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit(form);
  });
  return form;
}

function submitReport(form, path, extra) {
  const { data, bad } = collect(form);
  if (bad.length) {
    showFormError(form, t("inc_fix_fields"), bad);
    return;
  }
  submitForm(form, path, { ...data, ...extra }, drawIncident);
}

function channelField(value) {
  return fieldInput({ name: "channel", label: t("inc_channel"), kind: "select" },
                    { options: CAT.channels.map((c) => option(c.code, c.label, c.code === value)), required: true });
}

// 续报: what changed (required) and any element that changed; blank ones stay as they were.
function followupForm(incident) {
  const others = el("details", { className: "inc-more" }, el("summary", { textContent: t("inc_more_elements") }));
  for (const group of CAT.groups) {
    if (group.code === "final") continue;
    const names = group.elements.map((e) => e.name).filter((n) => !["changes", "reporter"].includes(n));
    if (!names.length) continue;
    others.append(el("fieldset", { className: "inc-group" }, el("legend", { textContent: group.label }),
                     ...names.map((name) => elementInput(name))));
  }
  const form = actionForm("inc_act_followup", [
    elementInput("changes", { required: true }),
    elementInput("reporter", { required: true, value: me.name }),
    channelField("written"), others], "inc_submit_report",
  (f) => submitReport(f, `/api/incidents/${incident.id}/reports`, { stage: "followup" }));
  linkSubtypes(form, null, incident.current.category);
  showCurrentValues(others, incident.current);
  return form;
}

// A blank element of a follow-up leaves the incident's value as it is: each blank says what that is.
function showCurrentValues(holder, current) {
  for (const wrap of holder.querySelectorAll(".inc-field[data-field]")) {
    const name = wrap.dataset.field;
    const value = current[name] === undefined || current[name] === null ? "" : displayValue(name, current[name]);
    const input = wrap.querySelector("input, select, textarea");
    if (input.tagName === "SELECT") {
      if (input.options.length && input.options[0].value === "" && !input.disabled) {
        input.options[0].textContent = value ? fill("inc_unchanged_value", { value }) : t("inc_unchanged");
      }
    } else if (value) {
      input.placeholder = fill("inc_now", { value }); // (a date-time input shows none: its label is enough)
    }
  }
}

// 终报: cause, outcome, aftermath, the final casualty figures and economic loss (the counts start
// from the incident's current figures).
function finalForm(incident) {
  const names = ["cause", "outcome", "aftermath", "deaths", "injured", "missing", "trapped", "economic_loss"];
  const required = CAT.required.final;
  return actionForm("inc_act_final", [
    ...names.map((name) => elementInput(name, { required: required.includes(name), value: incident.current[name] })),
    elementInput("reporter", { required: true, value: me.name }), channelField("written")], "inc_submit_report",
  (f) => submitReport(f, `/api/incidents/${incident.id}/reports`, { stage: "final" }));
}

function checkboxField(name, label, items, checked) {
  const wrap = el("div", { className: "inc-field wide checks" }, el("span", { className: "label", textContent: label }),
    el("div", { className: "check-list" }, ...items.map(([value, text, depth = 0]) => {
      const label = el("label", {}, el("input", { type: "checkbox", value: String(value), checked: checked.includes(value) }),
                       " ", text);
      label.style.paddingLeft = `${depth * 1.5}em`; // the unit tree, one step in per level
      return label;
    })),
    el("span", { className: "field-error", role: "alert" }));
  wrap.dataset.field = name;
  wrap.dataset.kind = "checks";
  wrap.classList.add("required");
  return wrap;
}

function checked(form, name) {
  return [...form.querySelectorAll(`[data-field="${name}"] input:checked`)].map((box) => Number(box.value));
}

function textField(name, labelKey, max, required = true) {
  return fieldInput({ name, label: t(labelKey), kind: "long_text", max_length: max }, { required });
}

// 批示: the text and the units it is addressed to (the incident's unit ticked to begin with).
function instructForm(incident) {
  return actionForm("inc_act_instruct", [
    textField("text", "inc_instruction_text", 2000),
    checkboxField("unit_ids", t("inc_instruction_units"),
                  UNITS.map((u) => [u.id, u.name, u.depth]), [incident.unit_id])],
  "inc_submit_instruct",
  (f) => submitForm(f, `/api/incidents/${incident.id}/instructions`,
                    { text: f.elements.text.value, unit_ids: checked(f, "unit_ids") }, drawIncident));
}

// 督办: the reason, what is asked, and how many days the unit has.
function superviseForm(incident) {
  const reasons = ["late", "missed", "wrong", "other"].map((code) => option(code, t(`inc_reason_${code}`)));
  const days = fieldInput({ name: "days", label: t("inc_notice_days"), kind: "integer" }, { value: 3, required: true });
  const input = days.querySelector("input");
  Object.assign(input, { type: "number", min: 1, max: 30, step: 1 });
  return actionForm("inc_act_supervise", [
    fieldInput({ name: "outcome", label: t("inc_notice_reason"), kind: "select" }, { options: reasons, required: true }),
    textField("text", "inc_notice_text", 2000), days], "inc_submit_supervise",
  (f) => {
    const { data, bad } = collect(f);
    if (bad.length) return showFormError(f, t("inc_fix_fields"), bad);
    return submitForm(f, `/api/incidents/${incident.id}/notices`, data, drawIncident);
  });
}

// 合并: other incidents in scope (not this one, not already merged) to fold into this one.
async function mergeForm(incident) {
  let candidates = [];
  try {
    candidates = (await api("GET", "/api/incidents")).filter((i) => i.id !== incident.id && i.status !== "closed");
  } catch (err) {
    showError(err.message);
  }
  const field = candidates.length
    ? checkboxField("incident_ids", t("inc_merge_pick"), candidates.map((i) => [i.id,
        `#${i.id} ${i.title} · ${i.unit_name} · ${localTime(i.occurred_at)}`]), [])
    : el("p", { className: "inc-empty", textContent: t("inc_merge_none") });
  return actionForm("inc_act_merge", [el("p", { className: "inc-hint", textContent: t("inc_merge_hint") }), field],
    "inc_submit_merge",
    (f) => submitForm(f, `/api/incidents/${incident.id}/merge`, { incident_ids: checked(f, "incident_ids") }, drawIncident));
}

// -- reports -------------------------------------------------------------------------------------

function verification(report) {
  if (!report.verified) {
    // Never checked, or checked and not confirmed (verified false, with the channel and time).
    const text = report.verified_at
      ? fill("inc_verify_failed", { channel: catLabel("verify_channels", report.verify_channel), at: localTime(report.verified_at) })
      : t("inc_unverified");
    return el("span", { className: "badge unverified", textContent: text });
  }
  return el("span", { className: "badge verified",
                      textContent: fill("inc_verified", { channel: catLabel("verify_channels", report.verify_channel),
                                                          at: localTime(report.verified_at) }) });
}

// One report as filed: its header always in sight, its elements folded away except for the
// latest report's (the current view above already sums them all up).
function reportView(report, incident, open) {
  const body = el("details", { className: "inc-report-body", open },
    el("summary", {}, el("header", {}, el("h4", { textContent: reportName(report) }),
      el("span", { className: "meta", textContent: `${catLabel("channels", report.channel)} · ${localTime(report.submitted_at)}` }),
      verification(report))),
    report.verify_note ? el("p", { className: "inc-note", textContent: `${t("inc_verify_note")}：${report.verify_note}` }) : "",
    ...elementsView(report.elements));
  const article = el("article", { className: "inc-report" }, body);
  article.dataset.reportId = report.id;
  article.dataset.stage = report.stage;
  article.dataset.number = report.number;
  if (incident && incident.may.verify) article.append(verifyForm(incident, report));
  return article;
}

// 核报: through which channel this report was checked, and a note.
function verifyForm(incident, report) {
  const form = el("form", { className: "inc-form inc-verify", noValidate: true },
    fieldInput({ name: "channel", label: t("inc_verify_channel"), kind: "select" },
               { options: CAT.verify_channels.map((c) => option(c.code, c.label, c.code === report.verify_channel)),
                 required: true }),
    fieldInput({ name: "verified", label: t("inc_verify_result"), kind: "select" },
               { options: [option("yes", t("inc_verify_yes"), report.verified !== false),
                           option("no", t("inc_verify_no"), report.verified === false && Boolean(report.verified_at))],
                 required: true }),
    fieldInput({ name: "note", label: t("inc_verify_note"), kind: "text", max_length: 1000 }),
    el("div", { className: "inc-actions" }, el("button", { type: "submit", textContent: t("inc_act_verify") })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const { data } = collect(form);
    data.verified = data.verified !== "no";
    submitForm(form, `/api/incidents/${incident.id}/reports/${report.id}/verify`, data, drawIncident);
  });
  return el("details", { className: "inc-more" }, el("summary", { textContent: t("inc_act_verify") }), form);
}

function mergedList(merged) {
  return el("ul", {}, ...merged.map((m) => el("li", {},
    el("a", { href: `/incidents?id=${m.id}`, textContent: `#${m.id} ${m.title}` }),
    ` · ${fill("inc_n_reports", { n: m.reports.length })}`)));
}

// -- instructions --------------------------------------------------------------------------------

function instructionsView(incident) {
  if (!incident.instructions.length) return [el("p", { className: "inc-empty", textContent: t("inc_none_yet") })];
  return incident.instructions.map((instruction) => {
    const rows = instruction.targets.map((target) => targetRow(instruction, target));
    const table = el("table", { className: "inc-targets" },
      el("thead", {}, el("tr", {}, ...["inc_col_unit", "inc_ack", "inc_feedback", "actions"].map((key) => el("th", { textContent: t(key) })))),
      el("tbody", {}, ...rows));
    const article = el("article", { className: "inc-instruction" },
      el("header", {}, el("h4", { textContent: fill("inc_instruction_by", { author: instruction.author }) }),
         el("span", { className: "meta", textContent: localTime(instruction.at) })),
      el("p", { className: "inc-text", textContent: instruction.text }), table);
    article.dataset.instructionId = instruction.id;
    return article;
  });
}

function targetRow(instruction, target) {
  const ack = target.acknowledged_at
    ? fill("inc_acked", { by: target.acknowledged_by || "", at: localTime(target.acknowledged_at) }) : t("inc_not_acked");
  const feedback = target.feedback
    ? el("div", {}, el("p", { className: "inc-text", textContent: target.feedback }),
         el("span", { className: "meta", textContent: `${target.feedback_by || ""} · ${localTime(target.feedback_at)}` }))
    : "—";
  const actions = el("td", { className: "actions" });
  if (target.mine) {
    if (!target.acknowledged_at) {
      actions.append(el("button", { type: "button", className: "ack", textContent: t("inc_act_ack"),
                                    onclick: () => post(`/api/incident-instructions/${instruction.id}/acknowledge`) }));
    }
    const form = el("form", { className: "inc-form inc-feedback", noValidate: true },
      textField("text", "inc_feedback", 4000),
      el("div", { className: "inc-actions" }, el("button", { type: "submit", textContent: t("inc_act_feedback") })));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitForm(form, `/api/incident-instructions/${instruction.id}/feedback`, { text: form.elements.text.value }, drawIncident);
    });
    actions.append(form);
  }
  const row = el("tr", {}, withLabel("inc_col_unit", target.unit_name),
    withLabel("inc_ack", ack), withLabel("inc_feedback", feedback), actions);
  row.cells[1].className = "ack-state";
  row.cells[2].className = "feedback";
  row.dataset.unitId = target.unit_id;
  row.dataset.acknowledged = target.acknowledged_at ? "yes" : "no";
  if (target.mine) row.dataset.mine = "yes";
  return row;
}

// -- notices -------------------------------------------------------------------------------------

function reasonLabel(outcome) {
  return (CAT.flags.find((f) => f.code === outcome) || {}).label || t(`inc_reason_${outcome}`);
}

function noticesView(incident) {
  if (!incident.notices.length) return el("p", { className: "inc-empty", textContent: t("inc_none_yet") });
  const rows = incident.notices.map((notice) => {
    const actions = el("td", { className: "actions" });
    if (notice.may_respond && notice.status !== "closed") {
      const form = el("form", { className: "inc-form inc-respond", noValidate: true },
        fieldInput({ name: "response", label: t("inc_notice_response"), kind: "long_text", max_length: 4000 },
                   { value: notice.response || "", required: true }),
        el("div", { className: "inc-actions" }, el("button", { type: "submit", className: "respond", textContent: t("res_respond") })));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        submitForm(form, `/api/notices/${notice.id}/respond`, { response: form.elements.response.value },
                   () => showIncident(incident.id));
      });
      actions.append(form);
    }
    if (notice.may_close && notice.status === "responded") { // closed once the unit has answered
      actions.append(el("button", { type: "button", className: "close", textContent: t("res_close"), onclick: async () => {
        try {
          await api("POST", `/api/notices/${notice.id}/close`);
          await showIncident(incident.id);
        } catch (err) {
          showError(err.message);
        }
      } }));
    }
    const row = el("tr", {},
      withLabel("res_issue", reasonLabel(notice.outcome)),
      withLabel("inc_notice_text", notice.text || ""),
      withLabel("res_deadline", localTime(notice.deadline)),
      withLabel("res_state", t("no_" + notice.status) + (notice.overdue ? t("res_overdue") : "")),
      withLabel("res_response", notice.response || ""), actions);
    row.cells[3].className = "state";
    row.dataset.noticeId = notice.id;
    row.dataset.status = notice.status;
    return row;
  });
  return el("table", { className: "inc-notices" },
    el("thead", {}, el("tr", {}, ...["res_issue", "inc_notice_text", "res_deadline", "res_state", "res_response", "actions"]
      .map((key) => el("th", { textContent: t(key) })))),
    el("tbody", {}, ...rows));
}

// -- timeline ------------------------------------------------------------------------------------

function timelineText(event, incident) {
  switch (event.kind) {
    case "reported":
      return fill("inc_tl_reported", { report: reportName(event), channel: catLabel("channels", event.channel) });
    case "verified":
    {
      const report = incident.reports.find((r) => r.id === event.report_id);
      return fill(event.verified === false ? "inc_tl_unverified" : "inc_tl_verified",
                  { report: report ? reportName(report) : "", channel: catLabel("verify_channels", event.channel) });
    }
    case "flagged":
      return fill("inc_tl_flagged", { flag: catLabel("flags", event.flag), due: localTime(event.due_at) });
    case "notice_issued": return fill("inc_tl_notice_issued", { reason: reasonLabel(event.outcome) });
    case "notice_responded": return fill("inc_tl_notice_responded", { reason: reasonLabel(event.outcome) });
    case "notice_closed": return fill("inc_tl_notice_closed", { reason: reasonLabel(event.outcome) });
    case "instruction": return fill("inc_tl_instruction", { units: (event.units || []).join("、") });
    case "acknowledged": return fill("inc_tl_acknowledged", { unit: event.unit || "" });
    case "feedback": return fill("inc_tl_feedback", { unit: event.unit || "", text: event.text || "" });
    case "merged_in": return fill("inc_tl_merged_in", { id: event.source_id, title: event.title || "" });
    case "merged_into": return fill("inc_tl_merged_into", { id: event.target_id });
    case "closed": return t("inc_tl_closed");
    case "footage_started": return fill("inc_tl_footage_started", { video: event.video || "—" });
    case "footage_stopped":
      return fill("inc_tl_footage_stopped", { seconds: event.seconds ?? "—" })
        + (event.reason === "camera_lost" ? t("inc_tl_camera_lost") : "");
    case "footage_watched": return fill("inc_tl_footage_watched", { seconds: event.seconds ?? "—" });
    case "footage_recording_stopped":
      return fill("inc_tl_footage_recording_stopped", { free: event.free_mb ?? "—", min: event.min_mb ?? "—" });
    case "footage_recording_refused":
      return fill("inc_tl_footage_recording_refused", { free: event.free_mb ?? "—", min: event.min_mb ?? "—" });
    case "footage_expired": return fill("inc_tl_footage_expired", { count: event.segments ?? "—", days: event.days ?? "—" });
    case "relay_started":
      return fill("inc_tl_relay_started", { source: event.source || "", to: [...(event.rooms || []), ...(event.accounts || [])].join("、") });
    case "relay_stopped": return fill("inc_tl_relay_stopped", { reason: t("inc_relay_end_" + event.reason) || event.reason || "" });
    case "relay_watch_joined": return t("inc_tl_relay_watch_joined");
    case "relay_watch_left": return fill("inc_tl_relay_watch_left", { seconds: event.seconds ?? "—" });
    case "alert_acknowledged":
      return t(event.alert_kind === "instruction" ? "inc_tl_alert_ack_instruction" : "inc_tl_alert_ack_report");
    default: return event.kind;
  }
}

function timelineView(incident) {
  return el("ol", { className: "inc-timeline" }, ...incident.timeline.map((event) => {
    const from = event.incident_id !== incident.id ? ` ${fill("inc_tl_from", { id: event.incident_id })}` : "";
    const item = el("li", {},
      el("time", { textContent: localTime(event.at) }),
      el("span", { className: "what", textContent: timelineText(event, incident) + from }),
      el("span", { className: "actor", textContent: event.actor === "system" ? t("inc_system") : event.actor }));
    item.dataset.kind = event.kind;
    return item;
  }));
}

// -- field video links: a one-time link (and QR code) a responder's phone streams the scene through --

const FIELD_ROLES = ["admin", "host"];

function fieldLinksSection(incident) {
  if (!me || !FIELD_ROLES.includes(me.role)) return "";
  const list = el("ul", { className: "inc-field-links" });
  const made = el("div", { className: "inc-field-made" });
  const open = !["closed", "merged"].includes(incident.status);
  const node = section("inc_field", open ? fieldLinkForm(incident, list, made) : "", made, list);
  loadFieldLinks(incident.id, list);
  return node;
}

function fieldLinkForm(incident, list, made) {
  const label = fieldInput({ name: "label", label: t("inc_field_label"), kind: "text", max_length: 64 }, { required: true });
  const minutes = fieldInput({ name: "minutes", label: t("inc_field_minutes"), kind: "integer" }, { value: 120, required: true });
  Object.assign(minutes.querySelector("input"), { type: "number", min: 5, max: 1440, step: 1 });
  const form = el("form", { className: "inc-form inc-field-form", noValidate: true }, label, minutes,
    el("div", { className: "inc-actions" }, el("button", { type: "submit", textContent: t("inc_field_make") })));
  form.style.maxWidth = "32em";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitForm(form, `/api/incidents/${incident.id}/field-links`,
               { label: form.elements.label.value, minutes: Number(form.elements.minutes.value) }, (link) => {
      form.elements.label.value = "";
      showMadeLink(made, link);
      loadFieldLinks(incident.id, list);
    });
  });
  return form;
}

// The link just made: its URL and QR code, shown this once (the server keeps only a hash).
function showMadeLink(holder, link) {
  const qr = el("img", { className: "inc-field-qr", src: link.qr_svg, alt: t("inc_field_qr") });
  Object.assign(qr.style, { width: "220px", height: "220px", background: "#fff", padding: "6px", display: "block" });
  const url = el("input", { className: "inc-field-url", value: link.url, readOnly: true });
  Object.assign(url.style, { width: "100%", maxWidth: "40em" });
  url.addEventListener("focus", () => url.select());
  holder.replaceChildren(el("p", { className: "inc-hint", textContent: t("inc_field_once") }), qr, url,
    el("p", { className: "meta", textContent: `${link.label} · ${fill("inc_field_expires", { at: localTime(link.expires_at) })}` }));
  holder.dataset.linkId = link.id;
}

async function loadFieldLinks(incidentId, list) {
  let links;
  try {
    links = await api("GET", `/api/incidents/${incidentId}/field-links`);
  } catch (err) {
    list.replaceChildren(el("li", { className: "inc-empty", textContent: err.message }));
    return;
  }
  if (!links.length) {
    list.replaceChildren(el("li", { className: "inc-empty", textContent: t("inc_field_none") }));
    return;
  }
  list.replaceChildren(...links.map((link) => fieldLinkRow(incidentId, link, list)));
}

function fieldLinkRow(incidentId, link, list) {
  const state = link.revoked_at ? t("inc_field_revoked") : !link.valid ? t("inc_field_expired")
    : link.live ? t("inc_field_live") : link.claimed_at ? t("inc_field_claimed") : t("inc_field_unclaimed");
  const item = el("li", {},
    el("strong", { textContent: link.label }), " · ",
    el("span", { className: "state", textContent: state }), " · ",
    el("span", { className: "meta", textContent: fill("inc_field_expires", { at: localTime(link.expires_at) }) }));
  if (link.valid) {
    item.append(" ", el("button", { type: "button", className: "revoke", textContent: t("inc_field_revoke"), onclick: async () => {
      if (!confirm(t("inc_field_revoke_confirm"))) return;
      try {
        await api("DELETE", `/api/field-links/${link.id}`);
        showError("");
      } catch (err) {
        showError(err.message);
      }
      const made = list.parentNode && list.parentNode.querySelector(".inc-field-made");
      if (made && made.dataset.linkId === String(link.id)) made.replaceChildren();
      loadFieldLinks(incidentId, list);
    } }));
  }
  item.dataset.linkId = link.id;
  item.dataset.state = link.revoked_at ? "revoked" : !link.valid ? "expired" : link.live ? "live" : "open";
  return item;
}

// -- 现场视频: each source's segments on the incident's time line, a player (HTTP Range, seeking),
// download of a segment or of a time range (joined without re-encoding), each segment's SHA-256 so a
// copy can be checked; live relay to duty rooms and leaders (hosts); who accessed the footage. --

const FOOTAGE_HOSTS = ["admin", "host"];

function footageSection(incident) {
  if (!me || me.kind !== "account") return "";
  const player = el("video", { className: "inc-footage-player", controls: true, preload: "metadata", hidden: true });
  Object.assign(player.style, { width: "100%", maxWidth: "40em", background: "#000", display: "block" });
  const playing = el("p", { className: "meta inc-footage-playing" });
  const sources = el("div", { className: "inc-footage-sources", textContent: t("inc_footage_loading") });
  const relays = el("ul", { className: "inc-relays" });
  const access = el("div", { className: "inc-footage-access" });
  const node = section("inc_footage", player, playing, sources, relays, access);
  loadFootage(incident, { player, playing, sources, relays, access });
  return node;
}

async function loadFootage(incident, parts) {
  let sources;
  try {
    sources = await api("GET", `/api/incidents/${incident.id}/footage`);
  } catch (err) {
    parts.sources.textContent = err.message;
    return;
  }
  if (INCIDENT !== incident) return; // another incident is on screen now
  parts.sources.replaceChildren(...(sources.length ? sources.map((source) => sourceView(incident, source, parts))
    : [el("p", { className: "meta", textContent: t("inc_footage_none") })]));
  if (FOOTAGE_HOSTS.includes(me.role)) {
    loadRelays(incident, parts.relays);
    loadFootageAccess(incident, parts.access);
  }
}

function sourceView(incident, source, parts) {
  const start = Date.parse(source.started_at);
  const segments = source.segments;
  const lastEnd = segments.reduce((end, s) => Math.max(end, Date.parse(s.ended_at || s.started_at)), Date.parse(source.ended_at || source.started_at));
  const span = Math.max(1, lastEnd - start);
  // The segments on the source's stretch of the incident's time line.
  const bar = el("div", { className: "inc-footage-bar", title: `${localTime(source.started_at)} – ${localTime(source.ended_at)}` });
  Object.assign(bar.style, { position: "relative", height: "14px", background: "#ddd", maxWidth: "40em", margin: "4px 0" });
  for (const segment of segments) {
    const from = (Date.parse(segment.started_at) - start) / span;
    const to = (Date.parse(segment.ended_at || segment.started_at) - start) / span;
    const piece = el("span", { title: `#${segment.number} ${localTime(segment.started_at)}` });
    Object.assign(piece.style, { position: "absolute", top: 0, bottom: 0, left: `${from * 100}%`,
      width: `${Math.max(0.5, (to - from) * 100)}%`, background: "#3a7", borderRight: "1px solid #fff", cursor: "pointer" });
    piece.addEventListener("click", () => play(parts, source, segment));
    bar.append(piece);
  }
  const state = source.live ? t("inc_footage_live") : fill("inc_footage_ended", { at: localTime(source.ended_at) });
  const rows = segments.map((segment) => {
    const playButton = el("button", { type: "button", className: "play", textContent: t("inc_footage_play") });
    playButton.addEventListener("click", () => play(parts, source, segment));
    const download = el("a", { className: "download", href: `${segment.url}?download=1`, textContent: t("inc_footage_download") });
    const item = el("li", {},
      el("span", { textContent: `#${segment.number} ${localTime(segment.started_at)} · ${segment.duration ?? "—"} s · ${segment.size ? Math.ceil(segment.size / 1024) + " KB" : "—"} ` }),
      playButton, " ", download,
      el("div", { className: "meta" }, "SHA-256: ", el("code", { className: "sha256", textContent: segment.sha256 || t("inc_footage_hashing") })));
    item.dataset.segment = segment.id;
    return item;
  });
  const node = el("div", { className: "inc-footage-source" },
    el("h4", { textContent: `${source.label} · ${state}` }), bar,
    el("ol", { className: "inc-footage-segments" }, ...rows),
    segments.length ? rangeForm(source, start, lastEnd) : "",
    source.live && FOOTAGE_HOSTS.includes(me.role) ? relayForm(incident, source, parts) : "");
  node.dataset.source = source.id;
  return node;
}

function play(parts, source, segment) {
  parts.player.hidden = false;
  parts.player.src = segment.url;
  parts.playing.textContent = `${source.label} #${segment.number} · ${localTime(segment.started_at)} · SHA-256 ${segment.sha256 || "—"}`;
  parts.player.play().catch(() => {});
}

// A datetime-local value with seconds, on the deployment's wall clock (i18n.js), not this computer's.
function localInput(ms) {
  return zonedInput(ms, true);
}

// A range download is at most 2 h (the server's limit): the form starts at the recording's last 2 h.
const RANGE_MAX_MS = 2 * 3600 * 1000;

function rangeForm(source, start, end) {
  if (end - start > RANGE_MAX_MS) start = end - RANGE_MAX_MS;
  const from = el("input", { type: "datetime-local", step: 1, name: "from", value: localInput(start) });
  const to = el("input", { type: "datetime-local", step: 1, name: "to", value: localInput(end) });
  const link = el("a", { className: "range-download", textContent: t("inc_footage_range_download") });
  const update = () => {
    const a = fromZonedInput(from.value), b = fromZonedInput(to.value);
    if (!a || !b) { link.removeAttribute("href"); return; }
    link.href = `/api/footage/sources/${source.id}/download?from=${encodeURIComponent(a.toISOString())}&to=${encodeURIComponent(b.toISOString())}`;
  };
  from.addEventListener("input", update);
  to.addEventListener("input", update);
  update();
  return el("p", { className: "inc-footage-range" },
    el("label", {}, t("inc_footage_from"), " ", from), " ", el("label", {}, t("inc_footage_to"), " ", to), " ", link);
}

// -- live relay (hosts) ------------------------------------------------------------------------------

function relayForm(incident, source, parts) {
  const rooms = el("select", { multiple: true, name: "rooms", size: 4 });
  const leaders = el("select", { multiple: true, name: "accounts", size: 4 });
  api("GET", "/api/rooms").then((list) => rooms.replaceChildren(...list.filter((r) => r.active !== false)
    .map((r) => el("option", { value: r.id, textContent: r.name })))).catch(() => {});
  api("GET", "/api/accounts").then((list) => leaders.replaceChildren(...list.filter((a) => a.role === "leader" && a.active !== false)
    .map((a) => el("option", { value: a.id, textContent: a.display_name || a.username })))).catch(() => {});
  const form = el("form", { className: "inc-form inc-relay-form", noValidate: true },
    el("label", {}, t("inc_relay_rooms"), rooms), el("label", {}, t("inc_relay_leaders"), leaders),
    el("div", { className: "inc-actions" }, el("button", { type: "submit", textContent: t("inc_relay_start") })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = (select) => [...select.selectedOptions].map((o) => Number(o.value));
    try {
      await api("POST", `/api/incidents/${incident.id}/relays`, { source_id: source.id, rooms: chosen(rooms), accounts: chosen(leaders) });
      showError("");
      loadRelays(incident, parts.relays);
    } catch (err) {
      showError(err.message);
    }
  });
  return form;
}

async function loadRelays(incident, list) {
  let relays;
  try {
    relays = await api("GET", `/api/incidents/${incident.id}/relays`);
  } catch (err) {
    return;
  }
  list.replaceChildren(...relays.map((relay) => {
    const to = [...relay.rooms, ...relay.accounts].map((x) => x.name).join("、");
    const text = relay.live ? fill("inc_relay_live", { to, watching: relay.watching.join("、") || "—" })
      : fill("inc_relay_ended", { to, at: localTime(relay.ended_at) });
    const item = el("li", { className: relay.live ? "live" : "ended" }, el("span", { textContent: `${localTime(relay.started_at)} ${text} ` }));
    if (relay.live) {
      const stop = el("button", { type: "button", className: "relay-stop", textContent: t("inc_relay_stop") });
      stop.addEventListener("click", async () => {
        stop.disabled = true;
        try { await api("DELETE", `/api/relays/${relay.id}`); } catch (err) { showError(err.message); }
        loadRelays(incident, list);
      });
      item.append(stop);
    }
    item.dataset.relay = relay.id;
    return item;
  }));
}

async function loadFootageAccess(incident, holder) {
  let rows;
  try {
    rows = await api("GET", `/api/incidents/${incident.id}/footage-access`);
  } catch (err) {
    return;
  }
  if (!rows.length) return;
  const body = rows.map((row) => {
    const what = row.range_from ? fill("inc_access_range", { from: localTime(row.range_from), to: localTime(row.range_to) })
      : row.segment_id ? fill("inc_access_segment", { id: row.segment_id }) : row.source_id ? fill("inc_access_source", { id: row.source_id }) : "";
    return el("tr", {}, el("td", { textContent: localTime(row.at) }), el("td", { textContent: row.who }),
      el("td", { textContent: t("inc_access_" + row.action) || row.action }), el("td", { textContent: what }),
      el("td", { textContent: row.client_address || "—" }));
  });
  holder.replaceChildren(el("h4", { textContent: t("inc_footage_access") }), el("table", { className: "inc-access" },
    el("thead", {}, el("tr", {}, ...["inc_access_at", "inc_access_who", "inc_access_action", "inc_access_what", "inc_access_address"]
      .map((k) => el("th", { textContent: t(k) })))), el("tbody", {}, ...body)));
}
