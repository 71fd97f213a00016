// Sign in: check the token with GET /v1/me, keep it in sessionStorage.

import { api, ApiError, keepToken, token } from "../api.js";
import { $ } from "../dom.js";
import { busy, clearErrors, fieldError } from "../forms.js";
import { param } from "../shell.js";

/** Only pages of this console, never another site. */
function nextPage() {
  const next = param("next") || "";
  return /^[a-z-]+\.html(\?[^#]*)?$/.test(next) ? next : "index.html";
}

const form = $("signin");
if (token()) location.replace(nextPage());

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  const secret = $("signin-token").value.trim();
  if (!secret) {
    fieldError(form, "token", "Paste a token.");
    $("signin-token").focus();
    return;
  }
  await busy(form, async () => {
    try {
      await api("/v1/me", { secret });
    } catch (error) {
      const message = error instanceof ApiError && error.status === 401
        ? "The API does not know this token (or it was revoked)."
        : error.message;
      fieldError(form, "token", message);
      $("signin-token").focus();
      return;
    }
    keepToken(secret);
    location.replace(nextPage());
  });
});
$("signin-token").focus();
