"""A fit run as a separate process, for the multi-process and crash tests (launched by them; not a test itself).

Usage: python tests/_launch_fit.py OUT.json RUN_DIR --batch-size N [--resume] [--kill-at-epoch E]
Trains a tiny random-weight image model (fine-tune: head warm-up, then the backbone) without dropout or augmentation
on generated images; the main process writes the final metrics and fitted weights' digest to OUT.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from conftest import TINY_BACKBONE, color_arrays  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("run")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument(
        "--kill-in-epoch", type=int, default=None, help="SIGKILL itself mid-way through this backbone epoch"
    )
    ap.add_argument("--weights", default=None)
    args = ap.parse_args()

    import graft
    from graft.strategies import FineTune

    X, y = color_arrays(16, 2)  # 32 images: 24 train / 8 validation, whole batches on 1 or 2 processes
    torch.manual_seed(0)
    clf = graft.ImageClassifier(
        TINY_BACKBONE,
        FineTune(dropout=0.0, label_smoothing=0.0),
        pretrained=False,
        weights=args.weights,
        image_size=32,
        batch_size=args.batch_size,
        epochs=3,
        augment="none",
        device="cpu",
        cache=False,
        verbose=False,
        val_fraction=0.25,
        output_dir=args.run,
        overwrite=not args.resume,
    )

    armed = {"on": False, "steps": 0}

    def killer(phase: str, epoch: int, logs: dict) -> None:  # after epoch ``epoch + 1`` and its checkpoint
        if args.kill_in_epoch is not None and phase == "fine-tune" and epoch + 2 == args.kill_in_epoch:
            armed["on"] = True

    step = torch.optim.AdamW.step

    def step_then_maybe_die(self: torch.optim.AdamW, *a: object, **k: object) -> object:
        out = step(self, *a, **k)
        if armed["on"]:
            armed["steps"] += 1
            if armed["steps"] == 2:  # two optimizer steps into the epoch: nothing of it is saved yet
                os.kill(os.getpid(), 9)
        return out

    torch.optim.AdamW.step = step_then_maybe_die  # type: ignore[method-assign]

    clf.fit(X, y, resume=args.resume, callbacks=[killer])
    if int(os.environ.get("RANK", "0")) == 0:
        digest = hashlib.sha256()
        for k, v in sorted(clf.model_.state_dict().items()):
            digest.update(k.encode())
            digest.update(np.ascontiguousarray(v.detach().cpu().float().numpy()).tobytes())
        out = {
            "val": clf.val_metrics_,
            "best_epoch": clf.best_epoch_,
            "history": [
                {k: v for k, v in h.items() if k not in ("seconds", "train_samples_per_s")} for h in clf.history_
            ],
            "weights": digest.hexdigest(),
        }
        Path(args.out).write_text(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
