// The keeper of a group and its matches in words, for the grid and a group. The server says
// which file a plan keeps and why (GET /groups' keeper: the default keep rules after your
// marks, as `lookalike plan` chooses) and each file's match in words; here they are shown.

import { basename } from "./dom.js";

// keeper.best's values, as a person reads them next to the value
export const BEST = {
  resolution: "largest resolution", bytes: "largest file", format: "lossless format",
  date: "oldest", path: "shortest path",
};

export function isKeeper(group, f) {
  return Boolean(group.keeper) && group.keeper.file_id === f.file_id;
}

export function isBest(group, f, value) {
  const best = group.keeper && group.keeper.best[value];
  return Boolean(best) && best.includes(f.file_id);
}

export function keeperOf(group) {
  return group.keeper ? group.files.find((f) => f.file_id === group.keeper.file_id) : undefined;
}

// As report/words.py's percent: never 100% unless identical.
function percent(score) {
  const shown = Math.round(Math.max(0, Math.min(1, score)) * 100);
  return `${shown === 100 && score < 1 ? 99 : shown}%`;
}

function kindOf(f) {
  if (!f.method) return "";
  if (f.method === "bytes") return "identical files";
  if (f.method === "pixels") return "same pixels";
  const turn = f.transform || "identity";
  if (turn === "mirror") return "mirrored copies";
  if (turn.startsWith("mirror+")) return "mirrored and turned copies";
  if (turn !== "identity") return "turned copies";
  return f.method === "embed" || f.method === "local" ? "edited copies" : "resized or re-encoded copies";
}

// "same pixels, resized or re-encoded copies · similarity 94% or more"
export function groupWords(group) {
  const kinds = [...new Set(group.files.map(kindOf).filter(Boolean))];
  const scores = group.files.filter((f) => f.score !== null && f.score !== undefined
    && f.method !== "bytes" && f.method !== "pixels").map((f) => f.score);
  const weakest = scores.length ? Math.min(...scores) : null;
  const similar = weakest === null ? "" : ` · similarity ${percent(weakest)}${weakest < 1 ? " or more" : ""}`;
  const loose = group.fully_linked ? "" : " · not every two members matched";
  return `${kinds.join(", ")}${similar}${loose}`;
}

// The numbers behind the words, for a tooltip.
export function groupNumbers(group) {
  return `${group.method} · max distance ${group.max_distance} · diameter ${group.diameter} · ${group.linkage}`;
}

export function matchNumbers(f) {
  if (!f.method) return "";
  const turned = f.transform && f.transform !== "identity" ? `, ${f.transform}` : "";
  return `${f.method}, distance ${f.distance}${turned}`;
}

// "keeps a.jpg: largest resolution"
export function keeperLine(group) {
  const kept = keeperOf(group);
  return kept ? `keeps ${basename(kept.path)}: ${group.keeper.reason}` : "";
}
