"""End-to-end scan speed of the learned embedding, side by side with the hashes and decoding.

    python bench/bench_embed_speed.py /work/benchdata/images --n 500 [--model PATH.onnx] \
        [--workers 2] [--repeat 1] [--json OUT]

Pictures: the first --n held-out files (supertuxkart-data, marble-data per ../manifest.tsv,
sorted by name) whose short side is at least 256 px, alpha composited on white, cut to the
860:580 aspect around the centre and resized to 860 x 580 (0.5 megapixel), JPEG q92, in a
scratch folder. They are read once (warm page cache), every contender runs once untimed on
16 of them (warm libraries and model file), then each runs in a fresh subprocess:

* embed: lookalike.scan(folder, methods=["embed"]) (the shipped model, or --model), N
  workers; "pixels" is always added; decoding included.
* phash+dhash: the same with lookalike's default methods.
* phash+dhash+embed: both in one scan (what `scan --method phash,dhash,embed` costs).
* pillow-decode: Image.open + convert("RGB") of the full picture, in a Pool(N).
* pillow-draft-decode: decode with the JPEG draft to 256 px (what lookalike's decode does for
  these methods), in a Pool(N).
* inference-only: the embedding model alone, one process, on the pictures already decoded
  as the scan decodes them (draft), in batches of 48: the model's share of the time.

Columns: `work s` is the time of the work inside the child (scan call, pool map, inference
loop); `wall s` also holds interpreter start-up and imports, measured by the parent. `img/s`
is images over `work s`. `main MB` / `worker MB`: peak RSS of the child and of its largest
worker; `tree MB`: peak summed PSS of the child's process tree (all three sampled with psutil
every 0.1 s; forked workers share pages with their parent, so RSS must not be added). `cpu s`:
user + system of the child and its workers (`cpu ms/img`: per picture, steadier than img/s
on a shared machine). `others`: CPU seconds the rest of the machine
used meanwhile (near 0 for a clean measurement). Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import TreeMemory, machine_cpu, usage


SIZE = (860, 580)
MIN_SHORT_SIDE = 256
WARM_UP_FILES = 16
CONTENDERS = ("embed", "phash+dhash", "phash+dhash+embed", "pillow-decode",
              "pillow-draft-decode", "inference-only")


def make_pictures(images: Path, dest: Path, n: int) -> int:
    from PIL import Image

    from eval_embed import _flatten, held_out

    made = 0
    for path in held_out(images):
        if made >= n:
            break
        try:
            with Image.open(path) as opened:
                if min(opened.size) < MIN_SHORT_SIDE:
                    continue
                image = _flatten(opened)
        except Exception:  # noqa: BLE001  (unreadable sources are skipped)
            continue
        aspect = SIZE[0] / SIZE[1]
        w, h = image.size
        cw, ch = (w, round(w / aspect)) if w / h < aspect else (round(h * aspect), h)
        left, top = (w - cw) // 2, (h - ch) // 2
        image = image.crop((left, top, left + cw, top + ch)).resize(SIZE,
                                                                     Image.Resampling.LANCZOS)
        image.save(dest / f"{made:05d}.jpg", "JPEG", quality=92)
        made += 1
    return made


# ---------------------------------------------------------------------------------------------
# child side


def _decode_full(path: str) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB").size[0]


def _decode_draft(path: str) -> int:
    from PIL import Image

    with Image.open(path) as image:
        image.draft("RGB", (256, 256))
        image.load()
        return image.size[0]


def _pool(function, files: list[str], workers: int) -> None:
    from multiprocessing import Pool

    pool = Pool(workers)
    try:
        pool.map(function, files, chunksize=16)
    finally:
        pool.close()
        pool.join()  # so that RUSAGE_CHILDREN sees the workers


def _inference(files: list[str], embed_name: str) -> float:
    from lookalike.decode import decode
    from lookalike.methods.registry import create_method

    method = create_method(embed_name)
    import numpy as np

    arrays = [np.asarray(decode(Path(f).read_bytes()).image) for f in files]
    method.embed(arrays[:2])  # session built outside the timing
    started = time.perf_counter()
    for start in range(0, len(arrays), 48):
        method.embed(arrays[start:start + 48])
    return time.perf_counter() - started


def child(name: str, folder: Path, workers: int, embed_name: str, limit: int | None) -> None:
    files = sorted(str(p) for p in folder.iterdir() if p.is_file())[:limit]
    record: dict = {"contender": name, "images": len(files)}
    with tempfile.TemporaryDirectory() as tmp, TreeMemory() as memory:
        started = time.perf_counter()
        if name in ("embed", "phash+dhash", "phash+dhash+embed"):
            import lookalike

            methods = {"embed": [embed_name], "phash+dhash": ["phash", "dhash"],
                       "phash+dhash+embed": ["phash", "dhash", embed_name]}[name]
            if limit is not None:
                summary = lookalike.scan(paths=files, index_path=Path(tmp) / "i.db",
                                         methods=methods, workers=workers)
            else:
                summary = lookalike.scan([folder], index_path=Path(tmp) / "i.db",
                                         methods=methods, workers=workers)
            record.update(signed=summary.scanned, failed=summary.failed)
            work = time.perf_counter() - started
        elif name == "pillow-decode":
            _pool(_decode_full, files, workers)
            work = time.perf_counter() - started
        elif name == "pillow-draft-decode":
            _pool(_decode_draft, files, workers)
            work = time.perf_counter() - started
        elif name == "inference-only":
            work = _inference(files, embed_name)
        else:
            raise SystemExit(f"unknown contender {name}")
    record.update(work_s=work, main_mb=memory.main / 2 ** 20, worker_mb=memory.worker / 2 ** 20,
                  cpu_s=usage()["cpu_s"],
                  tree_mb=memory.peak / 2 ** 20)
    print(json.dumps(record), flush=True)


# ---------------------------------------------------------------------------------------------
# parent side


def _machine_busy() -> float:
    """The machine's user + nice + system CPU seconds (what psutil.cpu_times() gave here)."""
    times = machine_cpu()
    return times.user + times.nice + times.system


