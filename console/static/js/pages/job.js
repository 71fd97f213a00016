// Job detail: GET /v1/queue/jobs/{id} and …/logs, refreshed until it ends;
// cancel (POST …/cancel) and retry (POST …/retry → the new job).

import { api, encode } from "../api.js";
import { $, chip, h, pageLink, pretty, say, show } from "../dom.js";
import { between, duration, seconds, when } from "../format.js";
import { every } from "../refresh.js";
import { boot, param } from "../shell.js";

const TERMINAL = new Set(["complete", "failed", "cancelled", "rejected", "skipped", "expired"]);
const RETRYABLE = new Set(["failed", "cancelled", "expired"]);
const id = param("id");
let current = null;
let stop = null;

function step(label, at, extra) {
  return h("li", { class: at ? "done" : "pending" },
    h("span", { class: "step-label" }, label),
    at ? h("time", { datetime: at }, when(at)) : h("span", { class: "muted" }, "not yet"),
    extra ? h("span", { class: "muted block" }, extra) : null);
}

function timeline(job) {
  const waited = between(job.scheduled_for > (job.enqueued_at || "") ? job.scheduled_for : job.enqueued_at, job.started_at);
  const ran = between(job.started_at, job.finished_at);
  const ended = TERMINAL.has(job.status) ? job.finished_at : null;
  return [
    step("Fire time", job.scheduled_for, `trigger ${job.trigger}`),
    step("Enqueued", job.enqueued_at),
    step("Started", job.started_at, waited !== null && waited >= 0 ? `after waiting ${duration(waited)}` : null),
    step(ended ? `Finished: ${job.status}` : "Finished", ended, ran !== null ? `ran ${duration(ran)}` : null),
  ];
}

function fields(job) {
  const rows = [
    ["Status", chip(job.status)],
    ["Action", h("code", {}, job.action)],
    ["Attempt", `${job.attempt} of ${job.max_attempts}`],
    ["Trigger", job.trigger],
    ["Task", job.task_id ? pageLink("task.html", { id: job.task_id }, job.task_id) : "—"],
    ["Correlation id", job.correlation_id
      ? pageLink("jobs.html", { correlation_id: job.correlation_id }, job.correlation_id) : "—"],
    ["Resource id", job.resource_id || "—"],
    ["Approval", job.approval_request_id
      ? h("span", {}, pageLink("approvals.html", {}, job.approval_request_id)) : (job.requires_approval ? "required" : "not needed")],
    ["Retry of", job.retry_of ? pageLink("job.html", { id: job.retry_of }, job.retry_of) : "—"],
    ["Expires", job.expires_at ? when(job.expires_at) : "—"],
    ["Counts", `${job.success_num} succeeded, ${job.failed_num} failed, ${job.skip_num} skipped`],
    ["Cancel requested", job.cancel_requested ? "yes" : "no"],
    ["Project", job.project_id],
    ["Id", h("code", {}, job.id)],
  ];
  return rows.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]);
}

async function load() {
  const job = await api(`/v1/queue/jobs/${encode(id)}`);
  const changed = JSON.stringify(job) !== JSON.stringify(current);
  current = job;
  if (changed) {
    document.title = `Job ${job.id} · Tickwork`;
    $("page-title").textContent = `Job ${job.id}`;
    $("job-status").replaceChildren(chip(job.status));
    $("timeline").replaceChildren(...timeline(job));
    $("job-fields").replaceChildren(...fields(job));
    $("job-args").textContent = pretty(job.args);
    $("job-result").textContent = job.result === null || job.result === undefined
      ? (TERMINAL.has(job.status) ? "(no result)" : "(not finished)") : pretty(job.result);
    say($("job-error-text"), job.error ? `Error: ${job.error}` : "");
    show($("cancel-job"), !TERMINAL.has(job.status) && !job.cancel_requested);
    show($("retry-job"), RETRYABLE.has(job.status));
    const log = await api(`/v1/queue/jobs/${encode(id)}/logs`);
    $("job-log").textContent = log.log || (TERMINAL.has(job.status) ? "(nothing logged)" : "(nothing logged yet)");
    say($("job-log-note"), log.truncated ? "The log was cut at its size cap." : "");
  }
  if (TERMINAL.has(job.status) && stop) {
    stop();
    stop = null;
  }
}

function actionError(error) {
  say($("job-notice"), "");
  say($("job-action-error"), error.message);
}

boot(async () => {
  if (!id) {
    show($("job-loading"), false);
    say($("job-error"), "No job id in the address (job.html?id=…).");
    return;
  }
  try {
    await load();
  } catch (error) {
    show($("job-loading"), false);
    say($("job-error"), error.status === 404 ? "This job does not exist in your project." : error.message);
    return;
  }
  show($("job-loading"), false);
  show($("job-body"), true);
  $("cancel-job").addEventListener("click", async () => {
    try {
      const job = await api(`/v1/queue/jobs/${encode(id)}/cancel`, { method: "POST" });
      say($("job-notice"), job.status === "cancelled" ? "Cancelled." : "Cancel requested: it ends when its action returns.");
      await load();
    } catch (error) {
      actionError(error);
    }
  });
  $("retry-job").addEventListener("click", async () => {
    try {
      const job = await api(`/v1/queue/jobs/${encode(id)}/retry`, { method: "POST" });
      location.assign(`job.html?id=${encode(job.id)}`);
    } catch (error) {
      actionError(error);
    }
  });
  if (!TERMINAL.has(current.status)) stop = every(2000, load);
  say($("job-notice"), current.status === "scheduled" && current.scheduled_for
    ? `Waits for its fire time (${seconds(Math.max(0, (new Date(current.scheduled_for) - Date.now()) / 1000))}).` : "");
});
