"""Text transfer benchmark: sentiment (SST-2) and NER (CoNLL-2003) with each strategy.

Usage:
    python benchmarks/text_transfer.py [--sst2 DIR] [--conll DIR] [--strategies feature-extraction,fine-tune,lora]
        [--train-size N] [--epochs N] [--model minilm] [--task sentiment|ner|both]

Defaults: ../shared/datasets/sst2 (train on a seeded sample of train.tsv, validate on a held-out 10%, score on
test.tsv = the GLUE dev set) and ../shared/datasets/conll2003 (IOB1 converted to IOB2; train on eng.train,
validate on eng.testa, score on eng.testb). Prints accuracy / entity F1, wall time and sentences per second
(training examples processed per second of fit, and test sentences per second of prediction).
References (cite as such): SST-2 GLUE dev: DistilBERT 0.913, BERT-base 0.927 fine-tuned on GPU; a logistic
regression on MiniLM embeddings of 10k phrases 0.806. CoNLL-2003 test: bert-base-cased 0.926 entity F1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _strategy(args: argparse.Namespace, name: str) -> object:
    """The strategy by name, with ``--lr-decay`` applied to fine-tuning."""
    if args.lr_decay is None or name != "fine-tune":
        return name
    from graft.strategies import resolve_strategy

    return resolve_strategy(name, lr_decay=args.lr_decay)


def _sentiment(args: argparse.Namespace, strategy: str) -> dict[str, object]:
    import numpy as np

    import graft
    from graft.data.text import read_text_table

    train = read_text_table(Path(args.sst2) / "train.tsv")
    test = read_text_table(Path(args.sst2) / "test.tsv")
    rng = np.random.default_rng(args.seed)
    idx = rng.permutation(len(train))[: args.train_size]
    X = [train.texts[i] for i in idx]
    y = [int(train.labels[i]) for i in idx]  # type: ignore[index]
    kw: dict[str, object] = {"verbose": args.verbose, "seed": args.seed, "output_dir": None}
    if args.epochs:
        kw["epochs"] = args.epochs
    if args.lr:
        kw["lr"] = args.lr
    clf = graft.TextClassifier(args.model, _strategy(args, strategy), **kw)
    t0 = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    m = clf.evaluate(test.texts, [int(v) for v in test.labels])  # type: ignore[union-attr]
    pred_s = time.perf_counter() - t1
    share = getattr(clf, "trainable_share_", None)
    epochs_run = len([h for h in clf.history_ if h["phase"] != "head"])
    return {
        "task": "sst2",
        "strategy": strategy,
        "n_train": len(X),
        "test_accuracy": round(m["accuracy"], 4),
        "test_macro_f1": round(m["macro_f1"], 4),
        "fit_s": round(fit_s, 1),
        "train_examples_per_s": round(len(X) * max(epochs_run, 1) / fit_s, 1),
        "predict_sentences_per_s": round(len(test) / pred_s, 1),
        "best_epoch": clf.best_epoch_,
        "trainable_share": None if share is None else round(share, 5),
    }


def _ner(args: argparse.Namespace, strategy: str) -> dict[str, object]:
    import graft
    from graft.data.tokens import find_token_splits

    splits = find_token_splits(args.conll)
    train = splits["train"]
    if args.ner_train_size and args.ner_train_size < len(train):
        train = train.subset(list(range(args.ner_train_size)))
    kw: dict[str, object] = {"verbose": args.verbose, "seed": args.seed}
    if args.epochs:
        kw["epochs"] = args.epochs
    if args.lr:
        kw["lr"] = args.lr
    ner = graft.TokenClassifier(args.model, _strategy(args, strategy), output_dir=args.ner_run, overwrite=True, **kw)
    t0 = time.perf_counter()
    ner.fit(train, val=splits["val"])
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    m = ner.evaluate(splits["test"])
    pred_s = time.perf_counter() - t1
    epochs_run = len([h for h in ner.history_ if h["phase"] != "head"])
    return {
        "task": "conll2003",
        "strategy": strategy,
        "n_train": len(train),
        "test_entity_f1": round(m["f1"], 4),
        "test_precision": round(m["precision"], 4),
        "test_recall": round(m["recall"], 4),
        "fit_s": round(fit_s, 1),
        "train_sentences_per_s": round(len(train) * max(epochs_run, 1) / fit_s, 1),
        "predict_sentences_per_s": round(len(splits["test"]) / pred_s, 1),
        "best_epoch": ner.best_epoch_,
        "head_warmup_val_f1": next((round(h["val_f1"], 4) for h in ner.history_[::-1] if h["phase"] == "head"), None),
        "val_curve_f1": [round(h["val_f1"], 4) for h in ner.history_ if h["phase"] != "head" and "val_f1" in h],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sst2", default=str(SHARED / "sst2"))
    ap.add_argument("--conll", default=str(SHARED / "conll2003"))
    ap.add_argument("--task", default="both", choices=["sentiment", "ner", "both"])
    ap.add_argument("--strategies", default="feature-extraction,fine-tune,lora")
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--train-size", type=int, default=10_000, help="SST-2 training phrases (seeded sample)")
    ap.add_argument("--ner-train-size", type=int, default=0, help="CoNLL training sentences (0 = all)")
    ap.add_argument("--ner-run", default=None, help="run directory for the NER fit (metrics.jsonl per epoch)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--lr-decay", type=float, default=None, help="fine-tune layer-wise LR decay")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("GRAFT_CACHE_DIR", tempfile.mkdtemp(prefix="graft-bench-cache-"))
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cuda={torch.cuda.is_available()}", flush=True)
    rows = []
    for strategy in args.strategies.split(","):
        if args.task in ("sentiment", "both"):
            if not Path(args.sst2).is_dir():
                print(f"SST-2 folder not found: {args.sst2}", file=sys.stderr)
                return 2
            rows.append(_sentiment(args, strategy))
            print(json.dumps(rows[-1]), flush=True)
        if args.task in ("ner", "both"):
            if not Path(args.conll).is_dir():
                print(f"CoNLL folder not found: {args.conll}", file=sys.stderr)
                return 2
            rows.append(_ner(args, strategy))
            print(json.dumps(rows[-1]), flush=True)
    print()
    print(f"{'task':10s} {'strategy':20s} {'n_train':>8s} {'score':>7s} {'fit s':>8s} {'train/s':>8s} {'pred/s':>8s}")
    for r in rows:
        score = r.get("test_accuracy", r.get("test_entity_f1"))
        rate = r.get("train_examples_per_s", r.get("train_sentences_per_s"))
        print(
            f"{r['task']:10s} {r['strategy']:20s} {r['n_train']:8d} {score:7.4f} {r['fit_s']:8.1f} {rate:8.1f} "
            f"{r['predict_sentences_per_s']:8.1f}"
        )
    print("score: SST-2 test (GLUE dev) accuracy; CoNLL eng.testb entity F1 (strict IOB2, micro)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
