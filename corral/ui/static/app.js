// corral's web UI: one page, no build step, no library. It reads the same API as the CLI with a bearer
// token kept in sessionStorage, and follows /v1/events: each event refetches the one object it names
// (a burst refetches the list once), then the current view is drawn again on the next animation frame.
"use strict";

const TOKEN_KEY = "corral-token";
const BURST = 50; // more changed objects than this in one tick: refetch the whole list instead
const PAGE = 50; // nodes per page of the cluster page's tables (a page of a large cluster draws in tens of ms)
const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  role: "viewer",
  name: "",
  nodes: new Map(),
  services: new Map(),
  tasks: new Map(),
  events: [],
  serviceDetail: new Map(), // name -> {tasks, endpoints}: filled when its page is open
  nodePage: 0, // which page of nodes the cluster page shows
  logs: null, // the open service page's log panel: {service, element, abort}
  usage: new Map(), // task id -> {cpu, memory}: from two samples of /v1/services/NAME/top, while its page is open
  nodeUse: new Map(), // node name -> its row of /v1/top/nodes (used cpus and memory), for the nodes the page shows
};
const LOG_LINES = 500; // lines the log panel keeps
const TOP_EVERY = 5000; // ms between resource samples of the open service page, and of the nodes the page shows
const CAN_WRITE = { viewer: false, deployer: true, admin: true };
// for bench/ui.py: when the first data arrived, when it was first drawn, and each draw's [start, duration] (ms)
const timings = (window.corralTimings = { dataAt: null, firstPaintAt: null, draws: [] });

// ---- the API ----------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const message = (data && (data.error || data.detail)) || response.statusText;
    throw new ApiError(typeof message === "string" ? message : JSON.stringify(message), response.status);
  }
  return data;
}

// ---- signing in -------------------------------------------------------------------------------------
async function start() {
  const code = new URLSearchParams(location.hash.split("?")[1] || location.search).get("code");
  if (code) {
    history.replaceState(null, "", location.pathname + "#/"); // a code is spent once: keep it out of history
    try {
      const session = await fetch("/v1/ui/session", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }),
      });
      const data = await session.json();
      if (!session.ok) throw new Error(data.error || session.statusText);
      signIn(data.token);
    } catch (err) {
      showLogin(`the login link did not work: ${err.message}`);
      return;
    }
  }
  if (!state.token) { showLogin(""); return; }
  try {
    const me = await api("GET", "/v1/whoami");
    state.role = me.role;
    state.name = me.name;
  } catch (err) {
    if (err.status === 401) { signOut(); showLogin(err.message); return; }
    if (err.status !== 404) throw err;
    state.role = "admin"; // a manager without token roles
  }
  document.getElementById("login").hidden = true;
  document.getElementById("who").textContent = `${state.name || "signed in"} (${state.role})`;
  await loadAll();
  follow();
  followNodeUse();
  window.addEventListener("hashchange", () => {
    if (location.hash.includes("code=")) { location.reload(); return; } // another login link in this tab: sign in again
    draw();
    wakeNodeUse();
    document.getElementById("main").focus();
  });
  draw();
}

function signIn(token) { state.token = token; sessionStorage.setItem(TOKEN_KEY, token); }
function signOut() { state.token = null; sessionStorage.removeItem(TOKEN_KEY); }

function showLogin(message) {
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message;
  document.getElementById("live").textContent = "signed out";
}

document.getElementById("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn(document.getElementById("token-input").value.trim());
  start().catch((err) => showLogin(err.message));
});

// ---- keeping state live -----------------------------------------------------------------------------
const LISTS = { node: ["nodes", "/v1/nodes", (n) => n.name], service: ["services", "/v1/services", (s) => s.name],
                task: ["tasks", "/v1/tasks", (t) => t.id] };

async function loadList(type) {
  const [field, path, key] = LISTS[type];
  const items = await api("GET", path);
  state[field] = new Map(items.map((item) => [key(item), item]));
}

let since = null; // the revision the lists are at least as new as: the events stream replays from there

async function loadAll() {
  since = (await api("GET", "/v1/info")).revision;
  await Promise.all(Object.keys(LISTS).map(loadList));
  if (timings.dataAt === null) timings.dataAt = performance.now();
}

