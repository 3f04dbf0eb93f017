// dspipe dashboard: a single page over the REST API and the WebSocket
// feed. No framework and no build step; every value from the server is
// set as text, never as HTML.
"use strict";

const STAGES = ["acquisition", "validation", "standardization", "quality_assessment", "safety_validation",
  "bias_detection", "fusion", "balancing", "output"];
const API = "/api/v1";
const ENDED = ["completed", "failed", "cancelled"];

let token = sessionStorage.getItem("dspipe.token") || "";
let live = null; // the open WebSocket of the execution view, if any
let charts = [];

// el builds an element: el("td", {class: "num"}, "text", child…).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function fmt(n, digits) {
  if (n === undefined || n === null || Number.isNaN(n)) return "–";
  if (typeof n !== "number") return String(n);
  return n.toLocaleString("en-US", {maximumFractionDigits: digits === undefined ? 1 : digits});
}

function bytes(n) {
  if (!n && n !== 0) return "–";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return fmt(n, i ? 1 : 0) + " " + u[i];
}

function when(t) {
  if (!t) return "–";
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? "–" : d.toLocaleString();
}

function status(s) { return el("span", {class: "status " + (s || "pending")}, s || "pending"); }

function table(head, rows, numeric) {
  const num = new Set(numeric || []);
  return el("table", {},
    el("thead", {}, el("tr", {}, head.map((h, i) => el("th", {scope: "col", class: num.has(i) ? "num" : null}, h)))),
    el("tbody", {}, rows.length ? rows.map(r => el("tr", {}, r.map((c, i) => el("td", {class: num.has(i) ? "num" : null}, c))))
      : el("tr", {}, el("td", {colspan: head.length}, "none"))));
}

class HTTPError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts) {
  const o = Object.assign({headers: {}}, opts || {});
  o.headers = Object.assign({"Authorization": "Bearer " + token}, o.headers);
  if (o.body !== undefined && typeof o.body !== "string") {
    o.body = JSON.stringify(o.body);
    o.headers["Content-Type"] = "application/json";
  }
  const r = await fetch(API + path, o);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) {
    if (r.status === 401) signOut("Your token was refused: " + (body && body.error || r.statusText));
    throw new HTTPError(r.status, (body && body.error) || r.statusText);
  }
  return body;
}

// routeGen counts route changes: a view that finishes loading after the
// user has moved on shows nothing.
let routeGen = 0;

function show(g, ...nodes) {
  if (g !== routeGen) return false;
  document.getElementById("view").replaceChildren(...nodes);
  return true;
}

function errorBox(err) { return el("p", {class: "error", role: "alert"}, String(err.message || err)); }

function closeLive() {
  if (live) { live.onclose = null; live.close(); live = null; }
  for (const c of charts) c.destroy();
  charts = [];
}

function signOut(message) {
  closeLive();
  token = "";
  sessionStorage.removeItem("dspipe.token");
  document.getElementById("nav").hidden = true;
  document.getElementById("view").replaceChildren();
  document.getElementById("signin").hidden = false;
  document.getElementById("signin-error").textContent = message || "";
  document.getElementById("token").focus();
}

async function signIn(ev) {
  ev.preventDefault();
  token = document.getElementById("token").value.trim();
  try {
    await api("/datasets/active");
  } catch (err) {
    document.getElementById("signin-error").textContent = "Sign-in failed: " + err.message;
    return;
  }
  sessionStorage.setItem("dspipe.token", token);
  document.getElementById("token").value = "";
  document.getElementById("signin").hidden = true;
  document.getElementById("nav").hidden = false;
  route();
}

// ---- Executions ----

async function executionsView(g) {
  const [active, recent] = await Promise.all([api("/datasets/active"), api("/datasets/recent?limit=20")]);
  const row = x => [el("a", {href: "#/x/" + encodeURIComponent(x.execution_id), class: "mono"}, x.execution_id), status(x.status),
    x.current_stage || "–", fmt(x.overall_progress) + "%", when(x.created_at)];
  show(g, el("h2", {}, "Executions"),
    el("h3", {}, "Active and queued"),
    table(["Execution", "Status", "Stage", "Progress", "Submitted"], active.executions.map(row), [3]),
    el("h3", {}, "Recent"),
    table(["Execution", "Status", "Stage", "Progress", "Submitted"], recent.executions.map(row), [3]));
}

