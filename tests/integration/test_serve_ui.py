"""The web UI of `lookalike serve` in a real browser: Debian's chromium driven by playwright,
against uvicorn on 127.0.0.1 over a small generated collection (serving.build_review).

One walk through, as a person would: the grid, a group triaged with the keyboard (keep one,
quarantine another), a "not a duplicate" in another group (then `find_groups` leaves it
apart), a plan built with a reference folder, a dry run, apply after the confirmation (files
moved, byte for byte, the reference untouched), undo (every file back), and a query. The
screenshots are kept in tests/artifacts/."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from lookalike.index.store import open_index  # noqa: E402
from lookalike.search.dupes import find_groups  # noqa: E402
from lookalike.service.app import create_app  # noqa: E402

from .conftest import LOOKALIKE, cli_env, dihedral, jpeg, picture, png  # noqa: E402
from .serving import build_review, group_names, running, snapshot  # noqa: E402
from .test_report_html import ARTIFACTS, CHROMIUM_ARGS, _browser  # noqa: E402
from .test_serve_health import build_planted  # noqa: E402

WAIT_MS = 15_000


def test_triage_plan_apply_undo_and_query_in_a_browser(tmp_path):
    sync_playwright = _browser()
    review = build_review(tmp_path / "photos")
    root = review.root
    before = snapshot(root)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with running(create_app(review.index)) as url, sync_playwright() as pw, \
            browser_page(pw, errors) as page:
        page.goto(f"{url}/")
        check_grid(page, root)
        check_triage(page, root, review.index)
        check_not_duplicate(page, root, review.index)
        check_plan_apply_undo(page, root, review.index, before)
        check_query(page, tmp_path)
    assert errors == []


@contextmanager
def browser_page(pw, errors: list[str]):
    """A page of a fresh chromium, its script errors noted in `errors`."""
    browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
    finally:
        browser.close()


def check_grid(page, root: Path) -> None:
    page.wait_for_selector("ol.grid a.card")
    cards = page.locator("ol.grid a.card")
    assert cards.count() == 3
    assert page.locator(".summary").first.inner_text().startswith("3 groups")
    first = cards.nth(0)
    assert "3 files" in first.inner_text()
    # every thumbnail of the first group is decoded (not a broken image)
    page.wait_for_function("""() => [...document.querySelectorAll('ol.grid li:first-child img')]
        .every((img) => img.complete && img.naturalWidth > 0)""")
    names = first.locator("img").evaluate_all("(imgs) => imgs.map((i) => i.alt)")
    assert sorted(names) == ["a.jpg", "a_copy.png", "a_small.jpg"]
    page.screenshot(path=str(ARTIFACTS / "ui-grid.png"), full_page=True)


def figure_of(page, name: str) -> int:
    """The 1-based number of the image `name` in the open group."""
    paths = page.locator("figure.shot .path").all_inner_texts()
    return [Path(p).name for p in paths].index(name) + 1


def badge(page, number: int) -> str:
    return page.locator("figure.shot .badge.mark").nth(number - 1).inner_text()


def marks_in(index: Path) -> dict[str, str]:
    with open_index(index) as idx:
        ids = idx.marks()
        return {Path(idx.file_record(i).path).name: m.mark for i, m in ids.items()}


def check_triage(page, root: Path, index: Path) -> None:
    page.locator("ol.grid a.card").nth(0).click()
    page.wait_for_selector("figure.shot")
    assert page.locator("#group-title").inner_text() == "Group 1 of 3"
    page.wait_for_function("""() => [...document.querySelectorAll('img.full')]
        .every((img) => img.complete && img.naturalWidth > 0)""")
    # same scale: the half-size copy is shown at half the width of the others
    widths = {Path(p).name: w for p, w in zip(
        page.locator("figure.shot .path").all_inner_texts(),
        page.locator("img.full").evaluate_all("(imgs) => imgs.map((i) => i.clientWidth)"))}
    assert abs(widths["a_small.jpg"] * 2 - widths["a.jpg"]) <= 2, widths
    # the EXIF date (it comes with the file's description, after its image) and the size
    shown = f"figure.shot:nth-child({figure_of(page, 'a.jpg')})"
    expect_text(page, shown, "2021-05-06 07:08:09")
    assert "240 × 180" in page.locator(shown).inner_text()
    expect_text(page, f"figure.shot:nth-child({figure_of(page, 'a_copy.png')})", "no EXIF date")
    small, large = figure_of(page, "a_small.jpg"), figure_of(page, "a.jpg")
    page.keyboard.press(str(small))
    page.keyboard.press("k")  # keep the small one (the rules would keep a larger one)
    page.keyboard.press(str(large))
    page.keyboard.press("q")
    expect_text(page, "#status", "Saved: quarantine a.jpg.")
    assert badge(page, small) == "Keep" and badge(page, large) == "Quarantine"
    assert re.search(r"keep image \d; quarantine image \d; the other file follows",
                     page.locator("#choice").inner_text())
    assert marks_in(index) == {"a_small.jpg": "keep", "a.jpg": "quarantine"}
    # the loupe follows the pointer over every image; the difference of two pixel copies is 0
    page.keyboard.press("z")
    box = page.locator("img.full").nth(0).bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
    assert page.locator(".loupe:not([hidden])").count() == 3
    assert mean_difference(page, large, figure_of(page, "a_copy.png")) == 0  # same pixels
    assert 0 < mean_difference(page, large, small) < 10  # a resized copy: near, not equal
    page.screenshot(path=str(ARTIFACTS / "ui-group.png"), full_page=True)
    page.keyboard.press("f")
    expect_text(page, ".compare-caption", "Flicker: ")
    page.keyboard.press("d")
    expect_text(page, ".compare-caption", "Difference |A − B|")
    page.keyboard.press("o")
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")


def mean_difference(page, a: int, b: int) -> float:
    """The difference overlay of images a and b (1-based): its mean per channel."""
    page.select_option("#cmp-a", index=a - 1)
    page.select_option("#cmp-b", index=b - 1)
    page.click("text=Difference (d)")  # a key would go to the select, which has the focus
    name = Path(page.locator(".path").nth(b - 1).inner_text()).name
    expect_text(page, ".compare-caption", f"vs {b} {name}")
    return float(page.locator("canvas").get_attribute("data-mean-difference"))


def check_not_duplicate(page, root: Path, index: Path) -> None:
    turned = {"lib/c.jpg", "lib/c_turned.png"}
    for _ in range(3):  # j: the next group, until the turned pair
        if "c_turned.png" in page.locator(".shots").inner_text():
            break
        title = page.locator("#group-title").inner_text()
        page.keyboard.press("j")
        page.wait_for_function("(t) => document.querySelector('#group-title')?.textContent "
                               "!== t && document.querySelector('figure.shot')", arg=title)
    page.keyboard.press(str(figure_of(page, "c_turned.png")))
    page.keyboard.press("n")
    expect_text(page, "#status", "c_turned.png is not a duplicate of the others.")
    expect_text(page, "#group-title", "of 2")
    with open_index(index) as idx:
        left = group_names(find_groups(idx), root)
    assert turned not in left and len(left) == 2


def check_plan_apply_undo(page, root: Path, index: Path, before: dict) -> None:
    page.goto(page.url.split("#")[0] + "#/actions")
    page.wait_for_selector("#reference option")
    page.select_option("#reference", str(root / "ref"))
    page.click("text=Build plan")
    expect_text(page, "#plan-summary", "2 groups, 3 files to quarantine")
    kept = page.locator(".plan-table tbody td:nth-child(2)").all_inner_texts()
    assert any("a_small.jpg" in k for k in kept) and any("b.jpg" in k for k in kept)
    page.click("#dry-run")
    expect_text(page, "#dry", "3 would be moved, 0 skipped")
    assert snapshot(root) == before  # a dry run touches nothing
    page.click("#apply")
    dialog = page.locator("#confirm-dialog")
    assert dialog.is_visible() and "Move 3 files" in dialog.inner_text()
    page.click("#confirm-cancel")  # first, change one's mind: nothing happens
    assert snapshot(root) == before
    page.click("#apply")
    page.click("#confirm-ok")
    expect_text(page, "#applied", "3 moved to quarantine")
    page.screenshot(path=str(ARTIFACTS / "ui-actions.png"), full_page=True)
    moved = {"lib/a.jpg", "lib/a_copy.png", "lib/b_q70.jpg"}
    now = snapshot(root)
    assert set(before) - set(now) == moved
    assert {k: v for k, v in before.items() if k not in moved} == now  # reference untouched
    run_dir, = [p for p in (index.parent / "quarantine").iterdir() if p.is_dir()]
    for name in moved:
        kept_copy = run_dir / "files" / str(root / name).lstrip("/")
        assert hashlib.sha256(kept_copy.read_bytes()).hexdigest() == before[name][0]
    page.wait_for_selector(f"#runs tr[data-run='{run_dir.name}'] button.undo")
    page.click(f"#runs tr[data-run='{run_dir.name}'] button.undo")
    expect_text(page, "#status", "undone: 3 files restored.")
    assert snapshot(root) == before  # every file back, byte for byte, with its time


def check_query(page, tmp_path: Path) -> None:
    turned = tmp_path / "upload.jpg"
    turned.write_bytes(jpeg(dihedral(picture(7004), "rot270"), 85))
    page.click("nav >> text=Query")
    page.wait_for_selector("#query-file", state="attached")
    page.set_input_files("#query-file", str(turned))
    page.wait_for_selector("li.match")
    best = page.locator("li.match").first
    # in words; the method, distance and transform in the tooltip
    assert "d.jpg" in best.inner_text() and "rotated 90° clockwise" in best.inner_text()
    assert "similarity" in best.inner_text() and "%" in best.inner_text()
    assert "rot270" in best.locator("p.words").get_attribute("title")
    page.screenshot(path=str(ARTIFACTS / "ui-query.png"), full_page=True)


def expect_text(page, selector: str, text: str) -> None:
    """Wait until the element holds `text` (the UI answers after the server does)."""
    page.wait_for_function("([s, t]) => document.querySelector(s)?.textContent.includes(t)",
                           arg=[selector, text])


def test_the_keeper_is_shown_changed_and_planned_in_a_browser(tmp_path):
    """The grid and the group page mark the file the plan would keep (keepers() on the same
    index), say why, colour the best value of each row and say how each file matched in
    words; "Make this the keeper" moves the mark, and a plan built in the UI keeps that file."""
    from lookalike.actions.keeper import keepers

    sync_playwright = _browser()
    review = build_review(tmp_path / "photos")
    root = review.root
    with open_index(review.index) as index:
        found = find_groups(index)
        expected = {frozenset(Path(f.path).name for f in g.files): k
                    for g, k in zip(found, keepers(index, found))}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with running(create_app(review.index)) as url, sync_playwright() as pw, \
            browser_page(pw, errors) as page:
        page.goto(f"{url}/")
        page.wait_for_selector("ol.grid a.card .keeper-line")
        for card in page.locator("ol.grid a.card").all():
            names = frozenset(card.locator("img").evaluate_all("(i) => i.map((x) => x.alt)"))
            keeper = expected[names]
            assert card.locator(".thumb.kept img").get_attribute("alt") == \
                Path(keeper.path).name
            assert card.locator(".keep-flag").inner_text() == "keep"
            assert card.locator(".keeper-line").inner_text() == \
                f"keeps {Path(keeper.path).name}: {keeper.reason}"
        page.screenshot(path=str(ARTIFACTS / "ui-keeper-grid.png"), full_page=True)
        big = expected[frozenset({"a.jpg", "a_copy.png", "a_small.jpg"})]
        assert Path(big.path).name == "a.jpg" and big.reason == "oldest file"
        page.goto(f"{url}/#/group/1")
        page.wait_for_selector("figure.shot.kept")
        assert kept_name(page) == "a.jpg"
        assert page.locator("figure.shot:not([hidden]) .badge.keeper:visible").count() == 1
        assert page.locator("figure.shot.kept .keep-reason").inner_text() == \
            "Kept: oldest file"
        assert "plan keeps image" in page.locator("#choice").inner_text()
        # the best values, in colour (dupeGuru's deltas): by keeper.best, tagged "best"
        best = {value: {name for name in ("a.jpg", "a_copy.png", "a_small.jpg")
                        if f"{value}-best" in row_state(page, name, value)}
                for value in ("resolution", "bytes", "format", "date")}
        assert best == {"resolution": {"a.jpg", "a_copy.png"}, "bytes": {"a_copy.png"},
                        "format": {"a_copy.png"}, "date": {"a.jpg"}}
        assert [Path(p).name for p in page.locator("figure.shot .path.best").all_inner_texts()
                ] == ["a.jpg"]  # the shortest path
        # each match in words, its numbers only in the tooltip
        small = page.locator(f"figure.shot:nth-child({figure_of(page, 'a_small.jpg')}) "
                             "dd[data-row=matched]")
        assert small.inner_text().startswith("resized or re-encoded copy of a.jpg · similarity")
        assert "distance" in small.get_attribute("title")
        header = page.locator(".group-words")
        assert "3 files · same pixels" in header.inner_text()
        assert "diameter" not in header.inner_text() and "diameter" in header.get_attribute(
            "title")
        # make another file the keeper, then a third: one keep mark at a time
        make_keeper(page, "a_small.jpg")
        assert marks_in(review.index) == {"a_small.jpg": "keep"}
        make_keeper(page, "a_copy.png")
        assert marks_in(review.index) == {"a_copy.png": "keep"}  # a_small's mark cleared
        expect_text(page, "#status", "Saved: a_copy.png is the keeper (marked keep); cleared "
                    "the keep mark of a_small.jpg.")
        page.screenshot(path=str(ARTIFACTS / "ui-keeper-group.png"), full_page=True)
        page.keyboard.press("Escape")
        page.wait_for_selector("ol.grid a.card .keeper-line")
        assert "keeps a_copy.png: marked keep" in \
            page.locator("ol.grid a.card").first.inner_text()
        # the plan built in the UI keeps it (the marks are followed by default)
        page.goto(f"{url}/#/actions")
        page.wait_for_selector("#rule-0")
        page.click("text=Build plan")
        expect_text(page, "#plan-summary", "3 groups")
        rows = page.locator(".plan-table tbody tr").all()
        kept = {row.locator("td:nth-child(2) .plan-file span[title]").first.get_attribute(
            "title") for row in rows}
        assert str(root / "lib/a_copy.png") in kept  # not the rules' a.jpg: the mark wins
        quarantined = " ".join(page.locator(".plan-table tbody td:nth-child(3)").all_inner_texts())
        assert "a.jpg" in quarantined and "a_small.jpg" in quarantined
    assert errors == []


def kept_name(page) -> str:
    return Path(page.locator("figure.shot.kept .path").inner_text()).name


def row_state(page, name: str, value: str) -> str:
    """'VALUE-best' when the figure of `name` shows its VALUE row as the best of the group."""
    dd = page.locator(f"figure.shot:nth-child({figure_of(page, name)}) dd[data-value={value}]")
    best = dd.evaluate("(d) => d.classList.contains('best') && d.querySelector('.best-tag')"
                       " && getComputedStyle(d).color")
    # coloured: the keep colour, not the text's
    plain = page.locator("figure.shot dd:not(.best)").first.evaluate(
        "(d) => getComputedStyle(d).color")
    return f"{value}-best" if best and best != plain else ""


def make_keeper(page, name: str) -> None:
    """Press "Make this the keeper" on the figure of `name`; wait for the new keeper."""
    shot = page.locator(f"figure.shot:nth-child({figure_of(page, name)})")
    shot.locator("button.make-keeper").click()
    page.wait_for_function("(n) => document.querySelector('figure.shot.kept .path')"
                           "?.textContent.endsWith('/' + n)", arg=name)
    assert page.locator("figure.shot.kept .keep-reason").inner_text() == "Kept: marked keep"
    assert not shot.locator("button.make-keeper").is_visible()
    assert page.locator("button.make-keeper:visible").count() == 2


def test_the_ui_asks_for_the_token_and_shows_images_with_it(tmp_path):
    """Behind a token the page loads, asks for it once, and shows the thumbnails (fetched
    with the token: an <img> cannot send it)."""
    sync_playwright = _browser()
    review = build_review(tmp_path / "photos")
    with running(create_app(review.index, token="ui-token")) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{url}/")
            page.wait_for_selector("#token-dialog[open]")
            page.fill("#token-input", "wrong")
            page.click("#token-dialog button[value=ok]")
            page.wait_for_selector("#token-dialog[open]")  # asked again
            page.fill("#token-input", "ui-token")
            page.click("#token-dialog button[value=ok]")
            page.wait_for_function("""() => { const imgs = [...document.querySelectorAll(
                'ol.grid li:first-child img')]; return imgs.length === 3
                && imgs.every((i) => i.complete && i.naturalWidth > 0
                && i.src.startsWith('blob:')); }""")
            assert page.locator("ol.grid a.card").count() == 3
            assert page.locator("#status").inner_text().startswith("Showing 3 groups")
            assert page.locator("#index-info").inner_text().endswith("9 files")  # /info too
        finally:
            browser.close()


def test_every_static_file_is_packaged():
    """pyproject's package-data must ship the whole web UI (no build step makes it)."""
    import tomllib

    package = Path(__file__).resolve().parents[2] / "src" / "lookalike"
    config = tomllib.loads((package.parents[1] / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["lookalike"]
    static = [p.relative_to(package).as_posix()
              for p in (package / "service" / "static").rglob("*") if p.is_file()]
    assert "service/static/index.html" in static and len(static) >= 5
    shipped = {q.relative_to(package).as_posix() for pattern in patterns
               for q in package.glob(pattern)}
    assert sorted(set(static) - shipped) == []


def test_flicker_difference_and_loupe_turn_a_turned_copy_back(tmp_path):
    """A group of a picture, its mirror+rot90 copy, its mirror and a quarter turn: each file's
    from_first names the turn from the first file (checked on the pixels); the difference of
    two of them, B turned back onto A, is near black, and large with B left as it is; the
    loupe looks at the same spot of each. Pairs whose turn is a rotation (its own inverse only
    for rot180) catch a turn drawn the wrong way round."""
    from lookalike.scan import scan

    sync_playwright = _browser()
    root = tmp_path / "photos"
    root.mkdir()
    original = picture(7101)
    made = {"orig.png": original, "turned.jpg": dihedral(original, "mirror+rot90"),
            "mirror.png": dihedral(original, "mirror"), "quarter.png": dihedral(original, "rot270")}
    for name, image in made.items():
        (root / name).write_bytes(png(image) if name.endswith(".png") else jpeg(image, 92))
    index = root / ".lookalike" / "index.db"
    scan([root], index_path=index, workers=1)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with running(create_app(index)) as url, sync_playwright() as pw:
        group, = get_json(f"{url}/groups")["groups"]
        files = {Path(f["path"]).name: f for f in group["files"]}
        assert sorted(files) == sorted(made)
        first = made[Path(group["files"][0]["path"]).name]
        for name, f in files.items():  # from_first turns the first file into this one
            assert np.array_equal(np.asarray(dihedral(first, f["from_first"])),
                                  np.asarray(made[name])), (name, f["from_first"])
        with browser_page(pw, errors) as page:
            page.goto(f"{url}/#/group/1")
            page.wait_for_selector("figure.shot")
            page.wait_for_function("""() => [...document.querySelectorAll('img.full')]
                .every((img) => img.complete && img.naturalWidth > 0)""")
            at = {name: figure_of(page, name) for name in made}
            undone = mean_difference(page, at["orig.png"], at["turned.jpg"])
            expect_text(page, ".compare-caption", "B turned back: mirror+rot90")
            assert undone < 8, undone
            page.screenshot(path=str(ARTIFACTS / "ui-difference-turned.png"), full_page=True)
            page.uncheck("#undo-turn")  # the same two, B left as it is: far apart
            expect_text(page, ".compare-caption", "not undone")
            as_is = float(page.locator("canvas").get_attribute("data-mean-difference"))
            assert as_is > 4 * max(undone, 5), (undone, as_is)
            page.check("#undo-turn")
            assert mean_difference(page, at["orig.png"], at["quarter.png"]) < 8
            expect_text(page, ".compare-caption", "B turned back: rot270")
            assert mean_difference(page, at["mirror.png"], at["turned.jpg"]) < 8
            expect_text(page, ".compare-caption", "B turned back: rot90")  # composed
            page.click("text=Flicker (f)")
            expect_text(page, ".compare-caption", "Flicker: ")
            check_loupe_spots(page, at)
    assert errors == []


def check_loupe_spots(page, at: dict[str, int]) -> None:
    """The pointer at (0.2, 0.3) of the original: the loupe of each copy looks at that spot
    of the picture as the copy shows it."""
    page.keyboard.press("o")
    page.keyboard.press("z")
    box = page.locator("img.full").nth(at["orig.png"] - 1).bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3)
    spots = page.evaluate("""() => [...document.querySelectorAll('figure.shot')].map((f) => {
        const img = f.querySelector('img.full'), loupe = f.querySelector('.loupe');
        const level = Number(document.querySelector('#zoom-level').value);
        const [x, y] = loupe.style.backgroundPosition.split(' ').map(parseFloat);
        return [(90 - x) / (img.naturalWidth * level), (90 - y) / (img.naturalHeight * level)];
    })""")
    # a transpose; left-right; a clockwise quarter turn takes the top left to the top right
    expected = {"orig.png": (0.2, 0.3), "turned.jpg": (0.3, 0.2), "mirror.png": (0.8, 0.3),
                "quarter.png": (0.7, 0.2)}
    for name, (u, v) in expected.items():
        got = spots[at[name] - 1]
        assert abs(got[0] - u) < 0.02 and abs(got[1] - v) < 0.02, (name, got)


def get_json(url: str) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


def test_serve_open_gives_the_browser_a_link_that_carries_the_token(tmp_path):
    """`serve --open` opens the browser ($BROWSER) at the printed link; the token rides after
    '#', so the page needs no dialog, and the address bar loses it once read."""
    sync_playwright = _browser()
    review = build_review(tmp_path / "photos")
    (tmp_path / "token").write_text("link-token\n")
    opened = tmp_path / "opened.txt"
    browser_script = tmp_path / "browser.py"
    browser_script.write_text(f"import sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n")
    server = subprocess.Popen(
        [str(LOOKALIKE), "serve", "--index", str(review.index), "--port", "0", "--no-warm",
         "--token-file", str(tmp_path / "token"), "--open"],
        env=cli_env(BROWSER=f"{sys.executable} {browser_script} %s"),
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not opened.exists() or not opened.read_text():
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        link = opened.read_text()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/#token=link-token", link), link
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                         args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.set_default_timeout(WAIT_MS)
                page.goto(link)
                page.wait_for_function("""() => document.querySelectorAll(
                    'ol.grid a.card').length === 3""")
                assert not page.locator("#token-dialog[open]").count()
                assert "token" not in page.url
            finally:
                browser.close()
    finally:
        os.kill(server.pid, signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    assert link in stderr  # the same link is printed, as Jupyter prints its own


def test_the_health_view_and_the_grid_filter_by_a_health_check(tmp_path):
    """The Health view lists each check with its count and the thumbnails of the pictures it
    flags (tests/integration/test_serve_health.py's planted collection); its link and the
    grid's "Flagged" filter narrow the groups to those holding such a picture; the method
    menu offers no measurement."""
    sync_playwright = _browser()
    planted = build_planted(tmp_path / "photos")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with running(create_app(planted.index)) as url, sync_playwright() as pw, \
            browser_page(pw, errors) as page:
        page.goto(f"{url}/")
        page.wait_for_function("() => document.querySelectorAll('ol.grid a.card').length === 3")
        page.wait_for_selector("#f-health option[value=aspect]", state="attached")
        methods = page.locator("#f-method option").evaluate_all("(o) => o.map((x) => x.value)")
        assert "phash" in methods and "health" not in methods and "colour" not in methods
        # the grid's filter: only the groups with a picture flagged "aspect"
        page.select_option("#f-health", "aspect")
        page.click("form.filters button[type=submit]")
        page.wait_for_function("() => document.querySelectorAll('ol.grid a.card').length === 2")
        assert "health=aspect" in page.url
        shown = page.locator("ol.grid img").evaluate_all("(imgs) => imgs.map((i) => i.alt)")
        assert sorted(shown) == ["c.jpg", "c_stretched.jpg", "d.jpg", "d_tall.png"]
        # the Health view
        page.click("nav >> text=Health")
        page.wait_for_selector("#health-blurry img")
        page.wait_for_function("""() => [...document.querySelectorAll('.flagged img')]
            .every((img) => img.complete && img.naturalWidth > 0)""")
        flagged = {name: page.locator(f"#health-{name} .flagged img").evaluate_all(
            "(imgs) => imgs.map((i) => i.alt)") for name in ("blurry", "dark", "blank", "aspect")}
        assert flagged == {"blurry": ["a_blurred.png"], "dark": ["b_dark.png"],
                           "blank": ["blank.png"],
                           "aspect": sorted(flagged["aspect"])} and \
            sorted(flagged["aspect"]) == ["c_stretched.jpg", "d_tall.png"]
        assert "1 flagged" in page.locator("#h-blurry").inner_text()
        assert "not checked" in page.locator("#h-outlier").inner_text()
        assert "embeddings" in page.locator("#health-outlier").inner_text()
        assert page.locator("#health-huge .flagged img").count() == 0
        page.screenshot(path=str(ARTIFACTS / "ui-health.png"), full_page=True)
        page.click("#health-blurry a.button")
        page.wait_for_function("() => document.querySelectorAll('ol.grid a.card').length === 1")
        assert page.locator("#f-health").input_value() == "blurry"
        shown = page.locator("ol.grid img").evaluate_all("(imgs) => imgs.map((i) => i.alt)")
        assert sorted(shown) == ["a.png", "a_blurred.png"]
        page.screenshot(path=str(ARTIFACTS / "ui-health-groups.png"), full_page=True)
        # a plan of these groups only
        page.click("text=Plan these groups with keep rules…")
        expect_text(page, "label[for=scope-filtered]", "a picture flagged blurry")
        page.click("text=Build plan")
        expect_text(page, "#plan-summary", "1 group, 1 file to quarantine")
    assert errors == []
