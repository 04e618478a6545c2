// The filters of the groups (size, method, metadata, a health check), kept in the page's address so that a
// view can be reloaded or shared, and the form that edits them.

import { fill, h } from "./dom.js";

export const PAGE_SIZE = 48;

export function readFilters(params) {
  return {
    min_size: Number(params.get("min_size")) || 2,
    max_size: Number(params.get("max_size")) || null,
    method: params.get("method") || "auto",
    where: params.getAll("where"),
    health: params.get("health") || null,
  };
}

export function filterParams(filters) {
  const out = new URLSearchParams();
  if (filters.min_size > 2) out.set("min_size", filters.min_size);
  if (filters.max_size) out.set("max_size", filters.max_size);
  if (filters.method !== "auto") out.set("method", filters.method);
  for (const w of filters.where) out.append("where", w);
  if (filters.health) out.set("health", filters.health);
  return out;
}

export function withFilters(path, filters, extra = {}) {
  const params = filterParams(filters);
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  const query = params.toString();
  return query ? `${path}?${query}` : path;
}

export function describe(filters) {
  const parts = [`${filters.min_size}${filters.max_size ? `–${filters.max_size}` : "+"} files`];
  if (filters.method !== "auto") parts.push(`method ${filters.method}`);
  parts.push(...filters.where);
  if (filters.health) parts.push(`a picture flagged ${filters.health}`);
  return parts.join(", ");
}

// The filter form; `onChange(filters)` is called when it is submitted. `health`: a promise of
// GET /health (its checks and counts; null when it failed), whose answer fills "Flagged".
export function filterForm(filters, info, onChange, health = Promise.resolve(null)) {
  const where = [...filters.where];
  const minSize = h("input", { id: "f-min", type: "number", min: 2, value: filters.min_size });
  const maxSize = h("input", { id: "f-max", type: "number", min: 2, value: filters.max_size || "",
    placeholder: "any" });
  const method = h("select", { id: "f-method" },
    (info.methods || ["auto"]).map((m) => h("option", { value: m, selected: m === filters.method }, m)));
  const checkOptions = (checks) => [h("option", { value: "" }, "any"),
    checks.map(([name, label]) => h("option", { value: name, selected: name === filters.health }, label))];
  const flagged = h("select", { id: "f-health", title: "Only the groups with a picture that "
      + "this health check flags" }, checkOptions(filters.health ? [[filters.health, filters.health]] : []));
  health.then((found) => {
    if (!found) return;
    const chosen = flagged.value; // the person may have chosen meanwhile
    fill(flagged, checkOptions(found.checks.map((c) => [c.name, `${c.name} (${c.count})`])));
    flagged.value = chosen;
  });
  const keys = Object.keys(info.meta || {});
  const key = h("select", { id: "f-key", "aria-label": "Metadata key" },
    keys.map((k) => h("option", { value: k }, k)));
  const values = h("datalist", { id: "f-values" });
  const fillValues = () => fill(values,
    ...((info.meta || {})[key.value] || []).map((v) => h("option", { value: v })));
  key.addEventListener("change", fillValues);
  fillValues();
  const value = h("input", { id: "f-value", list: "f-values", "aria-label": "Metadata value",
    placeholder: "value" });
  const chips = h("span", { class: "chips" });
  const submit = () => onChange({
    min_size: Math.max(2, Number(minSize.value) || 2),
    max_size: Number(maxSize.value) || null,
    method: method.value,
    where,
    health: flagged.value || null,
  });
  const drawChips = () => fill(chips, ...where.map((w, i) => h("button", {
    type: "button", class: "chip", title: `Remove the filter ${w}`,
    onclick: () => { where.splice(i, 1); submit(); },
  }, w, h("span", { "aria-hidden": "true" }, " ×"))));
  drawChips();
  const metaPart = keys.length ? [
    h("label", { for: "f-key" }, "Metadata"), key, values, value,
    h("button", { type: "button", onclick: () => {
      if (value.value.trim()) { where.push(`${key.value}:${value.value.trim()}`); submit(); }
    } }, "Add"),
  ] : [h("span", { class: "muted" }, "no metadata in this index")];
  return h("form", { class: "filters", "aria-label": "Filters",
    onsubmit: (e) => { e.preventDefault(); submit(); } },
    h("label", { for: "f-min" }, "Files from"), minSize,
    h("label", { for: "f-max" }, "to"), maxSize,
    h("label", { for: "f-method" }, "Method"), method,
    h("label", { for: "f-health" }, "Flagged"), flagged,
    ...metaPart, chips,
    h("button", { type: "submit" }, "Apply filters"));
}
