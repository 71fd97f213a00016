// Create (POST /v1/scheduled-tasks) or edit (PATCH …/{id} with If-Match) a
// task. The schedule's next fire times and description come live from
// GET /v1/schedules/preview; the API's 422 errors are shown at their fields.

import { api, ApiError, encode } from "../api.js";
import { $, h, say, show } from "../dom.js";
import { busy, clearErrors, clearField, fieldError, showErrors } from "../forms.js";
import { userZone, when } from "../format.js";
import { boot, param } from "../shell.js";

const form = $("task-form");
const id = param("id");
let editing = null; // the task being edited

function inputs() {
  return [...form.querySelectorAll("[data-field]")];
}

/** The form as a task body; null (after showing why) when a field cannot be read. */
function readBody() {
  const body = {};
  for (const input of inputs()) {
    const name = input.dataset.field;
    const kind = input.dataset.kind;
    if (kind === "checkbox") {
      body[name] = input.checked;
    } else if (kind === "number") {
      if (input.value.trim() !== "") body[name] = Number(input.value);
      else if (editing) body[name] = null; // back to the default
    } else if (kind === "json") {
      const text = input.value.trim() || "{}";
      try {
        body[name] = JSON.parse(text);
      } catch (error) {
        fieldError(form, name, `Not valid JSON: ${error.message}`);
        input.focus();
        return null;
      }
    } else if (name === "schedule" && input.value.trim() === "") {
      if (editing) body[name] = null;
    } else {
      body[name] = input.value;
    }
  }
  return body;
}

function fill(task) {
  for (const input of inputs()) {
    const value = task[input.dataset.field];
    if (input.dataset.kind === "checkbox") input.checked = Boolean(value);
    else if (input.dataset.kind === "json") input.value = JSON.stringify(value ?? {}, null, 2);
    else input.value = value === null || value === undefined ? "" : String(value);
  }
}

// -- live preview -------------------------------------------------------------

let previewSeq = 0;
let previewTimer = null;

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 350);
}

async function preview() {
  const seq = ++previewSeq;
  const schedule = $("task-form-schedule").value.trim();
  const timezone = $("task-form-timezone").value.trim() || "UTC";
  const rows = $("preview-times").tBodies[0];
  if (!schedule) {
    rows.replaceChildren();
    $("preview-description").textContent = "";
    say($("preview-status"), $("task-form-kind").value === "service"
      ? "A service ignores its schedule." : "Type a schedule to see when it fires.");
    return;
  }
  say($("preview-status"), "Checking…");
  try {
    const answer = await api("/v1/schedules/preview", { query: { schedule, timezone, count: 5 } });
    if (seq !== previewSeq) return;
    clearField(form, "schedule");
    clearField(form, "timezone");
    $("preview-description").textContent = answer.description;
    $("preview-zone-header").textContent = timezone;
    rows.replaceChildren(...answer.upcoming.map((at) => h("tr", {},
      h("td", {}, h("time", { datetime: at }, when(at))),
      h("td", {}, when(at, timezone)))));
    say($("preview-status"), answer.upcoming.length ? `Your time is ${userZone()}.` : "It fires no more.");
  } catch (error) {
    if (seq !== previewSeq) return;
    rows.replaceChildren();
    $("preview-description").textContent = "";
    if (error instanceof ApiError && error.status === 422) {
      clearField(form, "schedule");
      clearField(form, "timezone");
      for (const item of error.errors) fieldError(form, item.location.split(".").pop(), item.message);
      say($("preview-status"), "This schedule is not valid yet (see the message at the field).");
    } else {
      say($("preview-status"), `Preview unavailable: ${error.message}`);
    }
  }
}

// -- suggestions --------------------------------------------------------------

function fillSuggestions() {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  $("zones").replaceChildren(...["UTC", ...zones].map((zone) => h("option", { value: zone })));
  api("/v1/queue/actions").then(
    (found) => $("actions").replaceChildren(...found.actions.map((a) => h("option", { value: a.name }, a.description))),
    () => {},
  );
}

// -- submit -------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  clearErrors(form);
  const body = readBody();
  if (!body) return;
  await busy(form, async () => {
    try {
      const saved = editing
        ? await api(`/v1/scheduled-tasks/${encode(editing.id)}`, {
          method: "PATCH", body, headers: { "If-Match": `"${editing.version}"` },
        })
        : await api("/v1/scheduled-tasks", { method: "POST", body });
      location.assign(`task.html?id=${encode(saved.id)}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        say($("task-form-error"), "Someone changed this task meanwhile. Reload the page to edit the current version.");
        return;
      }
      showErrors(form, error);
    }
  });
}

boot(async () => {
  fillSuggestions();
  if (id) {
    $("page-title").textContent = "Edit task";
    $("task-form-submit").textContent = "Save changes";
    form.hidden = true;
    try {
      editing = await api(`/v1/scheduled-tasks/${encode(id)}`);
    } catch (error) {
      show($("task-form-loading"), false);
      say($("boot-error"), error.status === 404 ? "This task does not exist (or was deleted)." : error.message);
      return;
    }
    fill(editing);
    $("page-title").textContent = `Edit ${editing.name}`;
    $("task-form-cancel").setAttribute("href", `task.html?id=${encode(id)}`);
    form.hidden = false;
  }
  show($("task-form-loading"), false);
  form.addEventListener("submit", submit);
  for (const name of ["schedule", "timezone", "kind"]) {
    $(`task-form-${name}`).addEventListener("input", schedulePreview);
  }
  await preview();
  $("task-form-name").focus();
});
