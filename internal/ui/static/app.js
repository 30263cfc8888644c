// Baton web UI: makes the server-rendered pages live. Plain ES module, no
// dependencies: Server-Sent Events from /api/v1/.../stream update what the
// page shows; actions and inputs are sent to the public API. Input is
// checked in the browser against the wait's JSON Schema with the vendored
// @cfworker/json-schema (see vendor/VERSIONS.md), and again by the server.

import { Validator } from "./vendor/cfworker-json-schema/index.js";

const icons = {
  SCHEDULED: "◷", PENDING: "…", RUNNING: "▶", PAUSED: "⏸", AWAITING_RETRY: "↻", CANCELLING: "⊘",
  COMPLETED: "✓", FAILED: "✗", CANCELLED: "⊘", CRASHED: "⚠", WAITING: "⏸", TIMED_OUT: "⌛", CACHED: "✓",
};
const finalStates = new Set(["COMPLETED", "FAILED", "CANCELLED", "CRASHED"]);

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// stateBadge is the state shown by an icon and its name besides its colour.
export function stateBadge(state) {
  return el("span", { class: "state s-" + state.toLowerCase(), "data-state": state },
    el("span", { class: "icon", "aria-hidden": "true" }, icons[state] || "•"), " ",
    el("span", { class: "label" }, state));
}

export function fmtTime(s) {
  if (!s) return "";
  return new Date(s).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

// api calls the public API and returns the decoded body, throwing an
// Error with the API's message for an error status.
export async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let doc = null;
  try { doc = await res.json(); } catch { /* empty body */ }
  if (!res.ok) {
    const err = new Error((doc && doc.error && doc.error.message) || res.status + " " + res.statusText);
    err.status = res.status;
    throw err;
  }
  return doc;
}

// --- actions ---

function setupActions() {
  for (const b of document.querySelectorAll("button[data-action]")) {
    b.addEventListener("click", async () => {
      const status = b.closest(".actions").querySelector(".action-status");
      const id = b.dataset.run, action = b.dataset.action;
      b.disabled = true;
      status.textContent = action === "cancel" ? "Cancelling…" : "Retrying…";
      try {
        const run = await api("POST", `/api/v1/runs/${encodeURIComponent(id)}/${action}`);
        status.textContent = `${action === "cancel" ? "Cancel" : "Retry"} requested: the run is ${run.state}.`;
        if (action === "retry") followRun(); // the new attempt, live
      } catch (e) {
        status.textContent = e.message;
      } finally {
        b.disabled = false;
      }
    });
  }
}

// --- forms generated from a wait's JSON Schema ---

// showProblems lists the problems formValue found in the form's error box,
// under heading, marks their fields invalid and focuses the first.
export function showProblems(form, problems, heading) {
  const ul = el("ul");
  for (const p of problems) {
    if (p.f) p.f.setAttribute("aria-invalid", "true");
    ul.append(el("li", {}, p.msg));
  }
  form.querySelector(".form-errors").replaceChildren(el("p", {}, heading), ul);
  if (problems[0] && problems[0].f) problems[0].f.focus();
}

// formValue reads a wait form's value, or returns the problems that the
// browser's checks of the schema's constraints found.
export function formValue(form) {
  const problems = [];
  const value = {};
  let whole;
  for (const f of form.querySelectorAll("[data-type]")) {
    const label = form.querySelector(`label[for="${f.id}"]`);
    const name = label ? label.textContent.replace(/\s*\(required\)\s*$/, "").trim() : f.name;
    f.removeAttribute("aria-invalid");
    if (!f.checkValidity()) {
      problems.push({ f, msg: `${name}: ${f.validationMessage}` });
      continue;
    }
    let v;
    switch (f.dataset.type) {
      case "boolean": v = f.checked; break;
      case "integer": if (f.value === "") continue; v = parseInt(f.value, 10); break;
      case "number": if (f.value === "") continue; v = parseFloat(f.value); break;
      case "json":
        if (f.value.trim() === "") continue;
        try { v = JSON.parse(f.value); } catch (e) { problems.push({ f, msg: `${name}: not JSON (${e.message})` }); continue; }
        break;
      default: if (f.value === "" && !f.required) continue; v = f.value;
    }
    if (form.dataset.whole === "true") whole = v;
    else value[f.name] = v;
  }
  const result = form.dataset.whole === "true" ? whole : value;
  if (!problems.length && form.dataset.schema) problems.push(...schemaProblems(form, result));
  return { problems, value: result };
}

