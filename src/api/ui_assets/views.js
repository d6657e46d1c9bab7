// caravan Web UI: the job and allocation views (jobs list, a job, an allocation, run a job).
import {
  h, fill, api, watch, time, badge, shortId, table, facts, stateBar, summaryCounts,
  confirmButton, enc, ALLOC_STATES, pollStats, sparkline, authHeaders,
} from "./lib.js";

const jobLink = (id) => h("a", { href: `/ui/jobs/${enc(id)}` }, id);
const allocLink = (id) => h("a", { href: `/ui/allocations/${enc(id)}`, class: "mono" }, shortId(id));
const nodeLink = (id, name) => h("a", { href: `/ui/clients/${enc(id)}` }, name || shortId(id));

/** /ui/jobs: every job with its status and allocations by state; filters and search. */
export function jobsView(main, signal) {
  const search = h("input", { type: "search", placeholder: "Search jobs by name or ID", "aria-label": "search" });
  const status = h("select", { "aria-label": "status" },
    h("option", { value: "" }, "Any status"), ["pending", "running", "dead"].map((s) => h("option", { value: s }, s)));
  const type = h("select", { "aria-label": "type" },
    h("option", { value: "" }, "Any type"), ["service", "batch", "system", "sysbatch"].map((s) => h("option", { value: s }, s)));
  const list = h("div", { id: "jobs-table" }, h("p", { class: "muted" }, "Loading jobs…"));
  fill(main,
    h("h1", {}, "Jobs", h("div", { class: "actions" }, h("a", { class: "button primary", href: "/ui/jobs/run" }, "Run job"))),
    h("div", { class: "toolbar" }, search, status, type), list);
  let jobs = [];
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const rows = jobs.filter((j) => (!status.value || j.Status === status.value)
      && (!type.value || j.Type === type.value)
      && (!q || j.ID.toLowerCase().includes(q) || (j.Name || "").toLowerCase().includes(q)));
    fill(list, table([
      { title: "Name", cell: (j) => jobLink(j.ID) },
      { title: "Type", cell: (j) => j.Type },
      { title: "Status", cell: (j) => badge(j.Status) },
      { title: "Priority", cell: (j) => j.Priority, cls: "hide-sm" },
      { title: "Allocations", cell: (j) => stateBar(summaryCounts(j.JobSummary)) },
      { title: "Submitted", cell: (j) => time(j.SubmitTime), cls: "hide-sm" },
    ], rows, jobs.length ? "No job matches the filters." : "No jobs yet: run one."));
  };
  for (const el of [search, status, type]) el.addEventListener("input", render);
  watch("/v1/jobs", signal, (data) => { jobs = data || []; jobs.sort((a, b) => a.ID.localeCompare(b.ID)); render(); },
    (err) => fill(list, h("div", { class: "error" }, err.message)));
}

