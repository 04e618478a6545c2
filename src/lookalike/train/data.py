"""Training pairs from a list of image files.

Pictures are decoded once (JPEG in Pillow's draft mode), downscaled to `max_side` and kept in
memory. Each picture gives one or more *instances* ("virtual images"): regions of a grid laid
over it, so that a large texture sheet gives several distinct pictures that do not overlap.
A sample is two independent augmentations of one instance.

Sample `k` of the whole run (k = step * batch_size + i) is a pure function of (seed, k): the
instance comes from a seeded permutation per epoch and the augmentations from a generator
seeded with (seed, k). A resumed run therefore sees exactly the batches the killed run would
have seen, whatever the number of loader workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from ..errors import TrainingDataError
from .augment import DEFAULT, AugmentConfig, augment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Instance:
    """Region (x0, y0, x1, y1) of cached picture `image`."""

    image: int
    box: tuple[int, int, int, int]


def load_picture(path: Path | str, max_side: int = 512) -> np.ndarray:
    """RGB uint8 array whose longer side is at most `max_side`; transparency is laid over
    mid-grey. Raises OSError (or Pillow's errors) when the file cannot be decoded."""
    with Image.open(path) as im:
        if im.format == "JPEG":
            im.draft("RGB", (max_side, max_side))
        im.load()
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
            im = Image.alpha_composite(canvas, rgba)
        rgb = im.convert("RGB")
        rgb.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return np.asarray(rgb)


def load_pictures(files: Sequence[Path | str], max_side: int = 512,
                  min_side: int = 32) -> tuple[list[np.ndarray], list[str]]:
    """Decoded pictures and the names of the files left out (undecodable or smaller than
    `min_side`), logged at warning level."""
    pictures, skipped = [], []
    for path in files:
        try:
            picture = load_picture(path, max_side)
        except Exception as exc:  # any decoder failure is one skipped file, not a failed run
            log.warning("training picture %s skipped: %s", path, exc)
            skipped.append(str(path))
            continue
        if min(picture.shape[:2]) < min_side:
            skipped.append(str(path))
            continue
        pictures.append(picture)
    if not pictures:
        raise TrainingDataError(f"none of {len(files)} files could be used for training")
    log.info("%d training pictures decoded, %d skipped", len(pictures), len(skipped))
    return pictures, skipped


def make_instances(pictures: Sequence[np.ndarray], seed: int, tile: int = 192,
                   max_per_picture: int = 4) -> list[Instance]:
    """Grid cells of at least `tile` pixels a side (the whole picture when it is smaller
    than two tiles), each shrunk at random to 70-100% of its side; at most
    `max_per_picture` cells of one picture are kept, so repetitive sheets do not dominate."""
    rng = np.random.default_rng([seed, 1])
    instances = []
    for index, picture in enumerate(pictures):
        h, w = picture.shape[:2]
        cols, rows = max(1, w // tile), max(1, h // tile)
        cells = [(c, r) for r in range(rows) for c in range(cols)]
        if len(cells) > max_per_picture:
            chosen = rng.choice(len(cells), size=max_per_picture, replace=False)
            cells = [cells[i] for i in sorted(chosen)]
        cw, ch = w / cols, h / rows
        for c, r in cells:
            if len(cells) == 1:
                instances.append(Instance(index, (0, 0, w, h)))
                continue
            sw, sh = cw * rng.uniform(0.7, 1.0), ch * rng.uniform(0.7, 1.0)
            x0 = c * cw + rng.uniform(0, cw - sw)
            y0 = r * ch + rng.uniform(0, ch - sh)
            instances.append(Instance(index, (int(x0), int(y0), int(x0 + sw), int(y0 + sh))))
    return instances


class PairDataset:
    """Map-style dataset: item k is two augmented views (uint8 tensors (3, S, S)) of one
    instance and the instance's number."""

    def __init__(self, pictures: Sequence[np.ndarray], instances: Sequence[Instance], *,
                 out_size: int, seed: int, config: AugmentConfig = DEFAULT,
                 n_others: int = 2) -> None:
        self.pictures, self.instances = list(pictures), list(instances)
        self.out_size, self.seed, self.config, self.n_others = out_size, seed, config, n_others
        self._perm_epoch, self._perm = -1, np.arange(0)

    def __len__(self) -> int:
        return len(self.instances)

    def instance_of(self, k: int) -> int:
        epoch, position = divmod(k, len(self.instances))
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, 2, epoch]).permutation(
                len(self.instances))
            self._perm_epoch = epoch
        return int(self._perm[position])

    def crop(self, instance: Instance) -> np.ndarray:
        x0, y0, x1, y1 = instance.box
        return self.pictures[instance.image][y0:y1, x0:x1]

    def views(self, k: int) -> tuple[np.ndarray, np.ndarray, int]:
        number = self.instance_of(k)
        instance = self.instances[number]
        rng = np.random.default_rng([self.seed, 3, k])
        picked = rng.integers(0, len(self.pictures), size=self.n_others)
        others = [self.pictures[int(i)] for i in picked if int(i) != instance.image]
        source = self.crop(instance)
        a = augment(source, rng, self.out_size, self.config, others)
        b = augment(source, rng, self.out_size, self.config, others)
        return a, b, number

    def __getitem__(self, k: int):
        import torch

        a, b, number = self.views(int(k))
        return (torch.from_numpy(a).permute(2, 0, 1), torch.from_numpy(b).permute(2, 0, 1),
                number)


class StepBatches:
    """Batch sampler: the sample numbers of steps `start_step` .. `total_steps - 1`."""

    def __init__(self, batch_size: int, start_step: int, total_steps: int) -> None:
        self.batch_size, self.start_step, self.total_steps = batch_size, start_step, total_steps

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.total_steps):
            yield list(range(step * self.batch_size, (step + 1) * self.batch_size))


def make_loader(dataset: PairDataset, batch_size: int, start_step: int, total_steps: int,
                workers: int = 1):
    """A torch DataLoader yielding (views_a, views_b, instance numbers) for each step."""
    from torch.utils.data import DataLoader

    if workers:
        import cv2

        # OpenCV's thread pool does not survive a fork (a worker touching it hangs), and the
        # workers share the cores with torch anyway: single-threaded, set before forking.
        cv2.setNumThreads(1)
    return DataLoader(dataset, batch_sampler=StepBatches(batch_size, start_step, total_steps),
                      num_workers=workers,
                      persistent_workers=False, prefetch_factor=4 if workers else None)
