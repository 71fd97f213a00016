// Task detail: GET /v1/scheduled-tasks/{id} (definition, upcoming), the
// schedule's description (GET /v1/schedules/preview), runs (GET …/runs with
// paging, refreshed), trigger (POST …/trigger), backfill (POST …/backfill),
// enable/disable (PATCH with If-Match) and delete (DELETE, after confirming).

import { api, ApiError, encode } from "../api.js";
import { $, h, pageLink, say, show } from "../dom.js";
import { busy, clearErrors, confirmWith, showErrors } from "../forms.js";
import { seconds, userZone, when } from "../format.js";
import { every, mergeFirstPage } from "../refresh.js";
import { renderRuns } from "../runs.js";
import { boot, param } from "../shell.js";

const RUNS_PAGE = 20;
const id = param("id");
const state = { task: null, runs: [], cursor: null, paged: false, open: new Set() };

const SHOWN = [
  ["Name", (t) => t.name],
  ["Description", (t) => t.description || "—"],
  ["Group", (t) => t.group || "—"],
  ["Kind", (t) => t.kind],
  ["Schedule", (t) => h("code", {}, t.schedule || "—")],
  ["Time zone", (t) => t.timezone],
  ["Action", (t) => h("code", {}, t.action)],
  ["Arguments", (t) => h("pre", { class: "code" }, JSON.stringify(t.args, null, 2))],
  ["Next run", (t) => (t.next_run_at ? `${when(t.next_run_at)} (${userZone()})` : "—")],
  ["Last run", (t) => (t.last_run_at ? when(t.last_run_at) : "—")],
  ["Last status", (t) => t.last_status || "—"],
  ["Paused because", (t) => t.paused_reason || "—"],
  ["Catch up", (t) => `${t.catch_up}, within ${seconds(t.catch_up_window)}`],
  ["On overlap", (t) => `${t.on_overlap} (parallelism ${t.parallelism})`],
  ["Timeout", (t) => seconds(t.timeout)],
  ["Retries", (t) => `${t.retry_attempts}, ${t.retry_backoff} from ${seconds(t.retry_delay)}`],
  ["Pause after failures", (t) => (t.pause_after_failures ? String(t.pause_after_failures) : "never")],
  ["Keeps", (t) => `${t.keep_runs} runs, for ${seconds(t.keep_for)}`],
  ["Log", (t) => `${t.log_max_size} bytes, then ${t.log_on_full}`],
  ["API trigger", (t) => (t.api_trigger ? "allowed" : "not allowed")],
  ["Needs approval", (t) => (t.requires_approval ? "every run" : "no")],
  ["Id", (t) => h("code", {}, t.id)],
  ["Version", (t) => String(t.version)],
  ["Created", (t) => when(t.created_at)],
  ["Changed", (t) => when(t.updated_at)],
];

function showTask(task) {
  state.task = task;
  document.title = `${task.name} · Tickwork`;
  $("page-title").textContent = task.name;
  $("definition").replaceChildren(...SHOWN.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value(task))]));
  $("upcoming").replaceChildren(...(task.upcoming.length
    ? task.upcoming.map((at) => h("li", {},
      h("time", { datetime: at }, when(at)), h("span", { class: "muted" }, ` ${userZone()}`),
      task.timezone !== userZone() ? h("span", { class: "muted block" }, `${when(at, task.timezone)} ${task.timezone}`) : null))
    : [h("li", { class: "muted" }, task.enabled ? "Nothing ahead." : "Disabled: nothing fires.")]));
  $("edit-task").setAttribute("href", `task-form.html?id=${encode(task.id)}`);
  const trigger = $("trigger-task");
  trigger.disabled = !task.api_trigger;
  trigger.title = task.api_trigger ? "" : "api_trigger is off for this task";
  $("task-enabled").checked = task.enabled;
  show($("backfill"), task.kind === "task" && Boolean(task.schedule));
}

async function describe(task) {
  if (!task.schedule || task.kind !== "task") return;
  try {
    const preview = await api("/v1/schedules/preview", {
      query: { schedule: task.schedule, timezone: task.timezone, count: 1 },
    });
    $("schedule-description").textContent = `${preview.description} (${task.timezone})`;
  } catch {
    $("schedule-description").textContent = "";
  }
}

