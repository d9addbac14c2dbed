"""Clinical metrics: bootstrap intervals (coverage, vectorised = per-resample sklearn), operating thresholds, the
confusion-matrix rates, top-label ECE, and the Clinical task (SORD loss, ordinal metrics, state, JSON)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from graft.errors import ConfigError
from graft.evaluation.clinical import bootstrap_ci, clinical_metrics, operating_thresholds, top_label_ece
from graft.tasks.clinical import Clinical, sord_targets


def _binormal(rng: np.random.Generator, d: float, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``n`` negatives ~ N(0, 1) and ``n`` positives ~ N(d, 1): true AUROC = Φ(d / √2)."""
    return np.repeat([0, 1], n), np.concatenate([rng.normal(0, 1, n), rng.normal(d, 1, n)])


def _multiclass(seed: int = 0, n: int = 400, c: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), y] += 1.0
    logits = np.round(logits, 1)  # tied scores
    p = np.exp(logits)
    return y, p / p.sum(1, keepdims=True)


# -- bootstrap ------------------------------------------------------------------------------------------------
def test_bootstrap_ci_covers_the_true_auroc() -> None:
    d = np.sqrt(2) * norm.ppf(0.8)
    true_auroc = float(norm.cdf(d / np.sqrt(2)))  # 0.8
    rng = np.random.default_rng(2024)
    hits = 0
    for rep in range(100):
        y, s = _binormal(rng, d)
        lo, hi = bootstrap_ci(y, s, "auroc", n_boot=200, seed=rep)
        assert lo < roc_auc_score(y, s) < hi
        hits += lo <= true_auroc <= hi
    print(f"bootstrap 95% CI coverage of the true AUROC: {hits}/100")
    assert hits >= 90, hits


def test_vectorised_bootstrap_equals_a_per_resample_sklearn_loop() -> None:
    y, p = _multiclass(n=120, c=4)

    def macro(yy: np.ndarray, pp: np.ndarray) -> float:
        return float(np.mean([roc_auc_score(yy == k, pp[:, k]) for k in range(pp.shape[1])]))

    for stratified in (True, False):
        fast = bootstrap_ci(y, p, "auroc", n_boot=60, seed=3, stratified=stratified)
        slow = bootstrap_ci(y, p, macro, n_boot=60, seed=3, stratified=stratified)
        np.testing.assert_allclose(fast, slow, rtol=1e-12)
    yb, s = _binormal(np.random.default_rng(0), 1.0, 30)
    fast = bootstrap_ci(yb, s, "accuracy", n_boot=50, seed=1)
    slow = bootstrap_ci(yb, s, lambda a, b: float(((b >= 0.5) == a).mean()), n_boot=50, seed=1)
    np.testing.assert_allclose(fast, slow)


def test_bootstrap_ci_is_seeded_and_fast() -> None:
    import time

    y, p = _multiclass()
    t0 = time.perf_counter()
    a = bootstrap_ci(y, p, "auroc", n_boot=1000, seed=5)
    assert time.perf_counter() - t0 < 2.0
    assert a == bootstrap_ci(y, p, "auroc", n_boot=1000, seed=5)
    assert a != bootstrap_ci(y, p, "auroc", n_boot=1000, seed=6)
    with pytest.raises(ConfigError, match="statistic"):
        bootstrap_ci(y, p, "auc")
    with pytest.raises(ConfigError, match="n_boot"):
        bootstrap_ci(y, p, "auroc", n_boot=0)


# -- thresholds -----------------------------------------------------------------------------------------------
def test_youden_threshold_separates_separable_classes() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    pos = np.where(y == 1, rng.uniform(0.6, 0.9, 100), rng.uniform(0.1, 0.4, 100))
    p = np.column_stack([1 - pos, pos])
    thr = operating_thresholds(y, p, "youden")
    assert pos[y == 0].max() < thr[1] <= pos[y == 1].min()
    assert (1 - pos)[y == 1].max() < thr[0] <= (1 - pos)[y == 0].min()


