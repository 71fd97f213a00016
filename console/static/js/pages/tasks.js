// Tasks: GET /v1/scheduled-tasks (filters, paging), each row's last runs
// (GET …/{id}/runs?limit=20) as a sparkline, and the enabled switch
// (PATCH …/{id} {"enabled"} with If-Match).

import { api, ApiError, encode } from "../api.js";
import { sparkline } from "../charts.js";
import { $, chip, h, pageLink, say, show } from "../dom.js";
import { relative, userZone, when } from "../format.js";
import { every, reconcile } from "../refresh.js";
import { boot } from "../shell.js";

const PAGE = 50;
const RUNS_IN_SPARKLINE = 20;
// `generation` counts filter changes: an answer to an older filter is dropped.
const state = { tasks: [], cursor: null, filter: {}, generation: 0 };
const sparklines = new Map(); // task id → {lastRun, svg}

function filterFromUrl() {
  const params = new URL(location.href).searchParams;
  const filter = {};
  for (const name of ["enabled", "group", "action"]) {
    const value = params.get(name);
    if (value) filter[name] = value;
    const input = $(`task-filter-${name}`);
    input.value = value || "";
  }
  return filter;
}

function nextRun(task) {
  if (!task.next_run_at) {
    return h("span", { class: "muted" }, task.enabled ? "nothing ahead" : "disabled");
  }
  return h("div", { class: "stack" },
    h("span", {}, h("time", { datetime: task.next_run_at }, when(task.next_run_at)), " ",
      h("span", { class: "muted" }, `(${userZone()}, ${relative(task.next_run_at)})`)),
    task.timezone === userZone() ? null
      : h("span", { class: "muted" }, `${when(task.next_run_at, task.timezone)} (${task.timezone})`),
  );
}

function enabledSwitch(task) {
  const id = `enabled-${task.id}`;
  const input = h("input", {
    type: "checkbox", role: "switch", id, checked: task.enabled,
    "aria-label": `Enabled: ${task.name}`,
  });
  const error = h("span", { class: "error-text", role: "alert", hidden: true });
  input.addEventListener("change", async () => {
    input.disabled = true;
    say(error, "");
    try {
      const current = state.tasks.find((t) => t.id === task.id) || task;
      const updated = await api(`/v1/scheduled-tasks/${encode(task.id)}`, {
        method: "PATCH",
        body: { enabled: input.checked },
        headers: { "If-Match": `"${current.version}"` },
      });
      replaceTask(updated);
    } catch (failure) {
      input.checked = !input.checked;
      say(error, failure instanceof ApiError && failure.status === 412
        ? "Changed elsewhere; refreshed." : failure.message);
      await refresh();
    } finally {
      input.disabled = false;
    }
  });
  return h("div", { class: "switch" }, input, h("label", { for: id, class: "visually-hidden" }, `Enabled: ${task.name}`), error);
}

function sparkCell(task) {
  const cell = h("td", { class: "spark" });
  const cached = sparklines.get(task.id);
  if (cached) cell.append(cached.svg.cloneNode(true));
  else cell.append(h("span", { class: "muted" }, "…"));
  return cell;
}

function row(task) {
  return h("tr", {},
    h("th", { scope: "row" }, pageLink("task.html", { id: task.id }, task.name),
      task.group ? h("span", { class: "tag" }, task.group) : null),
    h("td", {}, h("code", {}, task.schedule || `(${task.kind})`),
      h("span", { class: "muted block" }, task.timezone)),
    h("td", {}, nextRun(task)),
    h("td", {}, task.last_status ? chip(task.last_status) : h("span", { class: "muted" }, "no runs"),
      task.paused_reason ? h("span", { class: "error-text block" }, task.paused_reason) : null),
    h("td", {}, enabledSwitch(task)),
    sparkCell(task),
  );
}

