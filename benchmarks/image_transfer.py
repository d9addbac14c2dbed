"""Image transfer benchmark: feature extraction (twice, to show the embedding cache) and fine-tuning.

Usage:
    python benchmarks/image_transfer.py [DATASET_DIR] [--epochs N] [--skip-finetune]

DATASET_DIR is a folder with train/ and val/ class sub-folders; it defaults to
../shared/datasets/hymenoptera_data (ants vs bees) when that folder exists. Prints, for each run: validation
accuracy, wall time, and throughput. The cache used is a fresh temporary folder, so the first run is cold.
Reference: PyTorch's transfer-learning tutorial (ResNet-18, GPU) reaches 0.93-0.96 val accuracy on ants/bees.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "hymenoptera_data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=str(DEFAULT))
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--epochs", type=int, default=None, help="fine-tune epochs (default: the strategy's)")
    ap.add_argument("--skip-finetune", action="store_true")
    ap.add_argument("--image-size", type=int, default=None, help="input size instead of the backbone's (e.g. 288)")
    args = ap.parse_args()
    if not Path(args.data).is_dir():
        print(f"dataset folder not found: {args.data}", file=sys.stderr)
        return 2
    os.environ["GRAFT_CACHE_DIR"] = tempfile.mkdtemp(prefix="graft-bench-cache-")

    import torch

    import graft

    print(f"data: {args.data}, model {args.model}, image size {args.image_size or 'native'}")
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, cuda={torch.cuda.is_available()}"
    )
    rows = []

    def run(name: str, strategy: str, **kw: object) -> None:
        t0 = time.perf_counter()
        clf = graft.ImageClassifier(args.model, strategy, verbose=False, image_size=args.image_size, **kw)
        clf.fit(args.data)
        wall = time.perf_counter() - t0
        n = clf.n_train_ + clf.n_val_
        s = clf.training_summary()
        rows.append((name, s["val"]["accuracy"], wall, s.get("embed_seconds", 0.0), n / wall, clf.best_epoch_))

    run("feature-extraction (cold cache)", "feature-extraction")
    run("feature-extraction (warm cache)", "feature-extraction")
    if not args.skip_finetune:
        run("fine-tune", "fine-tune", epochs=args.epochs)

    print()
    print(f"{'run':34s} {'val acc':>8s} {'wall s':>8s} {'embed s':>8s} {'images/s':>9s} {'best ep':>8s}")
    for name, acc, wall, emb, rate, best in rows:
        print(f"{name:34s} {acc:8.4f} {wall:8.1f} {emb:8.2f} {rate:9.1f} {best:8d}")
    cold, warm = rows[0][2], rows[1][2]
    print(f"\ncache speed-up of a repeated feature-extraction run: {cold / warm:.1f}x (wall, in-process)")
    print("images/s = (train + val images) / wall time of the whole fit, image decoding included")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
