// The public API, with the token of this browser tab.
//
// The token lives in sessionStorage only: it is sent in the Authorization
// header and never put in a URL. The API's base URL comes from config.js,
// written by the build ("" = this origin).

import { config } from "../../config.js";

const TOKEN_KEY = "tickwork.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function keepToken(secret) {
  sessionStorage.setItem(TOKEN_KEY, secret);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer: `problem` is the RFC 9457 body (`errors[].location` …). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }
}

/** Where to go to sign in, coming back here afterwards. */
export function signInUrl() {
  const here = location.pathname.split("/").pop() + location.search;
  return `signin.html?next=${encodeURIComponent(here)}`;
}

/**
 * Call the API: `api("/v1/queue/jobs", {query: {status: "failed"}})`.
 * Resolves to the JSON body (null for 204); rejects with ApiError.
 * A 401 (revoked or expired token) signs the tab out.
 */
export async function api(path, { method = "GET", query, body, headers, secret } = {}) {
  const url = new URL(config.apiBase + path, location.href);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const sent = { ...(headers || {}) };
  const credential = secret || token();
  if (credential) sent.Authorization = `Bearer ${credential}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    });
  } catch (error) {
    throw new ApiError(0, { title: "Network error", detail: `The API did not answer (${error.message}).` });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { detail: text.slice(0, 500) };
  }
  if (!response.ok) {
    if (response.status === 401 && !secret) {
      forgetToken();
      location.replace(signInUrl());
    }
    const problem = parsed && typeof parsed === "object" ? parsed : { detail: String(parsed) };
    if (!problem.detail && problem.message) problem.detail = problem.message;
    throw new ApiError(response.status, problem);
  }
  return parsed;
}

/** Follow `next_cursor` until `enough(items)` or the end; at most `pages` requests. */
export async function collect(path, key, { query = {}, pages = 5, enough = () => false } = {}) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < pages; page += 1) {
    const answer = await api(path, { query: { ...query, cursor } });
    items.push(...answer[key]);
    cursor = answer.next_cursor;
    if (!cursor || enough(items)) break;
  }
  return items;
}

/**
 * An id as one path segment. `:` (in firing ids like `tsk_…:1798794000000`) is
 * legal in a segment and stays as it is: Chalice's local server does not
 * decode `%3A` in path parameters (API Gateway would).
 */
export function encode(id) {
  return encodeURIComponent(id).replace(/%3A/gi, ":");
}