const pending = { node: new Set(), service: new Set(), task: new Set() };
let flushing = null;

function changed(event) {
  state.events.unshift(event);
  state.events.length = Math.min(state.events.length, 100);
  if (pending[event.type]) pending[event.type].add(event.name);
  if (!flushing) flushing = setTimeout(flush, 100);
}

async function flush() {
  const work = [];
  for (const type of Object.keys(pending)) {
    const names = [...pending[type]];
    pending[type].clear();
    if (names.length > BURST) { work.push(loadList(type)); continue; }
    const [field, path] = LISTS[type];
    for (const name of names) {
      work.push(api("GET", `${path}/${encodeURIComponent(name)}`).then(
        (item) => state[field].set(name, item),
        (err) => { if (err.status === 404) state[field].delete(name); else throw err; },
      ));
    }
  }
  const open = currentService();
  if (open) work.push(loadServiceDetail(open));
  await Promise.allSettled(work);
  flushing = null;
  draw();
}

async function follow() {
  const live = document.getElementById("live");
  for (let first = true; ; first = false) {
    try {
      if (!first) { await loadAll(); draw(); } // whatever happened while not connected
      const response = await fetch(`/v1/events?since=${since}`, { headers: { Authorization: `Bearer ${state.token}` } });
      if (!response.ok) throw new Error(`events: ${response.status}`);
      live.textContent = "live";
      live.classList.add("on");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let newline;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (line) { const event = JSON.parse(line); if (!event.error) changed(event); }
        }
      }
    } catch (err) {
      console.warn("events stream:", err);
    }
    live.textContent = "reconnecting";
    live.classList.remove("on");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// ---- drawing ----------------------------------------------------------------------------------------
