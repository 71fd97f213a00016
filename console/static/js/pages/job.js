// Job detail: GET /v1/queue/jobs/{id} (with its attempts) and each attempt's
// …/logs?attempt=N when opened, refreshed until it ends; cancel (POST …/cancel)
// and retry (POST …/retry → the new job).

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
//: Logs of ended attempts (they never change), as promises, and the attempts opened.
const logs = new Map();
const opened = new Set();

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

/** The attempts to show: every recorded one, the one running now, or (a run
 * recorded before attempts were kept) the job's last attempt as the job says. */
function attemptsOf(job) {
  const shown = [...job.attempts];
  const recorded = new Set(shown.map((a) => a.attempt));
  if (job.attempt > 0 && !recorded.has(job.attempt)) {
    const running = job.status === "active";
    shown.push({
      attempt: job.attempt,
      status: running ? "running" : job.status,
      started_at: job.started_at,
      finished_at: running ? null : job.finished_at,
      error: running ? null : job.error,
      log_truncated: false,
      running,
    });
  }
  return shown;
}

async function fillLog(attempt, into) {
  // One request per attempt however often it is opened (a promise, so a toggle
  // while it loads waits for the same answer).
  if (!logs.has(attempt.attempt)) {
    into.textContent = "Loading…";
    logs.set(attempt.attempt, api(`/v1/queue/jobs/${encode(id)}/logs?attempt=${attempt.attempt}`));
  }
  try {
    const log = await logs.get(attempt.attempt);
    into.textContent = log.log || "(nothing logged)";
  } catch (error) {
    logs.delete(attempt.attempt);
    into.textContent = error.status === 404 ? "(this attempt's log was not kept)" : `(${error.message})`;
  }
}

function attemptItem(attempt, last) {
  const ran = between(attempt.started_at, attempt.finished_at);
  const log = h("pre", { class: "code log" });
  const body = h("div", { class: "attempt-body" },
    attempt.error ? h("p", { class: "error-text" }, `Error: ${attempt.error}`) : null,
    attempt.running ? h("p", { class: "help" }, "Running: its log is kept when the attempt ends.") : log,
    attempt.log_truncated ? h("p", { class: "help" }, "The log was cut at its size cap.") : null);
  const details = h("details", { open: opened.has(attempt.attempt) || (last && !opened.size) },
    h("summary", {},
      h("strong", {}, `Attempt ${attempt.attempt}`),
      chip(attempt.status),
      attempt.started_at ? h("span", { class: "muted" }, "started ", h("time", { datetime: attempt.started_at }, when(attempt.started_at))) : null,
      ran !== null ? h("span", { class: "muted" }, `ran ${duration(ran)}`) : null),
    body);
  const load = () => {
    if (!details.open) return;
    opened.add(attempt.attempt);
    if (!attempt.running) fillLog(attempt, log);
  };
  details.addEventListener("toggle", load);
  load();
  return h("li", {}, details);
}

function attempts(job) {
  const shown = attemptsOf(job);
  say($("attempts-note"), shown.length ? "" : "Not started yet: no attempts.");
  $("attempts").replaceChildren(...shown.map((a, i) => attemptItem(a, i === shown.length - 1)));
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
    attempts(job);
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
