// caravan Web UI: the client-side router, the navigation and the lost-agent banner.
import { h, fill, api, onReachability } from "./lib.js";
import { jobsView, jobView, allocView, runView, taskGroupView } from "./views.js";
import { clientsView, clientView, serversView, evaluationsView, topologyView } from "./nodes.js";
import { tokensView } from "./settings.js";

const ROUTES = [
  [/^\/ui\/?$/, () => { history.replaceState(null, "", "/ui/jobs"); return ["jobs", jobsView]; }],
  [/^\/ui\/jobs\/?$/, () => ["jobs", jobsView]],
  [/^\/ui\/jobs\/run\/?$/, () => ["jobs", runView]],
  [/^\/ui\/jobs\/([^/]+)\/([^/]+)\/?$/, (id, group) => ["jobs", taskGroupView, id, group]],
  [/^\/ui\/jobs\/([^/]+)\/?/, (id) => ["jobs", jobView, id]],
  [/^\/ui\/allocations\/([^/]+)\/?/, (id) => ["jobs", allocView, id]],
  [/^\/ui\/clients\/?$/, () => ["clients", clientsView]],
  [/^\/ui\/clients\/([^/]+)\/?/, (id) => ["clients", clientView, id]],
  [/^\/ui\/servers\/?/, () => ["servers", serversView]],
  [/^\/ui\/evaluations\/?/, () => ["evaluations", evaluationsView]],
  [/^\/ui\/topology\/?/, () => ["topology", topologyView]],
  [/^\/ui\/settings\/tokens\/?/, () => ["tokens", tokensView]],
];

let current = null;

function notFound(main) {
  fill(main, h("h1", {}, "Not found"), h("p", {}, "No page here. ", h("a", { href: "/ui/jobs" }, "Go to jobs")));
}

function route() {
  current?.abort();
  current = new AbortController();
  const main = document.getElementById("main");
  const path = location.pathname;
  let section = "";
  let view = notFound;
  let args = [];
  for (const [pattern, make] of ROUTES) {
    const m = path.match(pattern);
    if (m) {
      [section, view, ...args] = make(...m.slice(1).map(decodeURIComponent));
      break;
    }
  }
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.section === section);
  document.title = `${args.length ? `${args.join(" / ")} · ` : ""}${section || "caravan"} · caravan`;
  view(main, current.signal, ...args);
}

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[href]");
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui/")) return;
  event.preventDefault();
  if (url.pathname !== location.pathname) history.pushState(null, "", url.pathname + url.search);
  route();
});
addEventListener("popstate", route);
// Leaving the page ends its blocking queries and log streams at once.
addEventListener("pagehide", () => current?.abort());

const banner = document.getElementById("banner");
onReachability((ok) => {
  banner.hidden = ok;
  banner.textContent = ok ? "" : "Lost contact with the agent: retrying…";
});

api("/v1/agent/self").then(({ data }) => {
  const c = data?.config || {};
  document.getElementById("region").textContent = [c.Region, c.Datacenter, c.NodeName].filter(Boolean).join(" · ");
}).catch(() => {});

route();