// ---- New execution ----

const example = {
  sources: [{name: "local-data", type: "local", config: {path: "data/conversations.jsonl"}, priority: 1}],
  output: {formats: ["jsonl"], compression: "zstd"},
};

function newView(g) {
  // A view drawn again (a second route() after signing in) keeps the
  // request being written instead of putting the example back.
  const old = document.getElementById("request");
  const text = old ? old.value : JSON.stringify(example, null, 2);
  const area = el("textarea", {id: "request", "aria-describedby": "request-hint", spellcheck: "false"}, text);
  const err = el("p", {class: "error", role: "alert", id: "submit-error"});
  const form = el("form", {id: "submit-form", onsubmit: async ev => {
    ev.preventDefault();
    err.textContent = "";
    let req;
    try { req = JSON.parse(area.value); } catch (e) { err.textContent = "The request is not valid JSON: " + e.message; return; }
    try {
      const r = await api("/datasets/process", {method: "POST", body: req});
      location.hash = "#/x/" + encodeURIComponent(r.execution_id);
    } catch (e) { err.textContent = "Refused: " + e.message; }
  }},
    el("label", {for: "request"}, "Processing request (JSON)"),
    el("p", {class: "hint", id: "request-hint"}, "Sources (local, s3, google_drive, huggingface) and settings, as in POST /api/v1/datasets/process."),
    area, el("p", {}, el("button", {type: "submit"}, "Submit")), err);
  show(g, el("h2", {}, "New execution"), form);
}

// ---- One execution, live ----

// stageRows lists the nine stages in order; a stage with no run is
// "pending" while the execution runs and "not run" once it has ended
// (it was switched off, or the execution stopped before it).
function stageRows(stages, ended) {
  const byName = {};
  for (const s of stages || []) byName[s.stage] = s;
  return STAGES.map((name, i) => {
    const s = byName[name];
    return [String(i + 1), name.replace("_", " "), status(s ? s.status : ended ? "not run" : "pending"), s ? fmt(s.received, 0) : "–",
      s ? fmt(s.valid, 0) : "–", s ? fmt(s.rejected, 0) : "–", s && s.duration_ms ? fmt(s.duration_ms / 1000, 1) + " s" : "–"];
  });
}

function histogramChart(node, hist) {
  if (!window.uPlot || !hist || !hist.length) return;
  const xs = hist.map((_, i) => (i + 0.5) / hist.length);
  const c = new uPlot({
    title: "Quality scores", width: Math.min(node.clientWidth || 420, 520), height: 200,
    scales: {x: {time: false, range: [0, 1]}},
    axes: [{label: "score"}, {label: "records"}],
    series: [{}, {label: "records", stroke: "#0b5cad", fill: "rgba(11,92,173,0.3)", paths: uPlot.paths.bars({size: [0.9]}), points: {show: false}}],
  }, [xs, hist], node);
  charts.push(c);
}

function rateChart(node) {
  if (!window.uPlot) return null;
  const data = [[], [], []];
  const c = new uPlot({
    title: "Records per second and memory", width: Math.min(node.clientWidth || 520, 640), height: 220,
    scales: {x: {time: true}, mb: {}},
    axes: [{}, {label: "records/s"}, {side: 1, scale: "mb", label: "MB", grid: {show: false}}],
    series: [{}, {label: "records/s", stroke: "#0b5cad"}, {label: "memory MB", stroke: "#8a5a00", scale: "mb"}],
  }, data, node);
  charts.push(c);
  return {push(t, rate, mb) {
    data[0].push(t); data[1].push(rate || 0); data[2].push(mb || 0);
    c.setData(data);
  }};
}

