"""Dataset health checks on planted cases: blurred, darkened, brightened, blank,
low-information, stretched and shrunk copies of scikit-image's sample photographs, scanned into
a real index; each check flags its planted copies and none of the clean originals."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from PIL import Image, ImageFilter

from _imagedata import sample_png
from lookalike.errors import LookalikeError
from lookalike.index.store import open_index
from lookalike.methods import Picture, create_method
from lookalike.methods.health import COARSE, FIELDS, SPEC, measure, measure_batch, unpack
from lookalike.report.health import HealthThresholds, health, thresholds_from
from lookalike.types import Decoded

CLEAN = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")
CHECK_OF = {"blurred": "blurry", "darkened": "dark", "brightened": "bright", "blank": "blank",
            "low_information": "low_information", "stretched": "aspect", "shrunk": "tiny"}
# A blank picture has no information either: that check may flag it too.
ALSO = {"blank": {"low_information"}}


def _plant(image: Image.Image, kind: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image, dtype=np.float64)
    width, height = image.size
    if kind == "blurred":
        return image.filter(ImageFilter.GaussianBlur(4 * max(1.0, min(image.size) / 256)))
    if kind == "darkened":
        return _rgb(pixels * 0.2)
    if kind == "brightened":
        return _rgb(255 - (255 - pixels) * 0.2)
    if kind == "blank":
        return _rgb(np.ones_like(pixels) * rng.uniform(60, 195, 3)
                    + rng.normal(0, 1.5, pixels.shape))
    if kind == "low_information":  # the picture at a quarter of its size on a flat colour
        canvas = Image.new("RGB", image.size, tuple(int(v) for v in rng.integers(60, 196, 3)))
        small = image.resize((width // 4, height // 4), Image.LANCZOS)
        canvas.paste(small, ((width - small.width) // 2, (height - small.height) // 2))
        return canvas
    if kind == "stretched":
        return image.resize((5 * 200, 200), Image.LANCZOS)
    if kind == "shrunk":
        return image.resize((40, round(40 * height / width)), Image.LANCZOS)
    raise ValueError(kind)


def _rgb(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A scanned index of the clean pictures and one copy of each per planted kind."""
    import lookalike

    folder = tmp_path_factory.mktemp("health")
    kinds = {}
    for number, name in enumerate(CLEAN):
        with Image.open(io.BytesIO(sample_png(name))) as opened:
            image = opened.convert("RGB")
        path = folder / f"clean-{name}.png"
        image.save(path)
        kinds[str(path)] = "clean"
        for kind in CHECK_OF:
            path = folder / f"{kind}-{name}.png"
            _plant(image, kind, number).save(path)
            kinds[str(path)] = kind
    index_path = folder / "index.db"
    lookalike.scan([folder], index_path=index_path, methods=["health"], workers=1)
    return index_path, kinds


def test_each_check_flags_its_planted_copies_and_no_clean_picture(planted):
    index_path, kinds = planted
    report = health(index_path)
    assert report.images == len(kinds) and report.measured == len(kinds)
    flagged = {name: {f.path for f in check.flagged} for name, check in report.checks.items()}
    for path, kind in kinds.items():
        found = {name for name, paths in flagged.items() if os.path.realpath(path) in
                 {os.path.realpath(p) for p in paths}}
        if kind == "clean":
            assert not found, f"{path} flagged {found}"
        else:
            assert CHECK_OF[kind] in found, f"{path} not flagged {CHECK_OF[kind]}"
            stray = found - {CHECK_OF[kind]} - ALSO.get(kind, set())
            assert not stray, f"{path} also flagged {stray}"
    assert all(report.checks[name].count == len(paths) for name, paths in flagged.items())
    assert report.checks["outlier"].count == 0
    assert any("no embeddings" in note for note in report.notes)


def test_thresholds_change_what_is_flagged_and_are_bounded(planted):
    index_path, kinds = planted
    strict = health(index_path, HealthThresholds(aspect=6.0, tiny=16.0))
    assert strict.checks["aspect"].count == 0 and strict.checks["tiny"].count == 0
    assert thresholds_from({"blurry": 0.1}).blurry == 0.1
    with pytest.raises(LookalikeError, match="unknown health threshold"):
        thresholds_from({"sharpness": 1.0})
    with pytest.raises(LookalikeError, match="dark=300"):
        HealthThresholds(dark=300.0)


def test_report_is_plain_json_and_split_by_category(planted, tmp_path):
    index_path, kinds = planted
    with open_index(index_path) as index, index.transaction() as conn:
        for path, kind in kinds.items():
            conn.execute("UPDATE files SET meta=? WHERE path LIKE ?",
                         (json.dumps({"category": "planted" if kind != "clean" else "clean"}),
                          f"%{os.path.basename(path)}"))
    report = health(index_path)
    assert report.by == "category"
    assert report.checks["blank"].by_category.get("planted", 0) >= len(CLEAN)
    assert "clean" not in report.checks["blank"].by_category
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data["checks"]) == {"blurry", "dark", "bright", "blank", "low_information",
                                   "aspect", "tiny", "huge", "outlier"}