/** /ui/jobs/<id>: groups, allocations, versions, evaluations, deployment, definition; actions. */
export function jobView(main, signal, id) {
  const head = h("div", {});
  const groups = h("div", {});
  const deployment = h("div", {});
  const allocs = h("div", {});
  const evals = h("div", {});
  const versions = h("div", {});
  const definition = h("pre", { class: "code" });
  const status = h("div", {});
  fill(main, head, status,
    h("h2", {}, "Task groups"), groups,
    h("h2", {}, "Latest deployment"), deployment,
    h("h2", {}, "Allocations"), allocs,
    h("h2", {}, "Evaluations"), evals,
    h("h2", {}, "Versions"), versions,
    h("h2", {}, "Definition"), definition);
  const path = `/v1/job/${enc(id)}`;
  let job = null;
  let summary = null;
  let onJob = () => {};
  const renderGroups = () => {
    if (!job) return;
    fill(groups, table([
      { title: "Group", cell: (g) => h("a", { href: `/ui/jobs/${enc(id)}/${enc(g.Name)}` }, g.Name) },
      { title: "Count", cell: (g) => g.Count },
      { title: "Tasks", cell: (g) => (g.Tasks || []).map((t) => `${t.Name} (${t.Driver})`).join(", ") },
      { title: "Allocations", cell: (g) => {
        const s = summary?.Summary?.[g.Name] || {};
        const counts = Object.fromEntries(ALLOC_STATES.map((k) => [k, s[k[0].toUpperCase() + k.slice(1)] || 0]));
        return stateBar(counts, true);
      } },
    ], job.TaskGroups || []));
  };
  let headKey = "";
  watch(path, signal, (data) => {
    job = data;
    fill(definition, JSON.stringify(job, null, 2));
    renderGroups();
    onJob();
    // Redraw the header only when it changes, so that an armed button stays armed.
    const key = JSON.stringify([job.Status, job.Stop, job.Version, job.Priority, job.SubmitTime]);
    if (key === headKey) return;
    headKey = key;
    const actions = h("div", { class: "actions" });
    if (job.Stop) {
      actions.append(h("button", { type: "button", class: "primary", onclick: async () => {
        try {
          await api(path, { method: "POST", body: { Job: { ...job, Stop: false } } });
          fill(status);
        } catch (err) { fill(status, h("div", { class: "error" }, `Start failed: ${err.message}`)); }
      } }, "Start"));
      actions.append(confirmButton("Purge", async () => {
        await api(`${path}?purge=true`, { method: "DELETE" });
        history.pushState(null, "", "/ui/jobs");
        dispatchEvent(new PopStateEvent("popstate"));
      }, status));
    } else {
      actions.append(confirmButton("Stop", () => api(path, { method: "DELETE" }), status));
    }
    fill(head,
      h("h1", {}, h("span", {}, job.Name || job.ID), badge(job.Status), actions),
      facts([["Type", job.Type], ["Priority", job.Priority], ["Namespace", job.Namespace],
        ["Datacenters", (job.Datacenters || []).join(", ") || "–"], ["Version", job.Version],
        ["Submitted", time(job.SubmitTime)]]));
  }, (err) => fill(head, h("h1", {}, id), h("div", { class: "error" }, err.message)));
  // Browsers open at most 6 connections to a host: three blocking queries follow the job, its
  // allocations and its evaluations; the rest is read again whenever those change.
  const loadSummary = () => api(`${path}/summary`, { signal }).then(({ data }) => { summary = data; renderGroups(); }, ignore);
  const loadDeployment = () => api(`${path}/deployment`, { signal }).then(({ data: d }) => fill(deployment, d ? deploymentCard(d)
    : h("div", { class: "table-wrap" }, h("div", { class: "empty" }, "No deployment."))), ignore);
  const loadVersions = () => api(`${path}/versions`, { signal })
    .then(({ data }) => fill(versions, versionsPanel(data?.Versions || [])), ignore);
  onJob = () => { loadVersions(); loadSummary(); };
  watch(`${path}/allocations`, signal, (data) => {
    fill(allocs, allocTable(data || []));
    loadSummary();
    loadDeployment();
  });
  watch(`${path}/evaluations`, signal, (data) => fill(evals, evalTable(data || [])));
}

function ignore() {}

/** Fields every new version changes by itself: left out of a diff. */
const BOOKKEEPING = new Set(["Version", "SubmitTime", "CreateIndex", "ModifyIndex", "JobModifyIndex",
  "Stable", "Status", "StatusDescription"]);

/** A job as `path → value` for its leaves (bookkeeping fields left out). */
function flatten(value, path = "", out = new Map()) {
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v])
      : Object.entries(value).filter(([k]) => path || !BOOKKEEPING.has(k));
    if (!entries.length) out.set(path, JSON.stringify(value));
    for (const [k, v] of entries) {
      const name = Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
      flatten(v, name, out);
    }
  } else {
    out.set(path, value === null || value === undefined ? "" : String(value));
  }
  return out;
}

/** The fields that differ between two versions of a job: [path, before, after]. */
export function diffJobs(before, after) {
  const a = flatten(before);
  const b = flatten(after);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  return keys.filter((k) => a.get(k) !== b.get(k)).map((k) => [k, a.get(k) ?? "", b.get(k) ?? ""]);
}

