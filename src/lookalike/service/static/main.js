// The web UI of `lookalike serve`: a router over the address's #fragment, the help, and the
// keys every view shares. Views: #/groups, #/group/N, #/actions, #/query, #/health,
// #/partial.

import { api } from "./api.js";
import { showActions } from "./actions.js";
import { fail, typing } from "./dom.js";
import { showGrid } from "./grid.js";
import { showGroup } from "./group.js";
import { showHealth } from "./health.js";
import { showPartial } from "./partial.js";
import { showQuery } from "./query.js";

const main = document.getElementById("main");
let current = {}; // the view's controller: {onKey(event) -> handled, close()}
let info = null; // a promise of GET /info

// What the index holds (for the filters), asked once; views ask for their own data first.
function indexInfo() {
  if (!info) {
    info = api("info").then((found) => {
      document.getElementById("index-info").textContent =
        `${found.index} · ${found.files.toLocaleString("en")} files`;
      return found;
    }, (error) => {
      fail(error);
      info = null;
      return { methods: ["auto"], meta: {} };
    });
  }
  return info;
}

async function route() {
  if (current.close) current.close();
  current = {};
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [view = "groups", arg] = path.split("/");
  const params = new URLSearchParams(query);
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    const on = link.dataset.view === (view === "group" ? "groups" : view);
    link.setAttribute("aria-current", on ? "page" : "false");
  }
  const known = indexInfo(); // a promise
  if (view === "group" && Number(arg) >= 1) current = await showGroup(main, Number(arg), params, known);
  else if (view === "actions") current = await showActions(main, params, known);
  else if (view === "query") current = await showQuery(main, params, known);
  else if (view === "health") current = await showHealth(main);
  else if (view === "partial") current = await showPartial(main, params);
  else current = await showGrid(main, params, known);
  document.title = `lookalike · ${view}`;
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
  if (document.querySelector("dialog[open]")) return;
  if (event.key === "?") {
    document.getElementById("help").showModal();
  } else if (!(current.onKey && current.onKey(event))) {
    return;
  }
  event.preventDefault();
});

document.getElementById("help-button").addEventListener("click",
  () => document.getElementById("help").showModal());
window.addEventListener("hashchange", route);
route();
