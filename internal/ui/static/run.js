// Baton web UI: the run and task run pages' own parts. Log search on the
// server (GET /api/v1/runs/{id}/logs?q=&level=), the history and the
// comparison of attempts kept live from the run's event stream (app.js
// dispatches its events), and the pause and retry-with-parameters forms,
// sent to the public API. Without scripts the same forms are plain GET
// forms and links that the server answers.

import { api, el, fmtTime, formValue, followRun, showProblems, stateBadge } from "./app.js";

const logsPage = 200;

function logLine(l) {
  const li = el("li", { "data-id": String(l.id), class: "lvl-" + l.level },
    el("time", { datetime: l.at }, fmtTime(l.at)), " ", el("span", { class: "level" }, l.level), " ");
  if (l.task_key) li.append(el("code", {}, l.task_key), " ");
  li.append(el("span", { class: "msg" }, l.message));
  return li;
}

// --- logs: search and filter on the server ---

function setupLogSearch() {
  const form = document.getElementById("log-filter");
  if (!form) return;
  const ol = document.getElementById("log-lines");
  const runID = form.dataset.run, taskRun = form.dataset.taskRun || "";
  const summary = document.getElementById("logs-summary");
  const pager = document.getElementById("logs-pager");
  const download = document.getElementById("logs-download");
  const clear = document.getElementById("logs-clear");
  let q = form.elements.logs_q.value.trim(), level = form.elements.logs_level.value;
  let more = !!document.getElementById("logs-next");
  let busy = false, again = false, shown = ol.children.length;

  const filter = () => {
    const p = new URLSearchParams();
    if (taskRun) p.set("task_run", taskRun);
    if (q) p.set("q", q);
    if (level) p.set("level", level);
    return p;
  };
  // app.js appends the stream's lines itself only when the list shows
  // every line to the end; otherwise this module asks the server.
  const mode = () => { ol.dataset.filtered = (q || level || more) ? "true" : ""; };
  mode();

  function render() {
    const f = filter();
    download.href = `/api/v1/runs/${encodeURIComponent(runID)}/logs/download` + (f.toString() ? "?" + f : "");
    download.textContent = (q || level) ? "Download the matching lines (text)" : "Download all lines (text)";
    clear.hidden = !(q || level);
    pager.replaceChildren();
    if (more) {
      const next = el("a", { href: "#logs", id: "logs-next", rel: "next" }, "Next log lines");
      next.addEventListener("click", (ev) => { ev.preventDefault(); load(false); });
      pager.append(next);
    }
    let none = document.getElementById("no-logs");
    if (!ol.children.length) {
      if (!none) { none = el("p", { id: "no-logs" }); ol.after(none); }
      none.textContent = (q || level) ? "No log lines match." : "No log lines.";
    } else if (none) none.remove();
    summary.textContent = (q || level)
      ? `Lines${q ? ` containing “${q}”` : ""}${level ? ` at ${level} or above` : ""}, searched on the server: ${shown}${more ? "+" : ""} shown.`
      : "";
  }

  // load reads the next page of matches (or the first, fresh).
  async function load(fresh) {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const p = filter();
      p.set("after", fresh ? "0" : (ol.dataset.after || "0"));
      p.set("limit", String(logsPage + 1));
      const res = await api("GET", `/api/v1/runs/${encodeURIComponent(runID)}/logs?${p}`);
      let lines = res.logs || [];
      more = lines.length > logsPage;
      if (more) lines = lines.slice(0, logsPage);
      if (fresh) { ol.replaceChildren(); shown = 0; ol.dataset.after = "0"; }
      for (const l of lines) {
        if (ol.querySelector(`li[data-id="${l.id}"]`)) continue;
        ol.append(logLine(l));
        shown++;
        ol.dataset.after = String(l.id);
      }
      mode();
      render();
    } catch (e) {
      summary.textContent = e.message;
    } finally {
      busy = false;
      if (again) { again = false; if (!more) load(false); }
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    q = form.elements.logs_q.value.trim();
    level = form.elements.logs_level.value;
    const url = new URL(location.href);
    url.searchParams.delete("logs_after");
    for (const [k, v] of [["logs_q", q], ["logs_level", level]]) {
      if (v) url.searchParams.set(k, v); else url.searchParams.delete(k);
    }
    url.hash = "logs";
    history.replaceState(null, "", url);
    more = true; // until the first page says otherwise
    mode();
    load(true);
  });
  clear.addEventListener("click", (ev) => {
    ev.preventDefault();
    form.elements.logs_q.value = "";
    form.elements.logs_level.value = "";
    form.requestSubmit();
  });
  const next = document.getElementById("logs-next");
  if (next) next.addEventListener("click", (ev) => { ev.preventDefault(); load(false); });
  // New lines of the run: the new matches, once the list is at its end.
  document.addEventListener("baton:logs", () => { if (!more) load(false); });
}

