"""Bytes -> Decoded: recognise the format by content, decode robustly, fail with a reason."""

from __future__ import annotations

import io

from .errors import DecodeError
from .types import Decoded

# Pixels allowed in one decoded picture (after JPEG draft reduction). Larger is refused
# before any pixel is decoded, so a 50-kB PNG claiming 100k x 100k cannot exhaust memory.
MAX_PIXELS = 178_956_970
DRAFT_SIZE = 256  # JPEGs are decoded at the smallest DCT scale still at least this big
# A drafted JPEG whose contrast lies mostly in details finer than pHash's 32 x 32 grid (small
# bricks, checks, weaves: fine periodic textures) is decoded again at TEXTURE_DRAFT. A reduced
# decode and a full one leave different residues of such detail in the hashes' small grids;
# where the picture's coarse content is faint, that put a PNG texture's plain JPEG re-encode
# 10-18 pHash bits away. bench/eval_draft.py (bench/README.md, "JPEG draft decoding"): quality
# 90 re-encodes of such generated textures found 0.70 -> 0.77, as with full decoding; the
# benchmark pictures' recall unchanged; 1 drafted JPEG in 13 decoded twice: +15% time on 1-4 MP
# (decoding every JPEG in full: 2x). At 1024 px a texture hashes as in full, a huge one cheaply.
TEXTURE_DRAFT = 1024
FINE_TEXTURE = 2.0  # mean neighbour difference in the decoded picture over that in the grid
TEXTURE_GRID = 32  # pHash's grid
BACKGROUND = (255, 255, 255)  # where transparent pixels land

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
                b"avif", b"avis"}


def sniff(head: bytes) -> str | None:
    """Image format from the first bytes of a file, or None when it is not an image we read."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM" and len(head) >= 14:
        return "BMP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "AVIF" if head[8:12] in (b"avif", b"avis") else "HEIF"
    if head[:4] == b"\x00\x00\x01\x00":
        return "ICO"
    if head[:4] == b"8BPS":
        return "PSD"
    if head[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6") and head[2:3].isspace():
        return "PPM"
    if head[:4] == b"qoif":
        return "QOI"
    return None


def describe_content(head: bytes) -> str:
    """What the first bytes of a file that is not an image look like, for a reason."""
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "text"
    return "unrecognised binary data"


_heif_ready = False


def _register_heif() -> None:
    global _heif_ready
    if not _heif_ready:
        import pillow_heif

        pillow_heif.register_heif_opener()
        _heif_ready = True


def decode(data: bytes, *, max_pixels: int = MAX_PIXELS, draft_size: int = DRAFT_SIZE,
           texture_draft: int | None = TEXTURE_DRAFT) -> Decoded:
    """Decode the first frame of an image file held in memory.

    A JPEG is decoded at the smallest DCT scale still at least `draft_size` (0: in full); one
    that turns out to be a fine texture, at `texture_draft` (0: in full; None: never again).
    Raises DecodeError with a short human reason on any failure.
    """
    from PIL import Image, UnidentifiedImageError

    fmt = sniff(data[:32])
    if fmt is None:
        raise DecodeError("not an image (unrecognised content)")
    if fmt in ("HEIF", "AVIF"):
        _register_heif()
    Image.MAX_IMAGE_PIXELS = None  # our own cap below also allows big JPEGs decoded in draft
    try:
        decoded = _decode_opened(_open(data, fmt), fmt, max_pixels, draft_size)
        if texture_draft is not None and _redecode_texture(decoded, draft_size, texture_draft):
            decoded = _decode_opened(_open(data, fmt), fmt, max_pixels, texture_draft)
        return decoded
    except DecodeError:
        raise
    except UnidentifiedImageError:
        raise DecodeError(f"cannot identify {fmt} image (corrupt header?)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError,
            TypeError, MemoryError, RuntimeError, ZeroDivisionError) as exc:
        raise DecodeError(_reason(exc)) from None


def _open(data: bytes, fmt: str):
    """Image.open; a PNG whose only fault is a bad checksum on an ancillary chunk (an ICC
    profile, a text note) is opened anyway, as libpng does. Pixel data stays strict: the
    tolerance is on only while the header is read, so truncated pixels still fail."""
    from PIL import Image, ImageFile, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if fmt != "PNG" or ImageFile.LOAD_TRUNCATED_IMAGES:
            raise
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # Pillow then skips CRC errors in ancillary chunks
    try:
        image = Image.open(io.BytesIO(data))
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    return image


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "truncated" in text.lower():
        return f"truncated file ({text})"
    return text


def _draft_scale(width: int, height: int, draft_size: int) -> int:
    """The DCT scale (1, 2, 4 or 8) Pillow's JPEG draft picks for `draft_size`."""
    ratio = min(width // draft_size, height // draft_size) if draft_size > 0 else 1
    return next((scale for scale in (8, 4, 2) if ratio >= scale), 1)


def _redecode_texture(decoded: Decoded, draft_size: int, texture_draft: int) -> bool:
    """Whether a JPEG was drafted coarser than `texture_draft` allows for a fine texture."""
    size = decoded.image.size
    if decoded.format != "JPEG" or size[0] * size[1] == decoded.width * decoded.height:
        return False  # not drafted (only RGB and grey JPEGs are)
    if (_draft_scale(decoded.width, decoded.height, texture_draft)
            >= _draft_scale(decoded.width, decoded.height, draft_size)):
        return False
    return _fine_texture(decoded.image)


def _fine_texture(image) -> bool:
    """Whether neighbouring pixels differ FINE_TEXTURE times more than neighbouring cells of a
    TEXTURE_GRID-square area-averaged copy: most contrast lies in details the grid averages
    away, leaving a residue that depends on how the picture was decoded and reduced."""
    import numpy as np
    from PIL import Image

    gray = image.convert("L")
    if min(gray.size) < 2:
        return False
    grid = gray.resize((TEXTURE_GRID, TEXTURE_GRID), Image.Resampling.BOX)
    return _roughness(np.asarray(gray)) > FINE_TEXTURE * _roughness(np.asarray(grid))


def _roughness(gray) -> float:
    """Mean absolute difference between neighbouring pixels, across and down."""
    import cv2  # twice as fast as NumPy here, which counts on every drafted JPEG

    across = cv2.mean(cv2.absdiff(gray[:, 1:], gray[:, :-1]))[0]
    down = cv2.mean(cv2.absdiff(gray[1:], gray[:-1]))[0]
    return (across + down) / 2


def _decode_opened(image, fmt: str, max_pixels: int, draft_size: int) -> Decoded:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise DecodeError(f"empty image ({width}x{height})")
    mode = image.mode
    # Both are costly enough to matter on small JPEGs: ask only where the answer can vary.
    frames = 1 if fmt == "JPEG" else int(getattr(image, "n_frames", 1) or 1)
    orientation = 1
    if "exif" in image.info or fmt in ("TIFF", "HEIF", "AVIF"):
        orientation = image.getexif().get(0x0112, 1)
    if fmt == "JPEG" and draft_size and image.mode in ("RGB", "L"):
        # libjpeg does the colour conversion, and the DCT scaling where the picture is more
        # than twice draft_size: both much faster than decoding in full.
        image.draft(image.mode, (draft_size, draft_size))
    if image.size[0] * image.size[1] > max_pixels:
        raise DecodeError(
            f"too many pixels: {width}x{height} is over the limit of {max_pixels:,}")
    image.load()  # first frame only; later frames are at most skipped over, never decoded
    rgb = _to_rgb(image)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if orientation != 1:
        rgb = _apply_orientation(rgb, orientation)
    return Decoded(image=rgb, width=width, height=height, format=fmt, mode=mode, frames=frames)


def _apply_orientation(image, orientation: int):
    from PIL import Image

    ops = {
        2: [Image.Transpose.FLIP_LEFT_RIGHT],
        3: [Image.Transpose.ROTATE_180],
        4: [Image.Transpose.FLIP_TOP_BOTTOM],
        5: [Image.Transpose.TRANSPOSE],
        6: [Image.Transpose.ROTATE_270],
        7: [Image.Transpose.TRANSVERSE],
        8: [Image.Transpose.ROTATE_90],
    }.get(orientation, [])
    for op in ops:
        image = image.transpose(op)
    return image


def _to_rgb(image):
    """Any mode -> RGB, compositing transparency on BACKGROUND and scaling high bit depths."""
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _high_depth_to_l(image)
        mode = "L"
    elif mode == "1":
        image = image.convert("L")
        mode = "L"
    elif mode == "PA":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("LA", "La"):
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "RGBa"):
        if mode == "RGBa":
            image = image.convert("RGBA")
        alpha = image.getchannel("A")
        if alpha.getextrema()[0] == 255:  # an alpha channel with nothing transparent
            return image.convert("RGB")
        background = Image.new("RGB", image.size, BACKGROUND)
        background.paste(image, mask=alpha)
        return background
    return image.convert("RGB")


