// Jobs: GET /v1/queue/jobs with filters (status, action, correlation_id) and
// paging, the first page refreshed in place.

import { api } from "../api.js";
import { $, chip, h, pageLink, say, show } from "../dom.js";
import { when } from "../format.js";
import { every, mergeFirstPage, reconcile } from "../refresh.js";
import { boot } from "../shell.js";

const PAGE = 50;
const FILTERS = ["status", "action", "correlation_id"];
// `generation` counts filter changes: an answer to an older filter is dropped.
const state = { jobs: [], cursor: null, paged: false, filter: {}, generation: 0 };

function readFilterFromUrl() {
  const params = new URL(location.href).searchParams;
  const filter = {};
  for (const name of FILTERS) {
    const value = params.get(name) || "";
    $(`job-filter-${name}`).value = value;
    if (value) filter[name] = value;
  }
  return filter;
}

function row(job) {
  return h("tr", {},
    h("th", { scope: "row" }, pageLink("job.html", { id: job.id }, h("code", {}, job.id))),
    h("td", {}, job.action),
    h("td", {}, chip(job.status)),
    h("td", {}, job.trigger),
    h("td", {}, job.task_id ? pageLink("task.html", { id: job.task_id }, "task") : h("span", { class: "muted" }, "—")),
    h("td", {}, h("time", { datetime: job.scheduled_for }, when(job.scheduled_for))),
    h("td", {}, when(job.finished_at)),
    h("td", {}, `${job.attempt} of ${job.max_attempts}`),
  );
}

function draw() {
  const table = $("jobs");
  const body = table.tBodies[0] || table.appendChild(h("tbody"));
  reconcile(body, state.jobs, { key: (job) => job.id, render: row });
  show($("jobs-loading"), false);
  show($("jobs-empty"), state.jobs.length === 0 && !state.cursor);
  show($("jobs-more"), Boolean(state.cursor));
}

async function refresh() {
  const generation = state.generation;
  const answer = await api("/v1/queue/jobs", { query: { ...state.filter, limit: PAGE } });
  if (generation !== state.generation) return;
  state.jobs = mergeFirstPage(state.jobs, answer.jobs, (job) => job.id);
  if (!state.paged) state.cursor = answer.next_cursor;
  say($("jobs-error"), "");
  draw();
}

async function more() {
  const generation = state.generation;
  const answer = await api("/v1/queue/jobs", { query: { ...state.filter, limit: PAGE, cursor: state.cursor } });
  if (generation !== state.generation) return;
  state.paged = true;
  const known = new Set(state.jobs.map((job) => job.id));
  state.jobs = [...state.jobs, ...answer.jobs.filter((job) => !known.has(job.id))];
  state.cursor = answer.next_cursor;
  draw();
}

async function applyFilter() {
  const filter = {};
  for (const name of FILTERS) {
    const value = $(`job-filter-${name}`).value.trim();
    if (value) filter[name] = value;
  }
  state.filter = filter;
  state.generation += 1;
  state.jobs = [];
  state.cursor = null;
  state.paged = false;
  const query = new URLSearchParams(filter).toString();
  history.replaceState(null, "", query ? `jobs.html?${query}` : "jobs.html");
  show($("jobs-loading"), true);
  await refresh().catch((error) => {
    show($("jobs-loading"), false);
    say($("jobs-error"), error.message);
  });
}

boot(async () => {
  state.filter = readFilterFromUrl();
  api("/v1/queue/actions").then(
    (found) => $("actions").replaceChildren(...found.actions.map((a) => h("option", { value: a.name }))),
    () => {},
  );
  const form = $("job-filter");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    applyFilter();
  });
  form.addEventListener("reset", () => setTimeout(applyFilter));
  $("job-filter-status").addEventListener("change", applyFilter);
  $("jobs-more").addEventListener("click", () => more().catch((error) => say($("jobs-error"), error.message)));
  await refresh().catch((error) => {
    show($("jobs-loading"), false);
    say($("jobs-error"), `Could not list jobs: ${error.message}`);
  });
  every(5000, refresh);
});