// --- task run page, live: its lines and its state ---

function setupTaskLive() {
  const root = document.querySelector(".taskrun[data-stream]");
  if (!root || !root.dataset.stream || !window.EventSource) return;
  const ol = document.getElementById("log-lines"), note = document.getElementById("live-note");
  const es = new EventSource(root.dataset.stream);
  let busy = false, again = false;
  es.addEventListener("open", () => { note.textContent = "Live: new log lines of this step appear as they are written."; });
  es.addEventListener("logs", (ev) => {
    if (ol.dataset.filtered === "true") {
      document.dispatchEvent(new CustomEvent("baton:logs"));
      return;
    }
    document.getElementById("no-logs")?.remove();
    for (const l of JSON.parse(ev.data).logs) {
      if (ol.querySelector(`li[data-id="${l.id}"]`)) continue;
      ol.append(logLine(l));
      ol.dataset.after = String(l.id);
    }
  });
  async function state() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const tr = await api("GET", `/api/v1/runs/${encodeURIComponent(root.dataset.run)}/task-runs/${encodeURIComponent(root.dataset.taskRun)}`);
      const cell = document.getElementById("task-state");
      if (cell.querySelector(".state")?.dataset.state !== tr.state) cell.replaceChildren(stateBadge(tr.state));
      if (["COMPLETED", "FAILED", "TIMED_OUT", "CACHED", "CANCELLED", "CRASHED"].includes(tr.state)) {
        es.close();
        note.replaceChildren(`This task run ended: ${tr.state}. `, el("a", { href: location.pathname }, "Show its output and tries"));
      }
    } catch (e) {
      note.textContent = e.message;
    } finally {
      busy = false;
      if (again) { again = false; state(); }
    }
  }
  es.addEventListener("run", state);
  es.addEventListener("end", () => { es.close(); state(); });
}

// --- history and attempts, live ---

function historyRow(h) {
  const who = el("td", {}, h.actor);
  if (!h.verified) who.append(" ", el("span", { class: "hint" }, "(unverified)"));
  return el("tr", { "data-seq": String(h.seq) }, el("td", {}, el("time", { datetime: h.time }, fmtTime(h.time))), who,
    el("td", {}, el("span", { class: "action" }, h.action)), el("td", {}, h.reason || ""));
}

const reasonLabels = {
  new: "new step", failed_before: "failed before", unfinished: "unfinished before", input_changed: "input changed",
  version_changed: "new code version", task_changed: "another task here", ran_again: "ran again", reused: "reused",
};
const taskPath = (run, tr) => `/runs/${encodeURIComponent(run)}/tasks/${encodeURIComponent(tr)}`;

function stepLink(run, s) {
  return el("a", { href: taskPath(run, s.task_run_id) }, el("code", {}, s.key));
}

