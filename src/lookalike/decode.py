"""Bytes -> Decoded: recognise the format by content, decode robustly, fail with a reason.

Failures. Whatever Pillow, its plugins, pillow-heif or the libraries under them raise on a
damaged file (OSError, SyntaxError, ValueError, UnicodeDecodeError, struct.error, zlib.error,
EOFError, MemoryError, DecompressionBombError...) becomes, in decode_reasons.reason and nowhere
else, a
DecodeError whose message is a sentence for a person: "truncated file: ...", "the PNG data is
damaged (bad chunk ...)", "unsupported BMP compression (3)", "not an image: ...", "too large to
decode: ...". Python's own exception text (a codec's, a struct's) is never shown; Pillow's is
where Pillow wrote it for people. The exception itself is logged at DEBUG.

Memory. Two limits are checked from the header, before any pixel is decoded: `max_pixels`
(MAX_PIXELS) and `max_decode_bytes` (MAX_DECODE_BYTES): the full-size raster's bytes, width x
height x what Pillow keeps per pixel (1 for grey, palette and 1-bit, 2 for 16-bit grey, 4 for
the rest: RGB is padded to 4). Only a JPEG can be decoded smaller than it is stored (libjpeg's
DCT scaling, `draft_size`); any other picture is decoded once at full size, then, where its
short side is at least 2 x REDUCE_SIDE, box-reduced by the largest whole factor that keeps it
at least REDUCE_SIDE (and draft_size). Conversion to RGB (16-bit, palette, alpha...) of a big
picture goes a band of rows at a time, so the peak is the raster plus a band: a 13000 x 13000
16-bit PNG took 2,305 MB and 2.1-2.3 s to decode, now 405 MB and 1.0-1.4 s; an RGB one peaks at
its 676 MB raster either way (bench/bench_big_pictures.py). A picture whose short side is under 2 x
REDUCE_SIDE decodes to the same pixels as before, so its signatures do not change.

Speed. Most JPEGs and 8-bit PNGs are decoded by simplejpeg and pyspng straight into RGB
arrays, where that gives exactly the pixels Pillow gives (decode_jpeg.py, decode_png.py; a
picture with alpha is then composited by _on_white); every other picture, and any file they
fault on, by Pillow, so failures keep Pillow's reasons.
"""

from __future__ import annotations

import io
import logging

from .decode_jpeg import draft_scale, jpeg_header, jpeg_pixels
from .decode_png import png_header, png_pixels
from .decode_reasons import reason
from .errors import DecodeError
from .types import Decoded

log = logging.getLogger(__name__)

# Pixels allowed in one decoded picture (after JPEG draft reduction). Larger is refused
# before any pixel is decoded, so a 50-kB PNG claiming 100k x 100k cannot exhaust memory.
MAX_PIXELS = 178_956_970
# Bytes the full-size raster may take (see the module docstring). At MAX_PIXELS the largest
# raster is 716 MB (4 bytes a pixel), so the default binds only where max_pixels is raised;
# lower it where many workers share a small machine. max_decode_bytes may not go below
# MIN_DECODE_BYTES: that would refuse ordinary photographs (a 2048 x 2048 RGB raster is 16 MiB).
MAX_DECODE_BYTES = 1 << 30
MIN_DECODE_BYTES = 16 << 20
REDUCE_SIDE = 2048  # twice what any method looks at (local features, TEXTURE_DRAFT: 1024 px)
BAND_PIXELS = 1 << 20  # pixels converted at once when a big picture is converted in bands
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
BACKGROUND = (255, 255, 255)  # where transparent pixels land (_on_white's "255 -")

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
           texture_draft: int | None = TEXTURE_DRAFT,
           max_decode_bytes: int = MAX_DECODE_BYTES) -> Decoded:
    """Decode the first frame of an image file held in memory.

    A JPEG is decoded at the smallest DCT scale still at least `draft_size` (0: in full); one
    that turns out to be a fine texture, at `texture_draft` (0: in full; None: never again).
    A very big picture of another format is reduced after decoding (draft_size 0: never; see
    the module docstring). Raises DecodeError with a short human reason on any failure, and
    ValueError when `max_decode_bytes` is under MIN_DECODE_BYTES.
    """
    if max_decode_bytes < MIN_DECODE_BYTES:
        raise ValueError(f"max_decode_bytes must be at least {MIN_DECODE_BYTES:,} "
                         f"({MIN_DECODE_BYTES >> 20} MiB), not {max_decode_bytes:,}")
    fmt = sniff(data[:32])
    if fmt is None:
        raise DecodeError("empty file (0 bytes)" if not data else
                          f"not an image: the content is {describe_content(data[:512])}")
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # our own caps below also allow big JPEGs drafted
    limits = (max_pixels, max_decode_bytes)
    try:
        if fmt in ("HEIF", "AVIF"):
            _register_heif()
        decoded = _decode(data, fmt, limits, draft_size)
        if texture_draft is not None and _redecode_texture(decoded, draft_size, texture_draft):
            decoded = _decode(data, fmt, limits, texture_draft)
        return decoded
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001  (hostile bytes can make a decoder raise anything)
        log.debug("cannot decode %s data", fmt, exc_info=True)
        raise DecodeError(reason(exc, fmt, data)) from None


