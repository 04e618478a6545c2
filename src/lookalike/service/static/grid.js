// The grid of duplicate groups: one page of GET /groups at a time, thumbnails loaded lazily.

import { api, showImage } from "./api.js";
import { basename, count, fail, fill, h, say } from "./dom.js";
import { PAGE_SIZE, filterForm, readFilters, withFilters } from "./filters.js";
import { groupNumbers, groupWords, isKeeper, keeperLine } from "./keeper.js";

const THUMBS_SHOWN = 4; // per card; the rest are counted

export async function showGrid(main, params, infoPromise) {
  const filters = readFilters(params);
  const page = Math.max(1, Number(params.get("page")) || 1);
  const go = (f, p = 1) => { location.hash = withFilters("#/groups", f, p > 1 ? { page: p } : {}); };
  const list = h("ol", { class: "grid", "aria-label": "Duplicate groups" });
  const summary = h("p", { class: "summary", "aria-live": "polite" }, "Loading groups…");
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  const form = h("div", { class: "filters" }, "Loading the filters…");
  fill(main,
    h("h2", {}, "Duplicate groups"),
    form,
    h("div", { class: "row" }, summary,
      h("a", { class: "button", href: withFilters("#/actions", filters) },
        "Plan these groups with keep rules…")),
    list, pager);
  const health = api("health?limit=1").catch(() => null); // the checks and their counts
  infoPromise.then((info) => form.replaceWith(filterForm(filters, info, (f) => go(f), health)));
  let data;
  try {
    data = await api(withFilters("groups", filters, { page, page_size: PAGE_SIZE }));
  } catch (error) {
    summary.textContent = "Could not load the groups.";
    fail(error);
    return {};
  }
  summary.textContent = data.total
    ? `${count(data.total, "group")} · page ${page} of ${data.pages}`
    : "No duplicate groups with these filters.";
  fill(list, ...data.groups.map((g) => card(g, filters)));
  const pageLink = (p, label, key) => h("a", {
    class: "button", href: withFilters("#/groups", filters, { page: p }),
    "aria-keyshortcuts": key, "aria-disabled": p < 1 || p > data.pages ? "true" : null,
  }, label);
  fill(pager, pageLink(page - 1, "← Previous page", "["),
    h("span", {}, `${page} / ${data.pages || 1}`), pageLink(page + 1, "Next page →", "]"));
  say(`Showing ${count(data.groups.length, "group")}.`);
  const cards = () => [...list.querySelectorAll("a.card")];
  const move = (step) => {
    const all = cards();
    const at = all.indexOf(document.activeElement);
    const next = all[Math.min(all.length - 1, Math.max(0, at + step))];
    if (next) next.focus();
  };
  return {
    onKey(event) {
      if (event.key === "j" || event.key === "ArrowRight") move(1);
      else if (event.key === "ArrowLeft") move(-1);
      else if (event.key === "]" && page < data.pages) go(filters, page + 1);
      else if (event.key === "[" && page > 1) go(filters, page - 1);
      else return false;
      return true;
    },
  };
}

function card(group, filters) {
  const marks = group.files.filter((f) => f.mark).length;
  const gone = group.files.filter((f) => !f.present).length;
  // the keeper first, flagged, so that it is always among the thumbnails shown
  const shown = [...group.files.filter((f) => isKeeper(group, f)),
    ...group.files.filter((f) => !isKeeper(group, f))].slice(0, THUMBS_SHOWN);
  const thumbs = shown.map((f) => {
    const img = h("img", { alt: basename(f.path), loading: "lazy", decoding: "async",
      width: 96, height: 96, class: f.present ? "" : "gone" });
    showImage(img, f.file_id);
    return isKeeper(group, f) ? h("span", { class: "thumb kept", title: `Kept: ${group.keeper.reason}` },
      img, h("span", { class: "keep-flag" }, "keep")) : img;
  });
  const more = group.files.length - THUMBS_SHOWN;
  return h("li", {},
    h("a", { class: "card", href: withFilters(`#/group/${group.number}`, filters),
      "aria-label": `Group ${group.number}: ${count(group.files.length, "file")}, ${groupWords(group)}`
        + (group.keeper ? `; ${keeperLine(group)}` : "") },
      h("span", { class: "thumbs" }, thumbs, more > 0 ? h("span", { class: "more" }, `+${more}`) : null),
      h("span", { class: "caption" },
        h("strong", {}, `#${group.number}`), ` ${count(group.files.length, "file")}`,
        marks ? h("span", { class: "badge decided" }, `${marks} marked`) : null,
        gone ? h("span", { class: "badge gone" }, `${gone} not on disk`) : null,
        h("span", { class: "words", title: groupNumbers(group) }, groupWords(group)),
        group.keeper ? h("span", { class: "keeper-line" }, keeperLine(group)) : null)));
}
