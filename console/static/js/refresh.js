// Lists that change while you look at them, without losing your place.

/**
 * Call `fn` every `ms` while the tab is visible, never twice at once.
 * Returns a function that stops it.
 */
export function every(ms, fn) {
  let running = false;
  const tick = async () => {
    if (running || document.hidden) return;
    running = true;
    try {
      await fn();
    } catch (error) {
      console.warn("refresh failed", error);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(tick, ms);
  const onVisible = () => { if (!document.hidden) tick(); };
  document.addEventListener("visibilitychange", onVisible);
  return () => {
    clearInterval(timer);
    document.removeEventListener("visibilitychange", onVisible);
  };
}

/**
 * Make `container`'s keyed children show `items` in order, one element per
 * item, keyed by `key(item)`. An item whose data did not change keeps its
 * element (so focus, open details, typed text and scroll stay); a changed item
 * is rendered again unless `keep(element)` says the user is busy in it.
 * `render(item)` returns the element; it is given `data-key`. Keyed elements
 * go after `after` (e.g. a table's `<thead>`), else first in the container.
 */
export function reconcile(container, items, { key, render, keep = holdsFocus, after = null }) {
  const existing = new Map();
  for (const child of container.children) {
    if (child.dataset.key !== undefined) existing.set(child.dataset.key, child);
  }
  let previous = after;
  const seen = new Set();
  for (const item of items) {
    const id = String(key(item));
    seen.add(id);
    const signature = JSON.stringify(item);
    let element = existing.get(id);
    if (!element || (element.dataset.signature !== signature && !keep(element))) {
      const fresh = render(item);
      fresh.dataset.key = id;
      fresh.dataset.signature = signature;
      if (element) {
        // Focus moves to the same control (same id) in the new rendering.
        const focused = element.contains(document.activeElement) ? document.activeElement.id : "";
        element.replaceWith(fresh);
        if (focused) document.getElementById(focused)?.focus();
      }
      element = fresh;
    }
    const expected = previous ? previous.nextElementSibling : container.firstElementChild;
    if (expected !== element) {
      if (previous) previous.after(element);
      else container.prepend(element);
    }
    previous = element;
  }
  for (const [id, element] of existing) {
    if (!seen.has(id)) element.remove();
  }
}

export function holdsFocus(element) {
  return element.contains(document.activeElement) && document.activeElement !== document.body;
}

/**
 * A fresh first page merged into a longer list the user paged through: the
 * fresh page first (new items on top, known ones updated), then the older
 * items that were loaded and are not on it.
 */
export function mergeFirstPage(current, fresh, key) {
  const freshKeys = new Set(fresh.map(key));
  return [...fresh, ...current.filter((item) => !freshKeys.has(key(item)))];
}
