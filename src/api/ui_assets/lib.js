// caravan Web UI: helpers shared by the views (DOM building, the API, blocking queries, formats).

/** Builds an element: h("a", {href: "/ui/jobs", class: "x"}, "text", child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An API error: the status and the agent's plain-text message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
  }
}

const listeners = new Set();
/** Calls `fn(reachable)` whenever the agent is found reachable or unreachable. */
export function onReachability(fn) { listeners.add(fn); }
let reachable = true;
function setReachable(value) {
  if (value === reachable) return;
  reachable = value;
  for (const fn of listeners) fn(value);
}

/** Where the "ACL Tokens" page keeps the secret (Nomad's UI: the same localStorage key). */
const TOKEN_KEY = "nomadTokenSecret";

/** The ACL token's secret the UI acts with, if one was set. */
export function tokenSecret() {
  try { return localStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
}

/** Keeps (or, with "", forgets) the secret the UI acts with. */
export function setTokenSecret(secret) {
  if (secret) localStorage.setItem(TOKEN_KEY, secret);
  else localStorage.removeItem(TOKEN_KEY);
}

/** `X-Nomad-Token` with the kept secret (or `secret`), and `extra` headers. */
export function authHeaders(extra = {}, secret = tokenSecret()) {
  return secret ? { ...extra, "X-Nomad-Token": secret } : { ...extra };
}

/** Calls the API: JSON in, JSON out; returns {data, index}. */
export async function api(path, { method = "GET", body, signal, secret } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      headers: authHeaders(body === undefined ? {} : { "Content-Type": "application/json" }, secret ?? tokenSecret()),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name !== "AbortError") setReachable(false);
    throw err;
  }
  setReachable(true);
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, text.trim());
  const index = Number(response.headers.get("X-Nomad-Index") || 0);
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  return { data, index };
}

/**
 * Follows `path` with blocking queries until `signal` aborts: `onData(data)` on every change,
 * `onError(err)` on an API error; a lost agent is retried with a growing delay.
 */
export async function watch(path, signal, onData, onError) {
  let index = 0;
  let delay = 500;
  const sep = path.includes("?") ? "&" : "?";
  while (!signal.aborted) {
    try {
      const url = index ? `${path}${sep}index=${index}&wait=30s` : path;
      const result = await api(url, { signal });
      delay = 500;
      if (!index || result.index !== index) onData(result.data);
      // An index that went backwards (a restarted dev agent) starts over.
      index = result.index > index ? result.index : result.index || 0;
      if (!result.index) await sleep(2000, signal);
    } catch (err) {
      if (signal.aborted || err.name === "AbortError") return;
      if (err instanceof ApiError) {
        if (onError) onError(err);
        await sleep(3000, signal);
      } else {
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 5000);
        index = 0;
      }
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** Nomad times are nanoseconds since the epoch; some fields are seconds or RFC 3339. */
export function toDate(value) {
  if (value === undefined || value === null || value === 0 || value === "") return null;
  if (typeof value === "string") {
    const d = new Date(value);
    return Number.isNaN(d.getTime()) || d.getFullYear() < 1980 ? null : d;
  }
  if (value > 1e15) return new Date(value / 1e6);
  if (value > 1e12) return new Date(value);
  return new Date(value * 1000);
}

/** A relative time ("3m ago") with the absolute one in `title`. */
export function time(value) {
  const d = toDate(value);
  if (!d) return h("span", { class: "muted" }, "–");
  return h("time", { datetime: d.toISOString(), title: d.toLocaleString() }, ago(d));
}

export function ago(d) {
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  const abs = Math.abs(s);
  const unit = abs < 60 ? [abs, "s"] : abs < 3600 ? [Math.floor(abs / 60), "m"]
    : abs < 86400 ? [Math.floor(abs / 3600), "h"] : [Math.floor(abs / 86400), "d"];
  return s >= 0 ? `${unit[0]}${unit[1]} ago` : `in ${unit[0]}${unit[1]}`;
}

/** A coloured state badge. */
export function badge(state, label) {
  const cls = String(state || "unknown").toLowerCase().replace(/[^a-z]/g, "");
  return h("span", { class: `badge ${cls}` }, label ?? state ?? "unknown");
}

export function shortId(id) { return id ? String(id).slice(0, 8) : ""; }

/** A table: columns [{title, cell(row), cls}], rows; `empty` when there are none. */
export function table(columns, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("div", { class: "table-wrap" }, h("div", { class: "empty" }, empty));
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.cls }, c.title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.cls }, c.cell(row))))))));
}

