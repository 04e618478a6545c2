"""Copy-detection augmentations (in the spirit of SSCD and the DISC21 benchmark) on NumPy arrays.

Every function takes an RGB uint8 array (H, W, 3) and a `numpy.random.Generator` for its random
choices and returns an RGB uint8 array; the same generator state gives the same result.
`augment` chains them with the probabilities of an `AugmentConfig` and returns a square
`out_size` picture, the network's input. NumPy, OpenCV and Pillow only.
"""

from __future__ import annotations

import io
import math
import string
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

Array = np.ndarray


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (p_*) and ranges of each augmentation; the defaults are the training ones."""

    crop_area: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    p_hflip: float = 0.5
    p_vflip: float = 0.1
    p_rot90: float = 0.15
    p_rotate: float = 0.3
    max_degrees: float = 20.0
    p_perspective: float = 0.2
    perspective_shift: float = 0.12
    p_pad: float = 0.15
    max_pad: float = 0.3
    p_paste: float = 0.1
    paste_scale: tuple[float, float] = (0.4, 0.9)
    p_text: float = 0.2
    p_emoji: float = 0.2
    p_colour: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    p_channels: float = 0.0  # the RGB channels in another order
    p_grey: float = 0.2
    p_blur: float = 0.3
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    p_jpeg: float = 0.5
    jpeg_quality: tuple[int, int] = (20, 90)


DEFAULT = AugmentConfig()


def _resize(image: Array, width: int, height: int) -> Array:
    shrinking = width * height < image.shape[0] * image.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (max(1, width), max(1, height)), interpolation=interp)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = rng.integers(0, 256, size=3)
    return int(r), int(g), int(b)


def random_resized_crop(image: Array, rng: np.random.Generator, out_size: int,
                        area: tuple[float, float] = (0.2, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Array:
    """A region keeping `area` of the picture, of aspect ratio within `ratio`, squashed to a
    square of `out_size`."""
    h, w = image.shape[:2]
    for _ in range(10):
        target = w * h * rng.uniform(*area)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return _resize(image[y0:y0 + ch, x0:x0 + cw], out_size, out_size)
    side = min(w, h)  # the ratio cannot be met: a centred square
    x0, y0 = (w - side) // 2, (h - side) // 2
    return _resize(image[y0:y0 + side, x0:x0 + side], out_size, out_size)


def hflip(image: Array) -> Array:
    return np.ascontiguousarray(image[:, ::-1])


def vflip(image: Array) -> Array:
    return np.ascontiguousarray(image[::-1])


def rot90(image: Array, rng: np.random.Generator) -> Array:
    return np.ascontiguousarray(np.rot90(image, int(rng.integers(1, 4))))


def rotate(image: Array, rng: np.random.Generator, max_degrees: float = 20.0) -> Array:
    """Rotated by up to `max_degrees` either way about the centre, the corners filled with one
    random colour."""
    h, w = image.shape[:2]
    degrees = rng.uniform(-max_degrees, max_degrees)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=_colour(rng))


def perspective(image: Array, rng: np.random.Generator, shift: float = 0.12) -> Array:
    """Each corner moved by up to `shift` of the side, as a photo of a screen or a page."""
    h, w = image.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + rng.uniform(-shift, shift, size=(4, 2)).astype(np.float32) * [w, h]
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    return cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=_colour(rng))


def pad(image: Array, rng: np.random.Generator, max_pad: float = 0.3) -> Array:
    """A border of one random colour, each side up to `max_pad` of the picture's size."""
    h, w = image.shape[:2]
    top, bottom = (int(v) for v in rng.integers(0, int(h * max_pad) + 1, size=2))
    left, right = (int(v) for v in rng.integers(0, int(w * max_pad) + 1, size=2))
    return cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                              value=_colour(rng))


def paste_into(image: Array, background: Array, rng: np.random.Generator,
               scale: tuple[float, float] = (0.4, 0.9)) -> Array:
    """The picture shrunk to `scale` of the background's side and pasted at a random place."""
    bh, bw = background.shape[:2]
    h, w = image.shape[:2]
    factor = rng.uniform(*scale) * min(bw / w, bh / h)
    pw, ph = max(1, int(w * factor)), max(1, int(h * factor))
    out = background.copy()
    x0, y0 = int(rng.integers(0, bw - pw + 1)), int(rng.integers(0, bh - ph + 1))
    out[y0:y0 + ph, x0:x0 + pw] = _resize(image, pw, ph)
    return out


_LETTERS = string.ascii_letters + string.digits + "  !?%$€-"


