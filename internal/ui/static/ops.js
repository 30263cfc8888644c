// Baton web UI, the operations pages: the dashboard's chart (the vendored
// uPlot, see vendor/VERSIONS.md), the runs list's bulk cancel and retry,
// and the actions of the deployments and queues pages. Every action is a
// call of the public API (/api/v1); the pages read without this script.

import { api, el, formValue, showProblems } from "./app.js";

// post calls the public API with POST.
const post = (path, body) => api("POST", path, body);

// utc reads a datetime-local field as a UTC time (RFC 3339).
function utc(v) {
  if (!v) return undefined;
  return (v.length === 16 ? v + ":00" : v) + "Z";
}

// --- buttons and forms that call one endpoint ---

function setupAPIButtons() {
  for (const b of document.querySelectorAll("button.api-button[data-api]")) {
    b.addEventListener("click", async () => {
      const status = b.closest("td, section, form")?.querySelector(".form-status") || document.getElementById("ops-status");
      b.disabled = true;
      try {
        await post(b.dataset.api, b.dataset.body ? JSON.parse(b.dataset.body) : undefined);
        if (status) status.textContent = "Done.";
        if (b.dataset.reload) location.reload();
      } catch (e) {
        if (status) status.textContent = e.message;
        else alert(e.message);
      } finally {
        b.disabled = false;
      }
    });
  }
}

function setupAPIForms() {
  for (const form of document.querySelectorAll("form.api-form[data-api]")) {
    const status = form.querySelector(".form-status");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      const button = form.querySelector("button[type=submit]");
      const body = {};
      for (const f of form.querySelectorAll("input, textarea, select")) {
        if (!f.name || f.value === "") continue;
        body[f.name] = f.dataset.time === "utc" ? utc(f.value) : f.value;
      }
      button.disabled = true;
      status.textContent = "Sending…";
      try {
        const res = await post(form.dataset.api, body);
        if (form.dataset.kind === "backfill") {
          status.replaceChildren(`Created ${res.created.length} run${res.created.length === 1 ? "" : "s"}; ${res.existed} existed already.`);
          if (res.created.length) {
            const name = document.querySelector(".deployment[data-deployment]").dataset.deployment;
            status.append(" ", el("a", { href: "/runs?deployment=" + encodeURIComponent(name) }, "See them"));
          }
        } else {
          status.textContent = "Done.";
        }
        if (form.dataset.reload) location.reload();
      } catch (e) {
        status.textContent = e.message;
      } finally {
        button.disabled = false;
      }
    });
  }
}

// --- run now: a parameters form generated from the flow's schema ---

function setupParamsForms() {
  for (const form of document.querySelectorAll("form.params-form[data-api]")) {
    const errors = form.querySelector(".form-errors");
    const status = form.querySelector(".form-status");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      errors.replaceChildren();
      status.textContent = "";
      const { problems, value } = formValue(form);
      if (problems.length) {
        showProblems(form, problems, "Check the parameters:");
        return;
      }
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      status.textContent = "Starting…";
      try {
        const body = value === undefined ? {} : { parameters: value };
        if (form.dataset.flow) body.flow = form.dataset.flow; // POST /api/v1/runs names the flow
        const run = await post(form.dataset.api, body);
        status.replaceChildren("Started run ", el("a", { href: "/runs/" + encodeURIComponent(run.id), class: "new-run" }, run.id), ` (${run.state}).`);
      } catch (e) {
        status.textContent = "";
        errors.append(el("p", { class: "server-error" }, e.message));
      } finally {
        button.disabled = false;
      }
    });
  }
}

// --- runs list: bulk cancel and retry of the selected runs ---

