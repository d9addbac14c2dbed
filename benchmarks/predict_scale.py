"""Batch prediction at scale: ``graft predict RUN FOLDER --output preds.parquet`` on generated images, peak memory of
the predicting process for a small and a large folder (flat memory means the second is not much larger), and rate.

Usage:
    python benchmarks/predict_scale.py [--small 2000] [--large 20000] [--backend auto]

A feature-extraction model of the embedded EfficientNet-Lite0 is trained on a few generated images first (offline).
Images are 96x96 PNGs written to a temporary folder. Peak RSS is the child process's ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _images(folder: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (64, 96, 96, 3), dtype=np.uint8)  # reused: writing is not what is measured
    for i in range(n):
        Image.fromarray(base[i % 64]).save(folder / f"img{i:06d}.png", compress_level=1)


def _predict(run: Path, folder: Path, out: Path, backend: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `graft predict` process."""
    cmd = [sys.executable, "-m", "graft", "predict", str(run), str(folder), "--output", str(out), "--backend", backend]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.read().decode() if proc.stderr else "graft predict failed")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--large", type=int, default=20000)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    os.environ.setdefault("GRAFT_CACHE_DIR", tempfile.mkdtemp(prefix="graft-scale-"))
    root = Path(tempfile.mkdtemp(prefix="graft-scale-run-"))

    import numpy as np
    import pandas as pd

    import graft

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (24, 96, 96, 3), dtype=np.uint8)
    y = np.arange(24) % 2
    run = root / "run"
    graft.ImageClassifier("efficientnet_lite0", "feature-extraction", device="cpu", verbose=False, output_dir=run).fit(
        X, y
    )
    rows = []
    for n in (args.small, args.large):
        folder = root / f"images{n}"
        _images(folder, n)
        out = root / f"preds{n}.parquet"
        wall, peak = _predict(run, folder, out, args.backend)
        written = len(pd.read_parquet(out))
        rows.append((n, written, wall, n / wall, peak))
    print(
        f"\ngraft predict RUN FOLDER --output preds.parquet --backend {args.backend} (96x96 PNGs, EfficientNet-Lite0)"
    )
    print(f"{'images':>8s} {'rows':>8s} {'wall s':>8s} {'images/s':>9s} {'peak RSS MB':>12s}")
    for n, written, wall, rate, peak in rows:
        print(f"{n:8d} {written:8d} {wall:8.1f} {rate:9.1f} {peak:12.0f}")
    print(f"\npeak RSS ratio large/small: {rows[1][4] / rows[0][4]:.2f} for {args.large / args.small:.0f}x the images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
