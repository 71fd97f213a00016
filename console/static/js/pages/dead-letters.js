// Dead letters (admin): GET /v1/queue/dead-letters (paged) and
// POST /v1/queue/dead-letters/redrive {limit}.

import { api } from "../api.js";
import { $, h, pageLink, say, show } from "../dom.js";
import { busy, clearErrors, showErrors } from "../forms.js";
import { when } from "../format.js";
import { every, mergeFirstPage, reconcile } from "../refresh.js";
import { boot } from "../shell.js";

const PAGE = 50;
const state = { items: [], cursor: null, paged: false };

function row(letter) {
  return h("tr", {},
    h("th", { scope: "row" }, pageLink("job.html", { id: letter.job_id }, h("code", {}, letter.job_id))),
    h("td", {}, letter.job.project_id),
    h("td", {}, letter.job.action),
    h("td", { class: "number" }, String(letter.receive_count)),
    h("td", {}, when(letter.dead_lettered_at)),
    h("td", {}, letter.job.error || "—"),
  );
}

function draw() {
  const table = $("dead-letters");
  const body = table.tBodies[0] || table.appendChild(h("tbody"));
  reconcile(body, state.items, { key: (d) => d.job_id, render: row });
  show($("dead-letters-loading"), false);
  show($("dead-letters-empty"), state.items.length === 0);
  show($("dead-letters-more"), Boolean(state.cursor));
}

async function refresh() {
  const answer = await api("/v1/queue/dead-letters", { query: { limit: PAGE } });
  state.items = mergeFirstPage(state.paged ? state.items : [], answer.dead_letters, (d) => d.job_id);
  if (!state.paged) state.cursor = answer.next_cursor;
  draw();
}

async function more() {
  const answer = await api("/v1/queue/dead-letters", { query: { limit: PAGE, cursor: state.cursor } });
  state.paged = true;
  state.items = [...state.items, ...answer.dead_letters];
  state.cursor = answer.next_cursor;
  draw();
}

boot(async () => {
  const form = $("redrive-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    await busy(form, async () => {
      try {
        const limit = Number($("redrive-form-limit").value || 100);
        const answer = await api("/v1/queue/dead-letters/redrive", { method: "POST", body: { limit } });
        const notice = $("redrive-notice");
        notice.replaceChildren(
          `Redrove ${answer.redriven.length} dead letter(s)${answer.remaining ? "; more remain" : ""}. `,
          ...answer.redriven.flatMap((moved) => moved.new_job_id
            ? [pageLink("job.html", { id: moved.new_job_id }, moved.new_job_id), " "]
            : [`${moved.job_id} (message sent again) `]),
        );
        notice.hidden = false;
        state.paged = false;
        await refresh();
      } catch (error) {
        showErrors(form, error);
      }
    });
  });
  $("dead-letters-more").addEventListener("click", () => more().catch((e) => say($("dead-letters-error"), e.message)));
  await refresh().catch((e) => {
    show($("dead-letters-loading"), false);
    say($("dead-letters-error"), e.message);
  });
  every(10000, refresh);
});
