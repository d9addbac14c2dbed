"""The cost model of a budgeted run (:mod:`graft.selection.budget`): what the data holds, read without decoding it,
and what each backbone costs on this machine, measured now, and the times of the steps that follow from both."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError

__all__ = ["Cost", "DataFacts", "read_data", "probe", "head_s", "tail_s", "fe_s", "rank_cost"]

#: a training step per example costs this many frozen forward passes (backward pass, augmentation)
FT_STEP_FACTOR = 4.0
#: seconds of one optimizer step of a linear head on cached embeddings (loop overhead included)
HEAD_STEP_S = 2e-3
#: the run files after training (bundle, plots, HTML report), besides the forward passes they need
TAIL_BASE_S = 3.0
#: images whose Grad-CAM overlays the report draws (forward and backward pass each)
GRADCAM_IMAGES = 6
#: examples whose embedding time is measured per candidate
PROBE_EXAMPLES = 12


@dataclass
class Cost:
    """Measured costs of one backbone: build (s), reading and frozen forward pass (s per example)."""

    build_s: float
    read_s: float
    embed_s: float

    @property
    def per_example(self) -> float:
        return self.read_s + self.embed_s


@dataclass
class DataFacts:
    """What the plan needs to know of the data, read without decoding it."""

    X: Any
    labels: list[Any]
    n_data: int  # examples in DATA's training split (what rank samples from)
    n_train: int  # examples the fit trains on
    n_val: int  # examples it validates on
    val_separate: bool  # the validation examples are not part of DATA's training split
    per_class: dict[str, int]
    train_rows: list[int] | None = None  # the rows of DATA's training split the fit trains on (None: all of them)


def read_data(est: Any, data: str, val: str | None) -> DataFacts:
    from ..data.text import TextSet

    X, y, Xva, yva = est._read_fit_data(data, None, val)
    labels = list(y) if y is not None else (list(X.labels or []) if isinstance(X, TextSet) else [])
    if not labels:
        raise DataError(f"'{data}' has no labels; a budgeted run needs labelled training data.")
    if any(isinstance(v, list) for v in labels):
        raise ConfigError("--budget handles single-label classification; train multi-label data without it.")
    counts = Counter(str(v) for v in labels)
    if len(counts) < 2:
        raise DataError(f"'{data}' has one class ({next(iter(counts))}); training needs two or more.")
    n_val = 0
    if Xva is not None:
        n_val = len(Xva)
        if isinstance(Xva, (str, Path)):  # a folder or table given as --val: count its examples without reading them
            vx, _, vvx, _ = est._read_fit_data(str(Xva), None, None)
            n_val = len(vvx if vvx is not None else vx)
    train_rows = None
    if Xva is None and est.val_fraction:  # the fit's own seeded split: the rank must not see its validation part
        from ..estimators._groups import holdout

        groups = None
        if hasattr(est, "_groups_of") and isinstance(X, list):
            by_path = est._groups_of(data)[0]
            groups = [by_path[p] for p in X] if by_path else None
        train_rows, val_rows = holdout(est._make_task(), labels, groups, est.val_fraction, est.seed, est.noun)
        n_val = len(val_rows)
    kept = labels if train_rows is None else [labels[i] for i in train_rows]
    return DataFacts(
        X=X,
        labels=labels,
        n_data=len(labels),
        n_train=len(kept),
        n_val=n_val,
        val_separate=Xva is not None,
        per_class=dict(sorted(Counter(str(v) for v in kept).items())),
        train_rows=train_rows,
    )


def probe(est: Any, d: DataFacts, seed: int) -> Cost:
    """Build ``est``'s backbone and embed :data:`PROBE_EXAMPLES` real examples, timing each step (the embeddings go
    into the cache for the rank)."""
    from .rank import _sample

    t = time.perf_counter()
    est.backbone_ = est._build_backbone(pretrained=True)
    build = time.perf_counter() - t
    idx = _sample(d.labels, PROBE_EXAMPLES, seed)[:PROBE_EXAMPLES]
    t = time.perf_counter()
    if isinstance(d.X, list):  # paths: decode only the probe's examples
        data, _ = est._read([d.X[i] for i in idx], [d.labels[i] for i in idx], what="training data")
        read = (time.perf_counter() - t) / max(1, len(idx))
    else:
        data, _ = est._read(d.X, None, what="training data")
        read = (time.perf_counter() - t) / max(1, len(data))
        data = data.subset(idx)
    rows = range(len(data))
    # timed past the cache (a cached example costs nothing, a step of fine-tuning does) and after a first pass of the
    # same batch, which pays the one-off set-up (kernels chosen for that shape) that the candidate first timed would
    est._embed_uncached(data, rows)
    t = time.perf_counter()
    fresh = est._embed_uncached(data, rows)
    embed = (time.perf_counter() - t) / max(1, len(data))
    est._embedding_cache().put_many(list(data.hashes), fresh)  # the rank reuses them
    return Cost(build, read, embed)


def head_s(n_rows: int, batch_size: int = 32, epochs: int = 60) -> float:
    """A linear head's training on cached embeddings, batched as the head phase batches (20 to 500 steps an epoch)."""
    n = max(1, n_rows)
    batch = max(min(batch_size, -(-n // 20)), min(8, n), -(-n // 500))
    return epochs * -(-n // batch) * HEAD_STEP_S


def tail_s(cost: Cost, d: DataFacts, modality: str, fine_tune: bool) -> float:
    """The tail after the last epoch: final validation pass (fine-tuning), Grad-CAM overlays, run files."""
    gradcam = GRADCAM_IMAGES * FT_STEP_FACTOR * cost.embed_s if modality == "image" else 0.0
    return TAIL_BASE_S + gradcam + (d.n_val * cost.per_example if fine_tune else 0.0)


def fe_s(cost: Cost, d: DataFacts, cached: int, modality: str) -> float:
    """Feature extraction from start to files: embed what the cache lacks, fit the head, the tail."""
    todo = d.n_data - cached + (d.n_val if d.val_separate else 0)
    return cost.build_s + todo * cost.per_example + head_s(d.n_train) + tail_s(cost, d, modality, False)


def rank_cost(costs: dict[str, Cost], names: list[str], m: int) -> float:
    return sum(costs[n].build_s + m * costs[n].per_example + 0.5 for n in names)  # + scoring
