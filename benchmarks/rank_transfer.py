"""Do transferability scores predict which backbone transfers best? ``graft rank`` against measured accuracy.

Images: each labelled image dataset of ``../shared/datasets`` (ants/bees, RetinaMNIST, MNIST, USPS) and each offline
image backbone (EfficientNet-Lite0/1/2; Lite1/2 need ``pip install -e ".[zoo]"``). Text: SST-2 (a seeded sample of
``train.tsv``, tested on ``test.tsv`` = the GLUE dev set) and the four Amazon review domains (books, dvd, electronics,
kitchen; a seeded half of each domain's 2,000 reviews to train on, the other half to test on), each with the offline
text backbones (MiniLM, and WordLlama 256/128/64-d from the ``zoo`` extra). Per dataset: the rank scores on the
training split, then the test accuracy of Graft's feature-extraction model with that backbone (a linear head on the
frozen, cached embeddings, trained on the same training split). Prints every score beside the accuracy, Kendall's τ
between each score and accuracy per dataset and on average, and the time of a first and a second ``rank`` of each
dataset (the second reads the embedding cache).

Usage:
    python benchmarks/rank_transfer.py [--task image|text|both] [--data ../shared/datasets] [--per-class 100]
        [--models a,b,c] [--text-models a,b,c] [--train-size 2000] [--test-size 1000] [--datasets usps,sst-2]
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


def _write_csv(path: Path, texts: list[str], labels: list[int]) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def text_datasets(data: Path, root: Path, train_size: int, test_size: int) -> dict[str, tuple[Path, Path]]:
    """name -> (training CSV, test CSV), columns ``text`` and ``label``; seeded samples."""
    import pandas as pd

    rng = np.random.default_rng(0)
    sst_train = pd.read_csv(data / "sst2/train.tsv", sep="\t", quoting=3)
    sst_test = pd.read_csv(data / "sst2/test.tsv", sep="\t", quoting=3)
    tr = rng.permutation(len(sst_train))[:train_size]
    te = rng.permutation(len(sst_test))[:test_size]
    out = {
        "SST-2": (
            _write_csv(
                root / "sst2/train.csv", sst_train["sentence"].iloc[tr].tolist(), sst_train["label"].iloc[tr].tolist()
            ),
            _write_csv(
                root / "sst2/test.csv", sst_test["sentence"].iloc[te].tolist(), sst_test["label"].iloc[te].tolist()
            ),
        )
    }
    from domain_adaptation import load_amazon  # this folder's Amazon reader (the script's folder is on sys.path)

    for domain in ("books", "dvd", "electronics", "kitchen"):
        texts, labels = load_amazon(data / "amazon_reviews" / domain)
        order = rng.permutation(len(texts))
        half = len(order) // 2
        tr, te = order[:half][:train_size], order[half:][:test_size]
        out[f"amazon-{domain}"] = (
            _write_csv(root / domain / "train.csv", [texts[i] for i in tr], [labels[i] for i in tr]),
            _write_csv(root / domain / "test.csv", [texts[i] for i in te], [labels[i] for i in te]),
        )
    return out


def run_dataset(name: str, train: Path, test: Path, models: list[str], estimator: type) -> tuple:
    """The rank table with the test accuracy beside it, Kendall's tau per score, and the two rank times."""
    from scipy.stats import kendalltau

    from graft.selection import SCORES, rank

    t0 = time.perf_counter()
    table = rank(train, models, verbose=False)
    t1 = time.perf_counter()
    rank(train, models, verbose=False)
    t2 = time.perf_counter()
    times = {
        "dataset": name,
        "first_rank_s": round(t1 - t0, 1),
        "second_rank_s": round(t2 - t1, 2),
        "ratio": round((t2 - t1) / (t1 - t0), 3),
    }
    accuracy = {}
    for m in models:
        clf = estimator(m, "feature-extraction", verbose=False, val_fraction=0.1).fit(str(train))
        accuracy[m] = clf.evaluate(str(test))["accuracy"]
    table["test_accuracy"] = table["model"].map(accuracy)
    table.insert(0, "dataset", name)
    tau = {"dataset": name}
    for score in SCORES:
        values = table[score].to_numpy(dtype=float)
        ok = np.isfinite(values)
        tau[score] = float(kendalltau(values[ok], table["test_accuracy"][ok]).statistic) if ok.sum() > 1 else np.nan
    print(table.round(4).to_string(index=False), flush=True)
    return table, tau, times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="both", choices=["image", "text", "both"])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets")
    ap.add_argument("--per-class", type=int, default=100, help="MNIST/USPS images per class in each split")
    ap.add_argument("--models", default="efficientnet_lite0,efficientnet_lite1,efficientnet_lite2")
    ap.add_argument("--text-models", default="minilm,wordllama,wordllama_128,wordllama_64")
    ap.add_argument("--train-size", type=int, default=2000, help="most training texts per text dataset")
    ap.add_argument("--test-size", type=int, default=1000, help="most test texts per text dataset")
    ap.add_argument("--datasets", default="", help="only these (comma-separated names, case-insensitive)")
    args = ap.parse_args()
    os.environ.setdefault("GRAFT_CACHE_DIR", tempfile.mkdtemp(prefix="graft-rank-"))
    warnings.filterwarnings("ignore")
    import pandas as pd
    import torch  # noqa: F401 - imported before timing

    import graft
    from graft.selection import SCORES

    wanted = {d.strip().lower() for d in args.datasets.split(",") if d.strip()}
    root = Path(tempfile.mkdtemp(prefix="graft-rank-data-"))
    jobs: list[tuple[str, Path, Path, list[str], type]] = []
    if args.task in ("image", "both"):
        image_models = [m.strip() for m in args.models.split(",")]
        for name, (train, test) in datasets(args.data, root / "images", args.per_class).items():
            jobs.append((name, train, test, image_models, graft.ImageClassifier))
    if args.task in ("text", "both"):
        text_models = [m.strip() for m in args.text_models.split(",")]
        for name, (train, test) in text_datasets(args.data, root / "text", args.train_size, args.test_size).items():
            jobs.append((name, train, test, text_models, graft.TextClassifier))
    tables, taus, times = [], [], []
    for name, train, test, models, estimator in jobs:
        if wanted and name.lower() not in wanted:
            continue
        table, tau, t = run_dataset(name, train, test, models, estimator)
        tables.append(table)
        taus.append(tau)
        times.append(t)
    pd.set_option("display.width", 200)
    tau_df = pd.DataFrame(taus)
    print("\nKendall's tau between each score and the feature-extraction test accuracy (per dataset)")
    print(tau_df.round(3).to_string(index=False))
    print("mean:", {k: round(float(tau_df[k].mean()), 3) for k in SCORES})
    print("\nrank time (s), first and second run on the same data (embedding cache):")
    print(pd.DataFrame(times).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