function safetyCard(s) {
  if (!s) return el("p", {}, "Safety validation did not run or has no figures yet.");
  const pii = Object.entries(s.pii_by_type || {}).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, fmt(v, 0)]);
  const crisis = Object.entries(s.crisis_levels || {}).map(([k, v]) => [k, fmt(v, 0)]);
  const content = Object.entries(s.content_flagged || {}).map(([k, v]) => [k, fmt(v, 0)]);
  return el("div", {},
    el("div", {class: "figures"},
      figure("identifiers masked", s.pii_found), figure("records with identifiers", s.records_with_pii),
      figure("quarantined for review", s.quarantined, "safety-quarantined"), figure("blocked", s.blocked)),
    el("h3", {}, "Identifiers by Safe Harbor type"), table(["Type", "Masked"], pii, [1]),
    el("h3", {}, "Crisis levels"), table(["Level", "Records"], crisis, [1]),
    el("h3", {}, "Content flags"), table(["Category", "Records"], content, [1]));
}

function biasCard(b) {
  if (!b) return el("p", {}, "Bias detection did not run or has no figures yet.");
  const parts = [el("div", {class: "figures"}, figure("bias score", b.score, "bias-score"), figure("gate (low end of the 95% interval)", b.gate),
    figure("records with mentions", b.records_with_mentions))];
  for (const [axis, groups] of Object.entries(b.groups || {})) {
    const total = Object.values(groups).reduce((a, v) => a + v, 0);
    const iv = (b.intervals || {})[axis];
    parts.push(el("h3", {}, axis.replace("_", " ") + (b.distances && b.distances[axis] !== undefined ?
      ` (distance ${fmt(b.distances[axis], 3)}${iv ? `, 95% interval ${fmt(iv[0], 3)}–${fmt(iv[1], 3)}` : ""})` : "")));
    parts.push(table(["Group", "Mentions", "Share"], Object.entries(groups).sort((x, y) => y[1] - x[1])
      .map(([g, n]) => [g, fmt(n, 0), fmt(100 * n / total, 1) + "%"]), [1, 2]));
  }
  return el("div", {}, parts);
}

function figure(label, value, id) {
  return el("div", {class: "figure"}, el("div", {class: "value", id: id}, fmt(value, 3)), el("div", {class: "label"}, label));
}