// renderCompare draws GET /api/v1/runs/{id}/attempts as the server's template does.
function renderCompare(cmp) {
  const out = [];
  for (const a of cmp.attempts) {
    if (a.attempt < 2) continue;
    const sec = el("section", { class: "attempt-diff", "data-attempt": String(a.attempt), "aria-labelledby": "cmp-" + a.attempt },
      el("h3", { id: "cmp-" + a.attempt }, `Attempt ${a.attempt} compared with the attempts before it`));
    const p = el("p", {}, "It ran ", el("span", { class: "n" }, String(a.ran_total)), ` step${a.ran_total === 1 ? "" : "s"}`);
    if (a.reasons.length) {
      p.append(" (");
      a.reasons.forEach((r, i) => {
        if (i) p.append(", ");
        p.append(el("span", { class: "reason", "data-reason": r.reason }, reasonLabels[r.reason] || r.reason), `: ${r.n}`);
      });
      p.append(")");
    }
    p.append("; ", el("span", { class: "n" }, String(a.reused_total)),
      ` successful step${a.reused_total === 1 ? "" : "s"} of earlier attempts were not run again (reused when it called them).`);
    sec.append(p);
    if (a.ran.length) {
      const body = el("tbody");
      for (const s of a.ran) {
        const prev = el("td");
        if (s.previous) prev.append(stepLink(cmp.run_id, s.previous), ` of attempt ${s.previous.attempt} (${s.previous.state})`);
        body.append(el("tr", { "data-reason": s.reason }, el("td", {}, stepLink(cmp.run_id, s)), el("td", {}, s.task),
          el("td", {}, stateBadge(s.state)), el("td", {}, el("strong", {}, reasonLabels[s.reason] || s.reason), ": " + s.detail), prev));
      }
      const head = el("thead", {}, el("tr", {}, ...["Step", "Task", "State", "Why it ran", "Compared with"].map((h) => el("th", { scope: "col" }, h))));
      sec.append(el("div", { class: "scroll" }, el("table", {}, el("caption", {}, `Steps attempt ${a.attempt} ran, and why`), head, body)));
    }
    if (a.reused.length) {
      const ul = el("ul", { class: "plain" });
      for (const s of a.reused) ul.append(el("li", {}, stepLink(cmp.run_id, s), ` ${s.task}: ${s.detail}`));
      sec.append(el("details", {}, el("summary", {}, `Steps not run again (${a.reused_total})`), ul));
    }
    out.push(sec);
  }
  document.getElementById("attempt-compare").replaceChildren(...out);
}

function renderAttempts(attempts) {
  const body = document.getElementById("attempts-body");
  if (!body || !attempts) return;
  body.replaceChildren(...attempts.map((a) => {
    const edit = el("td");
    if (a.edit) edit.append(`by ${a.edit.by} at ${fmtTime(a.edit.at)}: `, el("code", {}, JSON.stringify(a.edit.from)), " → ", el("code", {}, JSON.stringify(a.edit.to)));
    return el("tr", {}, el("th", { scope: "row" }, String(a.attempt)), el("td", {}, a.steps ? String(a.steps.reused) : "–"),
      el("td", {}, a.steps ? String(a.steps.ran) : "–"), edit);
  }));
}

function setupRunLive() {
  const root = document.querySelector(".run[data-run]");
  if (!root) return;
  const id = root.dataset.run;
  const hist = document.getElementById("history-body");
  let attempt = Number(document.getElementById("run-attempt").textContent), busy = false, again = false;
  async function refresh(r, end) {
    if (busy) { again = true; return; }
    busy = true;
    try {
      if (hist && hist.dataset.more !== "true") {
        const page = await api("GET", `/api/v1/runs/${encodeURIComponent(id)}/history?after=${hist.dataset.after || 0}&limit=1000`);
        const none = document.getElementById("no-history");
        if (none && page.history.length) none.remove();
        for (const h of page.history) {
          if (hist.querySelector(`tr[data-seq="${h.seq}"]`)) continue;
          hist.append(historyRow(h));
          hist.dataset.after = String(h.seq);
        }
        if (page.next_after) hist.dataset.more = "true";
      }
      if (r && r.attempts) renderAttempts(r.attempts);
      if ((r && r.attempt !== attempt) || end) {
        if (r) attempt = r.attempt;
        const cur = r ? r.attempt : attempt;
        if (cur > 1) renderCompare(await api("GET", `/api/v1/runs/${encodeURIComponent(id)}/attempts?limit=50`));
      }
    } catch (e) {
      document.getElementById("live-note").textContent = e.message;
    } finally {
      busy = false;
      if (again) { again = false; refresh(null, true); }
    }
  }
  document.addEventListener("baton:run", (ev) => {
    const r = ev.detail;
    const params = document.getElementById("run-params");
    if (r.parameters !== null && r.parameters !== undefined) {
      params.textContent = JSON.stringify(r.parameters, null, 2);
      params.hidden = false;
      document.getElementById("no-params")?.remove();
    }
    const retryable = ["FAILED", "CANCELLED", "CRASHED"].includes(r.state) && !r.parent_run_id;
    document.getElementById("retry-edit").hidden = !retryable;
    document.getElementById("pause-form").hidden = !(["SCHEDULED", "PENDING", "RUNNING", "AWAITING_RETRY"].includes(r.state) && !r.pause_request);
    const pn = document.getElementById("pause-note");
    pn.hidden = !r.pause_request;
    if (r.pause_request) pn.textContent = `Pause asked by ${r.pause_request.by}${r.pause_request.reason ? ": " + r.pause_request.reason : ""}.`;
    showWaits(r);
    refresh(r, false);
  });
  document.addEventListener("baton:end", () => refresh(null, true));
}