// Keywords whose errors only say that a part of the value failed: the
// errors of that part say how.
const wrapperKeywords = new Set(["properties", "items", "prefixItems", "allOf", "$ref", "if", "then", "else",
  "dependentSchemas", "unevaluatedProperties", "unevaluatedItems"]);

// schemaProblems checks value against the form's JSON Schema.
function schemaProblems(form, value) {
  let schema;
  try { schema = JSON.parse(form.dataset.schema); } catch { return []; }
  const draft = String(schema.$schema || "").includes("draft-07") ? "7" : "2020-12";
  const res = new Validator(schema, draft, false).validate(value);
  if (res.valid) return [];
  const out = [];
  for (const e of res.errors) {
    if (wrapperKeywords.has(e.keyword)) continue;
    const name = e.instanceLocation.replace(/^#\/?/, "").split("/")[0];
    const f = [...form.querySelectorAll("[data-type]")].find((x) => x.name === name) || form.querySelector("[data-type]");
    const where = name || "value";
    out.push({ f, msg: `${where}: ${e.error}` });
  }
  if (!out.length) out.push({ f: form.querySelector("[data-type]"), msg: res.errors[0].error });
  return out;
}

function setupWaitForms() {
  for (const form of document.querySelectorAll("form.wait-form")) {
    const errors = form.querySelector(".form-errors");
    const status = form.querySelector(".form-status");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      errors.replaceChildren();
      status.textContent = "";
      const body = { key: form.dataset.key };
      if (form.dataset.kind === "input") {
        const { problems, value } = formValue(form);
        if (problems.length) {
          showProblems(form, problems, "Check the input:");
          return;
        }
        body.value = value;
      }
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      status.textContent = "Sending…";
      try {
        const res = await api("POST", `/api/v1/runs/${encodeURIComponent(form.dataset.run)}/input`, body);
        status.textContent = res.resumed ? "Sent: the run resumes." : "Sent.";
        form.querySelector("fieldset").disabled = true;
        form.classList.add("answered");
      } catch (e) {
        status.textContent = "";
        errors.append(el("p", { class: "server-error" }, e.message));
        button.disabled = false;
      }
    });
  }
}

// --- live run page ---

let runStream = null;

// followRun follows the run of the page through its event stream (the
// page's, or one made from the run's ID and the last log line shown).
export function followRun() {
  const root = document.querySelector(".run[data-run]");
  if (!root || !window.EventSource || (runStream && runStream.readyState !== EventSource.CLOSED)) return;
  const after = document.getElementById("log-lines").dataset.after || "0";
  const url = root.dataset.stream || `/api/v1/runs/${encodeURIComponent(root.dataset.run)}/stream?after=${after}`;
  root.dataset.stream = "";
  const note = document.getElementById("live-note");
  const es = new EventSource(url);
  runStream = es;
  es.addEventListener("open", () => { note.textContent = "Live: updates as the run goes."; });
  es.addEventListener("error", () => { if (es.readyState !== EventSource.CLOSED) note.textContent = "Reconnecting…"; });
  es.addEventListener("run", (ev) => {
    const r = JSON.parse(ev.data);
    updateRun(r);
    document.dispatchEvent(new CustomEvent("baton:run", { detail: r })); // run.js: history, attempts
  });
  es.addEventListener("logs", (ev) => appendLogs(JSON.parse(ev.data).logs));
  es.addEventListener("end", (ev) => {
    es.close();
    const end = JSON.parse(ev.data);
    note.textContent = `This run is finished: ${end.state}.`;
    document.dispatchEvent(new CustomEvent("baton:end", { detail: end }));
  });
}

function setupRunStream() {
  const root = document.querySelector(".run[data-stream]");
  if (root && root.dataset.stream) followRun();
}