async function loadTask() {
  const task = await api(`/v1/scheduled-tasks/${encode(id)}`);
  if (!state.task || JSON.stringify(task) !== JSON.stringify(state.task)) {
    const scheduleChanged = !state.task || state.task.schedule !== task.schedule || state.task.timezone !== task.timezone;
    showTask(task);
    if (scheduleChanged) await describe(task);
  }
}

function drawRuns() {
  renderRuns($("runs"), state.runs, state.open);
  show($("runs-loading"), false);
  show($("runs-empty"), state.runs.length === 0);
  show($("runs-more"), Boolean(state.cursor));
}

async function refreshRuns() {
  const answer = await api(`/v1/scheduled-tasks/${encode(id)}/runs`, { query: { limit: RUNS_PAGE } });
  state.runs = mergeFirstPage(state.runs, answer.jobs, (job) => job.id);
  if (!state.paged) state.cursor = answer.next_cursor;
  drawRuns();
}

async function olderRuns() {
  const answer = await api(`/v1/scheduled-tasks/${encode(id)}/runs`, { query: { limit: RUNS_PAGE, cursor: state.cursor } });
  state.paged = true;
  state.runs = [...state.runs, ...answer.jobs.filter((job) => !state.runs.some((r) => r.id === job.id))];
  state.cursor = answer.next_cursor;
  drawRuns();
}

function notice(...content) {
  const element = $("task-notice");
  element.replaceChildren(...content);
  element.hidden = content.length === 0;
  say($("task-action-error"), "");
}

function actionError(error) {
  notice();
  say($("task-action-error"), error.message);
}

function wire() {
  $("trigger-task").addEventListener("click", async () => {
    try {
      const job = await api(`/v1/scheduled-tasks/${encode(id)}/trigger`, { method: "POST" });
      notice("Started ", pageLink("job.html", { id: job.id }, job.id), ` (${job.status}).`);
      await refreshRuns();
    } catch (error) {
      actionError(error);
    }
  });
  $("task-enabled").addEventListener("change", async (event) => {
    const input = event.target;
    input.disabled = true;
    try {
      const updated = await api(`/v1/scheduled-tasks/${encode(id)}`, {
        method: "PATCH", body: { enabled: input.checked }, headers: { "If-Match": `"${state.task.version}"` },
      });
      showTask(updated);
      notice(updated.enabled ? "Enabled: it fires from now on." : "Disabled: it no longer fires.");
    } catch (error) {
      input.checked = state.task.enabled;
      actionError(error instanceof ApiError && error.status === 412
        ? new Error("The task changed meanwhile; it is shown as it is now.") : error);
      await loadTask();
    } finally {
      input.disabled = false;
    }
  });
  $("delete-task").addEventListener("click", async () => {
    const sure = await confirmWith(
      `Delete the task “${state.task.name}”? Its future firings stop; runs already active finish, and its history stays until it expires.`,
      "Delete task",
    );
    if (!sure) return;
    try {
      await api(`/v1/scheduled-tasks/${encode(id)}`, { method: "DELETE" });
      location.replace("tasks.html");
    } catch (error) {
      actionError(error);
    }
  });
  const form = $("backfill-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const start = $("backfill-form-start").value;
    const end = $("backfill-form-end").value;
    await busy(form, async () => {
      try {
        const body = {
          start: start ? new Date(start).toISOString() : "",
          end: end ? new Date(end).toISOString() : "",
        };
        const answer = await api(`/v1/scheduled-tasks/${encode(id)}/backfill`, { method: "POST", body });
        clearErrors(form);
        notice(`Backfill: ${answer.jobs.length} run(s) created.`);
        await refreshRuns();
      } catch (error) {
        showErrors(form, error);
      }
    });
  });
  $("runs-more").addEventListener("click", () => olderRuns().catch(actionError));
}

boot(async () => {
  if (!id) {
    show($("task-loading"), false);
    say($("task-error"), "No task id in the address (task.html?id=…).");
    return;
  }
  try {
    await loadTask();
  } catch (error) {
    show($("task-loading"), false);
    say($("task-error"), error.status === 404 ? "This task does not exist (or was deleted)." : error.message);
    return;
  }
  show($("task-loading"), false);
  show($("task-body"), true);
  wire();
  await refreshRuns().catch((error) => say($("runs-error"), error.message));
  every(3000, refreshRuns);
  every(10000, loadTask);
});
