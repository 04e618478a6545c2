// The partial copies view: crops and pictures placed inside larger ones (GET /partial), each
// pair side by side, said in plain words, with the smaller picture's frame drawn on the larger
// one's thumbnail. The frame is a box placed in percent of a wrapper that is exactly the size
// of the shown thumbnail, so it stays in place at any scale.

import { api, openFile, showImage } from "./api.js";
import { basename, count, fail, fill, h, say } from "./dom.js";

const PAGE_SIZE = 24; // pairs a page
const SIDE = 220; // px, the longest side a thumbnail is shown at

// The view's controller comes back at once: the search may take minutes on a large index,
// and leaving the view (close) must stop asking for it.
export async function showPartial(main, params) {
  const page = Math.max(1, Math.floor(Number(params.get("page"))) || 1);
  const summary = h("p", { class: "summary", "aria-live": "polite" },
    "Looking for crops and pictures placed inside others…");
  const list = h("ol", { class: "partials", start: (page - 1) * PAGE_SIZE + 1 });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of partial copies" });
  fill(main, h("h2", {}, "Partial copies"), summary,
    h("p", { class: "muted" }, "Crops and pictures placed inside others, found by local "
      + "features, containments first: the frame shows where the picture on the left lies in "
      + "the one on the right."), list, pager);
  const go = (to) => { location.hash = `#/partial?page=${to}`; };
  const view = {
    closed: false,
    pages: 0,
    close() { this.closed = true; },
    onKey(event) {
      if (event.key === "]" && page < this.pages) go(page + 1);
      else if (event.key === "[" && page > 1) go(page - 1);
      else return false;
      return true;
    },
  };
  load(view, page, summary, list, pager, go);
  return view;
}

async function load(view, page, summary, list, pager, go) {
  const started = Date.now();
  let data;
  try {
    // The server searches once per state of the index and answers `computing` meanwhile
    // (each answer after a few seconds' wait): ask until it is done or the view is left.
    for (;;) {
      data = await api(`partial?page=${page}&page_size=${PAGE_SIZE}`);
      if (!data.computing || view.closed) break;
      summary.textContent = "Still looking for crops and pictures placed inside others "
        + `(${Math.round((Date.now() - started) / 1000)} s so far; the result is kept until the index changes)…`;
    }
  } catch (error) {
    if (view.closed) return;
    summary.textContent = "Could not look for partial copies.";
    fail(error);
    return;
  }
  if (view.closed) return;
  if (data.reason) {
    summary.textContent = "No partial copies can be found in this index.";
    fill(list, h("li", { class: "note" }, data.reason));
    say("This index has no local features.");
    return;
  }
  view.pages = data.pages;
  summary.textContent = data.total
    ? `${count(data.total, "partial copy", "partial copies")}${data.capped ? " (the strongest)" : ""}`
      + (data.pages > 1 ? ` · page ${data.page} of ${data.pages}` : "")
    : "No crops or pictures placed inside others were found.";
  fill(list, data.pairs.map(card));
  fill(pager, data.pages > 1 ? [
    h("button", { type: "button", disabled: page <= 1, onclick: () => go(page - 1) }, "Previous"),
    h("span", {}, `Page ${data.page} of ${data.pages}`),
    h("button", { type: "button", disabled: page >= data.pages, onclick: () => go(page + 1) }, "Next"),
  ] : null);
  say(`${count(data.total, "partial copy", "partial copies")} found.`);
}

function card(pair) {
  const number = pair.number;
  return h("li", { class: "panel partial", dataset: { number: String(number) },
    "aria-labelledby": `partial-${number}` },
  h("h3", { class: "partial-words", id: `partial-${number}` }, basename(pair.inner.path),
    h("span", { class: "muted" }, ` · in ${basename(pair.outer.path)}: `), pair.words),
  h("div", { class: "partial-pair" },
    side(pair.inner, "The smaller picture", null, pair.relation),
    side(pair.outer, "The larger picture", pair.box_fraction, pair.relation)),
  h("p", { class: "muted partial-detail" }, pair.detail));
}

// One picture of the pair: its thumbnail at its own aspect ratio, a frame drawn on it where
// `box` (fractions of its width and height) says, and its path.
function side(file, label, box, relation) {
  const scale = SIDE / Math.max(file.width, file.height, 1);
  const width = Math.max(1, Math.round(file.width * scale));
  const height = Math.max(1, Math.round(file.height * scale));
  const img = h("img", { alt: basename(file.path), decoding: "async", loading: "lazy",
    width, height, style: `aspect-ratio: ${width} / ${height}` });
  showImage(img, file.file_id);
  const frame = box ? h("span", { class: `partial-box ${relation}`, "aria-hidden": "true",
    style: `left:${100 * box[0]}%;top:${100 * box[1]}%;`
      + `width:${100 * (box[2] - box[0])}%;height:${100 * (box[3] - box[1])}%` }) : null;
  return h("figure", { class: "partial-side" },
    h("a", { class: "partial-thumb", href: `files/${file.file_id}/content`, target: "_blank",
      style: `width:${width}px`, title: `${label}: ${file.path} (${file.width} × ${file.height})`,
      onclick: (e) => openFile(e, file.file_id) }, img, frame),
    h("figcaption", {}, h("span", { class: "muted" }, `${label} · ${file.width} × ${file.height}`),
      h("span", { class: "path" }, file.path)));
}