let drawing = false;
function draw() {
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(() => {
    drawing = false;
    const began = performance.now();
    const view = document.getElementById("view");
    const route = location.hash.replace(/^#\/?/, "").split("/");
    let page;
    if (route[0] !== "service" || decodeURIComponent(route[1] || "") !== (state.logs && state.logs.service)) closeLogs();
    if (route[0] === "service" && route[1]) page = servicePage(decodeURIComponent(route[1]));
    else if (route[0] === "node" && route[1]) page = nodePage(decodeURIComponent(route[1]));
    else page = clusterPage();
    view.replaceChildren(page);
    void view.offsetHeight; // lay the page out now, so the time below includes it
    const ended = performance.now();
    timings.draws.push([began, ended - began]);
    if (timings.firstPaintAt === null && timings.dataAt !== null) timings.firstPaintAt = ended;
  });
}

// h("tag.class", {attr: value, onclick: fn}, child, ...): a DOM element; strings become text (never HTML)
function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// a table in a box of its own that scrolls sideways when the table is wider than the page (a phone)
function table(caption, headings, rows, empty) {
  return h("div.scroll", {}, h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headings.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td.empty", { colspan: headings.length }, empty)))));
}

function bar(used, total, label) {
  const share = total > 0 ? Math.min(1, used / total) : 0;
  return h("div.bar", { role: "meter", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(share * 100),
                       "aria-label": label, title: label },
    h("span", { style: `width:${(share * 100).toFixed(1)}%` }));
}

// A node's use now (from /v1/top/nodes; "-" until it is known, or why it is not) and its reservations, as two bars
// of fixed size: figures that change move nothing. A new sample replaces the use bars alone (`showNodeUse`).
const cores = (c) => (c > 0 && c < 0.005 ? "<0.01" : String(Number(c.toFixed(2))));
const SHOW = { cpus: [cores, " CPUs"], memory: [(n) => bytes(n), ""] };

function usedMeter(n, key) {
  const [show, unit] = SHOW[key];
  const use = state.nodeUse.get(n.name);
  const used = use && use.used ? use.used[key] : null;
  const why = use && !use.used ? use.error : "not measured yet";
  return h("span.meter", { "data-use": key, "data-of": n.name },
    used === null ? h("span.bar.none", { title: why }) : bar(used, n.resources[key], `${show(used)} of ${show(n.resources[key])}${unit} used`),
    h("span.figure", { title: used === null ? why : "" }, used === null ? "-" : `${show(used)} used`));
}

function resourceBars(n, key) {
  const [show, unit] = SHOW[key];
  const reserved = n.reserved[key], total = n.resources[key];
  return h("div.bars", {}, usedMeter(n, key),
    h("span.meter", { "data-reserved": key }, bar(reserved, total, `${show(reserved)} of ${show(total)}${unit} reserved`),
      h("span.figure", {}, `${show(reserved)}/${show(total)} reserved`)));
}
const cpuBars = (n) => resourceBars(n, "cpus");
const memoryBars = (n) => resourceBars(n, "memory");

function showNodeUse() {
  for (const el of document.querySelectorAll("#view [data-use][data-of]")) {
    const n = state.nodes.get(el.dataset.of);
    if (n) el.replaceWith(usedMeter(n, el.dataset.use));
  }
}

const bytes = (n) => n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : n >= 2 ** 20 || n === 0 ? `${Math.round(n / 2 ** 20)} MiB` : `${Math.round(n / 2 ** 10)} KiB`;
const ago = (t) => { const s = Math.max(0, Date.now() / 1000 - t); return s < 60 ? `${Math.round(s)}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`; };
const stateClass = (s) => `state-${String(s).replace(/[^a-z]/g, "")}`;
const canWrite = () => CAN_WRITE[state.role] === true;
const isAdmin = () => state.role === "admin";
const liveTasks = (tasks) => tasks.filter((t) => t.desired_state === "running" || t.state === "running");
// running replicas, counted from the tasks the page holds: a task's change does not re-send its service
function runningCounts() {
  const counts = new Map();
  for (const t of state.tasks.values()) {
    if (t.state === "running" && t.desired_state === "running") counts.set(t.service, (counts.get(t.service) || 0) + 1);
  }
  return counts;
}

function pager(total) {
  const pages = Math.max(1, Math.ceil(total / PAGE));
  state.nodePage = Math.min(state.nodePage, pages - 1);
  if (pages === 1) return null;
  const first = state.nodePage * PAGE;
  const go = (page) => () => { state.nodePage = page; draw(); wakeNodeUse(); };
  return h("nav.pager", { "aria-label": "pages of nodes" },
    h("button", { id: "nodes-previous", disabled: state.nodePage === 0, onclick: go(state.nodePage - 1) }, "Previous"),
    h("span", {}, `nodes ${first + 1}-${Math.min(total, first + PAGE)} of ${total}`),
    h("button", { id: "nodes-next", disabled: state.nodePage === pages - 1, onclick: go(state.nodePage + 1) }, "Next"));
}

function clusterPage() {
  const allNodes = [...state.nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
  const pages = pager(allNodes.length);
  const nodes = allNodes.slice(state.nodePage * PAGE, (state.nodePage + 1) * PAGE);
  const services = [...state.services.values()].sort((a, b) => a.name.localeCompare(b.name));
  const tasks = [...state.tasks.values()];
  const running = runningCounts();
  const runningOf = (name) => running.get(name) || 0;
  return h("div.page", {},
    h("h1", {}, "Cluster"),
    h("div.summary", {},
      h("span", {}, `${allNodes.length} nodes`), h("span", {}, `${services.length} services`),
      h("span", {}, `${tasks.filter((t) => t.state === "running").length} tasks running`)),
    pages,
    table("Nodes", ["Node", "Address", "State", "Availability", "Labels", "CPU used / reserved", "Memory used / reserved", "Tasks"],
      nodes.map((n) => h("tr", { "data-node": n.name },
        h("td", {}, h("a", { href: `#/node/${encodeURIComponent(n.name)}` }, n.name)),
        h("td", {}, n.address),
        h("td", {}, h("span", { class: `badge ${stateClass(n.health === "ok" ? n.state : n.health)}` }, n.health === "ok" ? n.state : n.health)),
        h("td", {}, n.availability),
        h("td", {}, Object.entries(n.labels).map(([k, v]) => h("span.label", {}, `${k}=${v}`))),
        h("td.resource", {}, cpuBars(n)),
        h("td.resource", {}, memoryBars(n)),
        h("td", {}, n.tasks))), "no node has joined"),
    table("Services", ["Service", "Replicas", "Image", "Ports", "Rollout"],
      services.map((s) => h("tr", { "data-service": s.name },
        h("td", {}, h("a", { href: `#/service/${encodeURIComponent(s.name)}` }, s.name)),
        h("td", { class: runningOf(s.name) < s.replicas ? "short" : "" }, `${runningOf(s.name)}/${s.replicas}`),
        h("td", {}, s.image), h("td", {}, s.ports.join(", ")),
        h("td", {}, s.update_status ? `${s.update_status.state} ${s.update_status.updated}/${s.update_status.total}` : ""))),
      "nothing deployed: corral deploy -c compose.yaml"),
    placementMap(nodes, services, tasks),
    pages && pager(allNodes.length),
    eventList(state.events.slice(0, 30)));
}

function placementMap(nodes, services, tasks) {
  const cells = new Map();
  for (const t of liveTasks(tasks)) {
    const key = `${t.node}\u0000${t.service}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(t);
  }
  return h("div.scroll", {}, h("table.placement", {},
    h("caption", {}, "Placement (a square per task, coloured by state)"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Node"), services.map((s) => h("th", { scope: "col" }, s.name)))),
    h("tbody", {}, nodes.map((n) => h("tr", {},
      h("th", { scope: "row" }, n.name),
      services.map((s) => h("td", {}, (cells.get(`${n.name}\u0000${s.name}`) || []).map((t) =>
        h("span", { class: `cell ${stateClass(t.state)}`, "data-task": t.id, "data-state": t.state,
                    title: `${t.service}.${t.slot ?? t.node}: ${t.state}${t.error ? ` (${t.error})` : ""}` })))))))));
}

function eventList(events) {
  return h("section.events", { "aria-label": "events" }, h("h2", {}, "Events"),
    h("ol", {}, events.length ? events.map((e) => h("li", {}, h("time", {}, new Date(e.time * 1000).toLocaleTimeString()), " ", e.message))
                              : h("li.empty", {}, "waiting for the cluster to do something")));
}

function currentService() {
  const route = location.hash.replace(/^#\/?/, "").split("/");
  return route[0] === "service" && route[1] ? decodeURIComponent(route[1]) : null;
}

async function loadServiceDetail(name) {
  const [tasks, endpoints] = await Promise.all([
    api("GET", `/v1/services/${encodeURIComponent(name)}/tasks`),
    api("GET", `/v1/services/${encodeURIComponent(name)}/endpoints`).catch(() => []),
  ]);
  state.serviceDetail.set(name, { tasks, endpoints });
}

function servicePage(name) {
  const s = state.services.get(name);
  if (!s) return h("div.page", {}, h("h1", {}, name), h("p", {}, "no such service (removed?)"), h("a", { href: "#/" }, "back to the cluster"));
  const detail = state.serviceDetail.get(name);
  if (!detail) loadServiceDetail(name).then(draw, (err) => toast(err.message));
  const tasks = detail ? detail.tasks : [...state.tasks.values()].filter((t) => t.service === name);
  const status = s.update_status;
  return h("div.page", {},
    h("h1", {}, `Service ${name}`),
    h("p.summary", {}, h("span", {}, `${runningCounts().get(name) || 0}/${s.replicas} running`), h("span", {}, s.image), h("span", {}, s.mode),
      s.vip ? h("span", {}, `VIP ${s.vip}`) : null),
    status ? h("div.rollout", {},
      h("label", { for: "rollout-progress" }, `Rollout: ${status.state} (${status.updated}/${status.total})${status.message ? `: ${status.message}` : ""}`),
      h("progress", { id: "rollout-progress", max: Math.max(1, status.total), value: status.updated })) : null,
    canWrite() ? serviceActions(s) : null,
    table("Tasks (current and history)", ["Task", "Node", "State", "Desired", "CPU", "Memory", "Error", "Exit", "Updated"],
      tasks.map((t) => { const use = state.usage.get(t.id); return h("tr", { "data-task": t.id },
        h("td", {}, `${t.service}.${t.slot ?? t.node}`), h("td", {}, t.node || "-"),
        h("td", {}, h("span", { class: `badge ${stateClass(t.state)}` }, t.state)), h("td", {}, t.desired_state),
        h("td.usage", {}, use && use.cpu !== null ? `${use.cpu.toFixed(1)}%` : ""), h("td.usage", {}, use ? bytes(use.memory) : ""),
        h("td.error", {}, t.error), h("td", {}, t.exit_code ?? ""), h("td", {}, ago(t.updated_at))); }), "no tasks"),
    table("Endpoints (healthy replicas the mesh sends to)", ["Task", "Node", "Address", "Ports"],
      (detail ? detail.endpoints : []).map((e) => h("tr", {},
        h("td", {}, `${e.service}.${e.slot ?? e.node}`), h("td", {}, e.node), h("td", {}, e.address),
        h("td", {}, (e.ports || []).map((p) => `${p.target}/${p.protocol} at ${p.address}`).join(", ")))),
      detail ? "no healthy replica" : "loading"),
    h("section", {}, h("h2", {}, "Logs (following)"), logPanel(name)),
    h("section", {}, h("h2", {}, "Spec"), h("pre", {}, JSON.stringify(s.spec, null, 2))));
}

// The log panel outlives redraws (the page is rebuilt on every change): one stream per open service page,
// closed when the page is left. Lines are `NAME@NODE | text`, the newest at the bottom, LOG_LINES kept.
function logPanel(name) {
  if (state.logs && state.logs.service === name) return state.logs.element;
  closeLogs();
  const element = h("pre.logs", { id: "logs", tabindex: 0, "aria-label": `logs of ${name}`, "aria-live": "off" });
  const abort = new AbortController();
  state.logs = { service: name, element, abort };
  followLogs(name, element, abort.signal);
  sampleUsage(name, abort.signal);
  return element;
}

function closeLogs() {
  if (state.logs) state.logs.abort.abort();
  state.logs = null;
  state.usage.clear();
}

async function followLogs(name, element, signal) {
  const url = `/v1/services/${encodeURIComponent(name)}/logs?follow=true&tail=50`;
  try {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${state.token}` }, signal });
    if (!response.ok) { element.textContent = `logs are not available: ${(await response.json()).error}`; return; }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      const atBottom = element.scrollTop + element.clientHeight >= element.scrollHeight - 4;
      for (const line of lines) {
        if (!line.trim()) continue;
        const item = JSON.parse(line);
        const text = item.error ? `(the stream ended: ${item.error})` : item.notice ? `${item.name}@${item.node} | (${item.notice})`
          : `${item.name}@${item.node} | ${item.line}`;
        element.append(h("span", { class: item.stream === "stderr" ? "stderr" : "" }, text + "\n"));
      }
      while (element.childNodes.length > LOG_LINES) element.firstChild.remove();
      if (atBottom) element.scrollTop = element.scrollHeight; // follow, unless the reader scrolled up
    }
  } catch (err) {
    if (!signal.aborted) element.append(`(logs: ${err.message})\n`);
  }
}

