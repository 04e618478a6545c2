"""Regenerate tests/unit/golden_signatures.json: the signatures of three fixture pictures.

    python tests/unit/make_golden.py

Run it only when a change of signatures is intended (and then bump the method's version, so
existing indexes recompute). The file pins, per fixture, a SHA-256 of the decoded pixels (so a
change of the fixture itself is told apart from a change of a method) and, per registered
method, the identity code and all variants in hex.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden_signatures.json"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

# Fixture name -> how to make its file bytes (PNG, so decoding is lossless).
FIXTURES = {
    "synthetic-0": ("synthetic", 0),
    "synthetic-1": ("synthetic", 1),
    "skimage-chelsea": ("skimage", "chelsea.png"),  # 451x300: odd size, box-reduced grey
}


def fixture_bytes(name: str) -> bytes:
    from _imagedata import sample_png, synthetic_png

    kind, arg = FIXTURES[name]
    return synthetic_png(arg) if kind == "synthetic" else sample_png(arg)


def compute_golden() -> dict:
    from lookalike.decode import decode
    from lookalike.methods import Picture, create_method, list_methods

    out: dict = {"fixtures": {}}
    for name in FIXTURES:
        decoded = decode(fixture_bytes(name))
        entry = {
            "size": list(decoded.image.size),
            "pixels_sha256": hashlib.sha256(decoded.image.tobytes()).hexdigest(),
            "methods": {},
        }
        for spec in list_methods():
            signature = create_method(spec.name).compute([Picture(decoded)])[0]
            entry["methods"][spec.name] = {
                "version": signature.version,
                "params": signature.params,
                "identity": signature.value[:spec.nbytes].hex(),
                "value": signature.value.hex(),
                "quality": round(signature.quality, 3),
            }
        out["fixtures"][name] = entry
    return out


def main() -> None:
    GOLDEN.write_text(json.dumps(compute_golden(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
