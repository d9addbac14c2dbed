"""Clinical metrics: per-class AUROC with bootstrap confidence intervals, operating thresholds chosen on validation
data, and sensitivity / specificity / PPV / NPV at those thresholds.

A diagnostic model is read one finding at a time ("does this image show a referable lesion?"), so every class is
scored one-vs-rest: its AUROC, and the confusion matrix of ``proba[:, k] >= threshold[k]``. Intervals are percentile
bootstrap intervals over rows, resampled within each class so every resample keeps the class mix of the data (and
every class), which is what a study with a fixed number of cases per class measures.

The bootstrap is vectorised: a resample is a vector of row multiplicities, and the AUROC of every resample follows
from cumulative counts of negatives over the distinct scores, without sorting each resample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError

__all__ = ["bootstrap_ci", "operating_thresholds", "clinical_metrics", "top_label_ece"]

Statistic = Callable[[np.ndarray, np.ndarray], float]

#: resampled cells (resamples x rows) held in memory at once
_CHUNK_CELLS = 4_000_000
_STATISTICS = ("auroc", "accuracy")


# -- inputs -------------------------------------------------------------------------------------------------------
def _check(y: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    """``y`` as int64 class indices ``(N,)`` and ``proba`` as float64 ``(N,)`` or ``(N, C)``."""
    y_arr, p = np.asarray(y), np.asarray(proba, dtype=np.float64)
    if y_arr.ndim != 1 or y_arr.size == 0:
        raise DataError(f"y must be a non-empty 1-D array of class indices; got shape {y_arr.shape}.")
    if p.ndim not in (1, 2) or p.shape[0] != y_arr.shape[0]:
        raise DataError(
            f"proba must have one row per label: shape (N,) or (N, C) with N = {y_arr.shape[0]}; got {p.shape}."
        )
    if not np.all(np.isfinite(p)):
        raise DataError("proba contains NaN or infinite values; check the model output.")
    if y_arr.dtype.kind not in "iub":
        try:
            whole = bool(np.all(np.asarray(y_arr, dtype=np.float64) % 1 == 0))
        except (TypeError, ValueError):
            whole = False
        if not whole:
            raise DataError("y must hold integer class indices (0, 1, ...); encode the labels first.")
    y_int = y_arr.astype(np.int64)
    n_cols = 2 if p.ndim == 1 else p.shape[1]
    if y_int.min() < 0 or y_int.max() >= n_cols:
        raise DataError(f"y must hold class indices 0..{n_cols - 1} (proba scores {n_cols} classes).")
    return y_int, p


def _check_bootstrap(n_boot: int, alpha: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ConfigError(f"n_boot must be a positive integer (e.g. 1000 resamples); got {n_boot!r}.")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), e.g. 0.05 for a 95% interval; got {alpha!r}.")


def _resamples(y: np.ndarray, n_boot: int, seed: int, stratified: bool) -> Iterator[np.ndarray]:
    """Row-index matrices ``(B, N)`` of bootstrap resamples, in chunks; stratified: each class resampled alone."""
    rng = np.random.default_rng(seed)
    n = len(y)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratified else [np.arange(n)]
    chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        yield np.concatenate([g[rng.integers(0, len(g), size=(b, len(g)))] for g in groups], axis=1)


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """Multiplicity of each row in each resample: ``(B, N)`` from an index matrix ``(B, N)``."""
    b = idx.shape[0]
    flat = (idx + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _auroc_plan(scores: np.ndarray, positive: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``counts (B, N) -> AUROC (B,)`` of ``scores`` for the binary truth ``positive`` (ties count 1/2).

    AUROC = P(score of a positive > score of a negative) + P(tie) / 2, over the resampled multiset: each positive
    row earns, per copy, the number of resampled negatives below its score plus half of those at its score.
    """
    from scipy import sparse

    uniq, inv = np.unique(scores, return_inverse=True)
    neg = ~positive
    n_neg = int(neg.sum())
    # negatives -> their distinct-score group, to sum the resampled negatives per group
    to_group = sparse.csr_matrix((np.ones(n_neg), (np.arange(n_neg), inv[neg])), shape=(n_neg, len(uniq)))
    pos_group = inv[positive]

    def auroc(counts: np.ndarray) -> np.ndarray:
        neg_per_group = np.asarray((to_group.T @ counts[:, neg].T).T)  # (B, G)
        credit = np.cumsum(neg_per_group, axis=1) - 0.5 * neg_per_group  # below + half the ties
        pos_counts = counts[:, positive]
        num = (pos_counts * credit[:, pos_group]).sum(axis=1)
        den = pos_counts.sum(axis=1) * counts[:, neg].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)

    return auroc


