// A list of runs (jobs) whose rows open to show result, error and log; used
// by the task page. Each run is one <tbody> (its row and its details row), so
// refreshing the list keeps open details open and the scroll where it was.

import { api, encode } from "./api.js";
import { chip, h, pageLink, pretty, say } from "./dom.js";
import { between, duration, when } from "./format.js";
import { reconcile } from "./refresh.js";

export function runDetails(job) {
  const log = h("pre", { class: "code log" }, "Loading the log…");
  const truncated = h("p", { class: "help", hidden: true });
  api(`/v1/queue/jobs/${encode(job.id)}/logs`).then(
    (found) => {
      log.textContent = found.log || "(nothing logged)";
      say(truncated, found.truncated ? "The log was cut at the task's log_max_size." : "");
    },
    (error) => { log.textContent = `Could not load the log: ${error.message}`; },
  );
  return h("div", { class: "run-details" },
    h("p", {}, pageLink("job.html", { id: job.id }, "Open job "), h("code", {}, job.id)),
    job.error ? h("p", { class: "error-text" }, `Error: ${job.error}`) : null,
    h("h4", {}, "Result"),
    h("pre", { class: "code" }, job.result === null || job.result === undefined ? "(none)" : pretty(job.result)),
    h("h4", {}, "Log"),
    truncated,
    log,
  );
}

/** Render `jobs` into `table`; `open` is the Set of run ids whose details show. */
export function renderRuns(table, jobs, open) {
  reconcile(table, jobs, {
    key: (job) => job.id,
    after: table.tHead,
    keep: () => false,
    render: (job) => {
      const detailsId = `run-${job.id.replace(/[^A-Za-z0-9_-]/g, "-")}`;
      const isOpen = open.has(job.id);
      const toggle = h("button", {
        type: "button", class: "button small", id: `${detailsId}-toggle`, "aria-expanded": String(isOpen), "aria-controls": detailsId,
      }, isOpen ? "Hide" : "Show");
      const cell = h("td", { colspan: "7" });
      const detailsRow = h("tr", { class: "details-row", id: detailsId, hidden: !isOpen }, cell);
      if (isOpen) cell.append(runDetails(job));
      toggle.addEventListener("click", () => {
        const opening = !open.has(job.id);
        if (opening) {
          open.add(job.id);
          cell.replaceChildren(runDetails(job));
        } else {
          open.delete(job.id);
        }
        detailsRow.hidden = !opening;
        toggle.setAttribute("aria-expanded", String(opening));
        toggle.textContent = opening ? "Hide" : "Show";
      });
      return h("tbody", { class: "run" },
        h("tr", {},
          h("td", {}, chip(job.status)),
          h("td", {}, h("time", { datetime: job.scheduled_for }, when(job.scheduled_for))),
          h("td", {}, job.trigger),
          h("td", {}, when(job.started_at)),
          h("td", {}, duration(between(job.started_at, job.finished_at))),
          h("td", {}, `${job.attempt} of ${job.max_attempts}`),
          h("td", {}, toggle),
        ),
        detailsRow,
      );
    },
  });
}
