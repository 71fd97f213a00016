// Times and durations for people: the user's zone, and a task's zone.

const USER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

export function userZone() {
  return USER_ZONE;
}

const formatters = new Map();

function formatter(timeZone) {
  const key = timeZone || USER_ZONE;
  if (!formatters.has(key)) {
    let made;
    try {
      made = new Intl.DateTimeFormat(undefined, {
        timeZone: key, weekday: "short", year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
      });
    } catch {
      made = formatter("UTC");
    }
    formatters.set(key, made);
  }
  return formatters.get(key);
}

/** "Mon, Jan 4, 2027, 09:00:00" in `timeZone` (default: the user's). */
export function when(iso, timeZone) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return formatter(timeZone).format(date);
}

/** "in 5 min", "3 h ago". */
export function relative(iso, now = Date.now()) {
  if (!iso) return "";
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const size = Math.abs(seconds);
  let text;
  if (size < 60) text = `${size} s`;
  else if (size < 3600) text = `${Math.round(size / 60)} min`;
  else if (size < 86400) text = `${Math.round(size / 360) / 10} h`;
  else text = `${Math.round(size / 8640) / 10} d`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

/** Milliseconds as "850 ms", "12.5 s", "3 min 20 s", "1 d 2 h", "30 d". */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms * 10) / 10} ms`;
  if (ms < 60000) return `${Math.round(ms / 100) / 10} s`;
  let rest = Math.round(ms / 1000);
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]]) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count) parts.push(`${count} ${unit}`);
  }
  return parts.slice(0, 2).join(" ");
}

export function between(startIso, endIso) {
  if (!startIso || !endIso) return null;
  return new Date(endIso).getTime() - new Date(startIso).getTime();
}

/** Seconds as "30 s", "5 min", "1 d". */
export function seconds(value) {
  if (value === null || value === undefined) return "—";
  return duration(value * 1000);
}