/** Key/value facts shown across the top of a detail page. */
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

export const ALLOC_STATES = ["queued", "starting", "running", "complete", "failed", "lost"];

/** A stacked bar of counts by state, with a legend. */
export function stateBar(counts, withLegend = false) {
  const total = ALLOC_STATES.reduce((n, s) => n + (counts[s] || 0), 0);
  const bar = h("div", { class: "bar", title: ALLOC_STATES.map((s) => `${s}: ${counts[s] || 0}`).join(", ") },
    ALLOC_STATES.filter((s) => counts[s]).map((s) =>
      h("span", { class: s, style: { width: `${(100 * counts[s]) / total}%` } })));
  if (!withLegend) return bar;
  return h("div", {}, bar, h("div", { class: "legend" }, ALLOC_STATES.map((s) =>
    h("span", {}, h("i", { class: `bar-${s}`, style: { background: `var(--${s})` } }), `${s} ${counts[s] || 0}`))));
}

/** Counts from a job summary's per-group entries ({Queued, Starting, ...}). */
export function summaryCounts(summary) {
  const counts = {};
  for (const group of Object.values(summary?.Summary || {})) {
    for (const s of ALLOC_STATES) {
      const key = s[0].toUpperCase() + s.slice(1);
      counts[s] = (counts[s] || 0) + (group[key] || 0);
    }
  }
  return counts;
}

/** A percentage bar for used of total. */
export function usage(used, total, unit) {
  const pct = total ? Math.min(100, (100 * used) / total) : 0;
  return h("div", { title: `${used} of ${total} ${unit}` },
    h("div", { class: "bar" }, h("span", { class: "used", style: { width: `${pct}%` } })),
    h("div", { class: "legend" }, `${used} / ${total} ${unit}`));
}

/**
 * A button that asks again before a destructive action: the first click arms it, the second
 * runs `action` (errors shown in `status`).
 */
export function confirmButton(label, action, status) {
  const button = h("button", { class: "danger", type: "button" }, label);
  let armed = false;
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.classList.add("confirm");
      button.textContent = `Confirm ${label.toLowerCase()}?`;
      return;
    }
    button.disabled = true;
    try {
      await action();
      if (status) fill(status);
    } catch (err) {
      if (status) fill(status, h("div", { class: "error" }, `${label} failed: ${err.message}`));
    } finally {
      armed = false;
      button.disabled = false;
      button.classList.remove("confirm");
      button.textContent = label;
    }
  });
  return button;
}

export function enc(s) { return encodeURIComponent(s); }

/**
 * Samples an allocation's resource use every 2 s while `signal` lives: `onSample({ memMiB,
 * cpuPct })`, CPU as the share of one core over the last interval. Stops when the allocation
 * no longer answers (it stopped, or its client went away).
 */
export async function pollStats(allocId, signal, onSample) {
  let previous = null;
  while (!signal.aborted) {
    try {
      const { data } = await api(`/v1/client/allocation/${enc(allocId)}/stats`, { signal });
      const usage = data?.ResourceUsage || {};
      const ticks = usage.CpuStats?.TotalTicks || 0;
      const at = Date.now();
      const cpuPct = previous ? Math.max(0, ((ticks - previous.ticks) / Math.max(1, at - previous.at)) * 100) : 0;
      previous = { ticks, at };
      onSample({ memMiB: (usage.MemoryStats?.RSS || 0) / (1024 * 1024), cpuPct });
    } catch {
      return;
    }
    await sleep(2000, signal);
  }
}

/** A small SVG line chart of `values` (the newest last), with the latest value as a label. */
export function sparkline(values, label, unit) {
  const ns = "http://www.w3.org/2000/svg";
  const width = 240;
  const height = 48;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "spark");
  const max = Math.max(1e-9, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - ((height - 4) * v) / max).toFixed(1)}`);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.join(" "));
  svg.appendChild(line);
  const last = values.length ? values[values.length - 1] : 0;
  return h("div", { class: "spark-wrap" }, h("div", { class: "legend" }, `${label}: ${last.toFixed(1)} ${unit}`), svg);
}
