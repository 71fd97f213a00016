// Approvals: pending requests (GET /v1/queue/hitl), refreshed without
// touching the ones you are typing in; approve (POST …/approve {comment}) or
// reject (POST …/reject {reason}); decided requests by status, with who and when.

import { api, encode } from "../api.js";
import { $, chip, h, pageLink, pretty, say, show } from "../dom.js";
import { relative, when } from "../format.js";
import { every, mergeFirstPage, reconcile } from "../refresh.js";
import { boot } from "../shell.js";

const PAGE = 50;
const pending = { items: [], cursor: null, paged: false };
const decided = { items: [], cursor: null, paged: false, status: "approved" };

function slug(text) {
  return text.replace(/[^A-Za-z0-9_-]/g, "-");
}

/** A request holds typed text or focus: refreshing must not replace it. */
function busyCard(card) {
  if (card.contains(document.activeElement) && document.activeElement !== document.body) return true;
  return [...card.querySelectorAll("input")].some((input) => input.value !== "");
}

function card(request) {
  const key = slug(request.id);
  const note = h("input", { id: `note-${key}`, name: "note", type: "text", maxlength: "2000", autocomplete: "off" });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const decide = async (verb, button) => {
    button.disabled = true;
    say(error, "");
    const text = note.value.trim();
    const body = verb === "approve" ? (text ? { comment: text } : {}) : (text ? { reason: text } : {});
    try {
      const answer = await api(`/v1/queue/hitl/${encode(request.id)}/${verb}`, { method: "POST", body });
      pending.items = pending.items.filter((r) => r.id !== request.id);
      const message = $("approvals-notice");
      message.replaceChildren(
        `${answer.status === "approved" ? "Approved" : "Rejected"}: `,
        pageLink("job.html", { id: request.job_id }, request.job_id),
        answer.status === "approved" ? " is queued and runs now." : " ends rejected.",
      );
      message.hidden = false;
      drawPending();
      await refreshDecided();
    } catch (failure) {
      say(error, failure.message);
      button.disabled = false;
    }
  };
  const approve = h("button", { type: "button", class: "button primary", id: `approve-${key}` }, "Approve");
  const reject = h("button", { type: "button", class: "button danger", id: `reject-${key}` }, "Reject");
  approve.addEventListener("click", () => decide("approve", approve));
  reject.addEventListener("click", () => decide("reject", reject));
  return h("li", { class: "card", "aria-labelledby": `title-${key}` },
    h("h3", { id: `title-${key}` }, h("code", {}, request.action), " for job ",
      pageLink("job.html", { id: request.job_id }, request.job_id)),
    h("dl", { class: "definition compact" },
      h("dt", {}, "Requested"), h("dd", {}, when(request.requested_at), " ", h("span", { class: "muted" }, relative(request.requested_at))),
      h("dt", {}, "Requested by"), h("dd", {}, request.requested_by || h("span", { class: "muted" }, "unknown")),
      h("dt", {}, "Expires"), h("dd", {}, when(request.expires_at), " ", h("span", { class: "muted" }, relative(request.expires_at))),
      h("dt", {}, "Request"), h("dd", {}, h("code", {}, request.id)),
    ),
    h("p", { class: "subhead" }, "Arguments"),
    h("pre", { class: "code" }, pretty(request.args)),
    h("div", { class: "decide" },
      h("div", { class: "field" }, h("label", { for: `note-${key}` }, "Comment (approve) or reason (reject)"), note),
      h("div", { class: "actions" }, approve, reject)),
    error,
  );
}

function drawPending() {
  reconcile($("pending"), pending.items, { key: (r) => r.id, render: card, keep: busyCard });
  show($("pending-loading"), false);
  show($("pending-empty"), pending.items.length === 0);
  show($("pending-more"), Boolean(pending.cursor));
}

async function refreshPending() {
  const answer = await api("/v1/queue/hitl", { query: { status: "pending", limit: PAGE } });
  // A request decided elsewhere leaves the list; the rest keep their place.
  const fresh = new Set(answer.requests.map((r) => r.id));
  const beyond = pending.paged ? pending.items.filter((r) => !fresh.has(r.id)) : [];
  pending.items = mergeFirstPage(beyond, answer.requests, (r) => r.id);
  if (!pending.paged) pending.cursor = answer.next_cursor;
  say($("pending-error"), "");
  drawPending();
}

async function morePending() {
  const answer = await api("/v1/queue/hitl", { query: { status: "pending", limit: PAGE, cursor: pending.cursor } });
  pending.paged = true;
  const known = new Set(pending.items.map((r) => r.id));
  pending.items = [...pending.items, ...answer.requests.filter((r) => !known.has(r.id))];
  pending.cursor = answer.next_cursor;
  drawPending();
}

function decidedRow(request) {
  return h("tr", {},
    h("th", { scope: "row" }, h("code", {}, request.id)),
    h("td", {}, request.action),
    h("td", {}, pageLink("job.html", { id: request.job_id }, request.job_id)),
    h("td", {}, chip(request.status)),
    h("td", {}, request.decided_by || h("span", { class: "muted" }, "nobody (expired)")),
    h("td", {}, h("time", { datetime: request.decided_at || "" }, when(request.decided_at))),
    h("td", {}, request.reason || "—"),
  );
}

function drawDecided() {
  const table = $("decided");
  const body = table.tBodies[0] || table.appendChild(h("tbody"));
  reconcile(body, decided.items, { key: (r) => r.id, render: decidedRow });
  show($("decided-loading"), false);
  show($("decided-empty"), decided.items.length === 0);
  show($("decided-more"), Boolean(decided.cursor));
}

async function refreshDecided() {
  const answer = await api("/v1/queue/hitl", { query: { status: decided.status, limit: PAGE } });
  decided.items = mergeFirstPage(decided.items, answer.requests, (r) => r.id);
  if (!decided.paged) decided.cursor = answer.next_cursor;
  say($("decided-error"), "");
  drawDecided();
}

async function moreDecided() {
  const answer = await api("/v1/queue/hitl", { query: { status: decided.status, limit: PAGE, cursor: decided.cursor } });
  decided.paged = true;
  const known = new Set(decided.items.map((r) => r.id));
  decided.items = [...decided.items, ...answer.requests.filter((r) => !known.has(r.id))];
  decided.cursor = answer.next_cursor;
  drawDecided();
}

boot(async () => {
  $("pending-more").addEventListener("click", () => morePending().catch((e) => say($("pending-error"), e.message)));
  $("decided-more").addEventListener("click", () => moreDecided().catch((e) => say($("decided-error"), e.message)));
  $("decided-filter-status").addEventListener("change", async (event) => {
    decided.status = event.target.value;
    decided.items = [];
    decided.cursor = null;
    decided.paged = false;
    show($("decided-loading"), true);
    await refreshDecided().catch((e) => say($("decided-error"), e.message));
  });
  $("decided-filter").addEventListener("submit", (event) => event.preventDefault());
  await Promise.all([
    refreshPending().catch((e) => { show($("pending-loading"), false); say($("pending-error"), e.message); }),
    refreshDecided().catch((e) => { show($("decided-loading"), false); say($("decided-error"), e.message); }),
  ]);
  every(3000, refreshPending);
  every(10000, refreshDecided);
});