// CPU (percent of one core, from two samples' cpu_seconds) and memory of each running task, every TOP_EVERY ms
async function sampleUsage(name, signal) {
  let previous = new Map();
  while (!signal.aborted) {
    try {
      const figures = await api("GET", `/v1/services/${encodeURIComponent(name)}/top`);
      const next = new Map();
      for (const f of figures) {
        if (f.error) continue;
        const before = previous.get(f.task);
        const cpu = before && f.time > before.time ? (100 * (f.cpu_seconds - before.cpu_seconds)) / (f.time - before.time) : null;
        state.usage.set(f.task, { cpu: cpu === null ? null : Math.max(0, cpu), memory: f.memory_working_set });
        next.set(f.task, f);
      }
      previous = next;
      draw();
    } catch (err) {
      console.warn("top:", err);
    }
    await new Promise((resolve) => setTimeout(resolve, TOP_EVERY));
  }
}

// The nodes the page shows (the cluster page's page of nodes, or the node page's node): their use, asked of the
// top route alone every TOP_EVERY ms while such a page is open and the tab is visible; nothing else is reloaded.
function shownNodes() {
  const route = location.hash.replace(/^#\/?/, "").split("/");
  if (route[0] === "node" && route[1]) return [decodeURIComponent(route[1])];
  if (route[0] === "service" && route[1]) return [];
  const names = [...state.nodes.keys()].sort((a, b) => a.localeCompare(b));
  return names.slice(state.nodePage * PAGE, (state.nodePage + 1) * PAGE);
}

async function followNodeUse() {
  for (;;) {
    const names = document.hidden ? [] : shownNodes().filter((name) => state.nodes.has(name));
    if (names.length) {
      try {
        const rows = await api("GET", `/v1/top/nodes?${names.map((name) => `node=${encodeURIComponent(name)}`).join("&")}`);
        for (const row of rows) state.nodeUse.set(row.node, row);
        showNodeUse(); // in place: no redraw of the page (focus and scroll stay)
      } catch (err) {
        console.warn("node top:", err); // a node removed meanwhile (404): the next round asks for the ones left
      }
    }
    await new Promise((resolve) => { wakeNodeUse = resolve; setTimeout(resolve, TOP_EVERY); });
  }
}
let wakeNodeUse = () => {}; // ask at once (another page of nodes, another node's page)

function serviceActions(s) {
  const path = `/v1/services/${encodeURIComponent(s.name)}`;
  const replicas = h("input", { type: "number", min: 0, value: s.replicas, id: "scale-replicas", "aria-label": "replicas" });
  const image = h("input", { type: "text", value: s.image, id: "update-image", "aria-label": "image" });
  return h("div.actions", { role: "group", "aria-label": "actions" },
    h("span", {}, replicas, h("button", { id: "scale", onclick: () => act(`Scale ${s.name} to ${replicas.value} replicas?`,
      () => api("POST", `${path}/scale`, { replicas: Number(replicas.value) })) }, "Scale")),
    h("span", {}, image, h("button", { id: "update", onclick: () => act(`Update ${s.name} to the image ${image.value}?`,
      () => api("POST", `${path}/update`, { image: image.value })) }, "Update image")),
    h("button", { id: "rollback", onclick: () => act(`Roll ${s.name} back to its previous spec?`, () => api("POST", `${path}/rollback`)) }, "Rollback"),
    h("button", { id: "promote", onclick: () => act(`Promote the canary of ${s.name}?`, () => api("POST", `${path}/promote`)) }, "Promote canary"),
    h("button.danger", { id: "remove", onclick: () => act(`Remove the service ${s.name} and stop all its tasks?`,
      () => api("DELETE", path).then(() => { location.hash = "#/"; })) }, "Remove"));
}

function nodePage(name) {
  const n = state.nodes.get(name);
  if (!n) return h("div.page", {}, h("h1", {}, name), h("p", {}, "no such node (removed?)"), h("a", { href: "#/" }, "back to the cluster"));
  const tasks = liveTasks([...state.tasks.values()].filter((t) => t.node === name));
  const path = `/v1/nodes/${encodeURIComponent(name)}`;
  const setAvailability = (availability) => act(`Set ${name} to ${availability}?`, () => api("PATCH", path, { availability }));
  return h("div.page", {},
    h("h1", {}, `Node ${name}`),
    h("p.summary", {}, h("span", {}, n.address), h("span", {}, `${n.state}, ${n.health}`), h("span", {}, n.availability), h("span", {}, n.engine)),
    isAdmin() ? h("div.actions", { role: "group", "aria-label": "actions" },
      ["active", "pause", "drain"].map((a) => h("button", { id: `availability-${a}`, disabled: n.availability === a, onclick: () => setAvailability(a) },
        a === "active" ? "Activate" : a[0].toUpperCase() + a.slice(1)))) : null,
    h("div.resources", {}, h("h2", {}, "CPU"), cpuBars(n), h("h2", {}, "Memory"), memoryBars(n)),
    table("Tasks", ["Task", "State", "Image", "Updated"], tasks.map((t) => h("tr", { "data-task": t.id },
      h("td", {}, h("a", { href: `#/service/${encodeURIComponent(t.service)}` }, `${t.service}.${t.slot ?? t.node}`)),
      h("td", {}, h("span", { class: `badge ${stateClass(t.state)}` }, t.state)), h("td", {}, t.image), h("td", {}, ago(t.updated_at)))), "no tasks"));
}

// ---- actions: a confirmation, then the API's answer -------------------------------------------------
function act(question, call) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = question;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "ok") return;
    try {
      await call();
      toast("done", false);
    } catch (err) {
      toast(err.message);
    }
  };
  dialog.showModal();
  document.getElementById("confirm-ok").focus();
}

function toast(message, isError = true) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = isError ? "error shown" : "shown";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.className = ""; }, isError ? 8000 : 2000);
}

start().catch((err) => showLogin(err.message));
