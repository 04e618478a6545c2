"""A small generated collection with planted duplicates and look-alike distinct pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .evaluation.transforms import EDITS, apply, encode


def synthetic_picture(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A picture with smooth colour fields and a few shapes; different seeds differ."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    field = np.zeros((height, width, 3), np.float32)
    for _ in range(6):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        sigma = rng.uniform(0.1, 0.5) * width
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))
        field += blob[:, :, None] * rng.uniform(-120, 120, 3)
    field += rng.uniform(60, 200, 3)
    image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 8))):
        box = sorted(rng.uniform(0, width, 2)), sorted(rng.uniform(0, height, 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = [box[0][0], box[1][0], box[0][1], box[1][1]]
        if rng.random() < 0.5:
            draw.ellipse(shape, fill=colour)
        else:
            draw.rectangle(shape, fill=colour)
    return image


def build_sample(dest: str | Path, count: int = 40, seed: int = 7) -> list[dict]:
    """Write `count` distinct pictures, edited copies of some, and a manifest.json.

    The manifest lists every file with the id of the picture it shows; files that share an
    id are duplicates, all others are distinct (including deliberately similar ones).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    edits = [name for name in EDITS]
    manifest = []
    for number in range(count):
        image = synthetic_picture(seed * 1000 + number)
        data = encode(image)
        name = f"picture_{number:03d}.jpg"
        (dest / name).write_bytes(data)
        manifest.append({"file": name, "picture": number, "edit": "original"})
        if number < len(edits):  # one planted duplicate of each kind
            edited, suffix = apply(edits[number], image, data)
            name = f"picture_{number:03d}_{edits[number]}{suffix}"
            (dest / name).write_bytes(edited)
            manifest.append({"file": name, "picture": number, "edit": edits[number]})
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