/** The versions of a job, and the diff between two chosen ones (by default the newest two). */
function versionsPanel(list) {
  list = [...list].sort((x, y) => y.Version - x.Version);
  const rows = table([
    { title: "Version", cell: (v) => v.Version },
    { title: "Stable", cell: (v) => (v.Stable ? "yes" : "no") },
    { title: "Stopped", cell: (v) => (v.Stop ? "yes" : "no") },
    { title: "Submitted", cell: (v) => time(v.SubmitTime) },
  ], list);
  if (list.length < 2) return rows;
  const pick = (label, chosen) => h("select", { "aria-label": label },
    list.map((v) => h("option", { value: v.Version, selected: v.Version === chosen }, `version ${v.Version}`)));
  const from = pick("from version", list[1].Version);
  const to = pick("to version", list[0].Version);
  const out = h("div", {});
  const render = () => {
    const x = list.find((v) => String(v.Version) === from.value);
    const y = list.find((v) => String(v.Version) === to.value);
    fill(out, table([
      { title: "Field", cell: ([k]) => h("span", { class: "mono" }, k) },
      { title: `Version ${x.Version}`, cell: ([, a]) => h("span", { class: "mono" }, a) },
      { title: `Version ${y.Version}`, cell: ([, , b]) => h("span", { class: "mono" }, b) },
    ], diffJobs(x, y), "No differences."));
  };
  from.addEventListener("change", render);
  to.addEventListener("change", render);
  render();
  return h("div", {}, rows, h("h2", {}, "Changes"), h("div", { class: "toolbar" }, from, "→", to), out);
}

function deploymentCard(d) {
  return h("div", { class: "card" },
    h("div", {}, badge(d.Status), " ", h("span", { class: "mono" }, shortId(d.ID)), " ",
      h("span", { class: "muted" }, d.StatusDescription || "")),
    table([
      { title: "Group", cell: ([name]) => name },
      { title: "Desired", cell: ([, s]) => s.DesiredTotal },
      { title: "Placed", cell: ([, s]) => s.PlacedAllocs },
      { title: "Healthy", cell: ([, s]) => s.HealthyAllocs },
      { title: "Unhealthy", cell: ([, s]) => s.UnhealthyAllocs },
    ], Object.entries(d.TaskGroups || {})));
}

export function allocTable(allocs, { showJob = false } = {}) {
  allocs = [...allocs].sort((a, b) => (b.CreateTime || 0) - (a.CreateTime || 0));
  return table([
    { title: "ID", cell: (a) => allocLink(a.ID) },
    showJob && { title: "Job", cell: (a) => jobLink(a.JobID) },
    { title: "Group", cell: (a) => a.TaskGroup },
    { title: "Status", cell: (a) => badge(a.ClientStatus) },
    { title: "Desired", cell: (a) => a.DesiredStatus, cls: "hide-sm" },
    !showJob && { title: "Client", cell: (a) => nodeLink(a.NodeID, a.NodeName) },
    { title: "Created", cell: (a) => time(a.CreateTime), cls: "hide-sm" },
    { title: "Modified", cell: (a) => time(a.ModifyTime), cls: "hide-sm" },
  ].filter(Boolean), allocs, "No allocations.");
}

/** Why an evaluation could not place a group, in words. */
export function explainFailures(failed) {
  return Object.entries(failed || {}).map(([group, m]) => {
    const parts = [];
    parts.push(`${m.NodesEvaluated ?? 0} node(s) evaluated`);
    if (m.NodesAvailable) parts.push(`available per datacenter: ${Object.entries(m.NodesAvailable).map(([k, v]) => `${k}=${v}`).join(", ")}`);
    if (m.NodesFiltered) parts.push(`${m.NodesFiltered} filtered`);
    for (const [c, n] of Object.entries(m.ConstraintFiltered || {})) parts.push(`constraint "${c}" filtered ${n}`);
    for (const [c, n] of Object.entries(m.ClassFiltered || {})) parts.push(`class ${c} filtered ${n}`);
    if (m.NodesExhausted) parts.push(`${m.NodesExhausted} exhausted`);
    for (const [d, n] of Object.entries(m.DimensionExhausted || {})) parts.push(`${d} exhausted on ${n}`);
    if (m.CoalescedFailures) parts.push(`${m.CoalescedFailures} more unplaced`);
    return h("div", { class: "failure" }, h("b", {}, `Group "${group}": `), parts.join("; "));
  });
}

