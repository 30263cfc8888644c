// Baton web UI: the run page's graph and timeline (templates/graph.html).
// The server renders the nodes as a table and the timeline as SVG, which
// stay the accessible view; this module lays the graph out with the
// vendored @dagrejs/dagre (see vendor/VERSIONS.md), draws it on a canvas
// (fast for thousands of nodes), opens a node's detail on click (a map's
// items a page at a time, a subflow expanded in place as a group), and
// keeps everything live from the run's event stream, re-reading GET
// /api/v1/runs/{id}/graph when the run changes. It reads only public
// endpoints: the server aggregates, a map is one node whatever its size.

import dagre from "./vendor/dagre/dagre.esm.js";

const icons = {
  SCHEDULED: "◷", PENDING: "…", RUNNING: "▶", PAUSED: "⏸", AWAITING_RETRY: "↻", CANCELLING: "⊘", AWAITING_SLOT: "⧗",
  COMPLETED: "✓", FAILED: "✗", CANCELLED: "⊘", CRASHED: "⚠", WAITING: "⏸", TIMED_OUT: "⌛", CACHED: "✓",
};
// Stroke and fill of a state; the icon and the state's name are the cues
// besides colour.
const good = ["#1a7f37", "#dafbe1"], bad = ["#b42318", "#ffebe9"], busy = ["#0b5fcc", "#ddf4ff"],
  idle = ["#57606a", "#f6f8fa"], warn = ["#9a6700", "#fff8c5"];
const palette = {
  COMPLETED: good, CACHED: good, FAILED: bad, CRASHED: bad, TIMED_OUT: bad, RUNNING: busy,
  PENDING: idle, AWAITING_SLOT: idle, SCHEDULED: idle, WAITING: warn, PAUSED: warn, AWAITING_RETRY: warn, CANCELLED: warn, CANCELLING: warn,
};
const colours = (s) => palette[s] || idle;
const finalTask = new Set(["COMPLETED", "CACHED", "FAILED", "TIMED_OUT", "CANCELLED", "CRASHED"]);
const critical = "#c2410c";
const itemsPage = 50;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function stateBadge(state) {
  return el("span", { class: "state s-" + state.toLowerCase(), "data-state": state },
    el("span", { class: "icon", "aria-hidden": "true" }, icons[state] || "•"), " ", el("span", { class: "label" }, state));
}

