// The health view: each check of GET /health (blurry, dark, bright, blank, ...) with its count
// and the thumbnails of the pictures it flags, the worst first, and a link to the duplicate
// groups holding one of them.

import { api, openFile, showImage } from "./api.js";
import { basename, count, fail, fill, h, say } from "./dom.js";

const SHOWN = 24; // flagged pictures per check at first; "More" asks for as many again

export async function showHealth(main) {
  const summary = h("p", { class: "summary", "aria-live": "polite" }, "Checking the pictures…");
  const list = h("div", { class: "health" });
  fill(main, h("h2", {}, "Health"), summary, list);
  let data;
  try {
    data = await api(`health?limit=${SHOWN}`);
  } catch (error) {
    summary.textContent = "Could not run the health checks.";
    fail(error);
    return {};
  }
  const flagged = data.checks.filter((c) => c.count).length;
  summary.textContent = `${count(data.images, "picture")}, ${data.measured.toLocaleString("en")} `
    + `measured · ${count(flagged, "check")} of ${data.checks.length} flag something`;
  // a check that could not run says why in its own section (the outliers' note is both)
  const own = (n) => data.checks.some((c) => c.note && n.includes(c.name.replace("_", " ")));
  fill(list, data.notes.filter((n) => !own(n)).map((n) => h("p", { class: "note" }, n)),
    data.checks.map((c) => section(c)));
  say(`${count(flagged, "health check")} flag pictures.`);
  return {};
}

function section(check) {
  const thumbs = h("ul", { class: "flagged", "aria-label": `Pictures flagged ${check.name}` });
  const more = h("button", { type: "button", hidden: check.files.length >= check.listed,
    onclick: async () => {
      const shown = thumbs.children.length;
      try {
        const page = await api(`health?check=${check.name}&offset=${shown}&limit=${SHOWN}`);
        thumbs.append(...page.checks[0].files.map(thumb));
        more.hidden = thumbs.children.length >= check.listed;
      } catch (error) {
        fail(error);
      }
    } }, "More");
  thumbs.append(...check.files.map(thumb));
  const rule = check.threshold === null ? check.value : `${check.value} ${check.flags} ${check.threshold}`;
  return h("section", { class: "panel check", id: `health-${check.name}`, "aria-labelledby": `h-${check.name}` },
    h("h3", { id: `h-${check.name}` }, check.name.replace("_", " "), " ",
      h("span", { class: `badge ${check.count ? "gone" : "decided"}` },
        check.checked ? `${check.count.toLocaleString("en")} flagged` : "not checked")),
    h("p", { class: "muted" }, `${rule} · ${count(check.checked, "picture")} checked`),
    check.note ? h("p", { class: "note" }, check.note) : null,
    check.count ? h("a", { class: "button", href: `#/groups?health=${check.name}` },
      `Duplicate groups with a picture flagged ${check.name.replace("_", " ")}`) : null,
    thumbs, more);
}

function thumb(file) {
  const img = h("img", { alt: basename(file.path), loading: "lazy", decoding: "async",
    width: 96, height: 96 });
  showImage(img, file.file_id);
  return h("li", {}, h("a", { href: `files/${file.file_id}/content`, target: "_blank",
    title: `${file.path}: ${file.value}`, onclick: (e) => openFile(e, file.file_id) }, img,
    h("span", { class: "caption" }, basename(file.path)), h("span", { class: "value muted" }, file.value)));
}
