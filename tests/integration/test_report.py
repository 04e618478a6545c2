"""`lookalike stats`, the Python analysis and the DataFrames, on a small collection whose every
number is known from how it was made: sizes, formats and modes chosen here, one exact copy,
one resized copy, one truncated JPEG and one text file named .jpg. Categories are set in
files.meta with plain SQL, as URL ingest stores them."""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lookalike
from lookalike.report.analysis import stats
from lookalike.report.health import health
from lookalike.sample import synthetic_picture

# name -> (size, Pillow format, Pillow mode, category); None: no metadata
PICTURES = {
    "a.jpg": ((300, 200), "JPEG", "RGB", "tops"),
    "b.png": ((200, 100), "PNG", "RGBA", "tops"),
    "c.gif": ((120, 120), "GIF", "P", "bottoms"),
    "d.jpg": ((400, 300), "JPEG", "L", "bottoms"),
}
COPY, RESIZED = "a_copy.jpg", "e_resized.jpg"  # a byte copy of a.jpg, a.jpg at half size
CATEGORY = {COPY: "tops", RESIZED: "bottoms"}
TRUNCATED, TEXT = "corrupt.jpg", "notes.jpg"


@dataclass
class Known:
    root: Path
    index: Path
    widths: list[int]
    heights: list[int]
    sizes: dict[str, int]  # bytes of every readable file