export function evalTable(evals, { showJob = false } = {}) {
  evals = [...evals].sort((a, b) => (b.CreateIndex || 0) - (a.CreateIndex || 0));
  return table([
    { title: "ID", cell: (e) => h("span", { class: "mono", title: e.ID }, shortId(e.ID)) },
    showJob && { title: "Job", cell: (e) => jobLink(e.JobID) },
    { title: "Status", cell: (e) => badge(e.Status) },
    { title: "Triggered by", cell: (e) => e.TriggeredBy },
    { title: "Priority", cell: (e) => e.Priority, cls: "hide-sm" },
    { title: "Created", cell: (e) => time(e.CreateTime), cls: "hide-sm" },
    { title: "Placement failures", cell: (e) => {
      const f = explainFailures(e.FailedTGAllocs);
      return f.length ? f : h("span", { class: "muted" }, e.StatusDescription || "none");
    } },
  ].filter(Boolean), evals, "No evaluations.");
}

/** /ui/allocations/<id>: task states and events, addresses, live logs; stop. */
export function allocView(main, signal, id) {
  const head = h("div", {});
  const status = h("div", {});
  const tasks = h("div", {});
  const addresses = h("div", {});
  const logs = h("div", {});
  const charts = h("div", { class: "charts" }, h("span", { class: "muted" }, "Not running."));
  fill(main, head, status, h("h2", {}, "Resource use"), charts, h("h2", {}, "Tasks"), tasks,
    h("h2", {}, "Addresses"), addresses, h("h2", {}, "Logs"), logs);
  let sampling = false;
  const mem = [];
  const cpu = [];
  let logTask = null;
  let headKey = "";
  watch(`/v1/allocation/${enc(id)}`, signal, (a) => {
    // Redraw the header only when it changes, so that an armed button stays armed.
    const key = JSON.stringify([a.ClientStatus, a.DesiredStatus, a.NodeName]);
    if (key !== headKey) {
      headKey = key;
      renderAllocHead(head, status, a, id);
    }
    const states = Object.entries(a.TaskStates || {});
    fill(tasks, states.length ? states.map(([name, s]) => h("div", { class: "card" },
      h("div", {}, h("b", {}, name), " ", badge(s.State), s.Failed ? badge("failed") : null,
        " ", h("span", { class: "muted" }, `restarts ${s.Restarts || 0}, started `), time(s.StartedAt)),
      table([
        { title: "Time", cell: (e) => time(e.Time) },
        { title: "Type", cell: (e) => e.Type },
        { title: "Description", cell: (e) => e.DisplayMessage || e.Message || e.DriverError || "" },
      ], [...(s.Events || [])].reverse(), "No events."))) : h("p", { class: "muted" }, "No task has started yet."));
    fill(addresses, table([
      { title: "Label", cell: (p) => p.Label },
      { title: "Address", cell: (p) => h("span", { class: "mono" }, `${p.HostIP || p.IP || ""}:${p.Value}`) },
      { title: "To", cell: (p) => p.To || "–" },
    ], allocPorts(a), "No ports."));
    if (a.ClientStatus === "running" && !sampling) {
      sampling = true;
      pollStats(a.ID, signal, (sample) => {
        mem.push(sample.memMiB);
        cpu.push(sample.cpuPct);
        if (mem.length > 60) { mem.shift(); cpu.shift(); }
        fill(charts, sparkline(mem, "Memory", "MiB"), sparkline(cpu, "CPU", "% of a core"));
      }).finally(() => { sampling = false; });
    }
    const names = states.map(([n]) => n);
    if (!names.length) {
      for (const group of a.Job?.TaskGroups || []) {
        if (group.Name === a.TaskGroup) names.push(...(group.Tasks || []).map((t) => t.Name));
      }
    }
    if (names.length && logTask === null) {
      logTask = names[0];
      fill(logs, logPanel(a.ID, names, signal));
    }
  }, (err) => fill(head, h("h1", {}, shortId(id)), h("div", { class: "error" }, err.message)));
}

