// What every page does first: find the token, ask the API who it is, show
// the navigation that role may use, then hand over to the page.

import { api, ApiError, forgetToken, signInUrl, token } from "./api.js";
import { $, say } from "./dom.js";

// Every form here is handled by a script: none may navigate on its own, even
// when submitted before its page finished loading (dialogs close as usual).
document.addEventListener("submit", (event) => {
  if (event.target.getAttribute("method") !== "dialog") event.preventDefault();
}, true);

/**
 * Run `render({me})` once the caller is known. Without a token, go to the
 * sign-in page. Admin pages render nothing for members.
 */
export async function boot(render) {
  if (!token()) {
    location.replace(signInUrl());
    return;
  }
  let me;
  try {
    me = await api("/v1/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // api() went to sign-in
    say($("boot-error"), `Cannot reach the API: ${error.message}`);
    $("page").hidden = true;
    return;
  }
  $("who-name").textContent = me.name;
  $("who-role").textContent = `${me.role} · ${me.project_id}`;
  $("who").hidden = false;
  $("sign-out").addEventListener("click", () => {
    forgetToken();
    location.replace("signin.html");
  });
  const admin = me.role === "admin";
  for (const item of document.querySelectorAll(".admin-only")) {
    if (admin) item.hidden = false;
    else item.remove(); // members get no admin navigation at all
  }
  if (document.body.hasAttribute("data-admin-only") && !admin) {
    $("page").remove();
    $("admins-only").hidden = false;
    document.body.dataset.ready = "true";
    return;
  }
  try {
    await render({ me, admin });
  } catch (error) {
    say($("boot-error"), error.message);
    throw error;
  } finally {
    document.body.dataset.ready = "true"; // the first rendering is done
  }
}

/** A query parameter of this page's URL. */
export function param(name) {
  return new URL(location.href).searchParams.get(name);
}
