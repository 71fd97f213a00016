// Tokens (admin): GET /v1/admin/tokens (paged), POST /v1/admin/tokens (the
// secret is shown once), DELETE /v1/admin/tokens/{id} after confirming.

import { api, encode } from "../api.js";
import { $, chip, h, say, show } from "../dom.js";
import { busy, clearErrors, confirmWith, showErrors } from "../forms.js";
import { when } from "../format.js";
import { reconcile } from "../refresh.js";
import { boot } from "../shell.js";

const PAGE = 50;
const state = { items: [], cursor: null, me: null };

function row(token) {
  const revoke = h("button", { type: "button", class: "button danger small", id: `revoke-${token.id}` }, "Revoke");
  revoke.setAttribute("aria-label", `Revoke ${token.name}`);
  revoke.addEventListener("click", async () => {
    const yours = token.id === state.me.token_id;
    const sure = await confirmWith(
      `Revoke “${token.name}” (${token.role} of ${token.project_id})? It stops working at once.` +
      (yours ? " It is the token you are signed in with: you will be signed out." : ""),
      "Revoke token",
    );
    if (!sure) return;
    try {
      await api(`/v1/admin/tokens/${encode(token.id)}`, { method: "DELETE" });
      state.items = state.items.filter((t) => t.id !== token.id);
      draw();
      if (yours) location.replace("signin.html");
    } catch (error) {
      say($("tokens-error"), error.message);
    }
  });
  return h("tr", {},
    h("th", { scope: "row" }, token.name, token.id === state.me.token_id ? h("span", { class: "tag" }, "you") : null),
    h("td", {}, token.project_id),
    h("td", {}, chip(token.role)),
    h("td", {}, when(token.created_at)),
    h("td", {}, h("code", {}, token.id)),
    h("td", {}, revoke),
  );
}

function draw() {
  const table = $("tokens");
  const body = table.tBodies[0] || table.appendChild(h("tbody"));
  reconcile(body, state.items, { key: (t) => t.id, render: row });
  show($("tokens-loading"), false);
  show($("tokens-empty"), state.items.length === 0);
  show($("tokens-more"), Boolean(state.cursor));
}

async function load(cursor = null) {
  const answer = await api("/v1/admin/tokens", { query: { limit: PAGE, cursor } });
  state.items = cursor ? [...state.items, ...answer.tokens] : answer.tokens;
  state.cursor = answer.next_cursor;
  draw();
}

boot(async ({ me }) => {
  state.me = me;
  const form = $("issue-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = {
      project_id: $("issue-form-project_id").value.trim(),
      role: $("issue-form-role").value,
      name: $("issue-form-name").value.trim(),
    };
    await busy(form, async () => {
      try {
        const issued = await api("/v1/admin/tokens", { method: "POST", body });
        $("secret-value").value = issued.token;
        show($("secret"), true);
        $("secret-value").select();
        $("issue-form-name").value = "";
        await load();
      } catch (error) {
        showErrors(form, error);
      }
    });
  });
  $("tokens-more").addEventListener("click", () => load(state.cursor).catch((e) => say($("tokens-error"), e.message)));
  await load().catch((e) => {
    show($("tokens-loading"), false);
    say($("tokens-error"), e.message);
  });
});
