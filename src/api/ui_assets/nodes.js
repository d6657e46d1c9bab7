// caravan Web UI: the cluster views (clients, a client, servers, evaluations, topology).
import { h, fill, api, watch, time, badge, shortId, table, facts, usage, enc } from "./lib.js";
import { allocTable, evalTable } from "./views.js";

const LIVE = new Set(["pending", "running"]);

/** CPU (MHz) and memory (MB) an allocation reserves. */
function allocUse(a) {
  let cpu = 0;
  let mem = 0;
  for (const t of Object.values(a.AllocatedResources?.Tasks || {})) {
    cpu += t.Cpu?.CpuShares || 0;
    mem += t.Memory?.MemoryMB || 0;
  }
  return { cpu, mem };
}

function nodeTotals(n) {
  const r = n.NodeResources || {};
  return { cpu: r.Cpu?.CpuShares || n.Resources?.CPU || 0, mem: r.Memory?.MemoryMB || n.Resources?.MemoryMB || 0 };
}

/**
 * Node stubs may lack `NodeResources`: reads each such node once, then calls `render` again.
 * `details` maps a node ID to its full record.
 */
function loadDetails(nodes, details, signal, render) {
  for (const n of nodes) {
    if (n.NodeResources || details.has(n.ID)) continue;
    details.set(n.ID, null);
    api(`/v1/node/${enc(n.ID)}`, { signal }).then(({ data }) => { details.set(n.ID, data); render(); }, () => details.delete(n.ID));
  }
}

const full = (n, details) => details.get(n.ID) || n;

function drivers(n) {
  return Object.entries(n.Drivers || {}).sort(([a], [b]) => a.localeCompare(b));
}

function driverBadges(n) {
  return drivers(n).filter(([, d]) => d.Detected).map(([name, d]) =>
    h("span", {}, badge(d.Healthy ? "healthy" : "unhealthy", name), " "));
}

/** /ui/clients: status, eligibility, drain, drivers, CPU/memory allocated of total. */
export function clientsView(main, signal) {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading clients…"));
  fill(main, h("h1", {}, "Clients"), list);
  let nodes = [];
  let allocs = [];
  const details = new Map();
  const render = () => {
    const used = {};
    for (const a of allocs) {
      if (!LIVE.has(a.ClientStatus) || a.DesiredStatus !== "run") continue;
      const u = allocUse(a);
      const sum = (used[a.NodeID] ||= { cpu: 0, mem: 0, n: 0 });
      sum.cpu += u.cpu; sum.mem += u.mem; sum.n += 1;
    }
    fill(list, table([
      { title: "Name", cell: (n) => h("a", { href: `/ui/clients/${enc(n.ID)}` }, n.Name) },
      { title: "ID", cell: (n) => h("span", { class: "mono" }, shortId(n.ID)), cls: "hide-sm" },
      { title: "Status", cell: (n) => badge(n.Status) },
      { title: "Eligibility", cell: (n) => badge(n.SchedulingEligibility) },
      { title: "Drain", cell: (n) => (n.Drain ? badge("draining") : "no") },
      { title: "Datacenter", cell: (n) => n.Datacenter, cls: "hide-sm" },
      { title: "Drivers", cell: driverBadges },
      { title: "Allocs", cell: (n) => used[n.ID]?.n || 0 },
      { title: "CPU", cell: (n) => usage(used[n.ID]?.cpu || 0, nodeTotals(full(n, details)).cpu, "MHz"), cls: "hide-sm" },
      { title: "Memory", cell: (n) => usage(used[n.ID]?.mem || 0, nodeTotals(full(n, details)).mem, "MiB"), cls: "hide-sm" },
    ], nodes, "No clients have registered."));
  };
  watch("/v1/nodes?resources=true", signal, (data) => { nodes = data || []; nodes.sort((a, b) => a.Name.localeCompare(b.Name)); render(); loadDetails(nodes, details, signal, render); },
    (err) => fill(list, h("div", { class: "error" }, err.message)));
  watch("/v1/allocations?resources=true&task_states=false", signal, (data) => { allocs = data || []; render(); });
}

