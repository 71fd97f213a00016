// Dashboard: depth tiles (GET /v1/queue/depth), runs per minute (admins:
// GET /v1/queue/observability/metrics; members: their project's recent jobs),
// and the next firings across tasks (GET /v1/scheduled-tasks).

import { api, collect } from "../api.js";
import { legend, OUTCOMES, stackedBars, timeBuckets } from "../charts.js";
import { $, h, pageLink, say, show } from "../dom.js";
import { relative, seconds, userZone, when } from "../format.js";
import { every, reconcile } from "../refresh.js";
import { boot } from "../shell.js";

const DEPTH = ["scheduled", "queued", "active", "awaiting_approval", "dead_letter"];
const NEXT_COUNT = 10;

async function depth() {
  try {
    const found = await api("/v1/queue/depth");
    for (const key of DEPTH) $(`tile-${key}-value`).textContent = String(found[key]);
    $("tile-oldest-value").textContent = found.oldest_queued_age_seconds === null
      ? "none queued" : seconds(found.oldest_queued_age_seconds);
    say($("depth-error"), "");
  } catch (error) {
    say($("depth-error"), `Queue depth: ${error.message}`);
  }
}

/** Members: per-minute counts of the project's jobs that ended in the last hour. */
function seriesFromJobs(jobs) {
  const counts = new Map();
  const since = Date.now() - 3600 * 1000;
  for (const job of jobs) {
    if (!job.finished_at || !OUTCOMES.includes(job.status)) continue;
    const at = new Date(job.finished_at);
    if (at.getTime() < since) continue;
    at.setSeconds(0, 0);
    const key = at.toISOString();
    const entry = counts.get(key) || {};
    entry[job.status] = (entry[job.status] || 0) + 1;
    counts.set(key, entry);
  }
  return [...counts].map(([minute, c]) => ({ minute, counts: c }));
}

async function runsChart(admin) {
  const figure = $("runs-chart");
  try {
    let series;
    if (admin) {
      $("runs-scope").textContent =
        "Jobs that ended per minute over the last hour, every project of this stage (admin view). Failures in red.";
      series = (await api("/v1/queue/observability/metrics", { query: { window: 3600 } })).series;
    } else {
      $("runs-scope").textContent =
        "Stage-wide metrics are for admins. This chart counts your project's jobs that ended in the " +
        "last hour (from its newest 200 jobs), per minute. Failures in red.";
      const jobs = (await api("/v1/queue/jobs", { query: { limit: 200 } })).jobs;
      series = seriesFromJobs(jobs);
    }
    const until = new Date();
    const { buckets } = timeBuckets(series, new Date(until.getTime() - 59 * 60000), until);
    const total = buckets.reduce((n, b) => n + OUTCOMES.reduce((m, k) => m + (b.counts[k] || 0), 0), 0);
    const failed = buckets.reduce((n, b) => n + (b.counts.failed || 0), 0);
    figure.replaceChildren(
      stackedBars(buckets, OUTCOMES, { label: `Runs per minute, last hour: ${total} ended, ${failed} failed` }),
      h("figcaption", {}, `${total} runs ended in the last hour; ${failed} failed.`),
      legend(OUTCOMES),
    );
    say($("runs-chart-error"), "");
  } catch (error) {
    figure.replaceChildren();
    say($("runs-chart-error"), `Runs chart: ${error.message}`);
  }
}

async function nextFirings() {
  const tasks = await collect("/v1/scheduled-tasks", "scheduled_tasks", {
    query: { enabled: "true", limit: 200 }, pages: 5,
  });
  const upcoming = tasks
    .filter((t) => t.next_run_at)
    .sort((a, b) => a.next_run_at.localeCompare(b.next_run_at))
    .slice(0, NEXT_COUNT);
  const table = $("next");
  let body = table.tBodies[0];
  if (!body) body = table.appendChild(h("tbody"));
  reconcile(body, upcoming, {
    key: (t) => t.id,
    render: (t) => h("tr", {},
      h("td", {}, h("time", { datetime: t.next_run_at }, when(t.next_run_at)), " ",
        h("span", { class: "muted" }, relative(t.next_run_at))),
      h("td", {}, when(t.next_run_at, t.timezone), " ", h("span", { class: "muted" }, t.timezone)),
      h("td", {}, pageLink("task.html", { id: t.id }, t.name)),
      h("td", {}, h("code", {}, t.schedule || "")),
    ),
  });
  show($("next-loading"), false);
  show($("next-empty"), upcoming.length === 0);
}

boot(async ({ admin }) => {
  $("runs-title").textContent = `Runs per minute (times in ${userZone()})`;
  await Promise.all([depth(), runsChart(admin), nextFirings().catch((error) => {
    show($("next-loading"), false);
    say($("next-error"), `Next firings: ${error.message}`);
  })]);
  every(5000, depth);
  every(15000, () => runsChart(admin));
  every(15000, nextFirings);
});
