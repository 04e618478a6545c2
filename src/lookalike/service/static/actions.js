// Bulk keep rules and actions: build a plan from the groups (all, or those of the filters), the
// keep rules and your marks; review it; dry run; apply it after an explicit confirmation; list
// the runs and undo one. The web only quarantines (into the index's quarantine folder).

import { api, showImage } from "./api.js";
import { basename, bytes, count, fail, fill, h, say, when } from "./dom.js";
import { describe, readFilters } from "./filters.js";

const GROUPS_SHOWN = 50; // plan groups a page

let lastPlan = null; // survives moving between views

export async function showActions(main, params, known) {
  // The rules and their default order come from the server (actions/keeper.py), never a copy.
  const { keep_rules: RULES = [], default_keep_rules: DEFAULT_RULES = [] } = await known;
  const filters = readFilters(params);
  const filtered = [...params.keys()].length > 0;
  const planBox = h("section", { class: "panel", id: "plan", "aria-labelledby": "plan-title" });
  const runsBox = h("section", { class: "panel", id: "runs", "aria-labelledby": "runs-title" });
  let folders = [];
  try {
    folders = (await api("folders")).folders;
  } catch (error) {
    fail(error);
  }
  const ruleSelect = (n) => h("select", { id: `rule-${n}`, "aria-label": `Keep rule ${n + 1}` },
    h("option", { value: "" }, "(none)"),
    RULES.map((r) => h("option", { value: r, selected: DEFAULT_RULES[n] === r }, r)));
  const folderSelect = (id) => h("select", { id, multiple: true, size: Math.min(6, Math.max(2, folders.length)) },
    folders.map((f) => h("option", { value: f.path }, `${f.path} (${count(f.files, "file")})`)));
  const rules = [0, 1, 2].map((n) => ruleSelect(n));
  const prefer = folderSelect("prefer");
  const reference = folderSelect("reference");
  const scope = h("fieldset", {}, h("legend", {}, "Groups"),
    h("span", {}, h("input", { type: "radio", name: "scope", id: "scope-all", value: "all", checked: !filtered }),
      h("label", { for: "scope-all" }, "All groups")),
    h("span", {}, h("input", { type: "radio", name: "scope", id: "scope-filtered", value: "filtered",
      checked: filtered, disabled: !filtered }),
    h("label", { for: "scope-filtered" }, filtered ? `Only the filtered ones (${describe(filters)})`
      : "Only filtered ones (set filters in the grid first)")));
  const useMarks = h("input", { type: "checkbox", id: "use-marks", checked: true });
  const form = h("form", { class: "panel rules", "aria-labelledby": "rules-title",
    onsubmit: (e) => { e.preventDefault(); buildPlan(); } },
  h("h3", { id: "rules-title" }, "Keep rules"),
  h("p", { class: "muted" }, "Each group keeps one file: your keep marks first, then files in a "
    + "reference or preferred folder, then the rules in order. The other files are quarantined "
    + "(moved into the index's quarantine folder, with a journal for undo). Reference files are never touched."),
  h("div", { class: "rule-row" }, rules.map((r, n) => h("span", {}, h("label", { for: r.id }, `${n + 1}.`), r))),
  h("div", { class: "folder-row" },
    h("span", {}, h("label", { for: "prefer" }, "Prefer files under"), prefer),
    h("span", {}, h("label", { for: "reference" }, "Reference folders (never touched)"), reference)),
  scope,
  h("span", {}, useMarks, h("label", { for: "use-marks" }, "Follow my keep / quarantine marks")),
  h("button", { type: "submit", class: "primary" }, "Build plan"));
  fill(main, h("h2", {}, "Actions"), form, planBox, runsBox);
  if (lastPlan) drawPlan(lastPlan);
  loadRuns();

  async function buildPlan() {
    const chosen = (select) => [...select.selectedOptions].map((o) => o.value);
    const onlyFiltered = main.querySelector("#scope-filtered").checked;
    const body = {
      rules: rules.map((r) => r.value).filter(Boolean),
      prefer_path: chosen(prefer),
      reference: chosen(reference),
      use_marks: useMarks.checked,
      ...(onlyFiltered ? filters : {}),
    };
    if (!body.rules.length) delete body.rules;
    fill(planBox, h("p", { class: "summary" }, "Building the plan…"));
    try {
      lastPlan = { plan: await api("plan", { method: "POST", json: body }), dry: null, applied: null };
    } catch (error) {
      fill(planBox);
      fail(error);
      return;
    }
    drawPlan(lastPlan);
    say(`Plan ${lastPlan.plan.plan_id}: ${count(lastPlan.plan.actions, "file")} to quarantine. Nothing is touched yet.`);
  }

  function drawPlan(state, page = 0) {
    const { plan } = state;
    const groups = plan.groups.slice(page * GROUPS_SHOWN, (page + 1) * GROUPS_SHOWN);
    const pages = Math.ceil(plan.groups.length / GROUPS_SHOWN);
    const rows = groups.map((g, n) => h("tr", {},
      h("td", {}, `${page * GROUPS_SHOWN + n + 1}`),
      h("td", {}, fileCell(g.keep, "keep", g.keep.reason), g.kept.map((f) => fileCell(f, "keep", f.reason)),
        g.reference.map((f) => fileCell(f, "reference", "reference"))),
      h("td", {}, g.quarantine.length ? g.quarantine.map((f) => fileCell(f, "quarantine")) : h("span", { class: "muted" }, "nothing")),
      h("td", {}, g.skipped.map((f) => h("div", {}, basename(f.path), h("span", { class: "muted" }, ` — ${f.reason}`))))));
    const pager = pages > 1 ? h("nav", { class: "pager", "aria-label": "Plan pages" },
      h("button", { type: "button", disabled: page === 0, onclick: () => drawPlan(state, page - 1) }, "← Previous"),
      h("span", {}, `${page + 1} / ${pages}`),
      h("button", { type: "button", disabled: page + 1 >= pages, onclick: () => drawPlan(state, page + 1) }, "Next →")) : null;
    fill(planBox,
      h("h3", { id: "plan-title" }, "Plan"),
      h("p", { class: "summary", id: "plan-summary" },
        `${count(plan.groups.length, "group")}, ${count(plan.actions, "file")} to quarantine `
        + `(${bytes(plan.bytes)}) · rules ${plan.rules.join(", ")}`
        + (plan.reference.length ? ` · reference ${plan.reference.join(", ")}` : "")
        + (plan.prefer_path.length ? ` · prefer ${plan.prefer_path.join(", ")}` : "")),
      h("div", { class: "row" },
        h("button", { type: "button", id: "dry-run", onclick: dryRun }, "Dry run"),
        h("button", { type: "button", id: "apply", class: "danger", disabled: !plan.actions || state.applied,
          onclick: confirmApply }, "Apply…")),
      state.dry ? outcome(state.dry) : null,
      state.applied ? outcome(state.applied) : null,
      h("table", { class: "plan-table" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "#"), h("th", { scope: "col" }, "Kept"),
          h("th", { scope: "col" }, "Quarantined"), h("th", { scope: "col" }, "Skipped"))),
        h("tbody", {}, rows)),
      pager);
  }

  function fileCell(f, kind, note) {
    const img = h("img", { alt: "", width: 48, height: 48, loading: "lazy" });
    if (f.file_id !== null) showImage(img, f.file_id);
    return h("div", { class: `plan-file ${kind}` }, img,
      h("span", { title: f.path }, basename(f.path), note ? h("span", { class: "muted" }, ` (${note})`) : "",
        f.bytes ? h("span", { class: "muted" }, ` · ${bytes(f.bytes)}`) : ""));
  }

  function outcome(result) {
    const c = result.counts;
    const title = result.executed
      ? `Applied: run ${result.run}: ${c.done} moved to quarantine, ${c.skipped} skipped, ${c.failed} failed.`
      : `Dry run: ${c.would} would be moved, ${c.skipped} skipped. Nothing was changed.`;
    const notable = result.outcomes.filter((o) => o.status === "skipped" || o.status === "failed");
    return h("div", { class: `outcome ${result.executed ? "applied" : "dry"}`, id: result.executed ? "applied" : "dry" },
      h("p", {}, h("strong", {}, title)),
      notable.length ? h("ul", {}, notable.slice(0, 200).map((o) => h("li", {},
        `${o.status}: ${basename(o.path)} — ${o.reason}`))) : null);
  }

  async function dryRun() {
    try {
      lastPlan.dry = await api("apply", { method: "POST", json: { plan_id: lastPlan.plan.plan_id } });
    } catch (error) {
      fail(error);
      return;
    }
    drawPlan(lastPlan);
    say(`Dry run: ${lastPlan.dry.counts.would} would be moved, ${lastPlan.dry.counts.skipped} skipped.`);
  }

  function confirmApply() {
    const dialog = document.getElementById("confirm-dialog");
    const n = lastPlan.plan.actions;
    dialog.querySelector("#confirm-text").textContent = `Move ${count(n, "file")} (${bytes(lastPlan.plan.bytes)}) `
      + "into the quarantine folder? Each file is checked again just before it is moved; "
      + "Undo puts them all back.";
    dialog.querySelector("#confirm-ok").textContent = `Move ${count(n, "file")}`;
    dialog.returnValue = "";
    dialog.showModal();
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "ok") apply();
    }, { once: true });
  }

  async function apply() {
    say("Applying the plan…");
    try {
      lastPlan.applied = await api("apply", { method: "POST", json: { plan_id: lastPlan.plan.plan_id, execute: true } });
    } catch (error) {
      fail(error);
      return;
    }
    drawPlan(lastPlan);
    say(`Run ${lastPlan.applied.run}: ${lastPlan.applied.counts.done} moved to quarantine.`);
    loadRuns();
  }

  async function loadRuns() {
    let runs;
    try {
      runs = (await api("runs")).runs;
    } catch (error) {
      fail(error);
      return;
    }
    fill(runsBox, h("h3", { id: "runs-title" }, "Runs"),
      runs.length ? h("table", { class: "runs-table" },
        h("thead", {}, h("tr", {}, ["Run", "Started", "State", "Steps", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, runs.map((r) => h("tr", { dataset: { run: r.run } },
          h("td", {}, h("code", {}, r.run)), h("td", {}, when(r.started)),
          h("td", {}, r.finished ? "finished" : "interrupted"),
          h("td", {}, `${r.done} done, ${r.undone} undone`),
          h("td", {}, h("button", { type: "button", class: "undo", disabled: r.done > 0 && r.undone >= r.done,
            "aria-label": `Undo run ${r.run}`, onclick: () => undo(r.run) }, "Undo"))))))
        : h("p", { class: "muted" }, "No runs yet."));
  }

  async function undo(run) {
    say(`Undoing run ${run}…`);
    try {
      const result = await api("undo", { method: "POST", json: { run } });
      say(`Run ${run} undone: ${count(result.restored.length, "file")} restored`
        + (result.problems.length ? `, ${count(result.problems.length, "problem")}: ${result.problems.map((p) => `${basename(p.path)}: ${p.reason}`).join("; ")}` : "."),
      result.problems.length ? "error" : "info");
      if (lastPlan && lastPlan.applied && lastPlan.applied.run === run) lastPlan.applied = null;
    } catch (error) {
      fail(error);
    }
    loadRuns();
  }

  return {};
}
