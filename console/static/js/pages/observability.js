// Observability (admin): GET /v1/queue/observability/metrics?window= —
// outcome tiles, outcomes per minute, and p50/p95/p99 per action.

import { api } from "../api.js";
import { groupedBars, legend, OUTCOMES, stackedBars, timeBuckets } from "../charts.js";
import { $, h, say, show } from "../dom.js";
import { duration, when } from "../format.js";
import { every } from "../refresh.js";
import { boot } from "../shell.js";

const PERCENTILES = ["p50", "p95", "p99"];
const WINDOW_LABELS = { 900: "15 minutes", 3600: "1 hour", 21600: "6 hours", 86400: "24 hours" };

async function load() {
  const window = $("window-form-window").value;
  let metrics;
  try {
    metrics = await api("/v1/queue/observability/metrics", { query: { window } });
  } catch (error) {
    show($("outcomes-loading"), false);
    say($("metrics-error"), error.message);
    return;
  }
  say($("metrics-error"), "");
  $("totals").replaceChildren(...OUTCOMES.map((outcome) => h("div", { class: `tile tile-${outcome}` },
    h("span", { class: "tile-value" }, String(metrics.totals[outcome])),
    h("span", { class: "tile-label" }, outcome))));
  const { buckets, minutesPerBar } = timeBuckets(metrics.series, metrics.since, metrics.until);
  const span = `${when(metrics.since)} – ${when(metrics.until)}`;
  const per = minutesPerBar === 1 ? "per minute" : `per ${minutesPerBar} minutes`;
  $("outcomes-chart").replaceChildren(
    stackedBars(buckets, OUTCOMES, { label: `Jobs ended ${per}, by outcome, ${span}` }),
    h("figcaption", {}, `Jobs ended ${per}, by outcome, ${span}.`),
    legend(OUTCOMES),
  );
  const groups = metrics.actions.map((a) => ({ label: a.action, values: a.run_time_ms }));
  $("latency-chart").replaceChildren(
    groups.length
      ? groupedBars(groups, PERCENTILES, { label: "Run time percentiles per action, milliseconds", format: duration })
      : h("p", { class: "empty" }, "No run-time samples in this window."),
    legend(PERCENTILES),
  );
  const table = $("per-action");
  const body = table.tBodies[0] || table.appendChild(h("tbody"));
  body.replaceChildren(...metrics.actions.map((a) => h("tr", {},
    h("th", { scope: "row" }, h("code", {}, a.action)),
    ...OUTCOMES.map((outcome) => h("td", { class: "number" }, String(a.counts[outcome]))),
    ...PERCENTILES.map((p) => h("td", { class: "number" }, duration(a.run_time_ms[p]))),
    ...PERCENTILES.map((p) => h("td", { class: "number" }, duration(a.queue_wait_ms[p]))),
  )));
  show($("per-action-loading"), false);
  show($("per-action-empty"), metrics.actions.length === 0);
  $("page-lead").textContent =
    `Jobs that ended in the last ${WINDOW_LABELS[window] || `${window} s`}, every project of this stage: ` +
    "outcomes and run-time percentiles per action. Percentiles are histogram bucket bounds (at most 26% high).";
}

boot(async () => {
  for (const option of $("window-form-window").options) option.textContent = WINDOW_LABELS[option.value];
  $("window-form-window").addEventListener("change", load);
  $("window-form").addEventListener("submit", (event) => event.preventDefault());
  await load();
  every(15000, load);
});
