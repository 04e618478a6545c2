"""The web UI's time to first group, and GET /groups latency, on loopback only.

    python bench/bench_ui.py /tmp/b20k-report.db
    python bench/bench_ui.py INDEX --repeat 3

The index is copied into a scratch folder (so the thumbnail cache starts empty and nothing
is written next to the given one). Then:

1. GET /groups: `lookalike serve --no-warm` on the copy, and httpx asks for the first page
   (48 groups) twice (the first call searches the collection; the second is served from the
   server's cache), then another page, then another method (a new search).
2. The UI: chromium (Debian's, driven by playwright) is started first, then `lookalike serve`
   (it computes the groups as it starts, in the background), and the page is opened the moment
   the server answers. Measured in the page (performance.now(), from the navigation): until
   every thumbnail of the first group is decoded, and until all those in view are;
   then the group view (a click on the first group until its images are decoded, while the
   grid's lazy thumbnails below the fold are still being made), the next group (the key j),
   the next after marking one (k, then j: a mark keeps the server's groups), a group opened
   once the grid is idle, and a reload (groups and thumbnails cached).

It prints the figures and never asserts a time. Browser, server and this script share the
machine's cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench_serve import free_port, start_server
from common import pid_peak_rss_mb

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PAGE_SIZE = 48  # as the UI asks (static/filters.js)
FIRST_CARD = """() => { const imgs = [...document.querySelectorAll('ol.grid li:first-child img')];
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0); }"""
IN_VIEW = """() => { const imgs = [...document.querySelectorAll('ol.grid img')]
        .filter((i) => i.getBoundingClientRect().top < innerHeight);
    return imgs.length > 0 && imgs.every((i) => i.complete); }"""
GROUP_IMAGES = """(title) => { const t = document.querySelector('#group-title');
    const imgs = [...document.querySelectorAll('img.full')];
    return t && t.textContent !== title && imgs.length > 0
        && imgs.every((i) => i.complete && i.naturalWidth > 0); }"""


def copy_index(source: Path, folder: Path) -> Path:
    index = folder / "index.db"
    shutil.copyfile(source, index)
    if Path(f"{source}-wal").exists():
        shutil.copyfile(f"{source}-wal", f"{index}-wal")
    return index


def timed_get(http: httpx.Client, url: str) -> float:
    start = time.perf_counter()
    reply = http.get(url)
    reply.raise_for_status()
    return (time.perf_counter() - start) * 1000


def groups_latency(index: Path) -> list[tuple[str, float]]:
    port = free_port()
    server = start_server(index, port, ["--no-warm"])
    base = f"http://127.0.0.1:{port}/groups?page_size={PAGE_SIZE}"
    try:
        with httpx.Client(timeout=300) as http:
            rows = [("first page, first call (searches)", timed_get(http, f"{base}&page=1")),
                    ("first page again (cached)", timed_get(http, f"{base}&page=1")),
                    ("page 20 (cached)", timed_get(http, f"{base}&page=20")),
                    ("one group, page_size=1 (the group view)",
                     timed_get(http, f"http://127.0.0.1:{port}/groups?page=7&page_size=1")),
                    ("method=pixels, first call (another search)",
                     timed_get(http, f"{base}&page=1&method=pixels")),
                    ("method=pixels again (cached)",
                     timed_get(http, f"{base}&page=1&method=pixels"))]
            total = http.get(f"{base}&page=1").json()["total"]
    finally:
        server.terminate()
        server.wait(20)
    print(f"GET /groups ({total:,} groups, {PAGE_SIZE} a page, server started with --no-warm):")
    return rows


def ui_times(index: Path) -> tuple[dict[str, float], float | None]:
    from playwright.sync_api import sync_playwright

    out: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        port = free_port()
        server = start_server(index, port, [])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function(FIRST_CARD, polling="raf")
            out["first group's thumbnails (server just started)"] = page.evaluate(
                "performance.now()")
            page.wait_for_function(IN_VIEW, polling=50)
            out["every thumbnail in view (the rest load lazily)"] = page.evaluate(
                "performance.now()")
            out["  of which GET /groups (the page's request)"] = page.evaluate(
                "performance.getEntriesByType('resource').filter((e) => "
                "e.name.includes('/groups')).map((e) => e.duration)[0] || 0")
            start = page.evaluate("performance.now()")
            page.locator("ol.grid a.card").first.click()
            page.wait_for_function(GROUP_IMAGES, arg="", polling="raf")
            out["group view (click to images decoded)"] = page.evaluate("performance.now()") \
                - start
            title = page.locator("#group-title").inner_text()
            start = page.evaluate("performance.now()")
            page.keyboard.press("j")
            page.wait_for_function(GROUP_IMAGES, arg=title, polling="raf")
            out["next group (key j)"] = page.evaluate("performance.now()") - start
            page.keyboard.press("k")  # a mark: saved, and the groups stay cached
            page.wait_for_function("() => document.querySelector('#status').textContent"
                                   ".startsWith('Saved')")
            title = page.locator("#group-title").inner_text()
            start = page.evaluate("performance.now()")
            page.keyboard.press("j")
            page.wait_for_function(GROUP_IMAGES, arg=title, polling="raf")
            out["next group after a mark (k, then j)"] = page.evaluate("performance.now()") \
                - start
            page.keyboard.press("Escape")  # back to the grid; let its lazy thumbnails finish
            page.wait_for_selector("ol.grid a.card")
            page.wait_for_load_state("networkidle")
            start = page.evaluate("performance.now()")
            page.locator("ol.grid a.card").nth(2).click()
            page.wait_for_function(GROUP_IMAGES, arg="", polling="raf")
            out["group view, grid settled first (group 3)"] = page.evaluate(
                "performance.now()") - start
            page.goto(f"http://127.0.0.1:{port}/#/groups")
            page.reload()
            page.wait_for_function(FIRST_CARD, polling="raf")
            out["reload: first group's thumbnails (all cached)"] = page.evaluate(
                "performance.now()")
            out["  of which GET /groups (cached)"] = page.evaluate(
                "performance.getEntriesByType('resource').filter((e) => "
                "e.name.includes('/groups')).map((e) => e.duration)[0] || 0")
            rss = pid_peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(20)
            browser.close()
    return out, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, nargs="?", default=Path("/tmp/b20k-report.db"))
    parser.add_argument("--repeat", type=int, default=1, help="UI runs, each on a fresh copy "
                        "(an empty thumbnail cache); the median is printed")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as scratch:
        names = ["api", *(f"ui{n}" for n in range(args.repeat))]
        folders = [Path(scratch) / name for name in names]
        for folder in folders:
            folder.mkdir()
        for name, ms in groups_latency(copy_index(args.index, folders[0])):
            print(f"  {name:48} {ms:8.0f} ms")
        runs = [ui_times(copy_index(args.index, folder)) for folder in folders[1:]]
    print(f"web UI in chromium (median of {len(runs)}; {os.cpu_count()} cores shared with the "
          f"browser):")
    for name in runs[0][0]:
        print(f"  {name:48} {statistics.median(r[0][name] for r in runs):8.0f} ms")
    rss = [r[1] for r in runs if r[1] is not None]
    if rss:
        print(f"server peak RSS {max(rss):.0f} MB")


if __name__ == "__main__":
    main()
