"""``graft compare``: the gain of transfer on the user's own data, by label budget.

For each budget ``k`` (``k`` labelled examples per class, a seeded stratified sample of the training part; ``"all"``:
every training example), each seed and each strategy, one model is trained and scored on one fixed test split: the
``val`` data when given, else the data's own test (or val) split, else a stratified holdout taken once before any
budget is sampled. ``scratch`` is the baseline: the same architecture from random weights (``pretrained=False``),
every layer trained at one learning rate from the first step (no head warm-up, batch statistics learned). The
samples of one seed are nested (the 2 examples of a class are among its 8), so the curves are smooth in the budget.

Protocol (the same for every strategy): no validation split is held out of the few labelled examples (the model of
the last epoch is scored); budgets of fewer than 128 examples train in smaller batches (``n // 4``, at least 4), so
every epoch takes a few optimiser steps; the embedding cache is off by default, so every run's seconds are its
cold cost (reading, training), the test evaluation not counted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, did_you_mean
from .compare_report import SCRATCH, write_compare

__all__ = [
    "COLUMNS",
    "SCRATCH",
    "LabelledSet",
    "compare",
    "default_strategies",
    "parse_budgets",
    "sample_budget",
    "split_examples",
]

#: learning rate of the from-scratch baseline (AdamW, one rate for every layer)
SCRATCH_LRS: dict[str, float] = {"image": 1e-3, "text": 3e-4}
#: share of each class held out as the test split when the data has none and no ``val`` is given
TEST_FRACTION = 0.3
#: the strategies a comparison runs by default (``few-shot`` joins them for text when it is registered)
DEFAULT_STRATEGIES: tuple[str, ...] = (SCRATCH, "feature-extraction", "fine-tune", "lora")
#: the columns of the table :func:`compare` returns, one row per run
COLUMNS = ["strategy", "budget", "seed", "n_train", "accuracy", "f1_macro", "seconds"]
_TASKS = ("image-classification", "text-classification")
_READ_OPTIONS = ("text_column", "text_pair_column", "label_column")


@dataclass
class LabelledSet:
    """Labelled examples of one split: image paths (a list) or a :class:`graft.data.text.TextSet`, and a label each."""

    items: Any
    labels: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: Sequence[int]) -> LabelledSet:
        idx = [int(i) for i in idx]
        items = [self.items[i] for i in idx] if isinstance(self.items, list) else self.items.subset(idx)
        return LabelledSet(items, [self.labels[i] for i in idx])

    def as_input(self) -> tuple[Any, Any]:
        """``(X, y)`` as an estimator's ``fit`` and ``evaluate`` take them."""
        return (self.items, list(self.labels)) if isinstance(self.items, list) else (self.items, None)


def parse_budgets(budgets: str | Sequence[int | str]) -> list[int | str]:
    """Budgets as positive integers (labelled examples per class) and ``"all"``: sorted, ``"all"`` last, no repeats.

    Example:
        >>> parse_budgets("32,2,all,8")
        [2, 8, 32, 'all']
    """
    raw = [b.strip() for b in budgets.split(",")] if isinstance(budgets, str) else list(budgets)
    out: set[int] = set()
    every = False
    for b in raw:
        if isinstance(b, str) and b.lower() == "all":
            every = True
            continue
        try:
            k = int(b) if not isinstance(b, (bool, float)) else None
        except ValueError:
            k = None
        if k is None or k < 1:
            raise ConfigError(
                f"budgets are labelled examples per class (positive integers) or 'all', e.g. 2,8,32,all; got '{b}'."
            )
        out.add(k)
    if not out and not every:
        raise ConfigError("give at least one budget, e.g. --budgets 2,8,32,all.")
    return [*sorted(out), *(["all"] if every else [])]


def _within(budgets: list[int | str], labels: Sequence[str]) -> list[int | str]:
    """``budgets`` with those of at least the largest class's examples run once, as ``"all"`` (they would draw every
    example of every class), with a warning that says so."""
    import warnings
    from collections import Counter

    largest = max(Counter(str(v) for v in labels).values())
    whole = [b for b in budgets if b != "all" and int(b) >= largest]
    if not whole:
        return budgets
    warnings.warn(
        f"budget(s) {', '.join(map(str, whole))} per class reach the largest class ({largest} training examples): "
        "they draw every example, so they run once, as 'all'.",
        stacklevel=3,
    )
    return [b for b in budgets if b not in whole and b != "all"] + ["all"]