def test_target_sensitivity_threshold_reaches_the_target() -> None:
    y, p = _multiclass(seed=1)
    thr = operating_thresholds(y, p, 0.95)
    youden = operating_thresholds(y, p)
    for k in range(p.shape[1]):
        t = y == k
        assert (p[t, k] >= thr[k]).mean() >= 0.95
        higher = p[:, k][p[:, k] > thr[k]]  # the next threshold up misses the target: thr is the highest
        if higher.size:
            assert (p[t, k] >= higher.min()).mean() < 0.95
        assert thr[k] <= youden[k]
    y_absent = np.where(y == 4, 0, y)
    assert operating_thresholds(y_absent, p)[4] == 0.5
    with pytest.raises(ConfigError, match="youden"):
        operating_thresholds(y, p, "best")
    with pytest.raises(ConfigError):
        operating_thresholds(y, p, 1.5)


# -- metrics --------------------------------------------------------------------------------------------------
def test_rates_match_a_hand_computed_confusion_matrix() -> None:
    # class 1 called at >= 0.5: 3 TP, 1 FN, 2 FP, 4 TN
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.55, 0.2, 0.1, 0.4, 0.45])
    p = np.column_stack([1 - s, s])
    m = clinical_metrics(y, p, ["healthy", "disease"], [0.5, 0.5], n_boot=100)
    assert list(m["per_class"]) == ["disease"] and list(m["auroc"]) == ["disease"]
    row = m["per_class"]["disease"]
    assert (row["tp"], row["fn"], row["fp"], row["tn"], row["support"]) == (3, 1, 2, 4, 4)
    assert row["sensitivity"] == pytest.approx(3 / 4)
    assert row["specificity"] == pytest.approx(4 / 6)
    assert row["ppv"] == pytest.approx(3 / 5)
    assert row["npv"] == pytest.approx(4 / 5)
    assert row["f1"] == pytest.approx(6 / 9)
    assert m["auroc"]["disease"] == pytest.approx(roc_auc_score(y, s))
    assert m["macro_auroc"] == m["auroc"]["disease"]
    lo, hi = m["auroc_ci"]["disease"]
    assert lo <= m["auroc"]["disease"] <= hi
    assert m["bootstrap"]["n"] == 100 and m["bootstrap"]["alpha"] == 0.05


def test_clinical_metrics_multiclass_with_an_absent_class_is_json_ready() -> None:
    y, p = _multiclass(seed=2, n=200, c=4)
    y = np.where(y == 3, 0, y)  # class 3 absent: no positives
    m = clinical_metrics(y, p, ["a", "b", "c", "d"], operating_thresholds(y, p), n_boot=200)
    json.dumps(m, allow_nan=False)
    assert m["auroc"]["d"] is None and m["auroc_ci"]["d"] is None
    assert m["per_class"]["d"]["sensitivity"] is None and m["per_class"]["d"]["support"] == 0
    assert m["macro_auroc"] == pytest.approx(np.mean([m["auroc"][k] for k in "abc"]))
    lo, hi = m["macro_auroc_ci"]
    assert lo < m["macro_auroc"] < hi
    lo, hi = m["accuracy_ci"]
    assert lo < float((p.argmax(1) == y).mean()) < hi
    with pytest.raises(ConfigError, match="thresholds"):
        clinical_metrics(y, p, ["a", "b", "c", "d"], [0.5])


def test_top_label_ece() -> None:
    y = np.array([0, 1, 0, 1])
    assert top_label_ece(y, np.eye(2)[y]) == 0.0  # confident and right
    assert top_label_ece(y, np.eye(2)[1 - y]) == pytest.approx(1.0)  # confident and wrong
    p = np.full((4, 2), 0.5)
    p[:, 0] += 1e-9  # confidence ~0.5, accuracy 0.5: calibrated
    assert top_label_ece(y, p) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.4, 1.0, 20000)  # a binary model whose top-label confidence is its accuracy
    right = rng.uniform(size=conf.size) < conf
    yy = np.where(right, 0, 1)
    pp = np.column_stack([conf, 1 - conf])
    assert top_label_ece(yy[conf >= 0.5], pp[conf >= 0.5]) < 0.02