def text_overlay(image: Array, rng: np.random.Generator) -> Array:
    """A random line of text in Pillow's default font, 1/8 to 1/3 of the height, anywhere."""
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    h, w = image.shape[:2]
    size = max(8, int(h * rng.uniform(1 / 8, 1 / 3)))
    font = ImageFont.load_default(size=size)
    length = int(rng.integers(3, 14))
    text = "".join(_LETTERS[i] for i in rng.integers(0, len(_LETTERS), size=length))
    x, y = int(rng.integers(-w // 4, w * 3 // 4)), int(rng.integers(-size // 4, max(1, h - size)))
    stroke = int(rng.integers(0, 3))
    draw.text((x, y), text, font=font, fill=_colour(rng), stroke_width=stroke,
              stroke_fill=_colour(rng))
    return np.array(pil)


def emoji_overlay(image: Array, rng: np.random.Generator,
                  patch_source: Array | None = None) -> Array:
    """A sticker: a few filled coloured shapes, or a small patch of `patch_source` (another
    picture) when given and chosen, 1/10 to 1/3 of the side, somewhere on the picture."""
    h, w = image.shape[:2]
    side = max(4, int(min(h, w) * rng.uniform(0.1, 0.33)))
    x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    out = image.copy()
    if patch_source is not None and rng.random() < 0.5:
        out[y0:y0 + side, x0:x0 + side] = _resize(patch_source, side, side)
        return out
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(1, 4))):
        box = sorted(rng.integers(0, side + 1, size=2)), sorted(rng.integers(0, side + 1, size=2))
        (a, b), (c, d) = box
        xy = (x0 + int(a), y0 + int(c), x0 + int(max(b, a + 2)), y0 + int(max(d, c + 2)))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse(xy, fill=_colour(rng))
        elif shape == 1:
            draw.rectangle(xy, fill=_colour(rng))
        else:
            draw.polygon([(xy[0], xy[3]), ((xy[0] + xy[2]) // 2, xy[1]), (xy[2], xy[3])],
                         fill=_colour(rng))
    return np.array(pil)


def colour_jitter(image: Array, rng: np.random.Generator, brightness: float = 0.4,
                  contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.1) -> Array:
    """Brightness, contrast and saturation factors in [1-x, 1+x], hue turned by up to `hue`
    of the circle, applied in a random order as torchvision's ColorJitter does."""
    out = image.astype(np.float32)
    for step in rng.permutation(4):
        if step == 0:
            out = out * rng.uniform(1 - brightness, 1 + brightness)
        elif step == 1:
            mean = (out @ np.float32([0.299, 0.587, 0.114])).mean()
            out = (out - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
        elif step == 2:
            grey = (out @ np.float32([0.299, 0.587, 0.114]))[..., None]
            out = (out - grey) * rng.uniform(1 - saturation, 1 + saturation) + grey
        else:
            hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
            shift = int(round(rng.uniform(-hue, hue) * 180))
            hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
        out = np.clip(out, 0, 255)
    return out.astype(np.uint8)


PERMUTATIONS = ((0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


def channel_swap(image: Array, rng: np.random.Generator) -> Array:
    """The channels in one of the 5 other orders (a strong recolouring that keeps edges)."""
    return np.ascontiguousarray(image[..., list(PERMUTATIONS[int(rng.integers(5))])])


def greyscale(image: Array) -> Array:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.repeat(grey[..., None], 3, axis=2)


def blur(image: Array, rng: np.random.Generator, sigma: tuple[float, float] = (0.1, 2.0)) -> Array:
    s = rng.uniform(*sigma)
    return cv2.GaussianBlur(image, (0, 0), sigmaX=s, sigmaY=s)


def jpeg(image: Array, rng: np.random.Generator, quality: tuple[int, int] = (20, 90)) -> Array:
    """Re-encoded as a JPEG of a random quality (Pillow, as most pictures on the web are)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=int(rng.integers(quality[0],
                                                                          quality[1] + 1)))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.array(decoded.convert("RGB"))


def augment(image: Array, rng: np.random.Generator, out_size: int,
            config: AugmentConfig = DEFAULT, others: Sequence[Array] = ()) -> Array:
    """One random copy of `image` as a square RGB uint8 array of side `out_size`: geometry,
    then borders and overlays, then colour, blur and JPEG. `others` are other pictures, for
    backgrounds and pasted patches."""
    c = config
    out = random_resized_crop(image, rng, out_size, c.crop_area, c.crop_ratio)
    if rng.random() < c.p_hflip:
        out = hflip(out)
    if rng.random() < c.p_vflip:
        out = vflip(out)
    if rng.random() < c.p_rot90:
        out = rot90(out, rng)
    if rng.random() < c.p_rotate:
        out = rotate(out, rng, c.max_degrees)
    if rng.random() < c.p_perspective:
        out = perspective(out, rng, c.perspective_shift)
    if rng.random() < c.p_pad:
        out = pad(out, rng, c.max_pad)
    if others and rng.random() < c.p_paste:
        background = random_resized_crop(others[int(rng.integers(len(others)))], rng, out_size)
        out = paste_into(out, background, rng, c.paste_scale)
    out = _resize(out, out_size, out_size)
    if rng.random() < c.p_text:
        out = text_overlay(out, rng)
    if rng.random() < c.p_emoji:
        patch = others[int(rng.integers(len(others)))] if others else None
        out = emoji_overlay(out, rng, patch)
    if rng.random() < c.p_colour:
        out = colour_jitter(out, rng, c.brightness, c.contrast, c.saturation, c.hue)
    if c.p_channels and rng.random() < c.p_channels:
        out = channel_swap(out, rng)
    if rng.random() < c.p_grey:
        out = greyscale(out)
    if rng.random() < c.p_blur:
        out = blur(out, rng, c.blur_sigma)
    if rng.random() < c.p_jpeg:
        out = jpeg(out, rng, c.jpeg_quality)
    return np.ascontiguousarray(out)