def check_output_dir(folder: Path, *, overwrite: bool) -> None:
    """Refuse, before any run, an output folder that holds an earlier comparison (unless ``overwrite``), is a file
    or cannot be written."""
    from .._utils import check_writable

    earlier = [n for n in ("compare.csv", "compare.json") if (folder / n).exists()]
    if earlier and not overwrite:
        raise ConfigError(
            f"'{folder}' holds an earlier comparison ({', '.join(earlier)}). Choose another folder, or pass "
            "overwrite=True (CLI: --overwrite) to replace it."
        )
    check_writable(folder / "compare.json", "-o")


def sample_budget(labels: Sequence[str], k: int | str, seed: int) -> list[int]:
    """Indices of ``k`` examples per class (all of a class that has fewer), a seeded stratified sample; ``"all"``: every
    index. The draws of one seed are nested: the sample for ``k`` holds the sample for any smaller ``k``.

    Example:
        >>> sample_budget(["a", "b", "a", "b", "a"], 1, seed=0)  # doctest: +SKIP
        [2, 3]
    """
    if k == "all":
        return list(range(len(labels)))
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, v in enumerate(labels):
        by_class.setdefault(str(v), []).append(i)
    keep: list[int] = []
    for name in sorted(by_class):  # one permutation per class whatever k is: samples of one seed nest
        rows = by_class[name]
        keep += [rows[j] for j in rng.permutation(len(rows))[: int(k)]]
    return sorted(keep)


def _read_splits(task: str, path: str | Path, options: dict[str, Any]) -> dict[str, LabelledSet]:
    if not Path(path).exists():
        raise DataError(f"'{path}' does not exist. Give an image folder or CSV, or a text table, as for graft train.")
    if task == "image-classification":
        from ..data.images import find_splits

        return {name: LabelledSet(list(p), [str(v) for v in y]) for name, (p, y) in find_splits(path).items()}
    from ..data.text import find_text_splits

    kw = {k: options[k] for k in _READ_OPTIONS if options.get(k) is not None}
    out = {}
    for name, ts in find_text_splits(path, **kw).items():
        if ts.labels is None or ts.multi_label:
            raise DataError(
                f"The {name} split of '{path}' has no single label per text; compare needs one. Name the label "
                "column with --label-column NAME (Python: label_column='NAME')."
            )
        out[name] = LabelledSet(ts, [str(v) for v in ts.labels])
    return out


def split_examples(
    task: str,
    data: str | Path,
    val: str | Path | None = None,
    *,
    test_fraction: float = TEST_FRACTION,
    max_test: int | None = None,
    **options: Any,
) -> tuple[LabelledSet, LabelledSet, str]:
    """The training pool budgets are drawn from, the fixed test split, and where the test split came from.

    The test split is ``val`` (its test split, else val, else all of it) when given, else the test split of ``data``,
    else its val split, else a stratified ``test_fraction`` of its training data (seed 0), chosen once.
    ``max_test`` keeps a stratified sample (seed 0) of that many test examples.

    Raises:
        DataError: a missing path, fewer than two classes, or test labels that the training part lacks.
    """
    from ..data.labels import stratified_split

    splits = _read_splits(task, data, options)
    pool = splits["train"]
    if val is not None:
        given = _read_splits(task, val, options)
        name = next(k for k in ("test", "val", "train") if k in given)
        test, where = given[name], str(val) + ("" if name == "train" else f" ({name} split)")
    elif "test" in splits or "val" in splits:
        name = "test" if "test" in splits else "val"
        test, where = splits[name], f"the {name} split of {data}"
    else:
        if not 0.0 < test_fraction < 1.0:
            raise ConfigError(f"test_fraction must be between 0 and 1; got {test_fraction}.")
        train_idx, test_idx = stratified_split(pool.labels, test_fraction, 0)
        pool, test = pool.subset(train_idx), pool.subset(test_idx)
        where = f"a stratified {test_fraction:.0%} holdout of {data}"
    if max_test is not None:
        if max_test < 2:
            raise ConfigError(f"max_test must be at least 2 examples; got {max_test}.")
        if len(test) > max_test:
            test = test.subset(stratified_split(test.labels, max_test / len(test), 0)[1])
            where += f", {len(test)} examples kept"
    classes = sorted(set(pool.labels))
    if len(classes) < 2:
        raise DataError(f"The training part of '{data}' has {len(classes)} class(es); compare needs two or more.")
    unknown = sorted(set(test.labels) - set(classes))
    if unknown:
        raise DataError(
            f"The test split ({where}) has labels the training part lacks: {', '.join(unknown[:10])}. Give a --val "
            "with the training classes only."
        )
    return pool, test, where


