// Forms: read fields, and put the API's validation errors at their fields
// (`errors[].location` like `body.schedule` → the field named `schedule`).

import { say } from "./dom.js";

export function clearErrors(form) {
  for (const slot of form.querySelectorAll("[data-error-for]")) say(slot, "");
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    restoreDescribedBy(input);
  }
  const summary = form.querySelector(`#${form.id}-error`) || document.getElementById(`${form.id}-error`);
  if (summary) say(summary, "");
}

/** Clear one field's message (e.g. when the live preview checks it again). */
export function clearField(form, name) {
  const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  if (slot) say(slot, "");
  const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
  if (input && input.hasAttribute("aria-invalid")) {
    input.removeAttribute("aria-invalid");
    restoreDescribedBy(input);
  }
}

/** The field a location points at: `body.args.url` → `args`; `query.limit` → `limit`. */
export function fieldOf(location) {
  const parts = String(location || "").split(".");
  return parts.length > 1 ? parts[1] : parts[0];
}

/** Show one message at a field; returns whether the form has that field. */
export function fieldError(form, name, message) {
  const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  if (!slot) return false;
  const text = slot.hidden || !slot.textContent ? message : `${slot.textContent} ${message}`;
  say(slot, text);
  const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    if (!input.dataset.describedBy) input.dataset.describedBy = input.getAttribute("aria-describedby") || "";
    input.setAttribute("aria-describedby", `${input.dataset.describedBy} ${slot.id}`.trim());
  }
  return true;
}

function restoreDescribedBy(input) {
  if (input.dataset.describedBy === undefined) return;
  if (input.dataset.describedBy) input.setAttribute("aria-describedby", input.dataset.describedBy);
  else input.removeAttribute("aria-describedby");
  delete input.dataset.describedBy;
}

/**
 * Place an ApiError on `form`: each of `errors[]` at its field, the rest (and
 * the detail when no field matched) in the form's summary `#<form id>-error`.
 * Focuses the first invalid field.
 */
export function showErrors(form, error) {
  clearErrors(form);
  const unplaced = [];
  for (const item of error.errors || []) {
    if (!fieldError(form, fieldOf(item.location), item.message)) unplaced.push(`${item.location}: ${item.message}`);
  }
  const summary = document.getElementById(`${form.id}-error`);
  const placed = (error.errors || []).length - unplaced.length;
  if (summary) {
    if (unplaced.length) say(summary, unplaced.join("; "));
    else if (placed) say(summary, "Some fields need a change: see the messages below them.");
    else say(summary, error.message);
  }
  const first = form.querySelector("[aria-invalid=true]");
  if (first) {
    const section = first.closest("details");
    if (section) section.open = true;
    first.focus();
  }
}

/** Disable a form's buttons while `work` runs. */
export async function busy(form, work) {
  const buttons = [...form.querySelectorAll("button")];
  for (const button of buttons) button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    for (const button of buttons) button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

/** Ask with the page's `<dialog id="confirm-dialog">`; resolves true on Confirm. */
export function confirmWith(text, confirmLabel = "Confirm") {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "cancel";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}