def _positive_scores(p: np.ndarray, positive: int = 1) -> np.ndarray:
    return p if p.ndim == 1 else p[:, positive]


def _macro_plans(y: np.ndarray, p: np.ndarray) -> list[Callable[[np.ndarray], np.ndarray]]:
    """AUROC plans of the classes that can be scored one-vs-rest (both present and absent in ``y``)."""
    if p.ndim == 1 or p.shape[1] == 2:
        t = y == 1
        return [_auroc_plan(_positive_scores(p), t)] if 0 < t.sum() < len(t) else []
    return [_auroc_plan(p[:, k], y == k) for k in range(p.shape[1]) if 0 < (y == k).sum() < len(y)]


def _interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(ok, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


# -- public -------------------------------------------------------------------------------------------------------
def bootstrap_ci(
    y: Sequence[int] | np.ndarray,
    proba: np.ndarray,
    statistic: str | Statistic,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    stratified: bool = True,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a statistic of ``(y, proba)``, resampling rows.

    Args:
        y: True class indices ``(N,)``.
        proba: Scores: ``(N,)`` positive-class scores of a binary problem, or class probabilities ``(N, C)``.
        statistic: ``"auroc"`` (binary: the positive class's AUROC; more classes: the mean one-vs-rest AUROC of
            the classes present), ``"accuracy"`` (arg-max, or score >= 0.5 for ``(N,)`` scores), both vectorised
            over the resamples; or a function ``(y, proba) -> float`` called once per resample.
        n_boot: The number of resamples.
        alpha: ``1 - confidence``: 0.05 gives the 2.5th and 97.5th percentiles.
        seed: Seed of the resampling; equal seeds give equal resamples, whatever the statistic.
        stratified: Resample each class on its own (each resample keeps the class counts of ``y``). Unstratified
            resamples that lose a class of ``y`` are degenerate and skipped, as are resamples whose statistic is
            not finite.

    Returns:
        ``(low, high)``; ``(nan, nan)`` when no resample gives a finite statistic (e.g. AUROC with one class).

    Raises:
        ConfigError: On an unknown statistic name, ``n_boot < 1`` or ``alpha`` outside (0, 1).
        DataError: On inconsistent inputs.
    """
    _check_bootstrap(n_boot, alpha)
    y, p = _check(y, proba)
    if isinstance(statistic, str) and statistic not in _STATISTICS:
        raise ConfigError(f"statistic must be one of {', '.join(_STATISTICS)} or a function; got {statistic!r}.")
    n, classes = len(y), np.unique(y)
    plans = _macro_plans(y, p) if statistic == "auroc" else []
    correct = ((p >= 0.5).astype(np.int64) if p.ndim == 1 else p.argmax(1)) == y
    values: list[np.ndarray] = []
    for idx in _resamples(y, n_boot, seed, stratified):
        kept = np.ones(len(idx), bool)
        if not stratified:  # a resample without one of the classes of y is a different problem
            b, width = len(idx), int(y.max()) + 1
            per_class = np.bincount((y[idx] + width * np.arange(b)[:, None]).ravel(), minlength=b * width)
            kept = (per_class.reshape(b, width)[:, classes] > 0).all(axis=1)
        if statistic == "auroc":
            counts = _counts(idx, n)
            v = np.mean([plan(counts) for plan in plans], axis=0) if plans else np.full(len(idx), np.nan)
        elif statistic == "accuracy":
            v = correct[idx].mean(axis=1)
        else:
            v = np.array([float(statistic(y[row], p[row])) if k else np.nan for row, k in zip(idx, kept, strict=True)])
        values.append(np.where(kept, v, np.nan))
    return _interval(np.concatenate(values), alpha)


def operating_thresholds(y: Sequence[int] | np.ndarray, proba: np.ndarray, rule: str | float = "youden") -> list[float]:
    """Per-class one-vs-rest thresholds on ``proba[:, k]``, chosen on validation data.

    A row is called positive for class ``k`` when ``proba[:, k] >= threshold[k]``.

    Args:
        y: True class indices ``(N,)``.
        proba: Class probabilities ``(N, C)``.
        rule: ``"youden"``: the threshold maximising Youden's J = sensitivity + specificity - 1 on the ROC curve,
            placed halfway to the next lower score (the same calls on these data, a margin both ways); ties go to
            the highest threshold. A float in (0, 1]: the highest threshold whose sensitivity reaches it
            (e.g. 0.95 for a screening test).

    Returns:
        One float per class; 0.5 for a class that ``y`` lacks (or that every row has).

    Raises:
        ConfigError: On an unknown rule.
    """
    from sklearn.metrics import roc_curve

    youden = isinstance(rule, str) and rule == "youden"
    if not youden and (isinstance(rule, (bool, str)) or not isinstance(rule, (int, float)) or not 0 < rule <= 1):
        raise ConfigError(
            f"operating point must be 'youden' or a target sensitivity in (0, 1] such as 0.95; got {rule!r}."
        )
    y, p = _check(y, proba)
    if p.ndim != 2:
        raise DataError(f"proba must be class probabilities of shape (N, C); got {p.shape}.")
    out: list[float] = []
    for k in range(p.shape[1]):
        t = y == k
        if not 0 < t.sum() < len(t):
            out.append(0.5)
            continue
        fpr, tpr, thr = roc_curve(t, p[:, k], drop_intermediate=False)  # thr[0] = inf: nothing called positive
        if youden:
            i = 1 + int(np.argmax((tpr - fpr)[1:]))
            lower = thr[i + 1] if i + 1 < len(thr) else thr[i]
            out.append(float((thr[i] + lower) / 2))
        else:
            i = int(np.flatnonzero(tpr >= float(rule) - 1e-12)[0])
            out.append(float(thr[max(i, 1)]))
    return out


def top_label_ece(y: Sequence[int] | np.ndarray, proba: np.ndarray, bins: int = 15) -> float:
    """Top-label expected calibration error (Guo et al., 2017) of a multi-class classifier.

    The confidence of a row is its largest probability; rows are binned by confidence in ``bins`` equal-width bins
    of [0, 1], and ECE = sum over bins of (bin size / N) * |accuracy in bin - mean confidence in bin|.

    Args:
        y: True class indices ``(N,)``.
        proba: Class probabilities ``(N, C)``.
        bins: The number of equal-width bins.

    Returns:
        The ECE in [0, 1].
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ConfigError(f"bins must be a positive integer, e.g. 15; got {bins!r}.")
    y, p = _check(y, proba)
    if p.ndim != 2:
        raise DataError(f"proba must be class probabilities of shape (N, C); got {p.shape}.")
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    idx = np.clip(np.digitize(conf, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    gap = np.abs(np.bincount(idx, correct, bins) - np.bincount(idx, conf, bins))  # per-bin sums over rows
    return float(gap.sum() / len(y))


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _pair(lo_hi: tuple[float, float]) -> list[float] | None:
    lo, hi = lo_hi
    return [lo, hi] if math.isfinite(lo) and math.isfinite(hi) else None


def clinical_metrics(
    y: Sequence[int] | np.ndarray,
    proba: np.ndarray,
    classes: Sequence[Any],
    thresholds: Sequence[float],
    n_boot: int = 1000,
    seed: int = 0,
    *,
    alpha: float = 0.05,
    positive: int = 1,
    predicted: np.ndarray | None = None,
) -> dict[str, Any]:
    """AUROC with bootstrap intervals and the confusion matrix at operating thresholds, per class, JSON-ready.

    Args:
        y: True class indices ``(N,)``.
        proba: Class probabilities ``(N, C)``.
        classes: Class names in index order (keys of the result, as strings).
        thresholds: One threshold per class (:func:`operating_thresholds` on validation data).
        n_boot: Bootstrap resamples; 0 skips the intervals (they become ``None``).
        seed: Seed of the resampling.
        alpha: ``1 - confidence`` of the intervals.
        positive: For two classes, the index of the positive class: the only class reported in ``auroc`` and
            ``per_class``, and ``macro_auroc`` is its AUROC.
        predicted: The predicted class of each row for ``accuracy_ci`` (default: arg-max).

    Returns:
        ``{"auroc": {class: v}, "auroc_ci": {class: [lo, hi]}, "macro_auroc": v, "macro_auroc_ci": [lo, hi],
        "accuracy": v, "accuracy_ci": [lo, hi], "per_class": {class: {"threshold", "sensitivity", "specificity",
        "ppv", "npv", "f1", "support", "tp", "fp", "fn", "tn"}}, "bootstrap": {"n", "alpha", "method", "seed"}}``.
        Undefined values (a class without positives or negatives, nothing called positive) are ``None``.
        ``macro_auroc`` averages the classes that can be scored. All resamples are shared: the intervals of the
        classes, of the macro mean and of accuracy come from the same resampled rows.

    Raises:
        ConfigError: If the thresholds do not match the classes or the bootstrap settings are invalid.
        DataError: On inconsistent inputs.
    """
    y, p = _check(y, proba)
    names = [str(c) for c in classes]
    if p.ndim != 2 or p.shape[1] != len(names) or len(names) < 2:
        raise DataError(f"proba must be (N, C) with C = {len(names)} classes (at least 2); got shape {p.shape}.")
    if len(thresholds) != len(names):
        raise ConfigError(
            f"thresholds has {len(thresholds)} values but there are {len(names)} classes; "
            "give one per class (operating_thresholds on validation data)."
        )
    if n_boot:
        _check_bootstrap(n_boot, alpha)
    reported = [positive] if len(names) == 2 else list(range(len(names)))
    scorable = [k for k in reported if 0 < (y == k).sum() < len(y)]
    pred = p.argmax(1) if predicted is None else np.asarray(predicted, dtype=np.int64)
    correct = pred == y

    from sklearn.metrics import roc_auc_score

    auroc = {k: float(roc_auc_score(y == k, p[:, k])) for k in scorable}
    macro = float(np.mean(list(auroc.values()))) if auroc else math.nan
    ci = {k: (math.nan, math.nan) for k in reported}
    macro_ci = acc_ci = (math.nan, math.nan)
    if n_boot:
        plans = {k: _auroc_plan(p[:, k], y == k) for k in scorable}
        per_class: dict[int, list[np.ndarray]] = {k: [] for k in scorable}
        accs: list[np.ndarray] = []
        for idx in _resamples(y, n_boot, seed, stratified=True):
            counts = _counts(idx, len(y))
            for k, plan in plans.items():
                per_class[k].append(plan(counts))
            accs.append(correct[idx].mean(axis=1))
        draws = {k: np.concatenate(v) for k, v in per_class.items()}
        ci.update({k: _interval(v, alpha) for k, v in draws.items()})
        if draws:
            macro_ci = _interval(np.mean(list(draws.values()), axis=0), alpha)
        acc_ci = _interval(np.concatenate(accs), alpha)

    table: dict[str, dict[str, Any]] = {}
    for k in reported:
        t, called = y == k, p[:, k] >= float(thresholds[k])
        tp, fp = int((called & t).sum()), int((called & ~t).sum())
        fn, tn = int((~called & t).sum()), int((~called & ~t).sum())
        table[names[k]] = {
            "threshold": float(thresholds[k]),
            "sensitivity": _ratio(tp, tp + fn),
            "specificity": _ratio(tn, tn + fp),
            "ppv": _ratio(tp, tp + fp),
            "npv": _ratio(tn, tn + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "support": int(t.sum()),
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": tn,
        }
    return {
        "auroc": {names[k]: auroc.get(k) for k in reported},
        "auroc_ci": {names[k]: _pair(ci[k]) for k in reported},
        "macro_auroc": _finite(macro),
        "macro_auroc_ci": _pair(macro_ci),
        "accuracy": float(correct.mean()),
        "accuracy_ci": _pair(acc_ci),
        "per_class": table,
        "bootstrap": {
            "n": int(n_boot),
            "alpha": float(alpha),
            "method": "percentile, stratified by class",
            "seed": seed,
        },
    }