async function executionView(g, id) {
  const [st, stats] = await Promise.all([api("/datasets/status/" + encodeURIComponent(id)),
    api("/datasets/statistics/" + encodeURIComponent(id)).catch(() => null)]);
  const progress = el("progress", {id: "progress", max: "100", value: String(st.overall_progress || 0), "aria-label": "overall progress"});
  const pct = el("span", {id: "progress-value"}, fmt(st.overall_progress, 1));
  const stageName = el("span", {id: "current-stage"}, st.current_stage || "–");
  const statusNode = el("span", {id: "exec-status"}, status(st.status));
  const eta = el("span", {id: "eta"}, when(st.estimated_completion));
  const records = el("span", {id: "records"}, fmt(st.records_processed, 0) + " / " + fmt(st.total_records, 0));
  const stagesNode = el("div", {id: "stages"}, table(["#", "Stage", "Status", "In", "Valid", "Rejected", "Duration"], stageRows(st.stages, ENDED.includes(st.status)), [3, 4, 5, 6]));
  const alerts = el("ul", {class: "alerts", id: "alerts"});
  const rateNode = el("div", {class: "chart", id: "rate-chart"});
  const histNode = el("div", {class: "chart", id: "quality-chart"});
  const safetyNode = el("div", {id: "safety"});
  const biasNode = el("div", {id: "bias"});
  const filesNode = el("div", {id: "files"});
  const cancel = el("button", {type: "button", class: "secondary", id: "cancel", onclick: async () => {
    try { await api(`/datasets/${encodeURIComponent(id)}/cancel`, {method: "POST", body: {reason: "cancelled from the dashboard"}}); }
    catch (e) { alerts.prepend(el("li", {class: "sev-warning"}, "Cancel refused: " + e.message)); }
  }}, "Cancel execution");
  if (!show(g, el("h2", {}, "Execution ", el("span", {class: "mono"}, id)),
    el("div", {class: "figures"},
      el("div", {class: "figure"}, el("div", {class: "value"}, statusNode), el("div", {class: "label"}, "status")),
      el("div", {class: "figure"}, el("div", {class: "value"}, stageName), el("div", {class: "label"}, "current stage")),
      el("div", {class: "figure"}, el("div", {class: "value"}, pct, "%"), el("div", {class: "label"}, "overall progress")),
      el("div", {class: "figure"}, el("div", {class: "value"}, records), el("div", {class: "label"}, "records processed / total")),
      el("div", {class: "figure"}, el("div", {class: "value"}, eta), el("div", {class: "label"}, "estimated completion"))),
    progress, el("p", {}, cancel),
    el("div", {class: "grid"},
      el("div", {class: "card wide"}, el("h3", {}, "Stages"), stagesNode),
      el("div", {class: "card"}, el("h3", {}, "Throughput"), rateNode),
      el("div", {class: "card"}, el("h3", {}, "Quality"), histNode, el("p", {id: "quality-score"})),
      el("div", {class: "card"}, el("h3", {}, "Alerts"), alerts),
      el("div", {class: "card"}, el("h3", {}, "Safety"), safetyNode),
      el("div", {class: "card"}, el("h3", {}, "Bias"), biasNode),
      el("div", {class: "card wide"}, el("h3", {}, "Output files"), filesNode)))) return;
  const rate = rateChart(rateNode);
  const seen = new Set();
  const addAlert = a => {
    const key = a.seq || (a.code + a.message);
    if (seen.has(key)) return;
    seen.add(key);
    alerts.append(el("li", {class: "sev-" + a.severity}, `${a.severity}: ${a.code}${a.stage ? " (" + a.stage + ")" : ""}: ${a.message}`));
  };
  const renderStats = s => {
    if (!s) return;
    statusNode.replaceChildren(status(s.status));
    if (s.records) records.textContent = fmt(s.records.processed, 0) + " / " + fmt(s.records.total, 0);
    stagesNode.replaceChildren(table(["#", "Stage", "Status", "In", "Valid", "Rejected", "Duration"], stageRows(s.stages, ENDED.includes(s.status)), [3, 4, 5, 6]));
    for (const a of s.alerts || []) addAlert(a);
    safetyNode.replaceChildren(safetyCard(s.safety));
    biasNode.replaceChildren(biasCard(s.bias));
    document.getElementById("quality-score").textContent = s.quality_score === null || s.quality_score === undefined ?
      "Quality assessment did not run or has no figures yet." : "Mean quality score: " + fmt(s.quality_score, 3);
    histNode.replaceChildren();
    if (s.quality && s.quality.histogram) histogramChart(histNode, s.quality.histogram);
    filesNode.replaceChildren(table(["File", "Records", "Size", "SHA-256"], (s.output_files || []).map(f =>
      [f.name, fmt(f.records, 0), bytes(f.bytes), el("span", {class: "mono"}, f.sha256 || "–")]), [1, 2]),
      el("p", {class: "hint"}, s.output_dir ? "Written to " + s.output_dir : ""));
    if (["completed", "failed", "cancelled"].includes(s.status)) cancel.disabled = true;
  };
  renderStats(stats);
  // The live feed: every event after the last one the page has.
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  let last = 0;
  let shown = st.overall_progress || 0;
  let heard = Date.now();
  const showProgress = d => {
    if (d.overall_progress !== undefined && d.overall_progress >= shown) {
      shown = d.overall_progress;
      progress.value = shown;
      pct.textContent = fmt(shown, 1);
    }
    if (d.current_stage) stageName.textContent = d.current_stage;
    if (d.estimated_completion) eta.textContent = when(d.estimated_completion);
  };
  // Fusion and output send no events until they finish; while the feed is
  // quiet the status endpoint's timed estimate keeps the bar moving.
  const quiet = setInterval(async () => {
    if (document.getElementById("view").dataset.finished || !document.getElementById("progress")) { clearInterval(quiet); return; }
    if (Date.now() - heard < 2000) return;
    try {
      const now = await api("/datasets/status/" + encodeURIComponent(id));
      if (now.status === "running") showProgress(now);
    } catch (e) { /* the feed or the next poll shows it */ }
  }, 2000);
  // The feed comes from the event log itself, the figures from the read
  // models the projector writes, which may lag behind it. At the end the
  // figures are fetched until they show the end too (for up to 30 s), so
  // the page never stops on the figures of a moment before.
  const refresh = async ended => {
    for (let tries = 0; ; tries++) {
      let s = null;
      try { s = await api("/datasets/statistics/" + encodeURIComponent(id)); } catch (e) { /* tried again, or shown on the next event */ }
      if (s) renderStats(s);
      if (!ended) return;
      statusNode.replaceChildren(status(ended)); // not the read model's older status
      if ((s && ENDED.includes(s.status)) || tries >= 60) return;
      await new Promise(r => setTimeout(r, 500));
    }
  };
  let over = ENDED.includes(st.status); // the feed has shown the end
  const connect = () => {
    const ws = new WebSocket(`${proto}//${location.host}${API}/datasets/ws/${encodeURIComponent(id)}?since=${last}&token=${encodeURIComponent(token)}`);
    live = ws;
    ws.onmessage = async ev => {
      const m = JSON.parse(ev.data);
      heard = Date.now();
      if (m.seq) last = m.seq;
      const d = m.data || {};
      if (m.event_type === "dataset_alert") { addAlert(Object.assign({seq: m.seq}, d)); return; }
      if (m.event_type === "dataset_review") {
        if (d.status === "open") addAlert({seq: m.seq, severity: "info", code: "review_opened",
          message: `review ${d.review}: ${(d.flags || []).join(", ")} (crisis level ${d.crisis_level || "none"})`});
        return;
      }
      showProgress(d);
      if (d.metrics) {
        records.textContent = fmt(d.metrics.records_processed, 0) + " / " + fmt(d.metrics.total_records, 0);
        if (rate && d.metrics.processing_rate !== undefined) rate.push(new Date(m.timestamp).getTime() / 1000, d.metrics.processing_rate, d.metrics.memory_usage_mb);
      }
      if (d.status) statusNode.replaceChildren(status(d.status));
      const ended = ENDED.includes(d.status) ? d.status : "";
      if (ended) over = true;
      if (ended || m.event_type === "dataset_status" || m.event && m.event.endsWith("stage.completed")) await refresh(ended);
      if (ended) document.getElementById("view").dataset.finished = d.status;
    };
    ws.onclose = () => {
      if (live === ws && !over) setTimeout(connect, 1000);
    };
  };
  if (["completed", "failed", "cancelled"].includes(st.status)) document.getElementById("view").dataset.finished = st.status;
  connect();
}

