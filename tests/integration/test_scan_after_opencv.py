"""A program that used OpenCV's threads before calling scan() must not hang its workers."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import cv2
import numpy as np
from lookalike.scan import scan

if __name__ == "__main__":
    big = np.random.default_rng(0).integers(0, 255, (1500, 1500, 3), dtype=np.uint8)
    for _ in range(3):  # start OpenCV's thread pool in this process
        cv2.warpPerspective(big, np.eye(3), (1500, 1500))
        cv2.resize(big, (700, 700), interpolation=cv2.INTER_AREA)
    summary = scan([sys.argv[1]], index_path=sys.argv[2], methods=["phash", "local"], workers=2)
    print(summary.scanned)
"""


def test_scan_after_opencv_finishes(tmp_path, pics):
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(12):
        (photos / f"p{seed}.jpg").write_bytes(pics.jpeg(pics.picture(7500 + seed)))
    script = tmp_path / "uses_opencv.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(photos), str(tmp_path / "i.db")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "12"
