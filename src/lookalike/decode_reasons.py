"""Why a picture did not decode, in words: the one place that turns whatever Pillow, its
plugins, pillow-heif or the libraries under them raised into a sentence for a person (see
decode.py's docstring). Python's own exception text is never shown."""

from __future__ import annotations

import ast
import os
import re
import struct
import traceback
import zlib

_NAMES = {"WEBP": "WebP", "PPM": "PPM/PGM/PBM"}
# Words (in the raw text, lower case) that say what kind of fault it is.
_TRUNCATED = ("truncated", "not enough image data", "end of file", "reached eof",
              "premature end")
_UNSUPPORTED = ("unsupported", "not supported", "not implemented", "unknown")
_UNDECODABLE = ("broken data stream", "unrecognized data stream", "decoder error",
                "could not create decoder", "failed to read next frame", "failed to decode",
                "cannot load this image", "buffer overrun", "codec configuration")


def reason(exc: BaseException, fmt: str, data: bytes) -> str:
    """Why `data`, sniffed as `fmt`, did not decode: a sentence for a person, never Python's
    own exception text. The raw text is matched to pick the kind of fault; it is shown only
    where Pillow (or pillow-heif) raised it in words of its own (`_pillow_words`)."""
    from PIL import Image, UnidentifiedImageError

    name = _NAMES.get(fmt, fmt)
    text = " ".join(str(exc).split())
    lower = text.lower()
    if isinstance(exc, Image.DecompressionBombError) or "security limit" in lower:
        return f"too large to decode: the {name} picture is over its decoder's size limit"
    if isinstance(exc, MemoryError):
        return f"not enough memory to decode this {name} picture"
    if isinstance(exc, ImportError):
        return f"unsupported format: reading {name} needs the pillow-heif package"
    if isinstance(exc, UnidentifiedImageError):
        return f"the {name} header is damaged, or of a kind that cannot be read"
    if any(word in lower for word in _TRUNCATED) or _declares_more(data, fmt):
        if _ends_whole(data, fmt):  # a damaged length or count, not a cut file
            return f"the {name} data is damaged (it holds less than its header declares)"
        return f"truncated file: the {name} data ends before the picture does"
    if isinstance(exc, (EOFError, struct.error)):
        return f"the {name} data is damaged or truncated (a part it declares is missing)"
    detail = _pillow_words(exc, text)
    if any(word in lower for word in _UNSUPPORTED):
        if detail.startswith("unsupported"):  # Pillow's own "Unsupported BMP compression (3)"
            return detail
        return f"unsupported {name} variant" + (f" ({detail})" if detail else "")
    if fmt == "PNG" and (isinstance(exc, UnicodeDecodeError) or "chunk" in lower):
        detail = _png_chunk_fault(exc, lower)
    elif isinstance(exc, zlib.error) or "zlib" in lower:
        detail = "its compressed data does not decompress"
    elif any(word in lower for word in _UNDECODABLE):
        detail = "its pixel data cannot be decoded"
    return f"the {name} data is damaged" + (f" ({detail})" if detail else "")


def _pillow_words(exc: BaseException, text: str) -> str:
    """`text` when Pillow or pillow-heif raised `exc` with a `raise` of its own (a sentence
    written for people) and it is plain, short text; else "" (Python's or a C library's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or not text:
        return ""
    parts = os.path.normpath(frames[-1].filename).split(os.sep)
    own = ("PIL" in parts or "pillow_heif" in parts) and (frames[-1].line or "").startswith(
        "raise")
    plain = (text.isascii() and text.isprintable() and len(text) <= 120
             and not any(mark in text for mark in ("b'", 'b"', "\\", " at 0x")))
    if not (own and plain):
        return ""
    return text if text[:2].isupper() else text[0].lower() + text[1:]


def _png_chunk_fault(exc: BaseException, lower: str) -> str:
    """What is wrong with a PNG chunk, from Pillow's "broken PNG file (chunk b'...')"."""
    if isinstance(exc, UnicodeDecodeError):  # Pillow reads a chunk's type as ASCII
        return "bad chunk: its type is not text"
    match = re.search(r"b'(?:[^'\\]|\\.)*'", str(exc))
    try:
        chunk = ast.literal_eval(match.group(0)) if match else b""
    except (ValueError, SyntaxError):
        chunk = b""
    what = "bad checksum on chunk" if "checksum" in lower or "crc" in lower else "bad chunk"
    if len(chunk) == 4 and chunk.isascii() and chunk.isalpha():
        return f"{what} {chunk.decode()}"
    return f"{what}: its type is not text" if chunk else what


def _ends_whole(data: bytes, fmt: str) -> bool:
    """Whether the file ends with its format's end marker, so it was not cut short."""
    tail = data[-64:].rstrip(b"\x00")
    if fmt == "PNG":
        return b"IEND\xaeB`\x82" in tail
    if fmt == "JPEG":  # 0xFF is stuffed in the entropy-coded data: FF D9 is the end marker
        return tail.endswith(b"\xff\xd9")
    if fmt == "GIF":
        return tail.endswith(b";")
    return False


def _declares_more(data: bytes, fmt: str) -> bool:
    """Whether the file's own header declares more bytes than it holds (a cut download)."""
    if fmt == "WEBP" and len(data) >= 8:  # RIFF: the size of all that follows byte 8
        return int.from_bytes(data[4:8], "little") + 8 > len(data)
    if fmt == "BMP" and len(data) >= 6:  # the file's size, where the writer filled it in
        return int.from_bytes(data[2:6], "little") > len(data)
    return False
