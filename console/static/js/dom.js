// Building DOM from data. Every value from the API goes in as text
// (createTextNode / textContent), never parsed as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Append children: strings and numbers as text nodes, nodes as they are. */
function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function setAttributes(element, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      element.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (key === "text") {
      element.textContent = String(value);
    } else if (value === true) {
      element.setAttribute(key, "");
    } else {
      element.setAttribute(key, String(value));
    }
  }
  return element;
}

/** `h("a", {href: "x.html"}, "text", child)`: an HTML element. */
export function h(tag, attrs, ...children) {
  return append(setAttributes(document.createElement(tag), attrs), children);
}

/** `s("rect", {x: 1})`: an SVG element. */
export function s(tag, attrs, ...children) {
  return append(setAttributes(document.createElementNS(SVG_NS, tag), attrs), children);
}

export function $(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`no element #${id}`);
  return found;
}

export function show(element, visible = true) {
  element.hidden = !visible;
  return element;
}

/** Put `text` in `element` (as text) and show it; hide it when text is empty. */
export function say(element, text) {
  element.textContent = text || "";
  element.hidden = !text;
}

/** A link to a console page with query parameters, ids encoded. */
export function pageLink(page, params, ...children) {
  const query = new URLSearchParams(params || {}).toString();
  return h("a", { href: query ? `${page}?${query}` : page }, ...children);
}

const JOB_STATUSES = [
  "scheduled", "awaiting_approval", "queued", "active", "complete",
  "failed", "cancelled", "rejected", "skipped", "expired",
];
//: `lost` and `running`: how an attempt ended (or that it has not yet).
const KNOWN_CHIPS = new Set([...JOB_STATUSES, "lost", "running", "pending", "approved", "admin", "member"]);

/** A status chip. Its class comes from a fixed list; its text is the status. */
export function chip(status) {
  const known = KNOWN_CHIPS.has(status) ? status : "unknown";
  return h("span", { class: `chip chip-${known}` }, status === null || status === undefined ? "none" : String(status));
}

/** Pretty JSON as text, for `<pre>`. */
export function pretty(value) {
  if (value === undefined) return "";
  return JSON.stringify(value, null, 2);
}