/** /ui/clients/<id>: attributes, drivers, resources, allocations, events; drain, eligibility. */
export function clientView(main, signal, id) {
  const head = h("div", {});
  const status = h("div", {});
  const resources = h("div", {});
  const drv = h("div", {});
  const allocs = h("div", {});
  const events = h("div", {});
  const attrs = h("div", {});
  fill(main, head, status, h("h2", {}, "Resources"), resources, h("h2", {}, "Allocations"), allocs,
    h("h2", {}, "Drivers"), drv, h("h2", {}, "Events"), events, h("h2", {}, "Attributes"), attrs);
  const path = `/v1/node/${enc(id)}`;
  let node = null;
  let nodeAllocs = [];
  const renderResources = () => {
    if (!node) return;
    let cpu = 0; let mem = 0;
    for (const a of nodeAllocs) {
      if (LIVE.has(a.ClientStatus) && a.DesiredStatus === "run") { const u = allocUse(a); cpu += u.cpu; mem += u.mem; }
    }
    const total = nodeTotals(node);
    const disk = node.NodeResources?.Disk?.DiskMB || node.Resources?.DiskMB || 0;
    fill(resources, h("div", { class: "card" }, facts([
      ["CPU allocated", usage(cpu, total.cpu, "MHz")], ["Memory allocated", usage(mem, total.mem, "MiB")],
      ["Disk", `${disk} MiB`]])));
  };
  const act = async (body, what) => {
    try {
      await api(`${path}/${what}`, { method: "POST", body });
      fill(status);
    } catch (err) { fill(status, h("div", { class: "error" }, `${what} failed: ${err.message}`)); }
  };
  watch(path, signal, (n) => {
    node = n;
    const eligible = n.SchedulingEligibility === "eligible";
    fill(head,
      h("h1", {}, h("span", {}, n.Name), badge(n.Status), badge(n.SchedulingEligibility), n.Drain ? badge("draining") : null,
        h("div", { class: "actions" },
          h("button", { type: "button", onclick: () => act({ Eligibility: eligible ? "ineligible" : "eligible", NodeID: n.ID }, "eligibility") },
            eligible ? "Mark ineligible" : "Mark eligible"),
          n.Drain
            ? h("button", { type: "button", onclick: () => act({ DrainSpec: null, MarkEligible: true, NodeID: n.ID }, "drain") }, "Stop drain")
            : h("button", { type: "button", class: "danger", onclick: () => act({ DrainSpec: { Deadline: 3600e9 }, NodeID: n.ID }, "drain") }, "Drain"))),
      facts([["ID", h("span", { class: "mono" }, n.ID)], ["Address", n.HTTPAddr || "–"], ["Datacenter", n.Datacenter],
        ["Node pool", n.NodePool || "default"], ["Class", n.NodeClass || "–"]]));
    renderResources();
    fill(drv, table([
      { title: "Driver", cell: ([name]) => name },
      { title: "Detected", cell: ([, d]) => (d.Detected ? "yes" : "no") },
      { title: "Health", cell: ([, d]) => badge(d.Healthy ? "healthy" : "unhealthy") },
      { title: "Description", cell: ([, d]) => d.HealthDescription || "" },
      { title: "Version", cell: ([name, d]) => d.Attributes?.[`driver.${name}.version`] || n.Attributes?.[`driver.${name}.version`] || "–" },
      { title: "Updated", cell: ([, d]) => time(d.UpdateTime) },
    ], drivers(n), "No drivers."));
    fill(events, table([
      { title: "Time", cell: (e) => time(e.Timestamp) },
      { title: "Subsystem", cell: (e) => e.Subsystem },
      { title: "Message", cell: (e) => e.Message },
    ], [...(n.Events || [])].reverse(), "No events."));
    fill(attrs, h("div", { class: "table-wrap" }, h("table", { class: "kv" }, h("tbody", {},
      Object.entries(n.Attributes || {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) =>
        h("tr", {}, h("td", { class: "mono" }, k), h("td", { class: "mono" }, v)))))));
  }, (err) => fill(head, h("h1", {}, shortId(id)), h("div", { class: "error" }, err.message)));
  watch(`${path}/allocations`, signal, (data) => { nodeAllocs = data || []; fill(allocs, allocTable(nodeAllocs, { showJob: true })); renderResources(); });
}

