"""`lookalike report`: the HTML file opened in a real headless browser (Debian's chromium,
driven by playwright), plus what can be read from the file itself: no external reference,
thumbnails cached, the gallery bounded by --max-groups, index values escaped.

The collection has three duplicate groups of known sizes (5, 3 and 2 files), distinct
pictures, one truncated file, and a group member deleted after the scan (its thumbnail
cannot be made: a placeholder)."""

from __future__ import annotations

import os
import re
from html import unescape as html_unescape
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lookalike
from lookalike.report.analysis import stats
from lookalike.report.plots import plots
from lookalike.sample import synthetic_picture

from .conftest import dihedral, jpeg, png

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ODD_NAME = "<b>odd & co.jpg"  # a legal file name that must be escaped in the page
ARTIFACTS = Path(os.environ.get("LOOKALIKE_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "artifacts"))


@dataclass
class Gallery:
    root: Path
    index: Path
    groups: list[list[str]]  # file names, largest group first
    vanished: str


def build_gallery(root: Path) -> Gallery:
    root.mkdir(parents=True)
    big, mid, small = (synthetic_picture(seed, (240, 180)) for seed in (41, 42, 43))
    files = {
        "g1_original.jpg": jpeg(big), "g1_copy.jpg": jpeg(big),
        "g1_half.jpg": jpeg(big.resize((120, 90), Image.LANCZOS)),
        "g1_mirror.png": png(big.transpose(Image.FLIP_LEFT_RIGHT)),
        "g1_turned.png": png(dihedral(big, "rot90")),
        "g2_original.png": png(mid), "g2_q70.jpg": jpeg(mid, quality=70),
        ODD_NAME: jpeg(mid.resize((160, 120), Image.LANCZOS)),
        "g3_original.jpg": jpeg(small), "g3_gone.jpg": jpeg(small.resize((180, 135))),
    }
    for seed in range(4):
        files[f"single_{seed}.jpg"] = jpeg(synthetic_picture(60 + seed, (200, 150)))
    whole = jpeg(synthetic_picture(70, (240, 180)))
    files["broken.jpg"] = whole[: len(whole) // 3]
    for name, data in files.items():
        (root / name).write_bytes(data)
    summary = lookalike.scan([root], workers=1)
    assert summary.failed == 1 and summary.seen == len(files), summary.as_dict()
    (root / "g3_gone.jpg").unlink()  # after the scan: in the index, no longer readable
    groups = [sorted(n for n in files if n.startswith("g1")),
              sorted([n for n in files if n.startswith("g2")] + [ODD_NAME]),
              sorted(n for n in files if n.startswith("g3"))]
    return Gallery(root, root / ".lookalike" / "index.db", groups, "g3_gone.jpg")


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> Gallery:
    return build_gallery(tmp_path_factory.mktemp("gallery") / "photos")


@pytest.fixture(scope="module")
def report(gallery, tmp_path_factory, cli) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = cli("report", "--index", gallery.index, "--out", out, "--page-size", "1",
                 "--format", "json")
    assert result.code == 0, str(result)
    return out, result.json()


def test_the_groups_are_the_planted_ones(gallery):
    with lookalike.open_index(gallery.index) as idx:
        found = [[Path(f.path).name for f in g.files] for g in lookalike.find_groups(idx)]
    assert found == gallery.groups


def test_report_summary(report, gallery):
    out, summary = report
    assert summary["bytes"] == out.stat().st_size > 0
    assert (summary["groups"], summary["groups_shown"], summary["files_shown"]) == (3, 3, 10)
    # 10 files shown, 9 distinct contents (one pair of byte copies); the deleted one fails.
    assert summary["thumbs_made"] + summary["thumbs_cached"] == 8
    assert summary["thumbs_failed"] == 1


def test_report_is_self_contained_and_escaped(report):
    html = report[0].read_text("utf-8")
    references = re.findall(r"""\s(?:src|href|xlink:href|action)\s*=\s*["']?([^"'\s>]*)""",
                            html, re.I)
    assert references and not [r for r in references if not r.startswith(("data:", "#"))]
    # The only URLs are the XML namespaces of the inline SVG plots, which nothing fetches.
    assert set(re.findall(r"https?://[^\s\"'<>]*", html)) <= {
        "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert set(re.findall(r"""xmlns(?::\w+)?=["'](https?://[^"']*)""", html)) == {
        "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert not re.search(r"url\(\s*['\"]?(?!data:|#)", html)
    assert "@import" not in html and "<link" not in html
    assert "<b>odd" not in html and "&lt;b&gt;odd &amp; co.jpg" in html


def test_thumbnails_are_cached_next_to_the_index(report, gallery, tmp_path, cli):
    thumbs = sorted((gallery.index.parent / "thumbs").iterdir())
    assert len(thumbs) == 8  # 9 distinct contents shown, one could not be read
    for path in thumbs:
        with Image.open(path) as picture:
            assert max(picture.size) == 160 or max(picture.size) == 120  # g1_half is 120 wide
    before = {p: p.stat().st_mtime_ns for p in thumbs}
    again = cli("report", "--index", gallery.index, "--out", tmp_path / "again.html",
                "--format", "json")
    assert again.code == 0, str(again)
    data = again.json()
    assert (data["thumbs_made"], data["thumbs_cached"], data["thumbs_failed"]) == (0, 8, 1)
    assert {p: p.stat().st_mtime_ns for p in thumbs} == before


def test_max_groups_bounds_the_gallery(gallery, tmp_path):
    from lookalike.report.html import write_report

    full = write_report(gallery.index, tmp_path / "full.html")
    one = write_report(gallery.index, tmp_path / "one.html", max_groups=1)
    html = (tmp_path / "one.html").read_text("utf-8")
    assert (one.groups_total, one.groups_shown, one.files_shown) == (3, 1, 5)
    assert 'id="group-1"' in html and 'id="group-2"' not in html
    assert "Showing the 1 largest of 3 groups; the other 2 groups (5 files)" in html
    assert one.bytes < full.bytes


def test_plots_are_deterministic_svg(gallery):
    result = stats(gallery.index)
    first, second = plots(result), plots(result)
    assert [p.svg for p in first] == [p.svg for p in second]
    titles = [p.title for p in first]
    assert titles[:4] == ["Width", "Height", "Aspect ratio (width / height)", "File size"]
    assert all(p.svg.startswith("<svg") and "<text" in p.svg for p in first)


def _browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright)")
    return sync_playwright


def test_report_in_a_real_browser(report, gallery):
    sync_playwright = _browser()
    out, _ = report
    problems, requests = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: m.type in ("error", "warning") and
                    problems.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.route("**/*", lambda route: (requests.append(route.request.url),
                                              route.continue_()))
            page.goto(out.as_uri())
            page.wait_for_load_state("load")
            check_page(page, 1, gallery.groups[0])
            plots_ = page.locator("figure.plot")
            assert plots_.count() >= 6 and page.locator("figure.plot svg").count() == plots_.count()
            captions = plots_.locator("figcaption").all_inner_texts()
            assert {"Width", "Height", "File size", "Formats"} <= set(captions)
            assert page.locator("#summary").inner_text().count("\n") > 5
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            page.locator(".pager button[data-step='1']").first.click()
            check_page(page, 2, gallery.groups[1])
            assert not page.locator("#group-1").is_visible()
            page.locator(".pager button[data-step='1']").first.click()
            check_page(page, 3, gallery.groups[2], placeholders=1)
            assert page.locator(".pager button[data-step='1']").first.is_disabled()
            page.locator(".pager button[data-step='-1']").first.click()
            check_page(page, 2, gallery.groups[1])
            page.screenshot(path=str(ARTIFACTS / "report-page2.png"))
        finally:
            browser.close()
    assert problems == []
    # Only the file itself and its data URIs: nothing is fetched from anywhere else.
    assert [r for r in requests if not r.startswith(("file:", "data:"))] == []


def check_page(page, number: int, names: list[str], placeholders: int = 0) -> None:
    group = page.locator(f"#group-{number}")
    assert group.is_visible()
    assert page.locator(".page-number").first.inner_text() == f"page {number} of 3"
    shown = [t.split("\n")[0] for t in group.locator("figcaption").all_inner_texts()]
    assert shown == names
    images = group.locator("img")
    assert images.count() == len(names) - placeholders
    page.wait_for_function(
        "n => [...document.querySelectorAll(`#group-${n} img`)].every(i => i.complete)", arg=number)
    widths = images.evaluate_all("list => list.map(i => i.naturalWidth)")
    assert widths and all(w > 0 for w in widths), widths
    assert group.locator(".placeholder").count() == placeholders
    assert all(page.locator(f"#group-{k}").is_visible() is (k == number) for k in (1, 2, 3))


def test_chromium_is_required_in_ci():
    """The browser test skips without chromium; CI (.ci/run) installs it first."""
    script = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "apt-get install -y -q chromium" in script
    assert script.index("chromium") < script.index("make test")


def test_each_file_says_how_it_matched(report, gallery):
    html = report[0].read_text("utf-8")
    cards = dict(re.findall(r'<figure class="file">.*?<b>(.*?)</b>.*?<span class="ev"[^>]*>'
                            r"(.*?)</span>", html))
    assert cards["g1_copy.jpg"] == cards["g1_original.jpg"] == "bytes d=0"  # byte copies
    method, distance, transform = cards["g1_mirror.png"].split()
    assert method == "phash" and distance.startswith("d=") and transform == "mirror"
    # The named transform turns the member it matched into this file: checked on pixels.
    other, how = re.search(r'<b>g1_turned.png</b>.*?<span class="ev" title="matched ([^"]*)">'
                           r"(.*?)</span>", html).groups()
    turn = how.split()[-1]
    assert turn in ("rot90", "rot270", "mirror+rot90", "mirror+rot270"), how
    turned = np.asarray(Image.open(gallery.root / "g1_turned.png").convert("L"), np.float32)
    seen = Image.open(Path(html_unescape(other))).convert("RGB").resize((240, 180))
    as_named = np.asarray(dihedral(seen, turn).convert("L"), np.float32)
    inverse = {"rot90": "rot270", "rot270": "rot90"}.get(turn, turn)
    assert as_named.shape == turned.shape
    assert np.abs(as_named - turned).mean() < 8
    if inverse != turn:
        wrong = np.asarray(dihedral(seen, inverse).convert("L"), np.float32)
        assert np.abs(wrong - turned).mean() > 3 * np.abs(as_named - turned).mean()
    assert cards["g2_q70.jpg"].startswith("phash d=")
    assert "g3_gone.jpg" in cards  # no thumbnail, but still its evidence


def test_report_and_stats_of_an_empty_index(tmp_path, cli):
    (tmp_path / "pics").mkdir()
    assert cli("scan", tmp_path / "pics").code == 0
    index = tmp_path / "pics" / ".lookalike" / "index.db"
    result = cli("report", "--index", index, "--out", tmp_path, "--format", "json")
    assert result.code == 0, str(result)
    assert result.json()["groups"] == 0
    assert "No duplicates found." in (tmp_path / "report.html").read_text("utf-8")
    shown = cli("stats", "--index", index)
    assert shown.code == 0 and "0 files" in shown.stdout and "formats: none" in shown.stdout
