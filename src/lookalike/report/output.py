"""The output contract of `dupes` and `query` (documented in the README)."""

from __future__ import annotations

import csv
import io
import json
from typing import Sequence

from ..index.store import display_path
from ..search.query import QueryResult
from ..types import Group, Match


def failures_json(failures: Sequence[tuple[str, str, str]]) -> list[dict]:
    return [{"path": display_path(p), "stage": s, "reason": r} for p, s, r in failures]


def groups_json(groups: Sequence[Group], failures: Sequence[tuple[str, str, str]]) -> str:
    return json.dumps({
        "groups": [{
            "files": [{"path": display_path(f.path), "width": f.width, "height": f.height,
                       "bytes": f.bytes} for f in g.files],
            "method": g.method,
            "max_distance": g.max_distance,
            "linkage": g.linkage,
            "diameter": g.diameter,
            "weakest": None if g.weakest is None else {
                "a": display_path(g.weakest[0]), "b": display_path(g.weakest[1]),
                "distance": g.weakest[2]},
            "fully_linked": g.fully_linked,
        } for g in groups],
        "failures": failures_json(failures),
    }, indent=2)


def groups_csv(groups: Sequence[Group]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["group", "path", "width", "height", "bytes", "method", "max_distance",
                     "diameter"])
    for number, g in enumerate(groups, 1):
        for f in g.files:
            writer.writerow([number, display_path(f.path), f.width, f.height, f.bytes, g.method,
                             g.max_distance, g.diameter])
    return out.getvalue()


def _match_dict(m: Match) -> dict:
    return {"a": display_path(m.a), "b": display_path(m.b), "method": m.method,
            "distance": m.distance, "score": round(m.score, 4), "transform": m.transform,
            "evidence": m.evidence or m.method}


def pairs_json(pairs: Sequence[Match]) -> str:
    return json.dumps({"pairs": [_match_dict(m) for m in pairs]}, indent=2)


def pairs_csv(pairs: Sequence[Match]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["a", "b", "method", "distance", "score", "transform", "evidence"])
    for m in pairs:
        d = _match_dict(m)
        writer.writerow([d["a"], d["b"], d["method"], d["distance"], d["score"], d["transform"],
                         d["evidence"]])
    return out.getvalue()


def query_json(results: Sequence[QueryResult]) -> str:
    return json.dumps({"queries": [{
        "path": display_path(r.path),
        "matches": [{"path": display_path(m.b), "method": m.method, "distance": m.distance,
                     "score": round(m.score, 4), "transform": m.transform,
                     "evidence": m.evidence or m.method} for m in r.matches],
        "error": r.failure.reason if r.failure else None,
    } for r in results]}, indent=2)


def query_csv(results: Sequence[QueryResult]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["query", "match", "method", "distance", "score", "transform", "error"])
    for r in results:
        if r.failure:
            writer.writerow([display_path(r.path), "", "", "", "", "", r.failure.reason])
        for m in r.matches:
            writer.writerow([display_path(r.path), display_path(m.b), m.method, m.distance,
                             round(m.score, 4), m.transform, ""])
    return out.getvalue()


def _verification_dict(v) -> dict:
    return {"inliers": v.inliers, "scale": round(v.scale, 4), "rotation": round(v.rotation, 2),
            "mirror": v.mirror}


def _box_list(box) -> list[float] | None:
    return None if box is None else [round(c, 1) for c in box]


def partial_json(pairs) -> str:
    return json.dumps({"partial": [{
        "inner": display_path(p.inner), "outer": display_path(p.outer),
        "relation": p.relation, "box": _box_list(p.box), "method": p.method,
        "distance": p.distance, **_verification_dict(p.verification),
    } for p in pairs]}, indent=2)


def partial_csv(pairs) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["inner", "outer", "relation", "box", "method", "distance", "inliers",
                     "scale", "rotation", "mirror"])
    for p in pairs:
        v = _verification_dict(p.verification)
        box = _box_list(p.box)
        writer.writerow([display_path(p.inner), display_path(p.outer), p.relation,
                         "" if box is None else " ".join(map(str, box)), p.method,
                         p.distance, v["inliers"],
                         v["scale"], v["rotation"], v["mirror"]])
    return out.getvalue()


def find_in_json(results) -> str:
    return json.dumps({"queries": [{
        "path": display_path(r.path),
        "matches": [{"path": display_path(m.path), "box": _box_list(m.verification.box_in_b),
                     "method": m.method, "distance": m.distance,
                     **_verification_dict(m.verification)} for m in r.matches],
        "error": r.failure.reason if r.failure else None,
    } for r in results]}, indent=2)


def find_in_csv(results) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["query", "match", "box", "method", "distance", "inliers", "scale",
                     "rotation", "mirror", "error"])
    for r in results:
        if r.failure:
            writer.writerow([display_path(r.path), "", "", "", "", "", "", "", "",
                             r.failure.reason])
        for m in r.matches:
            v = _verification_dict(m.verification)
            box = _box_list(m.verification.box_in_b)
            writer.writerow([display_path(r.path), display_path(m.path),
                             " ".join(map(str, box or [])), m.method,
                             m.distance, v["inliers"],
                             v["scale"], v["rotation"], v["mirror"], ""])
    return out.getvalue()
