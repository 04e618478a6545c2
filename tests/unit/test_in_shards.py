"""Shards searched where they lie (search/in_shards.py), here in one process: the same groups
and pairs as the index a local scan of the same pictures builds, for every method of the
cascade. The shards are written as a cluster's tasks write them (worker.process_chunk, then
shards.to_table and write_shard, listed by shards.recorded), without starting Ray; the Ray
path runs the same stage functions as tasks (tests/integration/test_ray_shard_search.py).

Pictures: scikit-image's sample photographs (PyPI) and edits of them: byte copies, a PNG of a
JPEG (the same pixels), re-encodings, a mirror and a quarter turn, a grey copy and a
recoloured one (which the colour check must keep out), and crops of one photo side by side
(alike, not copies).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pyarrow", reason="the 'ray' extra (pyarrow) is not installed")

from _imagedata import PHOTOS, skimage_dir  # noqa: E402
from lookalike.errors import LookalikeError, RunnerError  # noqa: E402
from lookalike.evaluation.transforms import EDITS, encode  # noqa: E402
from lookalike.index.store import open_index  # noqa: E402
from lookalike.runners.shards import (WALK_FILE, cut_shards, recorded,  # noqa: E402
                                      shard_folder, to_table, write_shard)
from lookalike.scan import resolve_methods, scan  # noqa: E402
from lookalike.search.dupes import find_groups, find_pairs  # noqa: E402
from lookalike.search.in_shards import search_shards  # noqa: E402
from lookalike.search.options import SearchOptions  # noqa: E402
from lookalike.sources.folders import WalkOptions, walk  # noqa: E402
from lookalike.types import FileRef  # noqa: E402
from lookalike.worker import process_chunk  # noqa: E402

SHARD_FILES = 7  # 40-odd files: several shards, copies of one picture in different shards
EDITED = ("png", "jpeg70", "grey", "mirror", "rot90", "resize50", "metadata")


def _recoloured(image: Image.Image) -> Image.Image:
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(int) + 96) % 256).astype(np.uint8)
    return Image.fromarray(hsv, "HSV").convert("RGB")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("in-shards") / "pictures"
    folder.mkdir()
    for number, name in enumerate(PHOTOS):
        with Image.open(Path(skimage_dir()) / name) as opened:
            image = opened.convert("RGB")
        image.thumbnail((320, 320))
        data = encode(image, "JPEG", quality=90)
        (folder / f"{number:02d}-{Path(name).stem}.jpg").write_bytes(data)
        edit = EDITED[number % len(EDITED)]
        copy, suffix = EDITS[edit](image, data)
        (folder / f"{number:02d}-z-{edit}{suffix}").write_bytes(copy)
        if number % 4 == 0:  # byte copies, sorted far apart: in other shards
            (folder / f"zz-{number:02d}-copy.jpg").write_bytes(data)
    with Image.open(Path(skimage_dir()) / "coffee.png") as opened:
        coffee = opened.convert("RGB")
    (folder / "30-coffee-recoloured.jpg").write_bytes(encode(_recoloured(coffee)))
    for k in range(3):  # overlapping crops of one photo: alike, not copies
        box = (40 * k, 0, 40 * k + 300, 300)
        (folder / f"31-coffee-crop{k}.jpg").write_bytes(encode(coffee.crop(box)))
    (folder / "40-notes.txt").write_text("not a picture")
    (folder / "41-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return folder


@pytest.fixture(scope="module")
def index(pictures, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("index") / "index.db"
    scan([pictures], index_path=path, workers=1)
    return path


def _write_shards(pictures: Path, base: Path) -> Path:
    """The shards a cluster scan writes for `pictures`, computed here."""
    names = resolve_methods(None)
    folder = shard_folder(base, names, SHARD_FILES)
    walked = ((ref, True) for ref in walk([str(pictures)], WalkOptions())
              if isinstance(ref, FileRef))
    for shard in recorded(cut_shards(walked, names, folder, SHARD_FILES), folder):
        write_shard(to_table(process_chunk(list(shard.refs), names, None)), shard.path)
    return Path(folder)


@pytest.fixture(scope="module")
def shards(pictures, tmp_path_factory) -> Path:
    return _write_shards(pictures, tmp_path_factory.mktemp("shards"))


@pytest.mark.parametrize("method", ["auto", "pixels", "bytes", "dhash"])
def test_shards_give_the_index_groups_and_pairs(index, shards, method):
    found = search_shards(shards.parent, SearchOptions(method), runner="local")
    with open_index(index) as opened:
        assert found.groups() == find_groups(opened, method=method)
        assert found.groups("star") == find_groups(opened, method=method, linkage="star")
        assert found.pairs() == find_pairs(opened, method=method)


def test_the_collection_exercises_each_step(index, shards):
    found = search_shards(shards, runner="local")
    groups = {tuple(Path(f.path).name for f in g.files): g for g in found.groups()}
    grouped = {name for names in groups for name in names}
    assert found.shards == 5 and found.pictures == 12 * 2 + 3 + 1 + 3
    assert found.contents == found.pictures - 3  # three byte copies
    assert groups[("00-astronaut.jpg", "00-z-png.png", "zz-00-copy.jpg")].method == "pixels"
    assert groups[("03-chelsea.jpg", "03-z-mirror.jpg")].method == "phash"
    assert ("04-rocket.jpg", "04-z-rot90.jpg", "zz-04-copy.jpg") in groups
    assert "30-coffee-recoloured.jpg" not in grouped
    assert not any(n.startswith("31-coffee-crop") for n in grouped)
    assert found.tasks["join"] >= 1 and found.tasks["gather"] >= 1


def test_only_the_last_walk_is_searched(pictures, shards, tmp_path):
    """A shard left from an earlier walk of other files sits in the folder: not searched."""
    stale = shards / "shard-000000000000000000000000.parquet"
    refs = [FileRef(str(p), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(pictures.glob("0[0-2]-*"))]
    renamed = [FileRef(r.path.replace("pictures", "elsewhere"), r.size, r.mtime_ns)
               for r in refs]
    records = process_chunk(refs, resolve_methods(None), None)
    import dataclasses

    write_shard(to_table([dataclasses.replace(s, ref=r) for s, r in zip(records, renamed)]),
                stale)
    try:
        found = search_shards(shards, runner="local")
        assert not any("elsewhere" in f.path for g in found.groups() for f in g.files)
        assert found.shards == 5
    finally:
        stale.unlink()


def test_a_missing_shard_or_walk_is_a_clear_error(pictures, tmp_path):
    folder = _write_shards(pictures, tmp_path / "shards")
    first = sorted(folder.glob("shard-*.parquet"))[0]
    first.write_bytes(b"PAR1 not a shard")
    with pytest.raises(RunnerError, match=f"shard {first} cannot be read on .*--shard-dir"):
        search_shards(folder, runner="local")
    first.unlink()
    with pytest.raises(LookalikeError, match="missing: run the same scan again"):
        search_shards(folder, runner="local")
    (folder / WALK_FILE).unlink()
    with pytest.raises(LookalikeError, match="holds no walk.tsv"):
        search_shards(folder, runner="local")
    with pytest.raises(LookalikeError, match="not a folder of shards"):
        search_shards(tmp_path / "nowhere", runner="local")
    (folder / WALK_FILE).write_text("shard-1.parquet\t3\t3\n")
    with pytest.raises(LookalikeError, match="not a walk file"):
        search_shards(folder, runner="local")


def test_files_the_index_held_are_counted_not_searched(pictures, tmp_path):
    """A scan on top of an index leaves the files it already held out of the shards: the
    search counts them (the CLI warns) and finds the groups among the others only."""
    names = resolve_methods(None)
    folder = shard_folder(tmp_path / "shards", names, SHARD_FILES)
    walked = ((ref, not Path(ref.path).name.startswith("zz-"))  # the byte copies: held
              for ref in walk([str(pictures)], WalkOptions()) if isinstance(ref, FileRef))
    for shard in recorded(cut_shards(walked, names, folder, SHARD_FILES), folder):
        if shard.refs:
            write_shard(to_table(process_chunk(list(shard.refs), names, None)), shard.path)
    found = search_shards(folder, runner="local")
    assert found.outside == 3 and found.pictures == 12 * 2 + 1 + 3
    assert not any(Path(f.path).name.startswith("zz-") for g in found.groups() for f in g.files)


@pytest.mark.parametrize("options", [SearchOptions(verify=True),
                                     SearchOptions(where={"k": "v"}),
                                     SearchOptions("embed")])
def test_what_needs_the_index_says_so(shards, options):
    with pytest.raises(LookalikeError, match="need the index"):
        search_shards(shards, options, runner="local")


def test_walk_file_lists_every_shard_in_walk_order(shards):
    lines = (shards / WALK_FILE).read_text().splitlines()[1:]
    names = [line.split("\t")[0] for line in lines]
    held = [int(line.split("\t")[1]) for line in lines]
    assert len(names) == 5 and sum(held) == 12 * 2 + 3 + 1 + 3 + 2
    assert all((shards / name).exists() for name in names)
    import pyarrow.parquet as pq

    paths = [p for name in names for p in pq.read_table(shards / name)["path"].to_pylist()]
    assert paths == sorted(paths)  # one folder: the walk is sorted by name