def _decode(data: bytes, fmt: str, limits: tuple[int, int], draft_size: int) -> Decoded:
    """simplejpeg's or pyspng's decode where it gives Pillow's pixels (decode_jpeg.py,
    decode_png.py), else Pillow's."""
    decoded = None
    if fmt == "JPEG":
        decoded = _decode_jpeg(data, limits, draft_size)
    elif fmt == "PNG":
        decoded = _decode_png(data, limits, draft_size)
    return decoded or _decode_opened(_open(data, fmt), fmt, limits, draft_size)


def _decode_jpeg(data: bytes, limits: tuple[int, int], draft_size: int) -> Decoded | None:
    """The JPEG decoded by simplejpeg as _decode_opened would decode it with Pillow; None
    where only Pillow can say (another colour space, over a limit, a fault of any kind)."""
    header = jpeg_header(data)
    if header is None:
        return None
    width, height, mode = header
    scale = draft_scale(width, height, draft_size)
    size = (-(-width // scale), -(-height // scale))
    if _over_limits(size, mode, limits) or _reduction(size, draft_size) > 1:
        return None  # Pillow's path gives the reason, or reduces after decoding
    orientation = _jpeg_orientation(data)
    pixels = jpeg_pixels(data, size) if orientation is not None else None
    if pixels is None:
        return None
    if orientation == 1:
        return Decoded(width=width, height=height, format="JPEG", mode=mode, pixels=pixels)
    from PIL import Image

    image, width, height = _upright(Image.fromarray(pixels), width, height, orientation)
    return Decoded(image, width, height, "JPEG", mode)


def _jpeg_orientation(data: bytes) -> int | None:
    """_orientation of a JPEG held in memory: 1 where no segment starts as Pillow's EXIF
    segment does (nothing to open then); None where Pillow cannot open it."""
    if b"Exif\x00\x00" not in data:
        return 1
    try:
        with _open(data, "JPEG") as image:
            return _orientation(image, "JPEG")
    except Exception:  # noqa: BLE001  (then the Pillow path reports the fault)
        return None


def _orientation(image, fmt: str) -> int:
    """The EXIF orientation (1-8) of an opened picture, asked only where it can differ from 1
    (getexif costs enough to matter on small JPEGs)."""
    if "exif" in image.info or fmt in ("TIFF", "HEIF", "AVIF"):
        return image.getexif().get(0x0112, 1)
    return 1


def _upright(image, width: int, height: int, orientation: int):
    """(the picture turned upright, its full width and height upright)."""
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if orientation != 1:
        image = _apply_orientation(image, orientation)
    return image, width, height


def _decode_png(data: bytes, limits: tuple[int, int], draft_size: int) -> Decoded | None:
    """The PNG decoded by pyspng as _decode_opened would decode it with Pillow; None where
    only Pillow can say (see decode_png.py)."""
    header = png_header(data)
    if header is None:
        return None
    size = (header.width, header.height)
    if _over_limits(size, header.mode, limits) or _reduction(size, draft_size) > 1:
        return None  # Pillow's path gives the reason, or reduces after decoding
    pixels = png_pixels(data, header)
    if pixels is None:
        return None
    if header.alpha:
        pixels = _on_white(pixels)
    elif pixels.ndim == 2:
        import cv2

        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)  # what Pillow's L -> RGB does
    return Decoded(width=size[0], height=size[1], format="PNG", mode=header.mode, pixels=pixels)


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


def _redecode_texture(decoded: Decoded, draft_size: int, texture_draft: int) -> bool:
    """Whether a JPEG was drafted coarser than `texture_draft` allows for a fine texture."""
    size = decoded.size
    if (decoded.format != "JPEG" or decoded.mode not in ("RGB", "L")
            or size[0] * size[1] == decoded.width * decoded.height):
        return False  # not drafted (only RGB and grey JPEGs are; others may be reduced)
    if (draft_scale(decoded.width, decoded.height, texture_draft)
            >= draft_scale(decoded.width, decoded.height, draft_size)):
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


def _decode_opened(image, fmt: str, limits: tuple[int, int], draft_size: int) -> Decoded:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise DecodeError(f"empty image ({width}x{height})")
    mode = image.mode
    # Costly enough to matter on small JPEGs: ask only where the answer can vary.
    frames = 1 if fmt == "JPEG" else int(getattr(image, "n_frames", 1) or 1)
    orientation = _orientation(image, fmt)
    if fmt == "JPEG" and draft_size and image.mode in ("RGB", "L"):
        # libjpeg does the colour conversion, and the DCT scaling where the picture is more
        # than twice draft_size: both much faster than decoding in full.
        image.draft(image.mode, (draft_size, draft_size))
    _check_limits(image, (width, height), limits)
    declared = image.size
    image.load()  # first frame only; later frames are at most skipped over, never decoded
    if image.size != declared:  # a damaged header (a HEIF clap box, an ICO entry): trust pixels
        width, height = image.size
        _check_limits(image, image.size, limits)
    rgb = _to_rgb_bounded(image, _reduction(image.size, draft_size))
    del image  # the full-size raster: the caller holds no other reference to it
    rgb, width, height = _upright(rgb, width, height, orientation)
    return Decoded(image=rgb, width=width, height=height, format=fmt, mode=mode, frames=frames)


def _check_limits(image, full_size: tuple[int, int], limits: tuple[int, int]) -> None:
    """DecodeError where `image`, as it will be decoded, is over max_pixels or its raster
    over max_decode_bytes; `full_size` is the picture's own size, for the reason."""
    problem = _over_limits(image.size, image.mode, limits, full_size)
    if problem:
        raise DecodeError(problem)


def _over_limits(size: tuple[int, int], mode: str, limits: tuple[int, int],
                 full_size: tuple[int, int] | None = None) -> str | None:
    """Why a picture decoded at `size` in `mode` is over max_pixels or max_decode_bytes, or
    None; `full_size` is the picture's own size, for the reason (default: `size`)."""
    max_pixels, max_decode_bytes = limits
    width, height = full_size or size
    if size[0] * size[1] > max_pixels:
        return f"too many pixels: {width}x{height} is over the limit of {max_pixels:,}"
    raster = _raster_bytes(size, mode)
    if raster > max_decode_bytes:
        return (f"too large to decode: {width}x{height} pixels in mode {mode} need "
                f"{raster / 2**20:,.0f} MiB, over the limit of {max_decode_bytes / 2**20:,.0f} MiB")
    return None


def _raster_bytes(size: tuple[int, int], mode: str) -> int:
    """Bytes Pillow allocates for a picture of `size` in `mode`: 1 a pixel for grey, palette
    and 1-bit, 2 for 16-bit grey, 4 for the rest (RGB is padded to 4, as are LA and PA)."""
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return size[0] * size[1] * per_pixel


def _reduction(size: tuple[int, int], draft_size: int) -> int:
    """The whole factor a decoded picture is box-reduced by: the largest that leaves its short
    side at least REDUCE_SIDE (and draft_size); 1 with draft_size 0 (decode in full)."""
    if draft_size <= 0:
        return 1
    return max(1, min(size) // max(REDUCE_SIDE, draft_size))


def _to_rgb_bounded(image, factor: int):
    """_to_rgb(image).reduce(factor), made a band of rows at a time where the picture is big:
    neither a full-size RGB copy nor the float copies of a 16-bit picture ever exist. Each band
    holds whole blocks of `factor` rows, so the result is the same as in one go."""
    from PIL import Image

    width, height = image.size
    if image.mode == "RGB":  # nothing to convert: one reduce makes no full-size copy either
        return image.reduce(factor) if factor > 1 else image
    if factor == 1 and width * height <= BAND_PIXELS:
        return _to_rgb(image)
    top = image.getextrema()[1] if image.mode in ("I", "F") else None  # the whole picture's
    rows = max(1, BAND_PIXELS // (width * factor)) * factor
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    for y in range(0, height, rows):
        band = _to_rgb(image.crop((0, y, width, min(height, y + rows))), top)
        out.paste(band.reduce(factor) if factor > 1 else band, (0, y // factor))
    return out


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


def _to_rgb(image, top: float | None = None):
    """Any mode -> RGB, compositing transparency on BACKGROUND and scaling high bit depths.
    `top`: the largest value of the whole picture this is a band of (modes I and F)."""
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _high_depth_to_l(image, top)
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
        background.paste(image, mask=alpha)  # on a Pillow image, faster than _on_white
        return background
    return image.convert("RGB")


def _on_white(rgba):
    """H x W x 4 RGBA (uint8) composited on white, as H x W x 3 RGB: exactly what _to_rgb's
    paste on BACKGROUND gives, round((c * a + 255 * (255 - a)) / 255) (Pillow's DIV255),
    computed as 255 - round((255 - c) * a / 255) in a few OpenCV passes: on an array, half
    the time of the paste (tests/unit/test_decode_fast.py checks all 65,536 pairs). In place
    where it can be: 11 bytes a pixel at the peak, RGBA included (the paste: 9)."""
    import cv2

    alpha = cv2.extractChannel(rgba, 3)
    rgb = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
    if cv2.minMaxLoc(alpha)[0] == 255:  # an alpha channel with nothing transparent
        return rgb
    cv2.bitwise_not(rgb, dst=rgb)
    cv2.multiply(rgb, cv2.cvtColor(alpha, cv2.COLOR_GRAY2RGB), dst=rgb, scale=1 / 255)
    return cv2.bitwise_not(rgb, dst=rgb)


def _high_depth_to_l(image, top: float | None = None):
    """16-bit and float greyscale -> 8-bit, by the mode's nominal range (not per-image stretch).
    `top`: the picture's largest value, where `image` is a band of it (None: image's own)."""
    import numpy as np
    from PIL import Image

    array = np.asarray(image)
    if image.mode.startswith("I;16"):
        # round(v / 257) in integers: the same bytes as in float32 for all 65,536 values, at a
        # quarter of the time and memory (no float copies of a big picture).
        wide = array.astype(np.uint32)
        wide += 128
        wide //= 257
        return Image.fromarray(wide.astype(np.uint8), "L")
    top = array.max(initial=0) if top is None else top
    if image.mode == "I":
        peak = 65535.0 if top > 255 else 255.0
        array = array.astype(np.float32) * (255.0 / peak)
    else:  # "F": assume 0..1 when it looks normalised
        array = array.astype(np.float32)
        if top <= 1.0:
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