def default_strategies(task: str) -> list[str]:
    """The strategies :func:`compare` runs by default for ``task`` (``few-shot`` for text once it is registered)."""
    from ..strategies import list_strategies

    names = list(DEFAULT_STRATEGIES)
    if task == "text-classification" and "few-shot" in list_strategies():
        names.append("few-shot")
    return names


def _check_strategies(names: Sequence[str]) -> list[str]:
    from ..strategies import get_strategy, list_strategies

    supervised = set(list_strategies(adaptation=False))
    out: list[str] = []
    for name in names:
        try:
            key = SCRATCH if name.strip().lower() == SCRATCH else get_strategy(name.strip()).name
        except ConfigError:
            raise ConfigError(
                f"Unknown strategy '{name.strip()}'.{did_you_mean(name.strip(), [SCRATCH, *supervised])} Choose from "
                f"{SCRATCH}, {', '.join(sorted(supervised))}."
            ) from None
        if key != SCRATCH and key not in supervised:
            raise ConfigError(
                f"compare trains on labelled examples alone; '{name}' adapts to unlabelled target data. Choose from "
                f"{SCRATCH}, {', '.join(sorted(supervised))}."
            )
        if key not in out:
            out.append(key)
    if not out:
        raise ConfigError(f"give at least one strategy, e.g. --strategies {SCRATCH},fine-tune.")
    return out