function fmtTime(s) {
  return s ? new Date(s).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return ms + "ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + "s";
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${Math.round(s % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

async function getJSON(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  const doc = await res.json().catch(() => null);
  if (!res.ok) throw new Error((doc && doc.error && doc.error.message) || `${res.status} ${res.statusText}`);
  return doc;
}

// countsText is a map's counts as icons and numbers: "✓ 4 ✗ 1 ▶ 5".
function countsText(counts) {
  return Object.entries(counts).map(([s, n]) => `${icons[s] || "•"} ${n}`).join("  ");
}

// keepUnchanged puts rows into body, keeping the rows and cells already
// there that did not change: a live update must not replace the button a
// person is clicking (a press and release on two elements is no click).
function keepUnchanged(body, rows) {
  const old = new Map();
  for (const tr of body.children) if (tr.dataset.node) old.set(tr.dataset.node, tr);
  const out = rows.map((tr) => {
    const was = old.get(tr.dataset.node);
    if (!was || was.cells.length !== tr.cells.length) return tr;
    for (const a of tr.getAttributeNames()) was.setAttribute(a, tr.getAttribute(a));
    for (const a of was.getAttributeNames()) if (!tr.hasAttribute(a)) was.removeAttribute(a);
    [...tr.cells].forEach((cell, i) => {
      if (!cell.isEqualNode(was.cells[i])) was.cells[i].replaceWith(cell);
    });
    return was;
  });
  if (out.length !== body.children.length || out.some((tr, i) => body.children[i] !== tr)) body.replaceChildren(...out);
}

class GraphView {
  constructor(root) {
    this.root = root;
    this.canvas = root.querySelector("#graph-canvas");
    this.detail = root.querySelector("#graph-detail");
    this.graph = null;
    this.children = new Map(); // subflow node ID -> its child run's graph
    this.expanded = new Set();
    this.selected = null;
    this.view = { scale: 1, x: 0, y: 0, fitted: false };
    this.layout = null;
    this.sig = "";
    this.version = 0;
    this.loading = null;
    this.again = false;
    this.itemsOffset = 0;
    this.lastRead = 0;
    this.es = null;
  }

  async start() {
    this.root.querySelector("#graph-view").hidden = false;
    this.root.querySelector("#graph-fit").addEventListener("click", () => { this.fit(); this.draw(); });
    this.canvas.addEventListener("click", (ev) => this.click(ev));
    this.pan();
    new ResizeObserver(() => this.draw()).observe(this.canvas.parentElement);
    this.tableButtons();
    await this.refresh();
    if (this.root.dataset.stream) this.follow(this.root.dataset.stream);
    // A retry (the page's Retry button) makes a finished run live again:
    // follow it when the page shows a new attempt.
    const attempt = document.getElementById("run-attempt");
    if (attempt) {
      new MutationObserver(() => {
        this.follow(`/api/v1/runs/${encodeURIComponent(this.root.dataset.run)}/stream`);
        this.refresh();
      }).observe(attempt, { childList: true, characterData: true, subtree: true });
    }
  }

  // follow re-reads the graph on each change of the run's event stream,
  // unless it follows it already.
  follow(url) {
    if (!window.EventSource || (this.es && this.es.readyState !== EventSource.CLOSED)) return;
    const es = new EventSource(url);
    this.es = es;
    es.addEventListener("run", () => this.refresh());
    es.addEventListener("end", () => { es.close(); this.refresh(); });
  }

  // refresh re-reads the graph (and the expanded subflows'); calls while a
  // read is in flight share one more read after it, which waits at least
  // twice as long as the last read took (300 ms at least), so a page
  // watching a busy map does not keep the server reading.
  refresh() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      try {
        let first = true;
        do {
          if (!first) await new Promise((r) => setTimeout(r, Math.max(300, 2 * this.lastRead)));
          first = false;
          this.again = false;
          const t0 = performance.now();
          const g = await getJSON(this.root.dataset.graph);
          this.lastRead = performance.now() - t0;
          for (const id of this.expanded) {
            const n = g.nodes.find((x) => x.id === id);
            const old = this.children.get(id);
            if (n && n.subflow && (!old || !finalTask.has(n.state) || !finalTask.has(old.state || ""))) {
              this.children.set(id, await getJSON(n.subflow.graph));
            }
          }
          this.graph = g;
          this.render();
        } while (this.again);
      } catch (err) {
        this.root.querySelector("#graph-summary").textContent = "The graph could not be read: " + err.message;
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  render() {
    const sig = this.signature();
    if (sig !== this.sig) {
      this.sig = sig;
      this.build();
    } else {
      this.restate();
    }
    this.draw();
    this.table();
    this.timeline();
    if (this.selected) this.showDetail(this.selected, false);
    this.version++;
    this.root.dataset.version = String(this.version);
  }

  // signature changes when the nodes, edges or groups change (a new
  // layout), not when only states do.
  signature() {
    const parts = [this.graph.nodes.map((n) => n.id).join("\n"), this.graph.edges.map((e) => e.from + ">" + e.to).join("\n")];
    for (const id of this.expanded) {
      const c = this.children.get(id);
      if (c) parts.push(id, c.nodes.map((n) => n.id).join("\n"), c.edges.map((e) => e.from + ">" + e.to).join("\n"));
    }
    return parts.join("\u0000");
  }

  // nodes returns every node to draw: the run's, then the expanded
  // subflows' (IDs prefixed by their subflow's).
  nodes() {
    const out = this.graph.nodes.map((n) => ({ id: n.id, n, group: null }));
    for (const id of this.expanded) {
      const c = this.children.get(id);
      if (!c) continue;
      for (const n of c.nodes) out.push({ id: id + " › " + n.id, n, group: id, runID: c.run_id });
    }
    return out;
  }

  build() {
    const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
    g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 46, marginx: 12, marginy: 12 });
    g.setDefaultEdgeLabel(() => ({}));
    const all = this.nodes();
    for (const x of all) {
      const size = x.n.kind === "map" ? [190, 58] : x.n.kind === "subflow" ? [176, 46] : [160, 40];
      g.setNode(x.id, { width: size[0], height: size[1] });
    }
    for (const e of this.graph.edges) g.setEdge(e.from, e.to);
    for (const id of this.expanded) {
      const c = this.children.get(id);
      if (!c || !g.hasNode(id)) continue;
      const group = "group:" + id;
      g.setNode(group, { label: id });
      g.setParent(id, group);
      const targets = new Set(c.edges.map((e) => e.to));
      for (const n of c.nodes) {
        g.setParent(id + " › " + n.id, group);
        if (!targets.has(n.id)) g.setEdge(id, id + " › " + n.id);
      }
      for (const e of c.edges) g.setEdge(id + " › " + e.from, id + " › " + e.to);
    }
    dagre.layout(g);
    const byID = new Map(all.map((x) => [x.id, x]));
    const boxes = [], groups = [], edges = [];
    for (const id of g.nodes()) {
      const d = g.node(id);
      if (!d) continue;
      if (id.startsWith("group:") && !byID.has(id)) {
        groups.push({ id: id.slice(6), x: d.x - d.width / 2, y: d.y - d.height / 2, w: d.width, h: d.height });
        continue;
      }
      const x = byID.get(id);
      boxes.push({ ...x, x: d.x - d.width / 2, y: d.y - d.height / 2, w: d.width, h: d.height });
    }
    const crit = new Set(this.graph.edges.filter((e) => e.critical).map((e) => e.from + ">" + e.to));
    for (const e of g.edges()) {
      const d = g.edge(e);
      if (d && d.points) edges.push({ points: d.points, key: e.v + ">" + e.w, critical: crit.has(e.v + ">" + e.w) });
    }
    const gg = g.graph();
    this.layout = { boxes, groups, edges, width: gg.width || 0, height: gg.height || 0 };
    if (!this.view.fitted) this.fit();
  }

  // restate copies the new states into the current layout.
  restate() {
    const fresh = new Map(this.nodes().map((x) => [x.id, x.n]));
    for (const b of this.layout.boxes) b.n = fresh.get(b.id) || b.n;
    // Edges keep their points; which are critical may change.
    const crit = new Set(this.graph.edges.filter((e) => e.critical).map((e) => e.from + ">" + e.to));
    for (const e of this.layout.edges) e.critical = crit.has(e.key);
  }

  fit() {
    const wrap = this.canvas.parentElement;
    const w = wrap.clientWidth || 600;
    const L = this.layout || { width: 1, height: 1 };
    const scale = Math.min(1, w / Math.max(L.width, 1), 560 / Math.max(L.height, 1));
    this.view = { scale: Math.max(scale, 0.05), x: 0, y: 0, fitted: true };
  }

  draw() {
    if (!this.layout) return;
    const wrap = this.canvas.parentElement;
    const dpr = window.devicePixelRatio || 1;
    const w = wrap.clientWidth || 600;
    const h = Math.min(Math.max(this.layout.height * this.view.scale + 4, 120), 600);
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.canvas.style.width = w + "px";
    this.canvas.style.height = h + "px";
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.translate(this.view.x, this.view.y);
    ctx.scale(this.view.scale, this.view.scale);
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    for (const g of this.layout.groups) {
      ctx.setLineDash([6, 4]);
      ctx.strokeStyle = "#8250df";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(g.x, g.y, g.w, g.h);
      ctx.setLineDash([]);
      ctx.fillStyle = "#8250df";
      ctx.fillText("⊟ subflow " + g.id, g.x + 6, g.y + 10);
    }
    for (const e of this.layout.edges) this.edge(ctx, e);
    for (const b of this.layout.boxes) this.box(ctx, b);
    this.canvas.dataset.drawn = String(this.layout.boxes.length);
  }

  edge(ctx, e) {
    const p = e.points;
    ctx.strokeStyle = e.critical ? critical : "#8c959f";
    ctx.lineWidth = e.critical ? 3 : 1.2;
    ctx.beginPath();
    ctx.moveTo(p[0].x, p[0].y);
    for (let i = 1; i < p.length; i++) ctx.lineTo(p[i].x, p[i].y);
    ctx.stroke();
    const a = p[p.length - 1], b = p[p.length - 2] || p[0];
    const ang = Math.atan2(a.y - b.y, a.x - b.x);
    ctx.fillStyle = ctx.strokeStyle;
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(a.x - 8 * Math.cos(ang - 0.4), a.y - 8 * Math.sin(ang - 0.4));
    ctx.lineTo(a.x - 8 * Math.cos(ang + 0.4), a.y - 8 * Math.sin(ang + 0.4));
    ctx.fill();
  }

  box(ctx, b) {
    const n = b.n;
    const [stroke, fill] = colours(n.state);
    if (n.kind === "map") { // a stack: one node for many items
      ctx.fillStyle = fill;
      ctx.strokeStyle = stroke;
      ctx.lineWidth = 1;
      round(ctx, b.x + 5, b.y - 4, b.w, b.h, 6);
      ctx.fill();
      ctx.stroke();
    }
    ctx.fillStyle = fill;
    ctx.strokeStyle = n.critical ? critical : stroke;
    ctx.lineWidth = n.critical ? 3 : (this.selected === b.id ? 2.5 : 1.5);
    round(ctx, b.x, b.y, b.w, b.h, 6);
    ctx.fill();
    ctx.stroke();
    if (n.kind === "subflow") {
      ctx.lineWidth = 1;
      round(ctx, b.x + 3, b.y + 3, b.w - 6, b.h - 6, 4);
      ctx.stroke();
    }
    if (this.selected === b.id) {
      ctx.strokeStyle = "#fb8c00";
      ctx.lineWidth = 3;
      round(ctx, b.x - 4, b.y - 4, b.w + 8, b.h + 8, 8);
      ctx.stroke();
    }
    ctx.fillStyle = stroke;
    ctx.font = "bold 15px system-ui, sans-serif";
    ctx.fillText(icons[n.state] || "•", b.x + 7, b.y + 14);
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillStyle = "#1b1f24";
    const label = (n.critical ? "★ " : "") + n.id.split(" › ").pop();
    ctx.fillText(clip(ctx, label, b.w - 34), b.x + 26, b.y + 14);
    ctx.fillStyle = "#57606a";
    if (n.kind === "map" && n.map) {
      ctx.fillText(clip(ctx, `${countsText(n.map.counts)}  / ${n.map.total}`, b.w - 14), b.x + 7, b.y + 32);
      ctx.fillStyle = "#d0d7de";
      ctx.fillRect(b.x + 7, b.y + b.h - 11, b.w - 14, 5);
      ctx.fillStyle = stroke;
      ctx.fillRect(b.x + 7, b.y + b.h - 11, (b.w - 14) * n.map.progress, 5);
    } else {
      const sub = n.kind === "subflow" ? (this.expanded.has(b.id) ? "⊟ " : "⊞ ") + n.state : n.state + (n.attempts > 1 ? ` · ${n.attempts} attempts` : "");
      ctx.fillText(clip(ctx, sub, b.w - 14), b.x + 7, b.y + 30);
    }
  }

  pan() {
    let drag = null;
    this.canvas.addEventListener("pointerdown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, vx: this.view.x, vy: this.view.y, moved: false }; });
    this.canvas.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      this.view.x = drag.vx + dx;
      this.view.y = drag.vy + dy;
      if (drag.moved) this.draw();
    });
    window.addEventListener("pointerup", () => { if (drag) this.dragged = drag.moved; drag = null; });
    this.canvas.addEventListener("wheel", (ev) => {
      if (!ev.ctrlKey && !ev.metaKey) return; // plain scrolling scrolls the page
      ev.preventDefault();
      const r = this.canvas.getBoundingClientRect();
      const mx = ev.clientX - r.left, my = ev.clientY - r.top;
      const k = ev.deltaY < 0 ? 1.15 : 1 / 1.15;
      this.view.x = mx - (mx - this.view.x) * k;
      this.view.y = my - (my - this.view.y) * k;
      this.view.scale *= k;
      this.draw();
    }, { passive: false });
  }

  click(ev) {
    if (this.dragged) { this.dragged = false; return; }
    const r = this.canvas.getBoundingClientRect();
    const x = (ev.clientX - r.left - this.view.x) / this.view.scale;
    const y = (ev.clientY - r.top - this.view.y) / this.view.scale;
    const hit = this.layout && this.layout.boxes.find((b) => x >= b.x && x <= b.x + b.w && y >= b.y && y <= b.y + b.h);
    if (!hit) return;
    if (hit.n.kind === "subflow" && !hit.group && x <= hit.x + 24 && y >= hit.y + hit.h / 2) {
      this.toggle(hit.id);
      return;
    }
    this.showDetail(hit.id, true);
  }

  async toggle(id) {
    if (this.expanded.has(id)) {
      this.expanded.delete(id);
    } else {
      this.expanded.add(id);
      this.children.delete(id);
    }
    await this.refresh();
  }

  boxOf(id) { return this.layout && this.layout.boxes.find((b) => b.id === id); }

  showDetail(id, fresh) {
    const b = this.boxOf(id);
    if (!b) return;
    if (fresh && this.selected !== id) this.itemsOffset = 0;
    this.selected = id;
    const n = b.n;
    const runID = b.runID || this.graph.run_id;
    const facts = el("dl", { class: "facts" },
      el("dt", {}, "Kind"), el("dd", {}, n.kind + (n.task ? " " + n.task : "")),
      el("dt", {}, "State"), el("dd", {}, stateBadge(n.state)),
      el("dt", {}, "Started"), el("dd", {}, fmtTime(n.started_at)),
      el("dt", {}, "Ended"), el("dd", {}, fmtTime(n.ended_at)),
      el("dt", {}, "Duration"), el("dd", {}, fmtDuration(n.duration_ms)));
    if (n.task_run_id) facts.append(el("dt", {}, "Task run"), el("dd", {}, el("code", {}, n.task_run_id)));
    if (n.attempts) facts.append(el("dt", {}, "Attempts"), el("dd", {}, String(n.attempts)));
    if (n.critical) facts.append(el("dt", {}, "Critical path"), el("dd", {}, "★ yes"));
    const parts = [el("h3", {}, "Node ", el("code", {}, n.id)), facts];
    if (n.error) parts.push(el("p", { class: "error-message" }, el("strong", {}, "Error: "), n.error));
    const runPage = "/runs/" + encodeURIComponent(runID);
    if (n.kind !== "map") parts.push(el("p", {}, el("a", { href: runPage + "#task-runs" }, "Task runs of run " + runID.slice(0, 8))));
    if (n.subflow) {
      const open = this.expanded.has(b.id);
      const btn = el("button", { type: "button" }, open ? "Collapse the subflow" : "Expand the subflow");
      btn.addEventListener("click", () => this.toggle(b.id));
      parts.push(el("p", {}, el("a", { href: "/runs/" + encodeURIComponent(n.subflow.run_id) }, "Subflow run " + n.subflow.run_id.slice(0, 8)), " ", b.group ? "" : btn));
    }
    if (n.map) {
      const m = n.map;
      const counts = el("p", {}, el("span", { class: "n" }, String(m.total)), " items: ");
      for (const [s, c] of Object.entries(m.counts)) counts.append(el("span", { class: "count" }, stateBadge(s), " ", el("span", { class: "n" }, String(c))), " ");
      parts.push(counts, el("p", {}, el("progress", { max: "100", value: String(Math.floor(m.progress * 100)) }), ` ${Math.floor(m.progress * 100)}% finished`,
        m.mean_ms !== null ? ` · mean ${fmtDuration(m.mean_ms)}` : "", m.eta ? ` · ETA ${fmtTime(m.eta)}` : ""));
      // A live re-render keeps the items shown until the new page is read,
      // so the list does not flicker at each change of the run.
      const shown = fresh ? null : this.detail.querySelector(".graph-items");
      const items = shown || el("div", { class: "graph-items" }, el("p", { class: "hint" }, "Loading items…"));
      parts.push(items);
      this.loadItems(items, m.items);
    }
    this.detail.replaceChildren(...parts);
    this.detail.hidden = false;
    this.draw();
  }

  async loadItems(box, path) {
    try {
      const page = await getJSON(`${path}?offset=${this.itemsOffset}&limit=${itemsPage}`);
      const rows = page.items.map((it) => el("tr", {}, el("td", {}, el("code", {}, it.key)), el("td", {}, stateBadge(it.state)),
        el("td", {}, String(it.attempts)), el("td", {}, fmtDuration(it.duration_ms)), el("td", {}, it.error || "")));
      const table = el("table", {}, el("caption", {}, `Items ${page.offset + 1}–${page.offset + page.items.length}`),
        el("thead", {}, el("tr", {}, ...["Item", "State", "Attempts", "Duration", "Error"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...rows));
      const nav = el("nav", { class: "pager", "aria-label": "Item pages" });
      if (page.offset > 0) nav.append(this.pageButton("Previous items", box, path, Math.max(page.offset - itemsPage, 0)));
      if (page.next) nav.append(this.pageButton("Next items", box, path, page.offset + itemsPage));
      box.replaceChildren(el("div", { class: "scroll" }, table), nav);
    } catch (err) {
      box.replaceChildren(el("p", { class: "error-message" }, "Items could not be read: " + err.message));
    }
  }

  pageButton(label, box, path, offset) {
    const b = el("button", { type: "button" }, label);
    b.addEventListener("click", () => { this.itemsOffset = offset; this.loadItems(box, path); });
    return b;
  }

  // tableButtons makes the table's node names open their detail (the
  // keyboard's way into the graph).
  tableButtons() {
    this.root.querySelector("#graph-body").addEventListener("click", (ev) => {
      const btn = ev.target.closest("button[data-node]");
      if (btn) {
        this.showDetail(btn.dataset.node, true);
        this.detail.scrollIntoView({ block: "nearest" });
      }
    });
  }

  // table re-renders the nodes table from the graph.
  table() {
    const g = this.graph;
    const deps = new Map();
    for (const e of g.edges) {
      if (!deps.has(e.to)) deps.set(e.to, []);
      deps.get(e.to).push(e.from);
    }
    const rows = g.nodes.map((n) => {
      const name = el("th", { scope: "row" }, el("button", { type: "button", class: "link", "data-node": n.id, "aria-label": "Details of " + n.id }, el("code", {}, n.id)));
      if (n.critical) name.append(" ", el("span", { class: "crit", title: "on the critical path" }, el("span", { "aria-hidden": "true" }, "★"), " critical"));
      const items = el("td", { class: "items-cell" });
      if (n.map) {
        const pct = Math.floor(n.map.progress * 100);
        items.append(el("span", { class: "n total" }, String(n.map.total)), " items: ");
        for (const [s, c] of Object.entries(n.map.counts)) items.append(el("span", { class: "count" }, stateBadge(s), " ", el("span", { class: "n" }, String(c))), " ");
        items.append(el("br"), el("progress", { max: "100", value: String(pct), "aria-label": "progress of " + n.id }, pct + "%"), " ", el("span", { class: "pct" }, pct + "%"));
        if (n.map.eta) items.append(" · ETA ", el("time", { datetime: n.map.eta }, fmtTime(n.map.eta)));
      } else if (n.subflow) {
        items.append(el("a", { href: "/runs/" + encodeURIComponent(n.subflow.run_id) }, "subflow run ", el("code", {}, n.subflow.run_id.slice(0, 8))));
      } else {
        items.append(`${n.attempts} attempt${n.attempts === 1 ? "" : "s"}`);
        if (n.error) items.append(" · ", el("span", { class: "error-message" }, n.error));
      }
      return el("tr", { "data-node": n.id, "data-kind": n.kind, "data-state": n.state, class: n.critical ? "critical" : null },
        name, el("td", {}, n.kind + " ", el("span", { class: "task" }, n.task)), el("td", { class: "state-cell" }, stateBadge(n.state)), items,
        el("td", {}, ...(deps.get(n.id) || []).flatMap((d) => [el("code", {}, d), " "])), el("td", {}, fmtDuration(n.duration_ms)));
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "6" }, "No step yet.")));
    keepUnchanged(this.root.querySelector("#graph-body"), rows);
    const sum = this.root.querySelector("#graph-summary");
    sum.replaceChildren(el("span", { class: "n" }, String(g.nodes.length)), " nodes for ", el("span", { class: "n" }, String(g.task_runs_total)),
      " task runs, ", el("span", { class: "n" }, String(g.edges.length)), " dependencies", g.truncated ? `; the first steps of ${g.steps_total} are shown` : "", ".");
    if (g.critical_path.length) sum.append(" Critical path (★ below): ", el("span", { id: "graph-critical" }, g.critical_path.join(" → ")), ".");
  }

  // timeline re-renders the Gantt chart as the server does.
  timeline() {
    const tl = this.graph.timeline;
    const sec = this.root.querySelector("#timeline");
    const head = sec.querySelector("h3");
    if (!tl.start || !tl.bars.length) return;
    const start = Date.parse(tl.start), span = Math.max(Date.parse(tl.end) - start, 0);
    const bars = tl.bars.slice(0, 300);
    const row = 18;
    const chart = svg("svg", { id: "timeline-svg", role: "img", width: "100%", height: String(bars.length * row + 2), preserveAspectRatio: "none",
      "aria-label": "Gantt chart of the run's nodes by start and end; the critical path is outlined and starred" });
    bars.forEach((b, i) => {
      const s = Date.parse(b.start), e = Date.parse(b.end);
      const x = span > 0 ? (100 * (s - start)) / span : 0;
      const w = span > 0 ? Math.max((100 * (e - s)) / span, 0.3) : 100;
      const cls = `bar s-${b.state.toLowerCase()}${b.critical ? " critical" : ""}${b.running ? " running" : ""}`;
      chart.append(svg("g", { class: cls },
        svg("title", {}, `${b.node}: ${b.state}${b.running ? " (running)" : ""}${b.critical ? ", critical path" : ""}`),
        svg("rect", { x: x.toFixed(3) + "%", y: String(i * row), width: w.toFixed(3) + "%", height: "14", rx: "2" }),
        svg("text", { x: x.toFixed(3) + "%", y: String(i * row + 11), dx: "3" }, `${b.critical ? "★ " : ""}${icons[b.state] || "•"} ${b.node}`)));
    });
    let view = sec.querySelector("#timeline-view");
    if (!view) {
      view = el("div", { class: "timeline", id: "timeline-view" });
      const empty = sec.querySelector("#timeline-empty");
      if (empty) empty.replaceWith(view); else head.after(view);
    }
    view.replaceChildren(chart);
    head.replaceChildren("Timeline ", el("span", { class: "hint" }, `(${fmtDuration(span)})`));
  }
}

function round(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}

function clip(ctx, s, w) {
  if (ctx.measureText(s).width <= w) return s;
  while (s.length > 1 && ctx.measureText(s + "…").width > w) s = s.slice(0, -1);
  return s + "…";
}

const root = document.getElementById("graph");
if (root && root.dataset.graph) {
  const view = new GraphView(root);
  window.batonGraph = view; // for tests and the console
  view.start();
}
