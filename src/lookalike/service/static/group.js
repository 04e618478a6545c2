// One group: the images side by side (at one scale, or each fitted), their metadata with the
// best value of each highlighted, the file a plan keeps and why, a loupe, flicker and
// difference, and keyboard triage saved through POST /decisions.

import { api, showImage } from "./api.js";
import { Compare, ZOOMS, attachLoupe } from "./compare.js";
import { basename, bytes, count, fail, fill, h, say } from "./dom.js";
import { PAGE_SIZE, readFilters, withFilters } from "./filters.js";
import { BEST, groupNumbers, groupWords, isBest, isKeeper, keeperOf, matchNumbers } from "./keeper.js";

const MARK_TEXT = { keep: "Keep", quarantine: "Quarantine" };
const MAX_HEIGHT = 0.62; // of the window, for the tallest image

let writes = Promise.resolve(); // decisions are sent one after the other, in key order
let changes = 0; // local changes made; a group asked for before the latest one is stale

export async function showGroup(main, number, params) {
  const filters = readFilters(params);
  const view = { number, filters, selected: 0, zoom: false, level: 2, scale: "same" };
  fill(main, h("p", { class: "summary" }, `Loading group ${number}…`));
  const compare = new Compare();
  const details = new Map(); // file id -> GET /files/{id}
  let loupe = null;

  function fetchGroup() {
    return api(withFilters("groups", filters, { page: number, page_size: 1 }));
  }

  async function load() {
    return adopt(await fetchGroup());
  }

  function adopt(data) {
    view.total = data.total;
    if (!data.groups.length) {
      if (data.total && number > data.total) {
        location.hash = withFilters(`#/group/${data.total}`, filters);
      } else {
        fill(main, h("p", { class: "summary" }, "No duplicate group here any more."),
          h("a", { class: "button", href: withFilters("#/groups", filters) }, "← Back to the groups"));
      }
      return false;
    }
    view.group = data.groups[0];
    view.selected = Math.min(view.selected, view.group.files.length - 1);
    return true;
  }

  // A file's own description (format, EXIF date, metadata), asked once its image is in:
  // the images come first.
  function loadDetails(i) {
    const f = view.group.files[i];
    api(`files/${f.file_id}`).then((detail) => {
      details.set(f.file_id, detail);
      fillFacts(i);
    }, () => {});
  }

  function fillFacts(i) {
    const f = view.group.files[i];
    const shot = main.querySelectorAll("figure.shot")[i];
    if (!f || !shot || Number(shot.dataset.fileId) !== f.file_id) return;
    fill(shot.querySelector("dl"), facts(f, details.get(f.file_id)));
  }

  // The keeper's flag and reason, and the button that makes another file the keeper.
  function showKeeper() {
    const { group } = view;
    main.querySelectorAll("figure.shot").forEach((shot, i) => {
      const f = group.files[i];
      const kept = isKeeper(group, f);
      shot.classList.toggle("kept", kept);
      shot.querySelector(".badge.keeper").hidden = !kept;
      const reason = shot.querySelector(".keep-reason");
      reason.hidden = !kept;
      reason.textContent = kept ? `Kept: ${group.keeper.reason}` : "";
      shot.querySelector("button.make-keeper").hidden = kept || !group.keeper;
      const path = shot.querySelector(".path");
      path.classList.toggle("best", isBest(group, f, "path"));
      path.title = isBest(group, f, "path") ? `best of the group: ${BEST.path}` : "";
      fillFacts(i);
    });
  }

  function render() {
    const { group } = view;
    const frames = [];
    const figures = group.files.map((f, i) => {
      const img = h("img", { class: "full", alt: `Image ${i + 1}: ${basename(f.path)}`,
        width: f.width, height: f.height, draggable: "false" });
      showImage(img, f.file_id, "content");
      img.addEventListener("load", sizeImages);
      for (const done of ["load", "error"]) img.addEventListener(done, () => loadDetails(i), { once: true });
      const loupeBox = h("div", { class: "loupe", hidden: true, "aria-hidden": "true" });
      const frame = h("div", { class: "frame", onclick: () => { select(i); toggleZoom(); } }, img, loupeBox);
      frames.push({ frame, img, loupe: loupeBox, turn: f.from_first });
      return figure(f, i, frame);
    });
    const shots = h("div", { class: "shots", "aria-label": "Images of the group" }, figures);
    const pageOfGroup = Math.ceil(view.number / PAGE_SIZE);
    const choose = (id, label, chosen) => h("span", {}, h("label", { for: id }, label),
      h("select", { id, onchange: () => compare.mode && startCompare(compare.mode) },
        group.files.map((f, i) => h("option", { value: i, selected: i === chosen }, `${i + 1}`))));
    const zoomLevel = h("select", { id: "zoom-level", "aria-label": "Loupe magnification",
      onchange: (e) => { view.level = Number(e.target.value); loupe.redraw(); } },
    ZOOMS.map((z) => h("option", { value: z, selected: z === view.level }, z === 1 ? "1:1" : `${z}×`)));
    fill(main, h("section", { class: "group-view", "aria-labelledby": "group-title" },
      h("div", { class: "row" },
        h("a", { class: "button", href: withFilters("#/groups", filters,
          pageOfGroup > 1 ? { page: pageOfGroup } : {}), "aria-keyshortcuts": "Escape" }, "← Groups"),
        h("h2", { id: "group-title" }, `Group ${view.number} of ${view.total.toLocaleString("en")}`),
        h("span", { class: "muted group-words", title: groupNumbers(group) },
          `${count(group.files.length, "file")} · ${groupWords(group)}`),
        h("span", { class: "spacer" }),
        h("button", { type: "button", onclick: () => goTo(-1), disabled: view.number <= 1,
          "aria-keyshortcuts": "ArrowLeft" }, "← Previous"),
        h("button", { type: "button", onclick: () => goTo(1), disabled: view.number >= view.total,
          "aria-keyshortcuts": "j ArrowRight" }, "Next →")),
      h("p", { class: "choice", id: "choice", "aria-live": "polite" }),
      h("div", { class: "toolbar", role: "toolbar", "aria-label": "View" },
        h("fieldset", {}, h("legend", {}, "Scale"),
          radio("scale", "same", "Same scale", view.scale === "same"),
          radio("scale", "fit", "Fit each", view.scale === "fit")),
        h("fieldset", {}, h("legend", {}, "Loupe"),
          h("button", { type: "button", id: "zoom-toggle", "aria-pressed": String(view.zoom),
            "aria-keyshortcuts": "z", onclick: toggleZoom }, "Zoom (z)"), zoomLevel),
        h("fieldset", {}, h("legend", {}, "Compare"),
          choose("cmp-a", "A ", 0), choose("cmp-b", " B ", Math.min(1, group.files.length - 1)),
          h("button", { type: "button", "aria-keyshortcuts": "f", onclick: () => startCompare("flicker") }, "Flicker (f)"),
          h("button", { type: "button", "aria-keyshortcuts": "d", onclick: () => startCompare("difference") }, "Difference (d)"),
          h("button", { type: "button", onclick: () => compare.stop() }, "Off")),
        h("button", { type: "button", class: "danger-soft", "aria-keyshortcuts": "Shift+N",
          onclick: () => notDuplicate(true) }, "None of these are duplicates (N)")),
      compare.panel, shots));
    main.querySelectorAll('input[name="scale"]').forEach((input) => input.addEventListener(
      "change", () => { view.scale = input.value; sizeImages(); }));
    loupe = attachLoupe(frames, view, (level) => { zoomLevel.value = level; });
    showKeeper();
    showChoice();
    select(view.selected, false);
    sizeImages();
  }

  // [label, value, the keeper.best value it is, a tooltip]; the best values in colour
  function facts(f, detail) {
    const format = f.format || (detail ? detail.format : "");
    const rows = [
      ["Size", `${f.width} × ${f.height}`, "resolution"],
      ["Bytes", `${bytes(f.bytes)} (${f.bytes.toLocaleString("en")})`, "bytes"],
      ["Format", detail ? `${format} ${detail.mode}` : format || "…", "format"],
      ["Taken", detail ? detail.taken || "no EXIF date" : "…"],
      ["Modified", detail ? new Date(detail.mtime_ns / 1e6).toLocaleString("en-GB") : "…", "date"],
      ["Matched", f.words || "", null, matchNumbers(f)],
      ...Object.entries((detail && detail.meta) || {}).map(([k, v]) => [k, String(v)]),
    ];
    return rows.filter(([, v]) => v).map(([k, v, value, tip]) => {
      const best = value && isBest(view.group, f, value);
      return [h("dt", {}, k), h("dd", { class: best ? "best" : null, dataset: { row: k.toLowerCase(), ...(value ? { value } : {}) },
        title: best ? `best of the group: ${BEST[value]}` : tip || null },
      v, best ? h("span", { class: "best-tag" }, "best") : null)];
    });
  }

  function figure(f, i, frame) {
    const button = (key, label, action) => h("button", { type: "button", "aria-keyshortcuts": key,
      onclick: (e) => { e.stopPropagation(); select(i, false); action(); } }, label);
    return h("figure", { class: "shot", tabindex: 0, dataset: { index: i, fileId: f.file_id },
      "aria-label": `Image ${i + 1} of ${view.group.files.length}: ${basename(f.path)}`,
      onfocus: () => select(i, false) },
    h("div", { class: "shot-head" }, h("span", { class: "num" }, `${i + 1}`),
      h("span", { class: "badge keeper", hidden: true, title: "The file a plan keeps" }, "plan keeps"),
      h("span", { class: "badge mark", dataset: { mark: f.mark || "" } }, MARK_TEXT[f.mark] || "Rules decide"),
      f.present ? null : h("span", { class: "badge gone" }, "not on disk")),
    frame,
    h("figcaption", {},
      h("p", { class: "keep-reason", hidden: true }),
      h("dl", {}, facts(f, null)),
      h("p", { class: "path" }, f.path),
      h("div", { class: "buttons" },
        h("button", { type: "button", class: "make-keeper", hidden: true,
          onclick: (e) => { e.stopPropagation(); select(i, false); makeKeeper(i); } },
        "Make this the keeper"),
        button("k", "Keep (k)", () => mark("keep")),
        button("q", "Quarantine (q)", () => mark("quarantine")),
        button("n", "Not a duplicate (n)", () => notDuplicate(false)),
        button("u", "Clear (u)", () => mark(null)))));
  }

  function radio(name, value, label, checked) {
    const id = `${name}-${value}`;
    return h("span", {}, h("input", { type: "radio", name, id, value, checked }), h("label", { for: id }, label));
  }

  function sizeImages() {
    const shots = main.querySelector(".shots");
    if (!shots) return;
    const files = view.group.files;
    const imgs = [...shots.querySelectorAll("img.full")];
    const gap = 16;
    const across = Math.min(files.length, 4);
    const chrome = 20; // a figure's padding and border
    const column = Math.floor(Math.min(520, (shots.clientWidth - gap * (across - 1)) / across - chrome));
    const tallest = window.innerHeight * MAX_HEIGHT;
    const size = (img, f) => [img.naturalWidth || f.width, img.naturalHeight || f.height];
    const sizes = imgs.map((img, i) => size(img, files[i]));
    const common = Math.min(4, ...sizes.map(([w, hgt]) => Math.min(column / w, tallest / hgt)));
    imgs.forEach((img, i) => {
      const [w, hgt] = sizes[i];
      const scale = view.scale === "same" ? common : Math.min(4, column / w, tallest / hgt);
      img.style.width = `${Math.round(w * scale)}px`;
      img.style.height = `${Math.round(hgt * scale)}px`;
      img.closest(".shot").style.width = `${Math.max(220, column) + chrome}px`;
    });
    if (loupe) loupe.redraw();
  }

  function select(i, focus = true) {
    view.selected = i;
    main.querySelectorAll(".shot").forEach((el, k) => {
      el.classList.toggle("selected", k === i);
      el.setAttribute("aria-current", k === i ? "true" : "false");
      if (k === i && focus) {
        el.focus({ preventScroll: true });
        const top = el.getBoundingClientRect().top; // its number and mark in view, below the bar
        if (top < 64 || top > window.innerHeight - 120) el.scrollIntoView({ block: "start" });
      }
    });
  }

  function showChoice() {
    const { group } = view;
    const files = group.files;
    const kept = keeperOf(group);
    const plan = kept ? ` The plan keeps image ${files.indexOf(kept) + 1}, ${basename(kept.path)}: `
      + `${group.keeper.reason}.` : "";
    const keep = files.filter((f) => f.mark === "keep").map((f) => files.indexOf(f) + 1);
    const out = files.filter((f) => f.mark === "quarantine").map((f) => files.indexOf(f) + 1);
    const parts = [];
    const images = (list) => `${list.length === 1 ? "image" : "images"} ${list.join(", ")}`;
    if (keep.length) parts.push(`keep ${images(keep)}`);
    if (out.length) parts.push(`quarantine ${images(out)}`);
    const rest = files.length - keep.length - out.length;
    const others = rest === 1 ? "the other file follows" : `the ${rest} other files follow`;
    main.querySelector("#choice").textContent = (parts.length
      ? `Your choice: ${parts.join("; ")}${rest ? `; ${others} the keep rules` : ""}.`
      : "No choice yet: the keep rules choose one file to keep and quarantine the others.") + plan;
    main.querySelectorAll(".shot .badge.mark").forEach((badge, k) => {
      badge.dataset.mark = files[k].mark || "";
      badge.textContent = MARK_TEXT[files[k].mark] || "Rules decide";
    });
  }

  function send(body) {
    const sent = writes.then(() => api("decisions", { method: "POST", json: body }));
    writes = sent.catch(() => {});
    return sent;
  }

  async function mark(value) {
    const f = view.group.files[view.selected];
    const before = f.mark;
    f.mark = value;
    changes += 1;
    showChoice();
    try {
      await send({ decision: value || "clear", file_ids: [f.file_id] });
      say(value ? `Saved: ${MARK_TEXT[value].toLowerCase()} ${basename(f.path)}.`
        : `Cleared the mark of ${basename(f.path)}.`);
    } catch (error) {
      f.mark = before;
      showChoice();
      fail(error);
    }
    refresh(); // the keeper follows the marks
  }

  // Mark file i keep and clear the other keep marks of the group: the plan then keeps it.
  async function makeKeeper(i) {
    const files = view.group.files;
    const f = files[i];
    const others = files.filter((o) => o !== f && o.mark === "keep");
    changes += 1;
    try {
      await send({ decision: "keep", file_ids: [f.file_id] });
      // one at a time: a clear of several files also forgets their decisions between them
      for (const o of others) await send({ decision: "clear", file_ids: [o.file_id] });
    } catch (error) {
      fail(error);
      refresh();
      return;
    }
    await refresh();
    say(`Saved: ${basename(f.path)} is the keeper (marked keep)`
      + (others.length ? `; cleared the keep mark of ${others.map((o) => basename(o.path)).join(", ")}.` : "."));
  }

  // The group as the server has it now (its keeper follows the marks), unless a later change
  // will ask again.
  async function refresh() {
    const asked = changes;
    let data;
    try {
      data = await writes.then(fetchGroup);
    } catch (error) {
      fail(error);
      return;
    }
    if (asked !== changes) return;
    const before = view.group.files.map((f) => f.file_id).join();
    if (!adopt(data)) return;
    if (view.group.files.map((f) => f.file_id).join() === before) {
      showKeeper();
      showChoice();
    } else {
      render();
    }
  }

  async function notDuplicate(wholeGroup) {
    const files = view.group.files;
    const chosen = files[view.selected];
    const body = wholeGroup ? { decision: "not-duplicate", file_ids: files.map((f) => f.file_id) }
      : { decision: "not-duplicate", file_ids: [chosen.file_id],
        others: files.filter((f) => f !== chosen).map((f) => f.file_id) };
    try {
      await send(body);
    } catch (error) {
      fail(error);
      return;
    }
    compare.stop();
    say(wholeGroup ? "Saved: these files are not duplicates of each other."
      : `Saved: ${basename(chosen.path)} is not a duplicate of the others.`);
    if (await load()) render(); // the group as it is now, or the next one where it is gone
  }

  function toggleZoom() {
    view.zoom = !view.zoom;
    const button = main.querySelector("#zoom-toggle");
    if (button) button.setAttribute("aria-pressed", String(view.zoom));
    if (view.zoom) loupe.centre(); else loupe.redraw();
  }

  function startCompare(mode) {
    const imgs = [...main.querySelectorAll("img.full")];
    const a = Number(main.querySelector("#cmp-a").value);
    const b = Number(main.querySelector("#cmp-b").value);
    if (!imgs[a].naturalWidth || !imgs[b].naturalWidth) {
      say("The images are still loading (or cannot be shown).", "error");
      return;
    }
    const side = (i) => ({ img: imgs[i], name: `${i + 1} ${basename(view.group.files[i].path)}`,
      turn: view.group.files[i].from_first });
    compare.start(mode, side(a), side(b));
  }

  function goTo(step) {
    const next = view.number + step;
    if (next >= 1 && next <= view.total) location.hash = withFilters(`#/group/${next}`, filters);
  }

  const keys = {
    k: () => mark("keep"), q: () => mark("quarantine"), u: () => mark(null),
    n: () => notDuplicate(false), N: () => notDuplicate(true),
    j: () => goTo(1), ArrowRight: () => goTo(1), ArrowLeft: () => goTo(-1), p: () => goTo(-1),
    z: () => toggleZoom(), f: () => startCompare("flicker"), d: () => startCompare("difference"),
    o: () => compare.stop(),
    s: () => { view.scale = view.scale === "same" ? "fit" : "same"; render(); },
    Escape: () => {
      if (compare.mode) compare.stop();
      else location.hash = withFilters("#/groups", filters);
    },
  };

  try {
    if (await load()) render();
  } catch (error) {
    fill(main, h("p", { class: "summary" }, "Could not load the group."));
    fail(error);
    return {};
  }
  window.addEventListener("resize", sizeImages);
  return {
    onKey(event) {
      if (!view.group) return false;
      if (/^[1-9]$/.test(event.key) && Number(event.key) <= view.group.files.length) {
        select(Number(event.key) - 1);
        return true;
      }
      const action = keys[event.key];
      if (!action) return false;
      action();
      return true;
    },
    close() {
      compare.stop();
      window.removeEventListener("resize", sizeImages);
    },
  };
}
