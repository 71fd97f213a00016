// Charts as inline SVG, drawn by these few functions (no library). Colours
// come from CSS classes (`.series-complete` …), so the CSP needs no inline
// styles; every chart has a <title> and an aria-label, and a table or tiles
// next to it carry the same numbers for screen readers.

import { h, s } from "./dom.js";

const OUTCOMES = ["complete", "failed", "cancelled", "rejected", "skipped", "expired"];

function frame(width, height, label) {
  return s("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart-svg",
    role: "img",
    "aria-label": label,
  }, s("title", {}, label));
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

/**
 * Stacked bars: one bar per bucket (e.g. per minute), one segment per key.
 * `buckets`: [{label, counts: {key: n}}]; `keys`: stacking order.
 */
export function stackedBars(buckets, keys, { label, width = 960, height = 200, format = String } = {}) {
  const pad = { left: 36, right: 8, top: 8, bottom: 22 };
  const svg = frame(width, height, label);
  const totals = buckets.map((b) => keys.reduce((sum, k) => sum + (b.counts[k] || 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - fraction);
    svg.append(
      s("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid-line" }),
      s("text", { x: pad.left - 4, y: y + 4, class: "axis-label", "text-anchor": "end" }, format(max * fraction)),
    );
  }
  const slot = plotW / Math.max(1, buckets.length);
  const barW = Math.max(1, slot * 0.8);
  buckets.forEach((bucket, i) => {
    let y = pad.top + plotH;
    const x = pad.left + i * slot + (slot - barW) / 2;
    for (const key of keys) {
      const value = bucket.counts[key] || 0;
      if (!value) continue;
      const barH = (value / max) * plotH;
      y -= barH;
      svg.append(s("rect", { x, y, width: barW, height: barH, class: `series-${key}` },
        s("title", {}, `${bucket.label}: ${value} ${key}`)));
    }
  });
  if (buckets.length) {
    const first = buckets[0].label;
    const last = buckets[buckets.length - 1].label;
    svg.append(
      s("text", { x: pad.left, y: height - 6, class: "axis-label" }, first),
      s("text", { x: width - pad.right, y: height - 6, class: "axis-label", "text-anchor": "end" }, last),
    );
  }
  return svg;
}

/** Grouped bars: per group (an action), one bar per key (p50, p95, p99). */
export function groupedBars(groups, keys, { label, width = 960, height = 220, format = String } = {}) {
  const pad = { left: 56, right: 8, top: 8, bottom: 36 };
  const svg = frame(width, height, label);
  const values = groups.flatMap((g) => keys.map((k) => g.values[k] || 0));
  const max = niceMax(Math.max(0, ...values));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - fraction);
    svg.append(
      s("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid-line" }),
      s("text", { x: pad.left - 4, y: y + 4, class: "axis-label", "text-anchor": "end" }, format(max * fraction)),
    );
  }
  const slot = plotW / Math.max(1, groups.length);
  const barW = Math.max(1, (slot * 0.8) / keys.length);
  groups.forEach((group, i) => {
    const x0 = pad.left + i * slot + slot * 0.1;
    keys.forEach((key, j) => {
      const value = group.values[key];
      if (value === null || value === undefined) return;
      const barH = (value / max) * plotH;
      svg.append(s("rect", {
        x: x0 + j * barW, y: pad.top + plotH - barH, width: Math.max(1, barW - 1), height: barH,
        class: `series-${key}`,
      }, s("title", {}, `${group.label} ${key}: ${format(value)}`)));
    });
    svg.append(s("text", {
      x: x0 + (barW * keys.length) / 2, y: height - 20, class: "axis-label", "text-anchor": "middle",
    }, group.label));
  });
  return svg;
}

/**
 * A task's last runs, oldest left: one bar per run, its height the run time
 * (relative to the longest), its colour its status.
 */
export function sparkline(runs, { width = 120, height = 24 } = {}) {
  const ordered = [...runs].reverse();
  const label = ordered.length
    ? `Last ${ordered.length} runs: ${ordered.map((r) => r.status).join(", ")}`
    : "No runs yet";
  const svg = frame(width, height, label);
  svg.classList.add("sparkline");
  const took = ordered.map((r) =>
    r.started_at && r.finished_at ? new Date(r.finished_at) - new Date(r.started_at) : 0);
  const longest = Math.max(1, ...took);
  const slot = width / 20;
  ordered.forEach((run, i) => {
    const barH = Math.max(4, (took[i] / longest) * height);
    svg.append(s("rect", {
      x: i * slot, y: height - barH, width: Math.max(1, slot - 1), height: barH,
      class: `series-${OUTCOMES.includes(run.status) ? run.status : "pending"}`,
    }));
  });
  return svg;
}

/**
 * Per-minute counts [{minute, counts}] as buckets covering [since, until]
 * evenly, minutes with nothing included, at most `maxBars` of them (several
 * minutes per bar for long windows). Labels are the bucket's start time.
 */
export function timeBuckets(series, since, until, maxBars = 120) {
  const minute = 60000;
  const start = Math.floor(new Date(since).getTime() / minute) * minute;
  const end = Math.floor(new Date(until).getTime() / minute) * minute;
  const minutes = Math.max(1, Math.round((end - start) / minute) + 1);
  const per = Math.ceil(minutes / maxBars);
  const buckets = [];
  for (let at = start; at <= end; at += per * minute) {
    const label = new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    buckets.push({ label, counts: {} });
  }
  for (const point of series) {
    const index = Math.floor((new Date(point.minute).getTime() - start) / (per * minute));
    const bucket = buckets[index];
    if (!bucket) continue;
    for (const [key, value] of Object.entries(point.counts)) {
      bucket.counts[key] = (bucket.counts[key] || 0) + value;
    }
  }
  return { buckets, minutesPerBar: per };
}

/** A legend of series classes, as HTML. */
export function legend(keys) {
  return h("ul", { class: "chart-legend" },
    keys.map((key) => h("li", {}, h("span", { class: `swatch series-${key}`, "aria-hidden": "true" }), key)));
}

export { OUTCOMES };