def run_child(name: str, folder: Path, workers: int, embed_name: str,
              limit: int | None = None) -> dict:
    command = [sys.executable, __file__, "--child", name, str(folder), "--workers",
               str(workers), "--embed-name", embed_name]
    if limit is not None:
        command += ["--limit", str(limit)]
    machine_before = _machine_busy()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    machine = _machine_busy() - machine_before
    if done.returncode != 0:
        return {"contender": name, "error": done.stderr[-2000:]}
    record = json.loads(done.stdout.strip().splitlines()[-1])
    record.update(wall_s=wall, images_per_s=record["images"] / record["work_s"],
                  others_cpu_s=max(0.0, machine - record["cpu_s"]), load_before=load_before)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--model", help="an ONNX model with its sidecar; default: shipped")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", help="comma-separated contenders")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--embed-name", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.images, args.workers, args.embed_name, args.limit)
        return

    from lookalike.methods.embedding import method_name
    from lookalike.methods.registry import get_spec

    embed_name = method_name(args.model)
    spec = get_spec(embed_name)
    chosen = args.only.split(",") if args.only else list(CONTENDERS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pictures"
        folder.mkdir()
        made = make_pictures(args.images, folder, args.n)
        megapixels = SIZE[0] * SIZE[1] / 1e6
        total_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"{made} JPEGs of {SIZE[0]}x{SIZE[1]} ({megapixels:.2f} MP, {total_mb:.0f} MB "
              f"in all); model {spec.params}; {args.workers} workers", flush=True)
        for path in folder.iterdir():
            path.read_bytes()  # warm page cache
        for name in chosen:  # warm libraries and the model file, untimed
            run_child(name, folder, args.workers, embed_name, limit=WARM_UP_FILES)
        rows = []
        for _ in range(args.repeat):
            for name in chosen:
                row = run_child(name, folder, args.workers, embed_name)
                rows.append(row)
                if "error" in row:
                    print(f"{name}: failed: {row['error']}", flush=True)
                else:
                    print(f"{name}: {row['images_per_s']:.1f} images/s", flush=True)
    head = (f"{'contender':20} {'images':>6} {'work s':>7} {'wall s':>7} {'img/s':>7} "
            f"{'main MB':>7} {'worker MB':>9} {'tree MB':>7} {'cpu s':>6} {'cpu ms/img':>10} "
            f"{'others':>6} {'load':>5}")
    print("\n" + head)
    print("-" * len(head))
    for row in rows:
        if "error" in row:
            continue
        print(f"{row['contender']:20} {row['images']:6} {row['work_s']:7.1f} "
              f"{row['wall_s']:7.1f} {row['images_per_s']:7.1f} {row['main_mb']:7.0f} "
              f"{row['worker_mb']:9.0f} {row['tree_mb']:7.0f} {row['cpu_s']:6.1f} "
              f"{1000 * row['cpu_s'] / row['images']:10.2f} {row['others_cpu_s']:6.1f} "
              f"{row['load_before']:5.2f}")
    rates = {r["contender"]: r["images_per_s"] for r in rows if "error" not in r}
    if "embed" in rates and "phash+dhash" in rates:
        print(f"\nembed scan / phash+dhash scan: {rates['embed'] / rates['phash+dhash']:.2f}x "
              "the speed")
    if "embed" in rates and "pillow-decode" in rates:
        print(f"embed scan / full Pillow decode: {rates['embed'] / rates['pillow-decode']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"size": SIZE, "images": made, "model": spec.params,
                                         "workers": args.workers, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