def test_measure_values_of_known_pictures():
    flat = np.full((100, 150), 77, np.uint8)
    values = dict(zip(FIELDS, measure(flat)))
    assert values["mean"] == 77 and values["std"] == 0 and values["laplacian"] == 0
    assert values["entropy"] == 0 and values["low"] == values["high"] == 77
    halves = np.zeros((100, 100), np.uint8)
    halves[:, 50:] = 255
    values = dict(zip(FIELDS, measure(halves)))
    assert values["entropy"] == pytest.approx(1.0) and values["dark"] == pytest.approx(0.5)
    assert values["bright"] == pytest.approx(0.5) and values["laplacian"] > 0


def test_a_batch_measures_each_picture_as_if_alone():
    """The histogram statistics are taken for a whole batch at once: each row must still be
    its own picture's (sizes differ, one is empty, one too small for any Laplacian)."""
    rng = np.random.default_rng(3)
    camera = np.asarray(Image.open(io.BytesIO(sample_png("camera.png"))).convert("L"))
    grays = [camera[:201, :256], np.zeros((0, 5), np.uint8), np.full((2, 9), 200, np.uint8),
             rng.integers(0, 256, (37, 53), dtype=np.uint8), camera[::3, ::2]]
    batch = measure_batch(grays)
    assert batch.shape == (len(grays), len(FIELDS)) and batch.dtype == np.float32
    for gray, row in zip(grays, batch):
        assert np.array_equal(row, measure(gray))
    assert not batch[1].any() and batch[2][FIELDS.index("laplacian")] == 0
    assert np.array_equal(measure_batch([]), np.zeros((0, len(FIELDS)), np.float32))


def test_coarse_detail_is_taken_on_whole_blocks():
    """The coarse Laplacian reads the picture area-averaged by COARSE over whole blocks: rows
    and columns beyond a multiple of COARSE change it not at all, and a blur lowers the fine
    detail much more than the coarse."""
    camera = np.asarray(Image.open(io.BytesIO(sample_png("camera.png"))).convert("L"))
    coarse = FIELDS.index("coarse_laplacian")
    cropped = camera[:200, :256]
    padded = camera[:200 + COARSE - 1, :256 + COARSE - 1]
    assert measure(cropped)[coarse] == measure(padded)[coarse] > 0
    blurred = np.asarray(Image.fromarray(cropped).filter(ImageFilter.GaussianBlur(3)))
    fine = FIELDS.index("laplacian")
    sharp, soft = measure(cropped), measure(blurred)
    assert soft[fine] / sharp[fine] < 0.5 * soft[coarse] / sharp[coarse]


def test_signature_round_trips_through_unpack():
    image = Image.open(io.BytesIO(sample_png("camera.png"))).convert("RGB")
    decoded = Decoded(image=image, width=image.width, height=image.height, format="PNG",
                      mode="RGB")
    signature = create_method("health").compute([Picture(decoded)])[0]
    assert len(signature.value) == SPEC.nbytes
    row = unpack(np.frombuffer(signature.value, np.uint8)[None, :])
    assert set(row) == set(FIELDS) and 0 < row["mean"][0] < 255


def test_outliers_are_the_pictures_far_from_every_other_embedding(tmp_path):
    """Stored embeddings (a tight cloud and three far from it and from each other): the
    outlier check flags the three, and only them, above the 95th percentile."""
    from lookalike.methods.embedding import register_model
    from lookalike.types import FileRef, Scanned, Signature

    rng = np.random.default_rng(7)
    with open_index(tmp_path / "index.db", create=True) as index:
        index.acquire()
        spec = register_model(index, None)
        dim = spec.bits // 16
        centre = rng.standard_normal(dim)
        rows = [centre + 0.05 * rng.standard_normal(dim) for _ in range(57)]
        rows += [rng.standard_normal(dim) for _ in range(3)]
        run = index.begin_run([str(tmp_path)], [spec.name])
        with index.transaction() as conn:
            for number, row in enumerate(rows):
                signature = Signature(spec.name, spec.version, spec.params,
                                      np.asarray(row, np.float16).tobytes())
                item = Scanned(ref=FileRef(f"{tmp_path}/{number:02}.png", 100, 1),
                               content=number.to_bytes(16, "big"), kind="image", width=100,
                               height=100, format="PNG", mode="RGB", signatures=(signature,))
                index.write_scanned(conn, run, [item])
    report = health(tmp_path / "index.db", HealthThresholds(outlier=95.0))
    outliers = report.checks["outlier"]
    assert outliers.checked == 60
    assert {os.path.basename(f.path) for f in outliers.flagged} == {"57.png", "58.png",
                                                                   "59.png"}
    assert not any("no embeddings" in note for note in report.notes)


def test_stats_command_shows_health_and_takes_thresholds(planted):
    from typer.testing import CliRunner

    from lookalike.cli.main import app

    index_path, kinds = planted

    def run(*args: str):
        return CliRunner().invoke(app, ["stats", "--index", str(index_path), "--no-duplicates",
                                        *args], env={"COLUMNS": "400"})

    data = json.loads(run("--format", "json", "--health", "tiny=16").stdout)
    assert data["health"]["checks"]["tiny"]["count"] == 0
    assert data["health"]["checks"]["aspect"]["count"] == len(CLEAN)
    text = run().stdout
    assert "health" in text and "blurry" in text and "stretched-" in text
    refused = run("--health", "dark=300")
    assert refused.exit_code == 2 and "0.0 to 255.0" in refused.output