# -- task -----------------------------------------------------------------------------------------------------
def test_sord_loss_prefers_a_neighbouring_grade() -> None:
    task = Clinical(ordinal=True)
    classes = task.label_space([0, 1, 2, 3, 4] * 4, None)
    assert task.monitor == "val_quadratic_kappa"
    loss = task.criterion()
    target = torch.tensor([2])
    near, far = torch.full((1, 5), -4.0), torch.full((1, 5), -4.0)
    near[0, 3], far[0, 0] = 4.0, 4.0
    assert float(loss(near, target)) < float(loss(far, target))
    exact = torch.log(sord_targets(5)[2:3])  # the target itself: KL 0
    assert float(loss(exact, target)) == pytest.approx(0.0, abs=1e-6)
    weighted = Clinical(ordinal=True, class_weight={4: 3.0})
    weighted.label_space([0, 1, 2, 3, 4] * 4, None)
    logits, y = torch.randn(8, 5, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 4, 4, 1, 2, 3, 4, 0])
    w = torch.tensor([1.0, 1, 1, 1, 3])[y]
    per_row = torch.stack([loss(logits[i : i + 1], y[i : i + 1]) for i in range(8)])
    assert float(weighted.criterion()(logits, y)) == pytest.approx(float((per_row * w).sum() / w.sum()), rel=1e-5)
    e = task.epoch_metrics(logits, y, classes)
    assert "val_quadratic_kappa" in e and "val_loss" in e


def test_clinical_task_end_to_end_state_and_json() -> None:
    rng = np.random.default_rng(0)
    labels = ["0-none", "1-mild", "2-moderate", "3-severe"]
    raw = [labels[i] for i in rng.integers(0, 4, 240)]
    task = Clinical(operating_point=0.9, ordinal=True, n_boot=200)
    classes = task.label_space(raw[:160], raw[160:])
    y = task.encode(raw, classes, where="data")
    assert list(classes) == labels and y.dtype == np.int64
    ce = Clinical().criterion()
    assert torch.isfinite(ce(torch.zeros(3, 4), torch.as_tensor(y[:3])))
    logits = rng.normal(size=(240, 4)).astype(np.float32)
    logits[np.arange(240), y] += 1.5
    task.calibrate(logits[160:], y[160:])
    assert task.thresholds is not None and len(task.thresholds) == 4
    m = task.metrics(logits[:160], y[:160], classes)
    json.dumps(m, allow_nan=False)
    assert m["macro_auroc"] == m["clinical"]["macro_auroc"] > 0.6
    assert set(m["clinical"]["per_class"]) == set(labels)
    assert -1 <= m["quadratic_kappa"] <= 1 and m["mae_grade"] >= 0 and 0 <= m["ece"] <= 1
    assert all(k in m for k in Clinical.summary_keys)

    state = json.loads(json.dumps(task.state()))
    restored = Clinical()
    restored.load_state(state)
    assert restored.thresholds == task.thresholds
    assert (restored.operating_point, restored.ordinal, restored.monitor) == (0.9, True, "val_quadratic_kappa")
    assert restored.metrics(logits[:160], y[:160], classes)["clinical"] == m["clinical"]


def test_clinical_binary_reports_the_positive_class() -> None:
    rng = np.random.default_rng(1)
    raw = list(rng.choice(["benign", "malignant"], 200, p=[0.7, 0.3]))
    task = Clinical(n_boot=100)
    classes = task.label_space(raw, None)
    y = task.encode(raw, classes, where="data")
    logits = np.column_stack([np.zeros(200), 1.5 * y + rng.normal(size=200)]).astype(np.float32)
    task.calibrate(logits, y)
    m = task.metrics(logits, y, classes)
    json.dumps(m, allow_nan=False)
    assert m["positive_class"] == "malignant" and list(m["clinical"]["per_class"]) == ["malignant"]
    assert m["macro_auroc"] == pytest.approx(m["roc_auc"])
    assert "positive_class_ece" in m and "val_roc_auc" in task.epoch_metrics(torch.as_tensor(logits), y, classes)


def test_clinical_config_errors() -> None:
    for bad in ({"operating_point": "best"}, {"operating_point": 0.0}, {"operating_point": True}, {"n_boot": -1}):
        with pytest.raises(ConfigError):
            Clinical(**bad)
    with pytest.raises(ConfigError, match="focal"):
        Clinical(ordinal=True, focal_gamma=2.0)
