"""The README's Python examples run as written: each block, in README order, in its own Python
process, in a folder holding what they name (photos/, new.jpg, data/train, data/test). A block
right after an HTML comment `<!-- not run: REASON -->` is only checked by
tests/unit/test_readme.py (it parses, and its calls fit the library)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from .conftest import cli_env, jpeg, picture, png

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"(<!-- not run: [^>]*-->\n)?```python\n(.*?)```", re.S)


def examples() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [(text[:m.start()].count("\n") + 1, m.group(2)) for m in BLOCK.finditer(text)
            if m.group(1) is None]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A picture with a shrunk JPEG and a mirrored copy (one copy kept as the original), a
    picture with a byte copy, singletons, a new picture to ask about, and train/test sets
    that share a picture."""
    root = tmp_path_factory.mktemp("readme")
    photos = root / "photos"
    (photos / "originals").mkdir(parents=True)
    first, second = picture(21), picture(22)
    (photos / "originals" / "a.png").write_bytes(png(first))
    (photos / "a_small.jpg").write_bytes(jpeg(first.resize((160, 120)), 85))
    (photos / "a_mirror.png").write_bytes(png(first.transpose(Image.FLIP_LEFT_RIGHT)))
    (photos / "b.png").write_bytes(png(second))
    (photos / "b_copy.png").write_bytes(png(second))
    for seed in (23, 24):
        (photos / f"other{seed}.png").write_bytes(png(picture(seed)))
    (root / "new.jpg").write_bytes(jpeg(second, 80))
    for name in ("train", "test"):
        (root / "data" / name).mkdir(parents=True)
    (root / "data" / "train" / "t.png").write_bytes(png(picture(25)))
    (root / "data" / "test" / "t_copy.jpg").write_bytes(jpeg(picture(25), 90))
    (root / "data" / "test" / "u.png").write_bytes(png(picture(26)))
    return root


def test_the_readme_has_runnable_examples():
    assert len(examples()) >= 4


def test_every_readme_example_runs(folder):
    env = cli_env()
    for line, code in examples():
        done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"README.md line {line}:\n{code}\n{done.stderr[-3000:]}"
    # what the examples wrote is there and right
    assert (folder / "photos.db").exists() and (folder / "report.html").stat().st_size > 1000
    links = [p for p in (folder / "split").rglob("*") if p.is_symlink()]
    assert len(links) == 3 and all(p.resolve().is_relative_to(folder / "data") for p in links)
    assert not (folder / "photos" / ".lookalike").exists()  # find_duplicates wrote nothing


def test_a_readme_example_that_breaks_is_caught(folder):
    """The runner above fails on a broken example (so its passing means something)."""
    done = subprocess.run([sys.executable, "-c", "import lookalike\n"
                           "lookalike.Collection.open('missing.db')"],
                          cwd=folder, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "IndexNotFoundError" in done.stderr