// showWaits offers the resume of a run that became PAUSED on a pause, and
// points to the form of one that waits for input (GET /api/v1/inbox?run=).
let waitsShown = "";
async function showWaits(r) {
  const resume = document.getElementById("resume-run"), note = document.getElementById("waits-note");
  if (r.state !== "PAUSED") {
    resume.hidden = true;
    note.hidden = true;
    waitsShown = "";
    return;
  }
  if (waitsShown === r.state + r.attempt) return;
  waitsShown = r.state + r.attempt;
  try {
    const inbox = await api("GET", `/api/v1/inbox?run=${encodeURIComponent(r.id)}`);
    resume.hidden = !inbox.items.some((it) => it.kind !== "input");
    note.hidden = document.querySelector("form.wait-form") !== null || !inbox.items.some((it) => it.kind === "input");
  } catch (e) {
    document.querySelector(".action-status").textContent = e.message;
  }
}

function setupResume() {
  const b = document.getElementById("resume-run");
  if (!b) return;
  b.addEventListener("click", async () => {
    const status = b.closest(".actions").querySelector(".action-status");
    b.disabled = true;
    status.textContent = "Resuming…";
    try {
      const res = await api("POST", `/api/v1/runs/${encodeURIComponent(b.dataset.run)}/input`, {});
      status.textContent = res.resumed ? "Resumed: the run goes on." : "Sent.";
      b.hidden = true;
      followRun();
    } catch (e) {
      status.textContent = e.message;
    } finally {
      b.disabled = false;
    }
  });
}

// --- actions: pause, retry with edited parameters ---

function setupRetryForm() {
  const form = document.querySelector("form.retry-form");
  if (!form) return;
  const errors = form.querySelector(".form-errors"), status = form.querySelector(".form-status");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.replaceChildren();
    status.textContent = "";
    const { problems, value } = formValue(form);
    if (problems.length) { showProblems(form, problems, "Check the parameters:"); return; }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    status.textContent = "Retrying…";
    try {
      const run = await api("POST", `/api/v1/runs/${encodeURIComponent(form.dataset.run)}/retry`, { parameters: value });
      status.textContent = `Retry requested: attempt ${run.attempt} is ${run.state}.`;
      document.getElementById("retry-edit").open = false;
      followRun(); // the new attempt, live
    } catch (e) {
      status.textContent = "";
      errors.replaceChildren(el("p", { class: "server-error" }, e.message));
    } finally {
      button.disabled = false;
    }
  });
}

function setupPauseForm() {
  const form = document.getElementById("pause-form");
  if (!form) return;
  const errors = form.querySelector(".form-errors"), status = form.querySelector(".form-status");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.replaceChildren();
    status.textContent = "Asking the run to pause…";
    try {
      const reason = form.elements.reason.value.trim();
      const run = await api("POST", `/api/v1/runs/${encodeURIComponent(form.dataset.run)}/pause`, reason ? { reason } : {});
      status.textContent = "";
      // The form hides once the run says a pause is asked: say it beside the buttons.
      document.querySelector(".actions .action-status").textContent =
        run.state === "PAUSED" ? "The run is paused." : "Pause requested: the run pauses before its next step.";
      followRun();
    } catch (e) {
      status.textContent = "";
      errors.replaceChildren(el("p", { class: "server-error" }, e.message));
    }
  });
}

setupLogSearch();
setupTaskLive();
setupRunLive();
setupRetryForm();
setupPauseForm();
setupResume();