def _high_depth_to_l(image):
    """16-bit and float greyscale -> 8-bit, by the mode's nominal range (not per-image stretch)."""
    import numpy as np
    from PIL import Image

    array = np.asarray(image)
    if image.mode.startswith("I;16"):
        array = array.astype(np.float32) / 257.0
    elif image.mode == "I":
        peak = 65535.0 if array.max(initial=0) > 255 else 255.0
        array = array.astype(np.float32) * (255.0 / peak)
    else:  # "F": assume 0..1 when it looks normalised
        array = array.astype(np.float32)
        if array.max(initial=0) <= 1.0:
            array = array * 255.0
    return Image.fromarray(np.clip(array + 0.5, 0, 255).astype(np.uint8), "L")


EXIF_IFD = 0x8769
# (IFD, tag) of DateTimeOriginal (taken), DateTimeDigitized, then DateTime (last changed)
EXIF_DATE_TAGS = ((EXIF_IFD, 0x9003), (EXIF_IFD, 0x9004), (None, 0x0132))


def exif_date(path: str) -> str | None:
    """When the picture was taken, by its EXIF (DateTimeOriginal, else DateTimeDigitized, else
    DateTime), as "YYYY-MM-DD HH:MM:SS"; None when the file has none or cannot be read.
    Reads the header only, no pixels."""
    from PIL import Image

    _register_heif()
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            for ifd, tag in EXIF_DATE_TAGS:
                value = (exif.get_ifd(ifd) if ifd else exif).get(tag)
                if isinstance(value, str) and len(value.strip("\x00 ")) >= 10:
                    date, _, clock = value.strip("\x00 ").partition(" ")
                    return f"{date.replace(':', '-')} {clock}".strip()
    except Exception:  # noqa: BLE001  (a date is a nicety: any header fault means none)
        return None
    return None