/** /ui/servers: members, the leader, Raft peers. */
export function serversView(main, signal) {
  const members = h("div", {});
  const peers = h("div", {});
  fill(main, h("h1", {}, "Servers"), members, h("h2", {}, "Raft peers"), peers);
  let leader = "";
  let data = null;
  const render = () => {
    if (!data) return;
    fill(members, table([
      { title: "Name", cell: (m) => h("span", {}, m.Name, " ", isLeader(m) ? badge("leader") : null) },
      { title: "Status", cell: (m) => badge(m.Status) },
      { title: "Address", cell: (m) => h("span", { class: "mono" }, `${m.Addr}:${m.Port}`) },
      { title: "Datacenter", cell: (m) => m.Tags?.dc || "–" },
      { title: "Region", cell: (m) => m.Tags?.region || "–", cls: "hide-sm" },
      { title: "Version", cell: (m) => m.Tags?.build || "–", cls: "hide-sm" },
    ], data.Members || [], "No members."));
  };
  const isLeader = (m) => leader && (leader === `${m.Addr}:${m.Tags?.port || m.Port}` || leader === `${m.Addr}:${m.Port}`);
  const refresh = async () => {
    try {
      const [m, l, p] = await Promise.all([api("/v1/agent/members", { signal }), api("/v1/status/leader", { signal }), api("/v1/status/peers", { signal })]);
      data = m.data;
      leader = l.data || "";
      render();
      fill(peers, table([
        { title: "Address", cell: (a) => h("span", { class: "mono" }, a) },
        { title: "Role", cell: (a) => (a === leader ? badge("leader") : "follower") },
      ], p.data || [], "No peers."));
    } catch (err) {
      if (err.name !== "AbortError") fill(members, h("div", { class: "error" }, err.message));
    }
  };
  refresh();
  const timer = setInterval(refresh, 5000);
  signal.addEventListener("abort", () => clearInterval(timer));
}

/** /ui/evaluations: status, triggered by, placement failures explained. */
export function evaluationsView(main, signal) {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading evaluations…"));
  fill(main, h("h1", {}, "Evaluations"), list);
  watch("/v1/evaluations", signal, (data) => fill(list, evalTable(data || [], { showJob: true })),
    (err) => fill(list, h("div", { class: "error" }, err.message)));
}

/** /ui/topology: every client as a box filled by its allocations. */
export function topologyView(main, signal) {
  const grid = h("div", { class: "topology" });
  fill(main, h("h1", {}, "Topology"), grid);
  let nodes = [];
  let allocs = [];
  const details = new Map();
  const render = () => {
    fill(grid, nodes.map((n) => {
      const mine = allocs.filter((a) => a.NodeID === n.ID && LIVE.has(a.ClientStatus) && a.DesiredStatus === "run");
      const total = nodeTotals(full(n, details));
      let cpu = 0; let mem = 0;
      for (const a of mine) { const u = allocUse(a); cpu += u.cpu; mem += u.mem; }
      return h("div", { class: "card node-box" },
        h("h3", {}, h("a", { href: `/ui/clients/${enc(n.ID)}` }, n.Name), " ", badge(n.Status)),
        usage(mem, total.mem, "MiB memory"), usage(cpu, total.cpu, "MHz CPU"),
        h("div", { class: "allocs-in" }, mine.map((a) => h("a", {
          href: `/ui/allocations/${enc(a.ID)}`, class: a.ClientStatus, title: `${a.JobID}.${a.TaskGroup} (${allocUse(a).mem} MiB)`,
          style: { width: `${Math.max(8, total.mem ? (240 * allocUse(a).mem) / total.mem : 8)}px` },
        }))));
    }));
    if (!nodes.length) fill(grid, h("p", { class: "muted" }, "No clients."));
  };
  watch("/v1/nodes?resources=true", signal, (data) => { nodes = data || []; render(); loadDetails(nodes, details, signal, render); });
  watch("/v1/allocations?resources=true&task_states=false", signal, (data) => { allocs = data || []; render(); });
}