// ---- Review queue ----

async function reviewsView(g) {
  const r = await api("/reviews?status=open");
  const rows = r.reviews.map(v => {
    const note = el("input", {type: "text", "aria-label": `note for review ${v.review} of ${v.execution_id}`, placeholder: "what was decided", class: "ack-note"});
    const btn = el("button", {type: "button", class: "ack", onclick: async () => {
      if (!note.value.trim()) { note.focus(); note.setAttribute("aria-invalid", "true"); return; }
      btn.disabled = true;
      try {
        await api(`/reviews/${encodeURIComponent(v.execution_id)}/${v.review}/acknowledge`, {method: "POST", body: {note: note.value}});
        // Accepted: it reaches the trail and this list within moments.
        cell.replaceChildren(el("span", {class: "status completed"}, "acknowledged"), " ", note.value);
      } catch (e) { btn.disabled = false; btn.after(errorBox(e)); }
    }}, "Acknowledge");
    const cell = el("span", {}, note, " ", btn);
    return [el("a", {href: "#/x/" + encodeURIComponent(v.execution_id), class: "mono"}, v.execution_id), String(v.review),
      (v.flags || []).join(", "), v.crisis_level || "–", fmt(v.score, 2), when(v.opened_at), cell];
  });
  show(g, el("h2", {}, "Review queue"),
    el("p", {class: "hint"}, "Records held for a human: crisis disclosures, self-harm instructions, harm from a responder, sexual content and minors discussed. The record itself stays in the execution's quarantine file."),
    table(["Execution", "Review", "Flags", "Crisis level", "Score", "Opened", "Decision"], rows, [1, 4]));
}

// ---- Audit ----