function updateRun(r) {
  document.getElementById("run-state").replaceChildren(stateBadge(r.state));
  document.getElementById("run-attempt").textContent = r.attempt;
  document.getElementById("run-started").textContent = fmtTime(r.started_at);
  document.getElementById("run-ended").textContent = fmtTime(r.ended_at);
  const done = finalStates.has(r.state);
  const cancel = document.querySelector('button[data-action="cancel"]');
  if (cancel) cancel.hidden = done || !!r.parent_run_id;
  const retry = document.querySelector('button[data-action="retry"]');
  if (retry) retry.hidden = !(["FAILED", "CANCELLED", "CRASHED"].includes(r.state) && !r.parent_run_id);
  const waits = document.getElementById("waits");
  if (waits && r.state !== "PAUSED") waits.hidden = true;
  const errSection = document.getElementById("run-error-section");
  if (r.error) {
    const box = el("div", { class: "error-box" },
      el("p", { class: "error-message" }, el("strong", {}, "Error:"), " ", el("span", { "data-field": "error-message" }, r.error.message)));
    if (r.error.kind) box.append(el("p", {}, "Kind: " + r.error.kind));
    if (r.error.chain && r.error.chain.length) {
      const ol = el("ol", { class: "chain" });
      for (const c of r.error.chain) ol.append(el("li", {}, el("code", {}, c)));
      box.append(el("details", {}, el("summary", {}, `Error chain (${r.error.chain.length})`), ol));
    }
    document.getElementById("run-error").replaceChildren(box);
    errSection.hidden = false;
  } else {
    errSection.hidden = true;
  }
  if (r.result !== null && r.result !== undefined) {
    document.getElementById("run-result").textContent = JSON.stringify(r.result, null, 2);
    document.getElementById("run-result-section").hidden = false;
  }
  document.getElementById("task-total").textContent = r.task_runs_total;
  const body = document.getElementById("counts-body");
  const byTask = new Map();
  for (const c of r.counts || []) {
    if (!byTask.has(c.task)) byTask.set(c.task, []);
    byTask.get(c.task).push(c);
  }
  const rows = [];
  for (const [task, cs] of byTask) {
    const cell = el("td");
    for (const c of cs) cell.append(el("span", { class: "count" }, stateBadge(c.state), " ", el("span", { class: "n" }, String(c.n))), " ");
    rows.push(el("tr", { "data-task": task }, el("th", { scope: "row" }, task),
      el("td", {}, String(cs.reduce((a, c) => a + c.n, 0))), cell));
  }
  if (!rows.length) rows.push(el("tr", {}, Object.assign(el("td", { colspan: "3" }, "No task run yet."))));
  body.replaceChildren(...rows);
}

function appendLogs(logs) {
  const ol = document.getElementById("log-lines");
  if (ol.dataset.filtered === "true") {
    // A search shows what the server matched: run.js asks it for the new matches.
    document.dispatchEvent(new CustomEvent("baton:logs", { detail: logs }));
    return;
  }
  const none = document.getElementById("no-logs");
  if (none && logs.length) none.remove();
  for (const l of logs) {
    if (ol.querySelector(`li[data-id="${l.id}"]`)) continue;
    const li = el("li", { "data-id": String(l.id), class: "lvl-" + l.level },
      el("time", { datetime: l.at }, fmtTime(l.at)), " ", el("span", { class: "level" }, l.level), " ");
    if (l.task_key) li.append(el("code", {}, l.task_key), " ");
    li.append(el("span", { class: "msg" }, l.message));
    ol.append(li);
    ol.dataset.after = String(l.id);
  }
}

// --- live runs list ---

function setupRunsStream() {
  const note = document.querySelector(".live-note[data-stream]");
  if (!note || !note.dataset.stream || !window.EventSource) return;
  const es = new EventSource(note.dataset.stream);
  es.addEventListener("open", () => { note.dataset.live = "open"; });
  es.addEventListener("runs", (ev) => {
    let fresh = 0;
    for (const r of JSON.parse(ev.data).runs) {
      const row = document.querySelector(`tr[data-run="${CSS.escape(r.id)}"]`);
      if (!row) { fresh++; continue; }
      const cell = row.querySelector(".state-cell");
      if (cell.querySelector(".state").dataset.state !== r.state) cell.replaceChildren(stateBadge(r.state));
    }
    note.replaceChildren();
    if (fresh > 0) {
      note.append(`${fresh} new run${fresh > 1 ? "s" : ""}: `, el("a", { href: location.pathname + location.search }, "show them"));
    }
  });
}

setupActions();
setupWaitForms();
setupRunStream();
setupRunsStream();
// The page's scripts have all run (module scripts run before
// DOMContentLoaded): its buttons answer clicks from now on.
document.addEventListener("DOMContentLoaded", () => { document.documentElement.dataset.ready = "true"; });