def encoded(image: Image.Image, fmt: str, mode: str) -> bytes:
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def build_known(root: Path) -> Known:
    root.mkdir(parents=True)
    for seed, (name, (size, fmt, mode, _)) in enumerate(PICTURES.items()):
        (root / name).write_bytes(encoded(synthetic_picture(10 + seed, size), fmt, mode))
    shutil.copyfile(root / "a.jpg", root / COPY)
    original = Image.open(root / "a.jpg")
    (root / RESIZED).write_bytes(encoded(original.resize((150, 100), Image.LANCZOS), "JPEG", "RGB"))
    whole = encoded(synthetic_picture(30, (320, 240)), "JPEG", "RGB")
    (root / TRUNCATED).write_bytes(whole[: len(whole) // 2])
    (root / TEXT).write_bytes(b"a shopping list, not a picture\n")
    sizes = {name: (root / name).stat().st_size for name in [*PICTURES, COPY, RESIZED]}
    widths = [s[0] for s, *_ in PICTURES.values()] + [300, 150]
    heights = [s[1] for s, *_ in PICTURES.values()] + [200, 100]
    summary = lookalike.scan([root], workers=1)
    assert summary.seen == 8 and summary.failed == 2, summary.as_dict()
    index = root / ".lookalike" / "index.db"
    conn = sqlite3.connect(index)
    with conn:
        for name, category in {**{n: v[3] for n, v in PICTURES.items()}, **CATEGORY}.items():
            conn.execute("UPDATE files SET meta=? WHERE path=?",
                         (json.dumps({"category": category, "brand": name[0]}),
                          str(root / name)))
    conn.close()
    return Known(root, index, widths, heights, sizes)


@pytest.fixture(scope="module")
def known(tmp_path_factory) -> Known:
    return build_known(tmp_path_factory.mktemp("known") / "photos")


def test_counts_formats_modes_and_sizes(known):
    result = stats(known.index)
    assert result.files == 8 and result.images == 6 and result.contents == 5  # one byte copy
    assert result.status == {"failed": 2, "ok": 6}
    assert result.formats == {"JPEG": 4, "GIF": 1, "PNG": 1}
    assert result.modes == {"RGB": 3, "L": 1, "P": 1, "RGBA": 1}
    assert result.total_bytes == sum(known.sizes.values())
    assert result.width.median == statistics.median(known.widths) == 250
    assert result.height.median == statistics.median(known.heights)
    assert (result.width.min, result.width.max) == (120, 400)
    assert result.width.percentiles["p25"] == pytest.approx(np.percentile(known.widths, 25))
    aspects = [w / h for w, h in zip(known.widths, known.heights)]
    assert result.aspect.median == pytest.approx(statistics.median(aspects))
    assert result.file_bytes.median == statistics.median(known.sizes.values())
    assert sum(result.width.counts) == 6 and len(result.width.edges) == 31


def test_failed_files_are_listed_with_reasons(known):
    result = stats(known.index, duplicates=False)
    failed = {Path(f.path).name: f for f in result.failures}
    assert set(failed) == {TRUNCATED, TEXT}
    assert "truncated" in failed[TRUNCATED].reason and failed[TRUNCATED].stage == "decode"
    assert "not an image" in failed[TEXT].reason
    assert failed[TEXT].bytes == (known.root / TEXT).stat().st_size
    assert result.failure_reasons == {"decode: truncated file": 1, "type: not an image": 1}
    assert result.duplicates is None


def test_duplicate_rate_overall_and_by_category(known):
    result = stats(known.index)
    d = result.duplicates
    # a.jpg, its byte copy and its resized copy are one group; the three others are distinct.
    assert (d.groups, d.files_in_groups, d.redundant, d.largest_group) == (1, 3, 2, 3)
    assert d.rate == pytest.approx(2 / 6, abs=1e-6)
    assert d.redundant_bytes == known.sizes[COPY] + known.sizes[RESIZED]
    assert result.by == "category" and result.categories == {"bottoms": 3, "tops": 3}
    # The group's first file (a.jpg, tops) is the one kept; the copy is tops, the resized one
    # bottoms.
    tops, bottoms = d.by_category["tops"], d.by_category["bottoms"]
    assert (tops.files, tops.in_groups, tops.redundant) == (3, 2, 1)
    assert (bottoms.files, bottoms.in_groups, bottoms.redundant) == (3, 1, 1)
    assert tops.rate == pytest.approx(1 / 3, abs=1e-6)


def test_by_another_key_and_missing_key(known):
    by_brand = stats(known.index, by="brand", duplicates=False)
    assert by_brand.categories == {"a": 2, "b": 1, "c": 1, "d": 1, "e": 1}
    nobody = stats(known.index, by="colour", duplicates=False)
    assert nobody.categories == {"(none)": 6}


def test_stats_cli_json_matches_the_library(known, cli):
    result = cli("stats", "--index", known.index, "--format", "json")
    assert result.code == 0, str(result)
    data = result.json()
    expected = stats(known.index).to_dict()
    data.pop("seconds"), expected.pop("seconds")
    # The one key the CLI adds: the health checks (report/health.py), as the library has them.
    assert data.pop("health") == health(known.index).to_dict()
    assert data == expected
    assert data["width"]["median"] == 250 and data["duplicates"]["redundant"] == 2


def test_stats_cli_text(known, cli):
    result = cli("stats", "--index", known.index, "--by", "brand")
    assert result.code == 0, str(result)
    text = result.stdout
    assert "8 files: 6 readable images (5 distinct), 2 could not be read" in text
    assert "formats: JPEG 4, GIF 1, PNG 1" in text
    width_row = next(line for line in text.splitlines() if line.startswith("width"))
    marks = np.percentile(known.widths, [0, 5, 25, 50, 75, 95, 100])
    assert width_row.split()[1:] == [f"{v:,.0f}" for v in marks]
    assert "2 redundant copies = 33.3% of images" in text
    assert "by brand: a 2, b 1" in text
    assert f"{TRUNCATED}: truncated file" in text


def test_stats_cli_without_index_is_a_usage_error(tmp_path, cli):
    result = cli("stats", "--index", tmp_path / "none.db")
    assert result.code == 2 and "no index" in result.stderr


def test_frames(known):
    from lookalike.report.frames import files_frame, groups_frame, pairs_frame

    files = files_frame(known.index)
    assert len(files) == 8 and files["status"].value_counts().to_dict() == {"ok": 6, "failed": 2}
    row = files.set_index("path").loc[str(known.root / "d.jpg")]
    assert (row["width"], row["height"], row["format"], row["mode"]) == (400, 300, "JPEG", "L")
    assert row["category"] == "bottoms" and row["aspect"] == pytest.approx(4 / 3)
    failed = files[files["status"] == "failed"]
    assert failed["width"].isna().all() and failed["category"].isna().all()
    with lookalike.open_index(known.index) as idx:
        groups = groups_frame(lookalike.find_groups(idx))
        pairs = pairs_frame(lookalike.find_pairs(idx))
    assert list(groups["path"].map(lambda p: Path(p).name)) == ["a.jpg", COPY, RESIZED]
    assert set(groups["group"]) == {1} and set(groups["group_size"]) == {3}
    assert len(pairs) == 3 and "bytes" in set(pairs["method"])
    assert pairs["score"].between(0, 1).all()


def test_report_has_the_category_table(known, tmp_path):
    from lookalike.report.html import write_report
    from lookalike.report.thumbs import ThumbCache

    made = write_report(known.index, tmp_path / "r.html", thumb_size=64)
    assert made.stats.duplicates.by_category["tops"].redundant == 1
    html = (tmp_path / "r.html").read_text("utf-8")
    section = re.search(r'<section id="categories">(.*?)</section>', html).group(1)
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row)
            for row in re.findall(r"<tr>(.*?)</tr>", section)]
    assert ["bottoms", "3", "1", "1", "33.3%"] in rows and ["tops", "3", "2", "1", "33.3%"] in rows
    failures = re.search(r'<section id="failures">(.*?)</section>', html).group(1)
    assert TRUNCATED in failures and TEXT in failures and "not an image" in failures
    assert (known.index.parent / "thumbs").is_dir()
    suffix = ThumbCache(tmp_path).suffix  # .webp, or .jpg where Pillow lacks WebP
    assert {p.name.rsplit("-", 1)[1] for p in (known.index.parent / "thumbs").iterdir()} == {
        f"64{suffix}"}


def test_every_report_template_is_packaged():
    """pyproject's package-data must ship the report's templates (loaded as package data)."""
    import tomllib

    package = Path(__file__).resolve().parents[2] / "src" / "lookalike"
    config = tomllib.loads((package.parents[1] / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["lookalike"]
    templates = [p.relative_to(package).as_posix()
                 for p in (package / "report" / "templates").rglob("*") if p.is_file()]
    assert "report/templates/report.html.j2" in templates and len(templates) >= 5
    shipped = {q.relative_to(package).as_posix() for pattern in patterns
               for q in package.glob(pattern)}
    assert sorted(set(templates) - shipped) == []
    assert "jinja2>=3.1" in config["project"]["dependencies"]