/** An allocation's header: its facts and the Restart and Stop buttons. */
function renderAllocHead(head, status, a, id) {
  const stop = confirmButton("Stop", () => api(`/v1/allocation/${enc(id)}/stop`, { method: "POST" }), status);
  const restart = confirmButton("Restart", () => api(`/v1/client/allocation/${enc(id)}/restart`,
    { method: "POST", body: { TaskName: "", AllTasks: false } }), status);
  fill(head,
    h("h1", {}, h("span", { class: "mono" }, `Allocation ${shortId(a.ID)}`), badge(a.ClientStatus),
      h("div", { class: "actions" }, a.ClientStatus === "running" ? restart : null, a.DesiredStatus === "run" ? stop : null)),
    facts([["Job", jobLink(a.JobID)], ["Group", a.TaskGroup], ["Client", nodeLink(a.NodeID, a.NodeName)],
      ["Desired", a.DesiredStatus], ["Created", time(a.CreateTime)], ["Full ID", h("span", { class: "mono" }, a.ID)]]));
}

function allocPorts(a) {
  const shared = a.AllocatedResources?.Shared || {};
  const ports = [...(shared.Ports || [])];
  for (const net of shared.Networks || []) {
    for (const p of [...(net.ReservedPorts || []), ...(net.DynamicPorts || [])]) {
      if (!ports.some((q) => q.Label === p.Label)) ports.push({ ...p, HostIP: net.IP });
    }
  }
  return ports;
}

/** A live tail of a task's stdout or stderr through `/v1/client/fs/logs?follow=true`. */
function logPanel(allocId, tasks, pageSignal) {
  const out = h("pre", { class: "log", id: "log-output" });
  const taskSel = h("select", { "aria-label": "task" }, tasks.map((t) => h("option", { value: t }, t)));
  const stdout = h("button", { type: "button", class: "active" }, "stdout");
  const stderr = h("button", { type: "button" }, "stderr");
  const state = h("span", { class: "muted" });
  let current = null;
  let type = "stdout";
  const start = () => {
    current?.abort();
    current = new AbortController();
    pageSignal.addEventListener("abort", () => current.abort(), { once: true });
    stdout.classList.toggle("active", type === "stdout");
    stderr.classList.toggle("active", type === "stderr");
    out.textContent = "";
    follow(allocId, taskSel.value, type, out, state, current.signal);
  };
  stdout.addEventListener("click", () => { type = "stdout"; start(); });
  stderr.addEventListener("click", () => { type = "stderr"; start(); });
  taskSel.addEventListener("change", start);
  const panel = h("div", {}, h("div", { class: "toolbar tabs" }, taskSel, stdout, stderr, state), out);
  queueMicrotask(start);
  return panel;
}

async function follow(allocId, task, type, out, state, signal) {
  const url = `/v1/client/fs/logs/${enc(allocId)}?task=${enc(task)}&type=${type}&follow=true&origin=end&offset=65536&plain=true`;
  const decoder = new TextDecoder();
  state.textContent = "following";
  try {
    const response = await fetch(url, { signal, headers: authHeaders() });
    if (!response.ok) {
      state.textContent = `${response.status}: ${(await response.text()).trim()}`;
      return;
    }
    const reader = response.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 8;
      out.textContent += decoder.decode(value, { stream: true });
      if (out.textContent.length > 200000) out.textContent = out.textContent.slice(-150000);
      if (atBottom) out.scrollTop = out.scrollHeight;
    }
    state.textContent = "task finished";
  } catch (err) {
    if (err.name !== "AbortError") state.textContent = `log stream ended: ${err.message}`;
  }
}

const EXAMPLE = `job "example" {
  group "web" {
    task "hello" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "while true; do date; sleep 5; done"]
      }
    }
  }
}
`;