function setupBulk() {
  const form = document.getElementById("bulk");
  if (!form) return;
  const boxes = () => [...form.querySelectorAll("input.select-run")];
  const all = document.getElementById("select-all");
  const count = form.querySelector(".bulk-count");
  const status = form.querySelector(".bulk-status");
  const buttons = [...form.querySelectorAll("button[data-bulk]")];
  const refresh = () => {
    const n = boxes().filter((b) => b.checked).length;
    count.textContent = `${n} selected`;
    for (const b of buttons) b.disabled = n === 0;
    all.checked = n > 0 && n === boxes().length;
    all.indeterminate = n > 0 && n < boxes().length;
  };
  form.addEventListener("change", (ev) => {
    if (ev.target === all) for (const b of boxes()) b.checked = all.checked;
    refresh();
  });
  for (const b of buttons) {
    b.addEventListener("click", async () => {
      const action = b.dataset.bulk;
      const ids = boxes().filter((x) => x.checked).map((x) => x.value);
      for (const x of buttons) x.disabled = true;
      status.textContent = `${action === "cancel" ? "Cancelling" : "Retrying"} ${ids.length} run${ids.length === 1 ? "" : "s"}…`;
      // One call of the public endpoint per run, a few at a time.
      const results = [];
      const queue = [...ids];
      const worker = async () => {
        for (let id; (id = queue.shift()) !== undefined;) {
          try {
            const run = await post(`/api/v1/runs/${encodeURIComponent(id)}/${action}`);
            results.push({ id, ok: true, state: run.state });
          } catch (e) {
            results.push({ id, ok: false, msg: e.message });
          }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      const ok = results.filter((r) => r.ok), bad = results.filter((r) => !r.ok);
      const verb = action === "cancel" ? "Cancel requested for" : "Retried";
      status.replaceChildren(el("p", { class: "bulk-done" }, `${verb} ${ok.length} of ${ids.length} run${ids.length === 1 ? "" : "s"}.`));
      if (bad.length) {
        const ul = el("ul", { class: "bulk-errors" });
        for (const r of bad) ul.append(el("li", {}, el("code", {}, r.id.slice(0, 8)), ": " + r.msg));
        status.append(ul);
      }
      for (const x of boxes()) x.checked = false;
      refresh();
    });
  }
  refresh();
}

// --- dashboard: runs by state over time ---

const stateColours = {
  SCHEDULED: "#6e7781", PENDING: "#8250df", RUNNING: "#0b5fcc", PAUSED: "#bf8700", AWAITING_RETRY: "#9a6700",
  AWAITING_SLOT: "#a475f9", CANCELLING: "#bc4c00", COMPLETED: "#1a7f37", FAILED: "#b42318", CANCELLED: "#57606a",
  CRASHED: "#cf222e",
};
// A dash pattern per state: the lines differ by more than their colour.
const dashes = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 6], [12, 6], [6, 2, 2, 2]];

async function setupChart() {
  const box = document.getElementById("runs-chart");
  if (!box || !box.dataset.stats) return;
  let stats;
  try {
    const res = await fetch(box.dataset.stats);
    if (!res.ok) return;
    stats = await res.json();
  } catch { return; }
  // Loaded only here: the other pages never wait for the chart library.
  const { default: uPlot } = await import("./vendor/uplot/uPlot.esm.js");
  if (!stats.states.length) {
    box.replaceChildren(el("p", {}, "No run was created in the last day."));
    return;
  }
  const xs = stats.buckets.map((b) => Date.parse(b.start) / 1000);
  const data = [xs, ...stats.states.map((s) => stats.buckets.map((b) => b.counts[s] || 0))];
  const series = [{ label: "Hour (UTC)" }, ...stats.states.map((s, i) => ({
    label: s, stroke: stateColours[s] || "#24292f", width: 2, dash: dashes[i % dashes.length],
    points: { show: true, size: 5 },
  }))];
  const width = () => Math.max(260, box.clientWidth || 600);
  const plot = new uPlot({
    width: width(), height: 240, series, tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    axes: [{}, { label: "runs" }], scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } },
  }, data, box);
  box.dataset.drawn = "true";
  window.addEventListener("resize", () => plot.setSize({ width: width(), height: 240 }));
}

setupAPIButtons();
setupAPIForms();
setupParamsForms();
setupBulk();
setupChart();

// Both modules have set the page up (app.js runs before this module, which
// imports it): tests wait for this before they act like a person would.
