"""`lookalike report`: the HTML file opened in a real headless browser (Debian's chromium,
driven by playwright), plus what can be read from the file itself: no external reference,
thumbnails cached, the gallery bounded by --max-groups, index values escaped.

The collection has three duplicate groups of known sizes (5, 3 and 2 files), distinct
pictures, one truncated file, and a group member deleted after the scan (its thumbnail
cannot be made: a placeholder)."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

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
# A legal file name that must be escaped in the page: unescaped, its markup would run a script.
ODD_NAME = "\"><img src=x onerror=\"window.pwned=1\">&'odd.jpg"
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
    big, mid = (synthetic_picture(seed, (240, 180)) for seed in (41, 42))
    # Group 3: two files but the most bytes to win back (a noisy PNG copy), and the only
    # group whose copy is less than identical to the search (similarity under 100%).
    small = synthetic_picture(43, (600, 450))
    noise = np.random.default_rng(3).normal(0, 12, (375, 500, 3))
    noisy = Image.fromarray(np.clip(np.asarray(small.resize((500, 375)), np.float32) + noise,
                                    0, 255).astype(np.uint8))
    files = {
        "g1_original.jpg": jpeg(big), "g1_copy.jpg": jpeg(big),
        "g1_half.jpg": jpeg(big.resize((120, 90), Image.LANCZOS)),
        "g1_mirror.png": png(big.transpose(Image.FLIP_LEFT_RIGHT)),
        "g1_turned.png": png(dihedral(big, "rot90")),
        "g2_original.png": png(mid), "g2_q70.jpg": jpeg(mid, quality=70),
        ODD_NAME: jpeg(mid.resize((160, 120), Image.LANCZOS)),
        "g3_original.jpg": jpeg(small), "g3_gone.png": png(noisy),
    }
    for seed in range(4):
        files[f"single_{seed}.jpg"] = jpeg(synthetic_picture(60 + seed, (200, 150)))
    whole = jpeg(synthetic_picture(70, (240, 180)))
    files["broken.jpg"] = whole[: len(whole) // 3]
    for name, data in files.items():
        (root / name).write_bytes(data)
    summary = lookalike.scan([root], workers=1)
    assert summary.failed == 1 and summary.seen == len(files), summary.as_dict()
    (root / "g3_gone.png").unlink()  # after the scan: in the index, no longer readable
    groups = [sorted(n for n in files if n.startswith("g1")),
              sorted([n for n in files if n.startswith("g2")] + [ODD_NAME]),
              sorted(n for n in files if n.startswith("g3"))]
    return Gallery(root, root / ".lookalike" / "index.db", groups, "g3_gone.png")


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


def test_report_is_self_contained_and_escaped(report, gallery):
    html = report[0].read_text("utf-8")
    page = parse_page(html)
    # Thumbnails are data: URIs; the only other links open a file of the collection or its
    # folder (file: URLs, every unsafe byte percent-encoded).
    root = gallery.root.as_uri() + "/"
    assert page.urls and not [u for u in page.urls if not u.startswith(("data:", "#", root))]
    odd = page.cards[ODD_NAME]
    assert unquote(odd["url"][len("file://"):]) == str(gallery.root / ODD_NAME)
    assert odd["links"] == [odd["url"], root]
    # The only URLs are the XML namespaces of the inline SVG plots, which nothing fetches.
    assert set(re.findall(r"https?://[^\s\"'<>]*", html)) <= {
        "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert set(re.findall(r"""xmlns(?::\w+)?=["'](https?://[^"']*)""", html)) == {
        "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert not re.search(r"url\(\s*['\"]?(?!data:|#)", html)
    assert "@import" not in html and "<link" not in html
    # The hostile name is text everywhere: no tag and no attribute came out of it.
    assert "<img src=x" not in html and 'onerror="' not in html
    assert "&#34;&gt;&lt;img src=x onerror=&#34;window.pwned=1&#34;&gt;&amp;&#39;odd.jpg" in html
    assert odd["name"] == ODD_NAME and odd["path"] == str(gallery.root / ODD_NAME)


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


def test_acting_from_the_report_in_a_real_browser(report, gallery):
    """Full width, the keeper badge, sort by wasted space, the filters, click to enlarge, and
    the hostile name as text, on the report of the fixture (one group a page)."""
    from lookalike.actions.plan import make_plan

    sync_playwright = _browser()
    out, _ = report
    with lookalike.open_index(gallery.index) as idx:
        plan = make_plan(idx, lookalike.find_groups(idx))
    # Space a group wastes: what plan would act on, in the index's bytes.
    wasted = {f"group-{n}": sum(a.size for a in g.actions) for n, g in enumerate(plan.groups, 1)}
    by_waste = sorted(wasted, key=lambda k: (-wasted[k], k))
    assert by_waste != ["group-1", "group-2", "group-3"]  # not the order by size
    problems = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.goto(out.as_uri())
            page.wait_for_load_state("load")
            # The gallery fills the window (the page once stopped at 1200 px).
            box = page.locator("#group-list").bounding_box()
            assert box["width"] > 1600 - 80, box
            assert page.evaluate("window.pwned") is None
            names = page.evaluate("[...document.querySelectorAll('.file .name')]"
                                  ".map(n => n.textContent)")
            assert ODD_NAME in names and page.locator("img[src=x]").count() == 0
            # One badge a group, on the file plan keeps, with plan's reason.
            kept = page.evaluate("""[...document.querySelectorAll('article.group')].map(g =>
                [g.id, [...g.querySelectorAll('.file.kept .path')].map(f => f.textContent),
                 g.querySelectorAll('.badge').length,
                 (g.querySelector('.file.kept .why') || {}).textContent])""")
            assert kept == [[f"group-{n}", [g.keep], 1, f"kept: {g.keep_reason}"]
                            for n, g in enumerate(plan.groups, 1)]
            assert [int(page.get_attribute(f"#{k}", "data-wasted")) for k in wasted] == \
                list(wasted.values())
            page.select_option("#sort", "wasted")
            order = page.evaluate("[...document.querySelectorAll('#group-list > article')]"
                                  ".map(a => a.id)")
            assert order == by_waste
            assert page.locator(f"#{by_waste[0]}").is_visible()
            assert page.locator(".page-number").first.inner_text() == "page 1 of 3"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report-acting.png"))
            # Similarity: at 100% the noisy copy's group (the most wasteful) drops out.
            similar = {k: float(page.get_attribute(f"#{k}", "data-similarity")) for k in wasted}
            assert similar["group-3"] < 1 == similar["group-1"] == similar["group-2"]
            page.locator("#min-similarity").fill("100")
            assert page.locator("#shown-count").inner_text() == "2 of 3 groups"
            assert not page.locator("#group-3").is_visible()
            assert page.locator(f"#{[k for k in by_waste if k != 'group-3'][0]}").is_visible()
            assert page.locator(".page-number").first.inner_text() == "page 1 of 2"
            page.locator("#min-similarity").fill("50")
            # Evidence: every group here is joined by a perceptual hash.
            kinds = page.locator("input[name=evidence]")
            assert kinds.count() == 1 and kinds.first.get_attribute("value") == "hash"
            kinds.first.uncheck()
            assert page.locator("#shown-count").inner_text() == "0 of 3 groups"
            assert page.locator("#none-match").is_visible()
            assert page.locator("article.group:visible").count() == 0
            kinds.first.check()
            assert page.locator("#shown-count").inner_text() == "3 of 3 groups"
            # Click to enlarge: the thumbnail at once, then the original file where the
            # browser lets the page load it (chromium does from a file: page).
            thumb = page.locator(f"#{by_waste[0]} img[data-thumb]").first
            thumb.click()
            lightbox = page.locator("#lightbox")
            assert lightbox.is_visible()
            page.wait_for_function("document.getElementById('lightbox-caption').textContent"
                                   ".includes('the original file')", timeout=5000)
            size = page.evaluate("(i => [i.naturalWidth, i.getBoundingClientRect().width])"
                                 "(document.getElementById('lightbox-img'))")
            assert size[0] == 600 and size[1] > 3 * 160, size  # g3_original.jpg, enlarged
            page.screenshot(path=str(ARTIFACTS / "report-lightbox.png"))
            page.keyboard.press("Escape")
            assert not lightbox.is_visible()
        finally:
            browser.close()
    assert problems == []


def test_partial_copies_are_framed_on_the_larger_picture(tmp_path):
    """With local features in the index, the report shows crops and pictures inside others
    with the smaller one's frame drawn where it lies (planted: a crop of a photograph, and a
    photograph pasted on a page), checked in the file and in chromium."""
    skimage = pytest.importorskip("skimage")
    from lookalike.report.html import write_report

    data = Path(skimage.__file__).parent / "data"
    root = tmp_path / "pics"
    root.mkdir()
    astronaut = Image.open(data / "astronaut.png").convert("RGB")  # 512 x 512
    chelsea = Image.open(data / "chelsea.png").convert("RGB").resize((420, 300))
    page = Image.new("RGB", (1400, 1000), (250, 250, 250))
    page.paste(chelsea, (800, 500))
    for name, image in {"astronaut.jpg": astronaut, "chelsea.jpg": chelsea, "page.jpg": page,
                        "crop.jpg": astronaut.crop((100, 50, 400, 350))}.items():
        (root / name).write_bytes(jpeg(image))
    truth = {("crop.jpg", "astronaut.jpg"): ((100, 50, 400, 350), (512, 512)),
             ("chelsea.jpg", "page.jpg"): ((800, 500, 1220, 800), (1400, 1000))}
    lookalike.scan([root], methods=["phash", "dhash", "local"], workers=1)
    made = write_report(root / ".lookalike" / "index.db", tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text("utf-8")
    section = re.search(r'<section id="partial">.*?</section>', html, re.S).group(0)
    found = {}
    for block in re.findall(r'<article class="pair">.*?</article>', section, re.S):
        inner, outer = re.findall(r'<span class="name">(.*?)</span>', block)
        words = re.search(r"<h3>.*? <span>&middot; (.*?)</span>", block).group(1)
        place = re.search(r'class="box" style="left:([\d.]+)%;top:([\d.]+)%;'
                          r'width:([\d.]+)%;height:([\d.]+)%"', block).groups()
        found[(inner, outer)] = (words, [float(v) / 100 for v in place])
    assert made.partial_shown == len(found) >= 2
    for (inner, outer), (box, (width, height)) in truth.items():
        words, (left, top, w, h) = found[(inner, outer)]
        assert words.startswith(f"in {outer}: a crop of it, or placed inside it, at "), words
        seen = (left * width, top * height, (left + w) * width, (top + h) * height)
        assert all(abs(a - b) < 0.05 * width for a, b in zip(seen, box)), (inner, seen, box)
    sync_playwright = _browser()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            view = browser.new_page(viewport={"width": 1280, "height": 800})
            view.goto((tmp_path / "r.html").as_uri())
            view.wait_for_load_state("load")
            view.wait_for_function("[...document.querySelectorAll('#partial img')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)")
            frame = view.locator("#partial .box").first
            picture = frame.locator("xpath=preceding-sibling::img")
            box, shown = frame.bounding_box(), picture.bounding_box()
            assert 0 < box["width"] < shown["width"] and box["x"] >= shown["x"] - 1
            assert box["y"] + box["height"] <= shown["y"] + shown["height"] + 1
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            view.locator("#partial").screenshot(path=str(ARTIFACTS / "report-partial.png"))
        finally:
            browser.close()


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
    cards = parse_page(report[0].read_text("utf-8")).cards
    # Byte copies first, in words; the search's own terms stay in the tooltip.
    assert cards["g1_copy.jpg"]["how"] == "same bytes as g1_original.jpg"
    assert cards["g1_original.jpg"]["how"] == "same bytes as g1_copy.jpg"
    assert cards["g1_copy.jpg"]["ev"]["title"] == "bytes d=0"
    assert cards["g1_copy.jpg"]["ev"]["data-other"] == str(gallery.root / "g1_original.jpg")
    mirror = cards["g1_mirror.png"]
    assert mirror["how"].startswith("mirrored copy of g1_") and "similarity" in mirror["how"]
    assert mirror["ev"]["data-transform"] == "mirror"
    assert re.fullmatch(r"phash d=\d+ mirror", mirror["ev"]["title"])
    # The named transform turns the member it matched into this file: checked on pixels.
    turned_card = cards["g1_turned.png"]
    turn, other = turned_card["ev"]["data-transform"], turned_card["ev"]["data-other"]
    assert turn in ("rot90", "rot270", "mirror+rot90", "mirror+rot270"), turned_card
    assert "rotated 90° " in turned_card["how"]
    assert ("mirrored" in turned_card["how"]) is turn.startswith("mirror")
    assert ("counter-clockwise" in turned_card["how"]) is turn.endswith("rot90")
    turned = np.asarray(Image.open(gallery.root / "g1_turned.png").convert("L"), np.float32)
    seen = Image.open(Path(other)).convert("RGB").resize((240, 180))
    as_named = np.asarray(dihedral(seen, turn).convert("L"), np.float32)
    inverse = {"rot90": "rot270", "rot270": "rot90"}.get(turn, turn)
    assert as_named.shape == turned.shape
    assert np.abs(as_named - turned).mean() < 8
    if inverse != turn:
        wrong = np.asarray(dihedral(seen, inverse).convert("L"), np.float32)
        assert np.abs(wrong - turned).mean() > 3 * np.abs(as_named - turned).mean()
    assert cards["g2_q70.jpg"]["how"].startswith("resized or re-encoded copy of ")
    # The noisy copy: no thumbnail (deleted after the scan), still its evidence, less alike.
    gone = cards["g3_gone.png"]
    similarity = int(re.search(r"similarity (\d+)%$", gone["how"]).group(1))
    assert 80 <= similarity < 100 and float(gone["ev"]["data-score"]) < 1


def test_the_keeper_is_the_file_plan_keeps(report, gallery, tmp_path, cli):
    from lookalike.actions.plan import make_plan

    cards = parse_page(report[0].read_text("utf-8")).cards
    with lookalike.open_index(gallery.index) as idx:
        groups = lookalike.find_groups(idx)
        plan = make_plan(idx, groups)
        by_path = make_plan(idx, groups, ["shortest-path"])
    kept = {c["path"]: c for c in cards.values() if c["kept"]}
    assert sorted(kept) == sorted(g.keep for g in plan.groups) and len(kept) == 3
    for planned in plan.groups:
        assert kept[planned.keep]["why"] == f"kept: {planned.keep_reason}"
    # Group 3: the original has more pixels (kept for that), the noisy PNG more bytes and a
    # lossless format: each value is highlighted on the member best on it.
    assert cards["g3_original.jpg"]["why"] == "kept: largest resolution"
    assert cards["g3_original.jpg"]["best"][:1] == ["600×450"]
    assert set(cards["g3_gone.png"]["best"]) >= {"PNG"}
    assert "600×450" not in cards["g3_gone.png"]["best"]
    # Other keep rules: the report follows them as plan does.
    out = tmp_path / "shortest.html"
    result = cli("report", "--index", gallery.index, "--out", out, "--keep", "shortest-path")
    assert result.code == 0, str(result)
    other = parse_page(out.read_text("utf-8")).cards
    assert sorted(c["path"] for c in other.values() if c["kept"]) == \
        sorted(g.keep for g in by_path.groups) != sorted(kept)
    wrong = cli("report", "--index", gallery.index, "--out", out, "--keep", "prettiest")
    assert wrong.code != 0 and "unknown keep rule" in wrong.stderr


def test_undecodable_names_are_shown_and_linked(tmp_path):
    from lookalike.report.html import write_report

    root = tmp_path / "pics"
    root.mkdir()
    data = jpeg(synthetic_picture(5, (120, 90)))
    odd = os.fsdecode(b"bad \xff<name>.jpg")  # not UTF-8: a surrogate in the str
    (root / odd).write_bytes(data)
    (root / "plain.jpg").write_bytes(data)
    lookalike.scan([root], workers=1)
    made = write_report(root / ".lookalike" / "index.db", tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text("utf-8")  # strict: no stray surrogate
    assert made.groups_total == 1
    cards = parse_page(html).cards
    assert "bad \\xff<name>.jpg" in cards and "bad \\xff&lt;name&gt;.jpg" in html
    assert cards["bad \\xff<name>.jpg"]["url"].endswith("/pics/bad%20%FF%3Cname%3E.jpg")
    assert cards["plain.jpg"]["how"] == "same bytes as bad \\xff<name>.jpg"


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


@dataclass
class Page:
    cards: dict[str, dict]  # file name -> what its card shows
    urls: list[str]  # every src, href and action of a real tag


class _CardReader(HTMLParser):
    """Each file card: its path, whether it is kept, its name, why it is kept, the values
    highlighted as best, the match in words and its attributes, its links."""

    FIELDS = ("name", "why", "ev", "best", "path")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page({}, [])
        self._card: dict | None = None
        self._spans: list[str] = []  # the first class of each open span of the card

    def handle_starttag(self, tag, attrs) -> None:
        found = dict(attrs)
        self.page.urls += [found[k] for k in ("src", "href", "xlink:href", "action")
                           if found.get(k) is not None]
        classes = (found.get("class") or "").split() or [""]
        if tag == "figure" and "file" in classes:
            self._card = {"path": "", "url": None, "kept": "kept" in classes, "name": "",
                          "why": "", "how": "", "ev": {}, "best": [], "links": []}
        elif self._card is not None and tag == "span":
            self._spans.append(classes[0])
            if classes[0] == "ev":
                self._card["ev"] = found
            elif classes[0] == "best":
                self._card["best"].append("")
        elif self._card is not None and tag == "a":
            self._card["links"].append(found["href"])
            if "open" in classes:
                self._card["url"] = found["href"]

    def handle_endtag(self, tag) -> None:
        if tag == "span" and self._spans:
            self._spans.pop()
        elif tag == "figure" and self._card is not None:
            self.page.cards[self._card["name"]] = self._card
            self._card = None

    def handle_data(self, data) -> None:
        if self._card is None:
            return
        for field in set(self._spans) & set(self.FIELDS):
            if field == "best":
                self._card["best"][-1] += data
            else:
                self._card["how" if field == "ev" else field] += data


def parse_page(html: str) -> Page:
    reader = _CardReader()
    reader.feed(html)
    return reader.page
