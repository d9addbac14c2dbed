"""``graft train DATA --budget 5m``: choose the backbone, strategy, learning rate and epochs, and train, within a
wall-clock budget that covers the whole command (ranking, lr-find, training, the final evaluation and the run files).

Every choice is made from costs measured on this machine, now, and recorded with its evidence (``graft.json`` under
``"auto"``). The steps:

1. **Costs.** Each candidate backbone (the offline ones of the modality that are installed, or the ones given) is
   built and embeds a dozen real examples: build time, reading (decoding) time and frozen-forward time per example.
2. **Rank** (at most :data:`RANK_SHARE` of the time the start-up leaves). Every candidate embeds the same stratified
   sample of the training data, as large as the share allows, and :func:`graft.selection.rank` scores it (LogME). A
   candidate is left out, and the output says so, when the sample would shrink below :data:`MIN_RANK_PER_CLASS`
   examples per class (on ants/bees LogME ordered Lite2 > Lite1 > Lite0 from 20 examples on, as from all 245) or when
   feature extraction with it could no longer finish in the budget. The embeddings go to the cache, so the chosen
   backbone's are not computed again. The backbone with the highest LogME wins.
3. **Strategy.** Fine-tuning when both hold, else feature extraction (a linear head on the frozen, cached features):
   (a) the smallest class has at least :data:`FT_MIN_PER_CLASS` training examples: with fewer, fine-tuning measured
   within one validation image of the frozen features at many times the cost (ants/bees, ~120 per class, 153
   validation images: EfficientNet-Lite0 0.954 frozen vs 0.948 fine-tuned, Lite2 0.967 vs 0.974), and a few hundred
   validation examples cannot tell such models apart, while on 2,000 MNIST digits (200 per class, far from ImageNet)
   4 fine-tuning epochs of Lite0 reached 0.971 against 0.957 for its frozen features; (b) at least
   :data:`MIN_FT_EPOCHS` fine-tuning epochs fit in what is left. An epoch's cost is estimated from the measured
   forward time: a training step costs :data:`FT_STEP_FACTOR` times a forward pass per example (backward pass and
   augmentation; EfficientNet-Lite0 on a CPU: 23 ms per image per step against 5.9 ms forward), plus one validation
   pass.
4. **Learning rate.** A range test (:func:`graft.selection.lr_find`) over four decades around the strategy's default,
   with as many steps as :data:`LR_FIND_SHARE` of the budget allows (at most 100); skipped below
   :data:`LR_FIND_MIN_STEPS` steps. The suggestion is kept within 10x of the default.
5. **Train with a deadline.** The loop stops between steps at the deadline (:mod:`graft.training.deadlines`) and
   keeps the best epoch; the deadline leaves room for the tail (final validation pass, bundle, plots, report),
   estimated from the measured forward time.

Every phase's plan aims to end by ``(1 - SAFETY) x budget``, so that estimates that are off by a little (a busy
machine) still end within 10% of the budget.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._costs import FT_STEP_FACTOR, HEAD_STEP_S, Cost, DataFacts, fe_s, head_s, probe, rank_cost, read_data, tail_s

__all__ = ["parse_budget", "offline_candidates", "train_within_budget", "BudgetResult", "process_start"]

#: share of the budget for measuring costs and ranking backbones
RANK_SHARE = 0.25
#: share of the budget for the learning-rate range test
LR_FIND_SHARE = 0.10
#: plans aim to end this share of the budget early (estimates on a busy machine are off by some)
SAFETY = 0.05
#: fewest examples per class the rank sample may have; a candidate is left out rather than go below
MIN_RANK_PER_CLASS = 10
#: fine-tuning needs this many training examples in the smallest class (else feature extraction)
FT_MIN_PER_CLASS = 200
#: and this many epochs within the budget
MIN_FT_EPOCHS = 3
MAX_FT_EPOCHS = 10
LR_FIND_STEPS = 100
LR_FIND_MIN_STEPS = 20
_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_budget(value: str | float) -> float:
    """Seconds of a budget: ``90s``, ``2m``, ``1.5m``, ``1h``, ``90`` (seconds).

    Raises:
        ConfigError: not a positive number with an optional unit s, m or h.
    """
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h)?\s*", str(value).lower())
        if not match:
            raise ConfigError(
                f"--budget takes a duration such as 90s, 2m, 1.5m or 1h (a bare number is seconds); got '{value}'."
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigError(f"the budget must be a positive duration such as 90s or 2m; got '{value}'.")
    return seconds


def process_start() -> float | None:
    """When this process started (``time.time()`` scale), so that the CLI's budget clock includes interpreter start-up
    and imports; ``None`` (start the clock now) without ``psutil``, which Accelerate installs."""
    try:
        import psutil
    except ImportError:
        return None
    return float(psutil.Process().create_time())


def _duration(seconds: float) -> str:
    """``95`` -> ``"95s"``, ``130`` -> ``"3m"``, ``5400`` -> ``"1.5h"`` (rounded up), as ``--budget`` reads them."""
    if seconds < 60:
        return f"{math.ceil(seconds)}s"
    if seconds < 3600:
        return f"{math.ceil(seconds / 60)}m"
    return f"{math.ceil(seconds / 360) / 10:g}h"


def offline_candidates(modality: str) -> list[str]:
    """Registered backbones of ``modality`` whose weights are on this machine, in registry order."""
    from ..backbones import list_backbones

    return [e.name for e in list_backbones(modality=modality) if e.offline()]


@dataclass
class BudgetResult:
    """What :func:`train_within_budget` did: the fitted estimator and the ``"auto"`` record of ``graft.json``."""

    estimator: Any
    record: dict[str, Any]
    run_dir: Path


@dataclass
class _Run:
    """The state of one budgeted run: the clock, the decisions and the phase times."""

    budget_s: float
    t0: float
    say: Callable[[str], None]
    decisions: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=lambda: {"rank": 0.0, "lr_find": 0.0, "train": 0.0, "tail": 0.0})

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self, share_end: float | None = None) -> float:
        """Seconds left until ``share_end`` (seconds since the start) or the planned end of the run."""
        end = self.budget_s * (1 - SAFETY) if share_end is None else share_end
        return end - self.elapsed()

    def decide(self, what: str, choice: Any, why: str, **evidence: Any) -> dict[str, Any]:
        row = {"what": what, "choice": choice, "why": why, "evidence": _rounded(evidence)}
        self.decisions.append(row)
        self.say(f"{what}: {choice} - {why}")
        return row


def _rounded(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 4) if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _rounded(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_rounded(x) for x in v]
    return v


def _rank_phase(run: _Run, make: Callable[..., Any], d: DataFacts, names: list[str], ctx: dict[str, Any]) -> tuple:
    """Measure, rank, choose the backbone. Returns ``(name, cost, rows, examples ranked)``."""
    from .rank import rank

    share_end = run.elapsed() + RANK_SHARE * run.left()  # a share of what the start-up (imports, listing) left
    costs: dict[str, Cost] = {}
    skipped: dict[str, str] = {}
    for name in names:
        if costs and run.left(share_end) <= 0:
            skipped[name] = "no time left in the ranking share to measure it"
            continue
        costs[name] = probe(make(name, "feature-extraction"), d, ctx["seed"])
    ranked = list(costs)
    pool = d.n_train if d.train_rows is not None else d.n_data  # the examples the rank may see
    m_min = min(pool, MIN_RANK_PER_CLASS * len(d.per_class))
    while True:
        fixed = rank_cost(costs, ranked, 0)
        m = int(min(pool, 2000, max(0.0, run.left(share_end) - fixed) / sum(costs[n].per_example for n in ranked)))
        if len(ranked) == 1:
            m = min(pool, 2000)  # one candidate: its rank embeds what feature extraction needs anyway
        after = run.left() - rank_cost(costs, ranked, m)
        worst = max(ranked, key=lambda n: fe_s(costs[n], d, m, ctx["modality"]))
        fits = fe_s(costs[worst], d, m, ctx["modality"]) <= after
        if len(ranked) == 1 or (m >= m_min and fits):
            break
        drop = max(ranked, key=lambda n: costs[n].per_example)
        ranked.remove(drop)
        skipped[drop] = (
            f"ranking it too would leave {m} examples for the rank (< {m_min})"
            if m < m_min
            else f"feature extraction with {worst} would no longer fit ({after:.0f}s left after ranking)"
        )
    only = ranked[0]
    need = run.elapsed() + rank_cost(costs, ranked, m) + fe_s(costs[only], d, m, ctx["modality"])
    if need > run.budget_s * 1.1:
        raise ConfigError(
            f"a budget of {run.budget_s:g}s is too short here: the cheapest plan (feature extraction with {only}, "
            f"{d.n_data + (d.n_val if d.val_separate else 0)} examples at {costs[only].per_example * 1000:.0f} ms each "
            f"as measured now) needs about {need:.0f}s. Give --budget {_duration(need * 1.2)} or more."
        )
    rows = []
    for name in ranked:
        table = rank(
            ctx["data"],
            [name],
            task=ctx["task"],
            max_examples=m,
            rows=d.train_rows,
            seed=ctx["seed"],
            **ctx["rank_options"],
        )
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in table.iloc[0].items()}  # numpy -> plain
        rows.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    rows.sort(key=lambda r: -math.inf if r.get("logme") is None else r["logme"], reverse=True)
    best = rows[0]["model"]
    run.decide(
        "candidates",
        ranked,
        f"ranked on {m} of {pool} training examples with LogME"
        + (f" (the {d.n_val} validation examples left out)" if d.train_rows is not None else "")
        + "".join(f"; left out {name}: {why}" for name, why in skipped.items()),
        skipped=skipped,
        examples=m,
        share_ends_at_s=share_end,
        costs={
            n: {"build_s": c.build_s, "read_ms": c.read_s * 1e3, "embed_ms": c.embed_s * 1e3} for n, c in costs.items()
        },
    )
    why = (
        "the only candidate"
        if len(rows) == 1
        else "highest LogME: " + ", ".join(f"{r['model']} {r['logme']:.3f}" for r in rows)
    )
    run.decide("backbone", best, why, logme={r["model"]: r.get("logme") for r in rows})
    return best, costs[best], rows, m


def _choose_strategy(run: _Run, cost: Cost, d: DataFacts, cached: int, modality: str, given: str | None) -> tuple:
    """Feature extraction or fine-tuning, and the epochs (see the module's rule). Returns ``(strategy, epochs)``."""
    left = run.left()
    fe = fe_s(cost, d, cached, modality)
    tail = tail_s(cost, d, modality, True)
    prep = (
        cost.build_s
        + (d.n_data + (d.n_val if d.val_separate else 0)) * cost.read_s  # the fit decodes every example
        + (d.n_data - cached + (d.n_val if d.val_separate else 0)) * cost.embed_s  # head warm-up embeddings
        + head_s(d.n_train)
    )
    epoch = d.n_train * FT_STEP_FACTOR * cost.embed_s + d.n_val * cost.per_example
    lr_find = LR_FIND_SHARE * run.budget_s
    fits = max(0, int((left - prep - lr_find - tail) / max(epoch, 1e-9)))
    smallest = min(d.per_class.values())
    evidence = {
        "min_examples_per_class": smallest,
        "n_train": d.n_train,
        "n_val": d.n_val,
        "left_s": left,
        "feature_extraction_s": fe,
        "fine_tune_epoch_s": epoch,
        "fine_tune_setup_s": prep,
        "fine_tune_epochs_that_fit": fits,
        "rule": {"ft_min_per_class": FT_MIN_PER_CLASS, "min_ft_epochs": MIN_FT_EPOCHS},
    }
    if given is not None:
        strategy, why = given, "given"
    elif smallest < FT_MIN_PER_CLASS:
        strategy = "feature-extraction"
        why = f"smallest class has {smallest} training examples (< {FT_MIN_PER_CLASS}): frozen features do as well"
    elif fits < MIN_FT_EPOCHS:
        strategy = "feature-extraction"
        why = f"only {fits} fine-tuning epochs of ~{epoch:.0f}s fit in the {left:.0f}s left (< {MIN_FT_EPOCHS})"
    else:
        strategy = "fine-tune"
        why = f"{smallest}+ examples per class and {fits} epochs of ~{epoch:.0f}s fit in the {left:.0f}s left"
    run.decide("strategy", strategy, why, **evidence)
    if strategy != "feature-extraction":  # the backbone trains
        epochs = max(1, min(MAX_FT_EPOCHS, fits))
        run.decide("epochs", epochs, f"{fits} fit (at most {MAX_FT_EPOCHS}); the deadline cuts the last if slower")
    else:
        epochs = 60
        run.decide("epochs", epochs, "feature extraction's default: the head trains on cached embeddings in seconds")
    return strategy, epochs


def _choose_lr(run: _Run, est: Any, cost: Cost, d: DataFacts, data: str, cached: int) -> float | None:
    """A short range test when the budget allows (module rule 4); ``None`` keeps the strategy's default."""
    from torch import manual_seed as torch_seed

    from .lr_find import lr_find

    default = est._strategy().lr_for(est.modality)
    frozen = est._strategy().frozen_backbone
    if frozen:  # a head on embeddings: it embeds the training examples the cache lacks, which training reuses
        step_s, setup, spent = HEAD_STEP_S * 5, cost.build_s + (d.n_data - cached) * cost.per_example, 0.0
    else:  # a copy of the whole network trains: decoding the training data and the steps are spent on it alone
        step_s = est.batch_size * FT_STEP_FACTOR * cost.embed_s
        setup = spent = cost.build_s + d.n_data * cost.read_s
    share = min(LR_FIND_SHARE * run.budget_s, run.left())
    steps = int(min(LR_FIND_STEPS, max(0.0, share - spent) / step_s))
    evidence = {"default": default, "steps_that_fit": steps, "share_s": share, "step_s": step_s, "setup_s": setup}
    if steps < LR_FIND_MIN_STEPS:
        run.decide(
            "lr",
            default,
            f"the strategy's default: a range test needs {LR_FIND_MIN_STEPS}+ steps, {steps} fit in {share:.0f}s",
            **evidence,
        )
        return None
    est._skip_known = frozen  # cached embeddings need no decoding
    torch_seed(est.seed)  # the range test's fresh head: the same suggestion for the same data
    try:
        found = lr_find(est, data, steps=steps, start=default / 100, end=default * 100)
    finally:
        est._skip_known = False
    lr = found.suggestion
    if not math.isfinite(lr):
        run.decide(
            "lr", default, f"the strategy's default: the range test found no valley ({found.reason})", **evidence
        )
        return None
    clamped = min(max(lr, default / 10), default * 10)
    why = f"range test ({len(found.lrs)} steps, {default / 100:.0e} to {default * 100:.0e}): {found.reason}"
    if clamped != lr:
        why += f"; {lr:.2e} kept within 10x of the default {default:.0e}"
    run.decide("lr", float(f"{clamped:.3g}"), why, suggestion=lr, **evidence)
    return clamped


def train_within_budget(
    data: str | Path,
    budget: str | float,
    *,
    output_dir: str | Path,
    val: str | Path | None = None,
    task: str = "auto",
    candidates: list[str] | None = None,
    strategy: str | None = None,
    image: dict[str, Any] | None = None,
    text: dict[str, Any] | None = None,
    batch_size: int = 32,
    precision: str = "auto",
    seed: int = 0,
    device: str = "auto",
    overwrite: bool = False,
    verbose: bool | None = None,
    say: Callable[[str], None] | None = None,
    started: float | None = None,
) -> BudgetResult:
    """Choose backbone, strategy, learning rate and epochs for ``data``, and train, all within ``budget``.

    Args:
        data: labelled training data, as ``graft train`` takes it (images or a text table).
        budget: seconds, or a duration such as ``"90s"``, ``"2m"``, ``"1h"``.
        output_dir: the run directory; its ``graft.json`` gets every decision under ``"auto"``.
        val: validation data (default: DATA's ``val`` split, else a seeded 20% of it).
        candidates: backbones to choose from (default: the offline ones of the modality that are installed).
        strategy: a fixed strategy instead of the chosen one.
        image, text: options of the modality's estimator, as for :func:`graft.commands.training.make_estimator`.
        batch_size, precision, seed, device, overwrite, verbose: as for the estimators.
        say: called with one line per decision (the CLI prints them).
        started: when the budget's clock started (``time.time()`` scale; default: now).

    Returns:
        a :class:`BudgetResult`: the fitted estimator and the ``"auto"`` record (``budget_s``, ``spent_s``,
        ``phases_s``, ``decisions``, ``rank``).

    Example:
        >>> from graft.selection import train_within_budget
        >>> result = train_within_budget("data/ants_bees", "2m", output_dir="runs/auto")  # doctest: +SKIP
        >>> result.record["decisions"][0]  # doctest: +SKIP
    """
    from ..commands.training import make_estimator, resolve_task
    from ..training.deadlines import deadline

    budget_s = parse_budget(budget)
    already = 0.0 if started is None else max(0.0, time.time() - started)
    run = _Run(budget_s, time.perf_counter() - already, say or (lambda line: None))
    data, task = str(data), resolve_task(Path(data), task)
    if task not in ("image-classification", "text-classification"):
        raise ConfigError(f"--budget chooses among image and text classification backbones; '{data}' is {task}.")
    modality = "image" if task == "image-classification" else "text"
    names = list(candidates or offline_candidates(modality))
    if not names:
        raise ConfigError(f"no offline {modality} backbone is installed to choose from; pass --model NAME.")
    image, text = dict(image or {}), dict(text or {})
    out = Path(output_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:  # before any time is spent
        raise ConfigError(
            f"Run directory '{out}' already exists. Pass overwrite=True (CLI: --overwrite) to replace it, or choose "
            "another output directory."
        )

    def make(name: str, strat: str, **common: Any) -> Any:
        common.update(batch_size=batch_size, precision=precision, seed=seed, device=device)
        return make_estimator(task, name, strat, image=image, text=text, **common)

    t = time.perf_counter()
    importlib.import_module("timm" if modality == "image" else "transformers")  # one-off imports, before the plan
    d = read_data(make(names[0], "feature-extraction", verbose=False), data, None if val is None else str(val))
    keys = ("image_size",) if modality == "image" else ("text_column", "text_pair_column", "label_column")
    opts = {k: (image if modality == "image" else text).get(k) for k in keys}
    ctx = {
        "data": data,
        "task": task,
        "seed": seed,
        "modality": modality,
        "rank_options": {"device": device, "verbose": False, **{k: v for k, v in opts.items() if v is not None}},
    }
    best, cost, rows, cached = _rank_phase(run, lambda n, s: make(n, s, verbose=False), d, names, ctx)
    run.phases["rank"] = time.perf_counter() - t

    chosen, epochs = _choose_strategy(run, cost, d, cached, modality, strategy)
    t = time.perf_counter()
    lr = _choose_lr(run, make(best, chosen, verbose=False), cost, d, data, cached)
    run.phases["lr_find"] = time.perf_counter() - t

    # a deadline can cut fine-tuning short: the run keeps the warm-up head if fine-tuning ends worse than it
    keep = {"strategy_params": {"best_of_phases": True}} if chosen == "fine-tune" else {}
    est = make(best, chosen, epochs=epochs, lr=lr, output_dir=output_dir, overwrite=overwrite, verbose=verbose, **keep)
    trains_backbone = chosen != "feature-extraction"
    tail = tail_s(cost, d, modality, trains_backbone)
    cut_eval = d.n_val * cost.per_example if trains_backbone else 0.0  # a cut epoch is still evaluated
    stop_at = run.budget_s * (1 - SAFETY) - tail - cut_eval
    planned = run.decide(
        "deadline",
        round(stop_at, 1),
        f"training stops by {stop_at:.0f}s after the start, leaving {tail + cut_eval:.0f}s for the tail",
        tail_reserve_s=tail + cut_eval,
    )
    marks: list[float] = []
    t = time.perf_counter()
    with deadline(run.t0 + stop_at):
        est.fit(data, val=None if val is None else str(val), callbacks=[lambda *_: marks.append(time.perf_counter())])
    end = time.perf_counter()
    last = marks[-1] if marks else end
    run.phases["train"], run.phases["tail"] = last - t, end - last
    phase = est.history_[-1]["phase"] if est.history_ else None
    planned["evidence"].update(
        stopped_at_deadline=last - run.t0 >= stop_at,
        epochs_run=sum(1 for h in est.history_ if h["phase"] == phase),
        best_epoch=est.best_epoch_,
    )
    record = {
        "budget_s": budget_s,
        "spent_s": round(run.elapsed(), 2),
        "phases_s": {k: round(v, 2) for k, v in run.phases.items()},
        "decisions": run.decisions,
        "rank": rows,
    }
    _write_auto(Path(output_dir), record)
    return BudgetResult(est, record, Path(output_dir))


def _write_auto(run_dir: Path, record: dict[str, Any]) -> None:
    """Add the ``"auto"`` record to the run's ``graft.json`` (written atomically; the weight hashes are unchanged)."""
    from .._utils import atomic_write_json

    path = run_dir / "graft.json"
    manifest = json.loads(path.read_text())
    manifest["auto"] = record
    atomic_write_json(path, manifest)
    if (run_dir / "report.html").exists():  # the report written by training predates the record: add its Choices
        from ..evaluation.run_report import write_run_report

        write_run_report(run_dir, plots_dir=run_dir)