/** /ui/jobs/run: paste HCL, plan, then run. */
export function runView(main, signal) {
  const text = h("textarea", { id: "job-hcl", spellcheck: "false", "aria-label": "job specification" }, EXAMPLE);
  const result = h("div", {});
  const run = h("button", { type: "button", class: "primary", disabled: true }, "Run");
  let parsed = null;
  const plan = h("button", { type: "button" }, "Plan");
  text.addEventListener("input", () => { parsed = null; run.disabled = true; });
  plan.addEventListener("click", async () => {
    fill(result, h("p", { class: "muted" }, "Planning…"));
    try {
      const { data: job } = await api("/v1/jobs/parse", { method: "POST", body: { JobHCL: text.value, Canonicalize: true } });
      const { data: p } = await api(`/v1/job/${enc(job.ID)}/plan`, { method: "POST", body: { Job: job, Diff: true } });
      parsed = job;
      run.disabled = false;
      const failures = explainFailures(p.FailedTGAllocs);
      fill(result, h("div", { class: "card" },
        h("div", {}, h("b", {}, `Job "${job.ID}"`), ` (${p.Diff?.Type || "plan"})`),
        table([
          { title: "Group", cell: ([g]) => g },
          { title: "Place", cell: ([, u]) => u.Place || 0 },
          { title: "Update", cell: ([, u]) => (u.InPlaceUpdate || 0) + (u.DestructiveUpdate || 0) },
          { title: "Stop", cell: ([, u]) => u.Stop || 0 },
          { title: "Ignore", cell: ([, u]) => u.Ignore || 0 },
        ], Object.entries(p.Annotations?.DesiredTGUpdates || {}), "No changes."),
        failures.length ? h("div", { class: "error" }, h("b", {}, "Some allocations would not be placed:"), failures) : null));
    } catch (err) {
      fill(result, h("div", { class: "error" }, err.message));
    }
  });
  run.addEventListener("click", async () => {
    if (!parsed) return;
    try {
      await api("/v1/jobs", { method: "POST", body: { Job: parsed } });
      history.pushState(null, "", `/ui/jobs/${enc(parsed.ID)}`);
      dispatchEvent(new PopStateEvent("popstate"));
    } catch (err) { fill(result, h("div", { class: "error" }, `Run failed: ${err.message}`)); }
  });
  void signal;
  fill(main, h("h1", {}, "Run a job"),
    h("p", { class: "muted" }, "Paste a job specification (HCL), plan it, then run it."),
    text, h("div", { class: "toolbar" }, plan, run), result);
}

/** /ui/jobs/<id>/<group>: a task group's reservations and its allocations with live use. */
export function taskGroupView(main, signal, id, group) {
  const head = h("div", {});
  const allocs = h("div", {});
  fill(main, head, h("h2", {}, "Allocations"), allocs);
  const use = new Map();
  let rows = [];
  const render = () => fill(allocs, table([
    { title: "ID", cell: (a) => allocLink(a.ID) },
    { title: "Status", cell: (a) => badge(a.ClientStatus) },
    { title: "Client", cell: (a) => nodeLink(a.NodeID, a.NodeName) },
    { title: "Created", cell: (a) => time(a.CreateTime), cls: "hide-sm" },
    { title: "Memory", cell: (a) => (use.has(a.ID) ? `${use.get(a.ID).memMiB.toFixed(1)} MiB` : "–") },
    { title: "CPU", cell: (a) => (use.has(a.ID) ? `${use.get(a.ID).cpuPct.toFixed(1)} %` : "–") },
  ], rows, "No allocations."));
  const sampled = new Set();
  watch(`/v1/job/${enc(id)}`, signal, (job) => {
    const g = (job.TaskGroups || []).find((tg) => tg.Name === group);
    if (!g) { fill(head, h("h1", {}, group), h("div", { class: "error" }, `job ${id} has no group ${group}`)); return; }
    const sum = (f) => (g.Tasks || []).reduce((n, t) => n + (f(t.Resources || {}) || 0), 0);
    fill(head, h("h1", {}, h("span", {}, h("a", { href: `/ui/jobs/${enc(id)}` }, job.Name || id), ` / ${group}`)),
      facts([["Count", g.Count], ["Tasks", (g.Tasks || []).map((t) => `${t.Name} (${t.Driver})`).join(", ")],
        ["Reserved CPU", `${sum((r) => r.CPU)} MHz`], ["Reserved memory", `${sum((r) => r.MemoryMB)} MiB`],
        ["Ephemeral disk", `${g.EphemeralDisk?.SizeMB ?? 0} MiB`]]));
  }, (err) => fill(head, h("h1", {}, group), h("div", { class: "error" }, err.message)));
  watch(`/v1/job/${enc(id)}/allocations`, signal, (data) => {
    rows = (data || []).filter((a) => a.TaskGroup === group).sort((a, b) => (b.CreateTime || 0) - (a.CreateTime || 0));
    for (const a of rows) {
      if (a.ClientStatus !== "running" || sampled.has(a.ID)) continue;
      sampled.add(a.ID);
      pollStats(a.ID, signal, (sample) => { use.set(a.ID, sample); render(); });
    }
    render();
  });
}