function auditView(g) {
  const out = el("div", {id: "audit-result"});
  const input = el("input", {id: "audit-id", type: "text", placeholder: "ds_…", required: true});
  const form = el("form", {onsubmit: async ev => {
    ev.preventDefault();
    out.replaceChildren();
    const id = input.value.trim();
    try {
      const [trail, access] = await Promise.all([api(`/datasets/${encodeURIComponent(id)}/events`),
        api(`/audit/access?execution=${encodeURIComponent(id)}&limit=200`).catch(e => ({error: e.message}))]);
      const evs = trail.events || [];
      out.append(...[el("div", {class: "figures"},
        el("div", {class: "figure"}, el("div", {class: "value", id: "trail-verified"}, trail.verified ? "verified" : "NOT verified"),
          el("div", {class: "label"}, "signatures, hash chain and read model")),
        figure("events in the trail", evs.length)),
        trail.problem ? el("p", {class: "error"}, trail.problem) : null,
        el("p", {class: "hint"}, "Verified here by the API with the trusted keys; an auditor can verify offline with dsctl audit verify (the public key is at /api/v1/audit/public-key)."),
        el("h3", {}, "Events"),
        table(["Seq", "Type", "Time"], evs.slice(-200).map(e => [String(e.seq), e.type, when(e.time)]), [0]),
        el("h3", {}, "Who accessed it"),
        access.error ? el("p", {class: "hint"}, "The access audit needs the auditor or admin role: " + access.error) :
          table(["Time", "User", "Role", "Action", "Status"], (access.access || []).map(a => [when(a.time), a.user_id, a.role, a.action, String(a.status)]), [4])]
        .filter(Boolean));
    } catch (e) { out.append(errorBox(e)); }
  }}, el("label", {for: "audit-id"}, "Execution id"), input, " ", el("button", {type: "submit"}, "Show trail"));
  show(g, el("h2", {}, "Audit"), form, out);
}

// ---- API reference ----

async function referenceView(g) {
  const r = await fetch(API + "/openapi.json");
  if (!r.ok) throw new Error("the API description is not available: " + r.status);
  const doc = await r.json();
  const parts = [el("h2", {}, (doc.info && doc.info.title) || "API reference"),
    el("p", {class: "hint"}, "Rendered from ", el("a", {href: API + "/openapi.yaml"}, "/api/v1/openapi.yaml"),
      ", the document the API is tested against. Every path is under /api/v1 and takes Authorization: Bearer <token> unless marked public.")];
  for (const [path, ops] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(ops)) {
      if (!["get", "post", "put", "delete", "patch"].includes(method)) continue;
      const resolve = p => {
        const ref = p && p.$ref;
        if (!ref || !ref.startsWith("#/components/parameters/")) return p;
        return ((doc.components || {}).parameters || {})[ref.slice("#/components/parameters/".length)] || p;
      };
      const params = (op.parameters || []).map(resolve).map(p => [p.name || "", p.in || "", p.required ? "yes" : "no",
        (p.schema && p.schema.type) || "", p.description || ""]);
      const codes = Object.keys(op.responses || {}).join(", ");
      parts.push(el("section", {class: "card"},
        el("h3", {class: "mono"}, method.toUpperCase() + " /api/v1" + path),
        el("p", {}, op.summary || ""), op.description ? el("p", {class: "hint"}, op.description) : null,
        params.length ? table(["Parameter", "In", "Required", "Type", "Description"], params) : null,
        el("p", {class: "hint"}, "Responses: " + codes + (op.security && op.security.length === 0 ? " · public" : ""))));
    }
  }
  show(g, ...parts);
}

// ---- Routing ----

async function route() {
  if (!token) { signOut(); return; }
  closeLive();
  document.getElementById("signin").hidden = true;
  document.getElementById("nav").hidden = false;
  const h = location.hash || "#/";
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === h) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  delete document.getElementById("view").dataset.finished;
  const g = ++routeGen;
  try {
    if (h.startsWith("#/x/")) await executionView(g, decodeURIComponent(h.slice(4)));
    else if (h === "#/new") newView(g);
    else if (h === "#/reviews") await reviewsView(g);
    else if (h === "#/audit") auditView(g);
    else if (h === "#/api") await referenceView(g);
    else await executionsView(g);
  } catch (e) {
    if (!(e instanceof HTTPError && e.status === 401)) show(g, errorBox(e));
  }
  document.getElementById("main").focus();
}

document.getElementById("signin-form").addEventListener("submit", signIn);
document.getElementById("signout").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", route);
route();
