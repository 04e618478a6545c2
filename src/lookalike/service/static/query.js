// The query page: drop or pick a picture, POST /query, and see what the index holds like it.

import { api, openFile, showImage } from "./api.js";
import { basename, count, fail, fill, h, say } from "./dom.js";

export async function showQuery(main, params, infoPromise) {
  const info = await infoPromise;
  const input = h("input", { type: "file", id: "query-file", accept: "image/*", class: "visually-hidden" });
  const method = h("select", { id: "query-method" },
    (info.methods || ["auto"]).map((m) => h("option", { value: m }, m)));
  const preview = h("img", { class: "query-preview", alt: "", hidden: true });
  const results = h("section", { class: "panel", id: "query-results", "aria-live": "polite" });
  const drop = h("label", { for: "query-file", class: "drop", tabindex: 0,
    onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } } },
  h("strong", {}, "Drop a picture here"), h("span", {}, "or press to choose a file"));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) run(e.dataTransfer.files[0]);
  });
  input.addEventListener("change", () => { if (input.files.length) run(input.files[0]); });
  fill(main, h("h2", {}, "Is this picture already in the index?"),
    h("div", { class: "query-row" }, drop, input, preview),
    h("p", {}, h("label", { for: "query-method" }, "Method "), method), results);

  async function run(file) {
    preview.src = URL.createObjectURL(file);
    preview.alt = `The query: ${file.name}`;
    preview.hidden = false;
    fill(results, h("p", { class: "summary" }, `Searching for ${file.name}…`));
    const form = new FormData();
    form.append("file", file, file.name);
    let data;
    try {
      data = await api(`query?method=${encodeURIComponent(method.value)}&limit=50`, { method: "POST", form });
    } catch (error) {
      fill(results, h("p", { class: "summary" }, "The search failed."));
      fail(error);
      return;
    }
    fill(results,
      h("h3", {}, data.matches.length ? `${count(data.matches.length, "match", "matches")} for ${data.name}`
        : `Nothing in the index looks like ${data.name}.`),
      h("ol", { class: "matches" }, data.matches.map((m) => {
        const img = showImage(h("img", { alt: basename(m.path), width: 96, height: 96, loading: "lazy" }), m.file_id);
        return h("li", { class: "match", dataset: { fileId: m.file_id } }, img,
          h("div", {},
            h("p", { class: "path" }, m.path),
            // the match in words; the method, distance and transform in the tooltip
            h("p", { class: "words", title: `${m.method} · distance ${m.distance} · ${m.transform}` +
              ` · score ${(m.score * 100).toFixed(1)}%` }, m.words),
            h("a", { href: `files/${m.file_id}/content`, target: "_blank", rel: "noopener",
              onclick: (e) => openFile(e, m.file_id) }, "Open the file")));
      })));
    say(`${count(data.matches.length, "match", "matches")} for ${data.name}.`);
  }
  return {};
}