def _estimator(
    task: str, backbone: str | None, strategy: str, *, seed: int, epochs: int | None, n_train: int, settings: dict
) -> Any:
    """An unfitted estimator of one run (``scratch``: random weights, no warm-up, one learning rate)."""
    from ..commands.training import make_estimator
    from ..strategies import FineTune, get_strategy
    from ..training.plan import BackbonePhase

    options = dict(settings["options"])
    common = {
        "seed": seed,
        "device": settings["device"],
        "cache": settings["cache"],
        "verbose": False,
        "val_fraction": 0.0,  # the few labelled examples all train; the last epoch's model is scored
        "batch_size": min(settings["batch_size"], max(4, n_train // 4)),
    }
    params: dict[str, Any] = {}
    if strategy == SCRATCH:
        options.pop("weights", None)  # a weights file would replace the random initialisation
        params = {"head_warmup": False, "freeze_bn": False, "lr_decay": 1.0}
        modality = "image" if task == "image-classification" else "text"
        common.update(pretrained=False, epochs=epochs or FineTune.default_epochs, lr=SCRATCH_LRS[modality])
        strategy = "fine-tune"
    elif epochs is not None and any(isinstance(p, BackbonePhase) for p in get_strategy(strategy)().plan()):
        common["epochs"] = epochs  # else the estimator's epochs are a head's on embeddings: it keeps its own
    split = {"image": options, "text": {}} if task == "image-classification" else {"image": {}, "text": options}
    return make_estimator(task, backbone, strategy, strategy_params=params, **split, **common)


def compare(
    data: str | Path,
    *,
    budgets: str | Sequence[int | str] = (2, 8, 32, "all"),
    seeds: int | Sequence[int] = 3,
    strategies: Sequence[str] | None = None,
    backbone: str | None = None,
    epochs: int | None = None,
    val: str | Path | None = None,
    task: str = "auto",
    test_fraction: float = TEST_FRACTION,
    max_test: int | None = None,
    batch_size: int = 32,
    device: str = "auto",
    cache: bool = False,
    output_dir: str | Path | None = None,
    overwrite: bool = False,
    verbose: bool | None = None,
    **options: Any,
) -> Any:
    """Train every strategy at every label budget and seed on ``data``; score each on one fixed test split.

    Args:
        data: what ``graft train`` takes: an image folder (``train/``, ``val/``, ``test/`` optional) or CSV, or a
            text table or folder of tables.
        budgets: labelled examples per class (``2``, ``8``...) and ``"all"`` (the whole training part).
        seeds: how many seeds (``0..seeds-1``), or the seeds; each draws its own samples and initialisations.
        strategies: ``scratch`` and supervised strategy names (default: :func:`default_strategies`).
        backbone: the backbone (default ``efficientnet_lite0`` / ``minilm``).
        epochs: epochs of the runs whose backbone trains epoch by epoch (``scratch``, ``fine-tune``, ``lora``;
            default: the strategy's, 6 for ``scratch``); ``feature-extraction`` and ``few-shot``, whose epochs are
            those of a head on embeddings, keep their own.
        val: the test data (default: see :func:`split_examples`).
        task: ``auto``, ``image-classification`` or ``text-classification``.
        test_fraction: share held out as the test split when the data has none and ``val`` is not given.
        max_test: score on a stratified sample of at most this many test examples.
        batch_size: examples per step (budgets under 128 examples use ``n // 4``, at least 4).
        device: ``auto``, ``cpu``, ``cuda``...
        cache: read and write the embedding cache (faster repeated feature extraction; the seconds then say so).
        output_dir: write ``compare.csv``, ``compare.json`` and ``compare.png`` there (rewritten after every run); a
            folder holding an earlier comparison is refused unless ``overwrite``.
        overwrite: replace the results of an earlier comparison in ``output_dir``.
        verbose: a progress bar over the runs (default: when a person is watching).
        options: estimator settings (``image_size``, ``augment``, ``weights``, ``text_column``, ``label_column``,
            ``max_length``, ``backbone_config``...).

    Returns:
        A pandas DataFrame, one row per run: ``strategy``, ``budget``, ``seed``, ``n_train``, ``accuracy``,
        ``f1_macro``, ``seconds`` (training wall time). ``attrs`` hold ``data``, ``backbone``, ``test_rows``,
        ``test_source`` and ``budgets``; :func:`graft.selection.compare_report.report` gives the summary and gain.

    Example:
        >>> table = graft.compare("data/ants_bees", budgets=[2, 8, "all"], seeds=3)  # doctest: +SKIP
        >>> graft.selection.compare_report.summarize(table)  # doctest: +SKIP
    """
    import pandas as pd

    from .._utils import watched
    from ..commands.training import resolve_task

    task = resolve_task(Path(data), task)
    if task not in _TASKS:
        raise ConfigError(f"compare runs image and text classification; '{data}' is {task}.")
    budget_list = parse_budgets(budgets)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ConfigError(f"seeds must be at least 1; got {seeds}.")
    if isinstance(strategies, str):
        strategies = [s for s in strategies.split(",") if s.strip()]
    names = _check_strategies(default_strategies(task) if strategies is None else strategies)
    if epochs is not None and epochs < 1:
        raise ConfigError(f"epochs must be at least 1; got {epochs}.")
    if output_dir is not None:
        check_output_dir(Path(output_dir), overwrite=overwrite)
    pool, test, where = split_examples(
        task, data, val, test_fraction=test_fraction, max_test=max_test, **{k: options.get(k) for k in _READ_OPTIONS}
    )
    budget_list = _within(budget_list, pool.labels)
    settings = {"options": options, "device": device, "cache": cache, "batch_size": batch_size}
    X_test, y_test = test.as_input()
    runs = [(b, s, n) for b in budget_list for s in seed_list for n in names]
    rows: list[dict[str, Any]] = []
    table = pd.DataFrame(columns=COLUMNS)
    bar = _progress_bar(watched() if verbose is None else verbose)
    with bar if bar is not None else contextlib.nullcontext():
        progress = bar.add_task("", total=len(runs)) if bar is not None else None
        for budget, seed, name in runs:
            if bar is not None:
                bar.update(progress, description=f"{name}, {budget} per class, seed {seed}")
            train = pool.subset(sample_budget(pool.labels, budget, seed))
            est = _estimator(task, backbone, name, seed=seed, epochs=epochs, n_train=len(train), settings=settings)
            X, y = train.as_input()
            t0 = time.perf_counter()
            est.fit(X, y)
            seconds = time.perf_counter() - t0
            metrics = est.evaluate(X_test, y_test)
            rows.append(
                {
                    "strategy": name,
                    "budget": budget,
                    "seed": seed,
                    "n_train": len(train),
                    "accuracy": float(metrics["accuracy"]),
                    "f1_macro": float(metrics["macro_f1"]),
                    "seconds": round(seconds, 2),
                }
            )
            table = pd.DataFrame(rows, columns=COLUMNS)
            table.attrs.update(
                data=str(data), backbone=est.backbone, test_rows=len(test), test_source=where, budgets=budget_list
            )
            if output_dir is not None:
                write_compare(table, output_dir)
            if bar is not None:
                bar.advance(progress)
    return table


def _progress_bar(enabled: bool) -> Any:
    """A rich progress bar over the runs on stderr, or ``None``."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("compare [bold]{task.description}"), BarColumn(), MofNCompleteColumn())
    return Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True)
