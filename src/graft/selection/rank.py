"""``graft rank``: score candidate backbones on the user's labelled data before training any of them.

Each backbone embeds (a stratified sample of) the labelled examples once, through the embedding cache, and every
transferability score of :mod:`graft.selection.scores` reads those features (LEEP and NCE also the backbone's own
source classifier, when it has one: the ImageNet head of image models). The scores are stored keyed by those
embeddings and labels, so ranking the same data again costs a fraction of the first time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ._score_cache import all_scores
from .scores import SCORES

__all__ = ["rank"]


def _sample(labels: list[Any], max_examples: int, seed: int) -> list[int]:
    """A seeded, stratified subset of at most ``max_examples`` rows (every class kept)."""
    n = len(labels)
    if n <= max_examples:
        return list(range(n))
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, v in enumerate(labels):
        by_class.setdefault(str(v), []).append(i)
    keep: list[int] = []
    for rows in by_class.values():
        k = max(2, int(round(len(rows) * max_examples / n)))
        keep += rng.permutation(rows)[:k].tolist()
    return sorted(keep)


def rank(
    data: str | Path,
    models: str | list[str],
    *,
    task: str = "auto",
    score: str = "logme",
    max_examples: int = 2000,
    rows: Sequence[int] | None = None,
    seed: int = 0,
    device: str = "cpu",
    verbose: bool | None = None,
    **options: Any,
) -> Any:
    """Score ``models`` as backbones for the labelled ``data``; a pandas DataFrame sorted by ``score`` (best first).

    Args:
        data: what ``graft train`` takes (an image folder, a CSV of image paths, a text table).
        models: backbone names (``graft models``), a list or one comma-separated string.
        task: ``auto`` detects it from ``data``.
        score: the column to sort by: ``logme``, ``leep``, ``nce``, ``hscore`` or ``linear_probe``.
        max_examples: embed at most this many labelled examples (a stratified sample).
        rows: draw the sample from these rows of the training split only (e.g. a fit's training part, leaving out
            the validation examples that will score the chosen backbone).
        options: reading options of the modality (``text_column``, ``label_column``, ``image_size``...).

    Columns: ``model``, ``examples``, ``dim``, one per score (``NaN`` where a score does not apply), ``seconds``.
    """
    import pandas as pd

    from ..commands.training import make_estimator, resolve_task

    if score not in SCORES:
        raise ConfigError(f"score must be one of {', '.join(SCORES)}; got '{score}'.")
    if isinstance(models, str):
        models = models.split(",")
    models = list(dict.fromkeys(m.strip() for m in models if m.strip()))  # each once, in the order given
    if not models:
        raise ConfigError("give at least one backbone to rank (--models a,b).")
    if max_examples < 1:
        raise ConfigError(f"max_examples (CLI: --max-examples) must be 1 or more; got {max_examples}.")
    task = resolve_task(Path(data), task)
    if task not in ("image-classification", "text-classification"):
        raise ConfigError(f"rank scores image and text classification backbones; '{data}' is {task}.")
    table: list[dict[str, Any]] = []
    for name in models:
        t0 = time.perf_counter()
        text = {k: options[k] for k in ("text_column", "text_pair_column", "label_column") if k in options}
        est = make_estimator(
            task,
            name,
            "feature-extraction",
            image={"image_size": options.get("image_size")},
            text=text,
            device=device,
            seed=seed,
            verbose=verbose,
        )
        est.backbone_ = est._build_backbone(pretrained=True)
        X, y, _, _ = est._read_fit_data(str(data), None, None)
        if rows is not None:
            X = [X[i] for i in rows] if isinstance(X, list) else X.subset(list(rows))
            y = None if y is None else [y[i] for i in rows]
        if isinstance(X, list) and y is not None and len(X) > max_examples:  # paths: read (decode) only the sample
            keep = _sample(list(y), max_examples, seed)
            X, y = [X[i] for i in keep], [y[i] for i in keep]
        est._skip_known = True  # inputs whose embeddings are cached are not decoded again
        try:
            read, labels = est._read(X, y, what="training data")
        finally:
            est._skip_known = False
        if labels is None:
            raise DataError(f"'{data}' has no labels; rank needs labelled examples.")
        keep = _sample(labels, max_examples, seed)
        read = read.subset(keep)
        labels = [labels[i] for i in keep]
        classes = sorted({str(v) for v in labels})
        if len(classes) < 2:
            raise DataError(f"'{data}' has one class ({classes[0]}); ranking needs two or more.")
        y_idx = np.asarray([classes.index(str(v)) for v in labels])
        features = est._embed(read)
        head = est.backbone_.pretrained_head
        source = None
        if head is not None:
            import torch

            with torch.no_grad():
                source = torch.softmax(head.float()(torch.from_numpy(features)), 1).numpy()
        row: dict[str, Any] = {"model": name, "examples": len(labels), "dim": int(features.shape[1])}
        row.update(all_scores(features, y_idx, source, seed=seed, cache=est.cache))  # stored: a rerun reads them
        row["seconds"] = round(time.perf_counter() - t0, 2)
        table.append(row)
    out = pd.DataFrame(table).sort_values(score, ascending=False, na_position="last").reset_index(drop=True)
    out.attrs["score"] = score
    return out