function render() {
  const table = $("tasks");
  const body = table.tBodies[0] || table.appendChild(h("tbody"));
  reconcile(body, state.tasks, { key: (t) => t.id, render: row });
  show($("tasks-loading"), false);
  show($("tasks-empty"), state.tasks.length === 0);
  show($("tasks-more"), Boolean(state.cursor));
  loadSparklines();
}

/** Show a task the user just changed, keeping focus on the control they used. */
function replaceTask(updated) {
  state.tasks = state.tasks.map((t) => (t.id === updated.id ? updated : t));
  const old = $("tasks").querySelector(`tr[data-key="${CSS.escape(updated.id)}"]`);
  if (old) {
    const focused = document.activeElement?.id;
    const fresh = row(updated);
    fresh.dataset.key = updated.id;
    fresh.dataset.signature = JSON.stringify(updated);
    old.replaceWith(fresh);
    if (focused) document.getElementById(focused)?.focus();
  }
  render();
}

let sparkQueue = Promise.resolve();
function loadSparklines() {
  const wanted = state.tasks.filter((t) => {
    const cached = sparklines.get(t.id);
    return !cached || cached.lastRun !== t.last_run_at;
  });
  for (const task of wanted) {
    sparklines.set(task.id, { lastRun: task.last_run_at, svg: sparklines.get(task.id)?.svg || h("span") });
    // One request at a time: a page of 50 tasks should not hammer the API.
    sparkQueue = sparkQueue.then(async () => {
      try {
        const runs = (await api(`/v1/scheduled-tasks/${encode(task.id)}/runs`, {
          query: { limit: RUNS_IN_SPARKLINE },
        })).jobs;
        const svg = sparkline(runs);
        sparklines.set(task.id, { lastRun: task.last_run_at, svg });
        const tr = $("tasks").querySelector(`tr[data-key="${CSS.escape(task.id)}"]`);
        if (tr) tr.lastElementChild.replaceChildren(svg.cloneNode(true));
      } catch {
        sparklines.delete(task.id);
      }
    });
  }
}

async function loadMore() {
  const generation = state.generation;
  const answer = await api("/v1/scheduled-tasks", { query: { ...state.filter, limit: PAGE, cursor: state.cursor } });
  if (generation !== state.generation) return;
  state.tasks = [...state.tasks, ...answer.scheduled_tasks];
  state.cursor = answer.next_cursor;
  render();
}

async function refresh() {
  const generation = state.generation;
  const answer = await api("/v1/scheduled-tasks", { query: { ...state.filter, limit: PAGE } });
  if (generation !== state.generation) return;
  const fresh = answer.scheduled_tasks;
  // Tasks are ordered by name: the first page replaces the first page's span.
  const last = fresh.length ? fresh[fresh.length - 1].name : null;
  const beyond = answer.next_cursor ? state.tasks.filter((t) => last !== null && t.name > last) : [];
  state.tasks = [...fresh, ...beyond];
  if (!beyond.length) state.cursor = answer.next_cursor;
  render();
}

boot(async () => {
  state.filter = filterFromUrl();
  $("task-filter").addEventListener("submit", async (event) => {
    event.preventDefault();
    const filter = {};
    for (const name of ["enabled", "group", "action"]) {
      const value = $(`task-filter-${name}`).value.trim();
      if (value) filter[name] = value;
    }
    state.filter = filter;
    state.generation += 1;
    history.replaceState(null, "", `tasks.html${Object.keys(filter).length ? `?${new URLSearchParams(filter)}` : ""}`);
    state.tasks = [];
    state.cursor = null;
    show($("tasks-loading"), true);
    await refresh().catch((error) => say($("tasks-error"), error.message));
  });
  $("tasks-more").addEventListener("click", () => loadMore().catch((error) => say($("tasks-error"), error.message)));
  try {
    await refresh();
  } catch (error) {
    show($("tasks-loading"), false);
    say($("tasks-error"), `Could not list tasks: ${error.message}`);
  }
  every(10000, refresh);
});
