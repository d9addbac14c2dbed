"""RetinaMNIST (MedMNIST v2): diabetic-retinopathy grade 0-4 from 28x28 fundus photos, with the offline backbones.

Trains on the official 1,080 training images, picks epochs/thresholds on the official 120 validation images, and
scores the official 400 test images the way MedMNIST does: ACC = argmax accuracy, AUC = mean of the five one-vs-rest
AUCs (``sklearn.metrics.roc_auc_score(..., multi_class="ovr", average="macro")``). Also prints the quadratic-
weighted kappa (grades are ordinal), Graft's bootstrap 95% CI of the macro AUC (``evaluate``'s clinical metrics),
and the wall time of each fit + evaluation on this machine.

Each configuration is a strategy, a backbone, an input resolution (28 = native, larger = the 28x28 images upscaled),
and whether the grades are treated as ordinal (SORD soft labels; best epoch by validation kappa) or as 5 classes.

Reference rows (MedMNIST v2 paper, test set; AUC / ACC; ResNets trained from scratch): ResNet-18 (28) 0.717 / 0.524,
ResNet-18 (224) 0.710 / 0.493, ResNet-50 (28) 0.726 / 0.528, auto-sklearn 0.690 / 0.515, AutoKeras 0.719 / 0.503,
Google AutoML Vision 0.750 / 0.531.

Usage:
    python benchmarks/medical.py [--data ../shared/datasets] [--configs fe:efficientnet_lite0:112,...]
        [--epochs N] [--seeds 0] [--json results.json]

A configuration is ``STRATEGY:BACKBONE:SIZE[:ordinal]`` with STRATEGY ``fe`` (feature-extraction), ``ft``
(fine-tune) or ``lora``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

DEFAULT_CONFIGS = (
    "fe:efficientnet_lite0:28",
    "fe:efficientnet_lite0:112",
    "fe:efficientnet_lite0:224",
    "fe:efficientnet_lite0:112:ordinal",
    "fe:efficientnet_lite1:112",
    "ft:efficientnet_lite0:112",
    "ft:efficientnet_lite0:112:ordinal",
    "lora:efficientnet_lite0:112",
)
STRATEGIES = {"fe": "feature-extraction", "ft": "fine-tune", "lora": "lora"}
REFERENCES = {
    "ResNet-18 (28)": (0.717, 0.524),
    "ResNet-50 (28)": (0.726, 0.528),
    "AutoKeras": (0.719, 0.503),
    "Google AutoML Vision": (0.750, 0.531),
}


def run_config(config: str, data: dict[str, np.ndarray], epochs: int | None, seed: int) -> dict[str, object]:
    """Fit one configuration and score it on the test split."""
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    import graft

    parts = config.split(":")
    kind, backbone, size = parts[0], parts[1], int(parts[2])
    ordinal = len(parts) > 3 and parts[3] == "ordinal"
    os.environ["GRAFT_CACHE_DIR"] = tempfile.mkdtemp(prefix="graft-medical-")  # every time includes its embeddings
    t0 = time.perf_counter()
    clf = graft.ImageClassifier(
        backbone,
        STRATEGIES[kind],
        image_size=size,
        epochs=epochs if kind != "fe" else None,
        clinical=True,
        ordinal=ordinal,
        seed=seed,
        device="cpu",
        verbose=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(data["train_images"], data["train_labels"], val=(data["val_images"], data["val_labels"]))
        metrics = clf.evaluate(data["test_images"], data["test_labels"])
    seconds = time.perf_counter() - t0
    proba = clf.predict_proba(data["test_images"])
    y = data["test_labels"]
    pred = clf.classes_[proba.argmax(1)].astype(int)
    c = metrics["clinical"]
    return {
        "config": config,
        "strategy": STRATEGIES[kind],
        "backbone": backbone,
        "size": size,
        "ordinal": ordinal,
        "seed": seed,
        "epochs": clf.best_epochs_,
        "test_acc": float((pred == y).mean()),
        "test_auc": float(roc_auc_score(y, proba, multi_class="ovr", average="macro")),
        "test_kappa": float(cohen_kappa_score(y, pred, weights="quadratic")),
        "auc_ci": c.get("macro_auroc_ci"),
        "acc_ci": c.get("accuracy_ci"),
        "val": clf.val_metrics_.get("accuracy") if clf.val_metrics_ else None,
        "seconds": round(seconds, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets")
    ap.add_argument("--configs", default=",".join(DEFAULT_CONFIGS))
    ap.add_argument("--epochs", type=int, default=None, help="epochs of fine-tune / LoRA (default: the strategy's)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--json", type=Path, default=None, help="also write every row as JSON here")
    args = ap.parse_args()

    npz = np.load(args.data / "medmnist/retinamnist.npz")
    data = {k: (npz[k].ravel() if k.endswith("labels") else npz[k]) for k in npz.files}
    print(
        f"RetinaMNIST: train {len(data['train_labels'])}, val {len(data['val_labels'])}, test "
        f"{len(data['test_labels'])}; {os.cpu_count()} CPU cores; torch threads {__import__('torch').get_num_threads()}"
    )
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for config in args.configs.split(","):
            row = run_config(config, data, args.epochs, seed)
            rows.append(row)
            ci = row["auc_ci"] or [float("nan")] * 2
            print(
                f"{config:38s} seed {seed}  ACC {row['test_acc']:.3f}  AUC {row['test_auc']:.3f} "
                f"[{ci[0]:.3f}, {ci[1]:.3f}]  kappa {row['test_kappa']:.3f}  {row['seconds']:.0f}s",
                flush=True,
            )
    print(
        "\nreference rows (MedMNIST v2, test): " + "; ".join(f"{k} {a:.3f}/{b:.3f}" for k, (a, b) in REFERENCES.items())
    )
    best = max(rows, key=lambda r: r["test_acc"] + r["test_auc"])
    print(f"best by ACC+AUC: {best['config']} ACC {best['test_acc']:.3f} AUC {best['test_auc']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
