"""The training loop: run_loop on a tiny linear problem, and resume through ImageClassifier."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

import graft
from graft.errors import BundleError, ConfigError, GraftError, TrainingError
from graft.strategies import FineTune
from graft.training import TrainConfig, run_loop
from graft.training.run_files import MetricsFile, load_checkpoint, write_metrics

_METRICS = ("train_loss", "val_loss", "val_accuracy")  # the entries of a best-metrics dict


class Interrupt(Exception):
    """Raised from a callback to simulate a crash or Ctrl-C between epochs."""


def _problem(n: int = 64, seed: int = 0) -> tuple[TensorDataset, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
    Xv = torch.randn(32, 4, generator=g)
    yv = (Xv[:, 0] + 0.5 * Xv[:, 1] > 0).long()
    return TensorDataset(X, y), Xv, yv


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


def _loss(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    return {"loss": F.cross_entropy(model(batch[0]), batch[1])}


def _evaluator(Xv: torch.Tensor, yv: torch.Tensor) -> Callable[..., dict[str, float]]:
    def evaluate(model: nn.Module, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]:
        logits = model(Xv.to(device))
        return {
            "val_loss": float(F.cross_entropy(logits, yv)),
            "val_accuracy": float((logits.argmax(1) == yv).float().mean()),
        }

    return evaluate


def _config(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = {"epochs": 4, "lr": 1e-2, "batch_size": 8, "device": "cpu", "verbose": False, "seed": 0}
    base.update(kw)
    return TrainConfig(**base)


def _run(model: nn.Module, config: TrainConfig, **kw: Any) -> Any:
    train_set, Xv, yv = _problem()
    kw.setdefault("evaluate", _evaluator(Xv, yv))
    return run_loop(
        model,
        train_set=train_set,
        param_groups=[{"params": list(model.parameters()), "lr": config.lr}],
        loss_fn=_loss,
        config=config,
        **kw,
    )


def _scripted(values: list[tuple[float, float]]) -> Callable[..., dict[str, float]]:
    """An evaluator returning the given (val_accuracy, val_loss) pairs, one per epoch."""
    it: Iterator[tuple[float, float]] = iter(values)

    def evaluate(model: nn.Module, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]:
        acc, loss = next(it)
        return {"val_accuracy": acc, "val_loss": loss}

    return evaluate


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{k} differs"


# ------------------------------------------------------------------------------------------------------
# run_loop
# ------------------------------------------------------------------------------------------------------


def test_loss_falls_and_history_is_complete() -> None:
    model = _model()
    result = _run(model, _config(epochs=6, schedule="constant"))
    losses = [h["train_loss"] for h in result.history]
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5, 6]
    assert losses[-1] < 0.7 * losses[0], losses
    for h in result.history:
        assert {"train_loss", "val_loss", "val_accuracy", "lr", "seconds", "train_samples_per_s"} <= set(h)
    assert result.best_epoch >= 1 and result.best["val_accuracy"] >= 0.8
    assert not result.stopped_early


def test_early_stopping_stops_and_restores_best_weights() -> None:
    model = _model()
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    result = _run(
        model,
        _config(epochs=10, patience=2),
        evaluate=_scripted([(0.5, 1.0), (0.9, 0.5), (0.8, 0.4), (0.7, 0.3), (1.0, 0.1)]),
        on_epoch_end=lambda epoch, logs: snapshots.__setitem__(epoch, _state(model)),
    )
    assert result.stopped_early
    assert len(result.history) == 4, "stops after 2 epochs without improvement"
    assert result.best_epoch == 2 and result.best["val_accuracy"] == 0.9
    best = snapshots[1]
    assert not all(torch.equal(best[k], snapshots[3][k]) for k in best), "weights should differ between epochs"
    for k, v in model.state_dict().items():
        assert torch.equal(v, best[k]), f"{k} is not the best epoch's"


def test_accuracy_ties_are_broken_by_lower_val_loss() -> None:
    result = _run(_model(), _config(epochs=3), evaluate=_scripted([(0.5, 1.0), (0.5, 0.8), (0.5, 0.9)]))
    assert result.best_epoch == 2


def test_monitor_val_loss() -> None:
    result = _run(
        _model(),
        _config(epochs=4, monitor="val_loss", patience=1),
        evaluate=_scripted([(0.1, 1.0), (0.2, 0.7), (0.9, 0.8), (1.0, 0.1)]),
    )
    assert result.best_epoch == 2 and result.stopped_early and len(result.history) == 3


def test_without_validation_the_best_epoch_has_the_lowest_train_loss() -> None:
    result = _run(_model(), _config(epochs=3), evaluate=None)
    losses = [h["train_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(losses)) + 1
    assert "val_loss" not in result.best


def test_checkpoints_and_metrics_are_written(tmp_path: Path) -> None:
    _run(_model(), _config(epochs=3), run_dir=tmp_path, phase="head")
    ckpt = tmp_path / "checkpoints" / "head" / "last.pt"
    assert ckpt.is_file()
    ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert ck["epoch"] == 2 and ck["done"] is True
    assert {"model", "optimizer", "scheduler", "history", "best", "best_epoch", "best_model", "bad_epochs"} <= set(ck)
    assert [h["epoch"] for h in json.loads(ck["history"])] == [1, 2, 3], "the history is kept as JSON text"
    assert [h["epoch"] for h in load_checkpoint(ckpt)["history"]] == [1, 2, 3]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["epoch"]) for r in rows] == [("head", 1), ("head", 2), ("head", 3)]
    assert all(np.isfinite(r["train_loss"]) for r in rows)
    assert not list(tmp_path.rglob("*.tmp")), "atomic writes must not leave temporary files"

    # a second phase in the same run directory appends its own rows; rerunning a phase replaces its rows
    _run(_model(), _config(epochs=2), run_dir=tmp_path, phase="fine-tune")
    _run(_model(), _config(epochs=1), run_dir=tmp_path, phase="head")
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sorted((r["phase"], r["epoch"]) for r in rows) == [("fine-tune", 1), ("fine-tune", 2), ("head", 1)]


def test_checkpoint_seconds_spaces_the_writes_and_always_writes_the_last_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graft.training.loop as loop

    written: list[int] = []
    real = loop._save_checkpoint

    def save(path: Path, payload: dict[str, Any]) -> None:
        written.append(payload["epoch"])
        real(path, payload)

    monkeypatch.setattr(loop, "_save_checkpoint", save)
    _run(_model(), _config(epochs=5, checkpoint_seconds=3600), run_dir=tmp_path, phase="head")
    assert written == [0, 4], "the first epoch's (none was written before) and the last one's"
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5], "the last write carries every epoch"
    assert load_checkpoint(tmp_path / "checkpoints" / "head" / "last.pt")["done"] is True


def test_metrics_file_keeps_other_phases_and_a_callbacks_addition_to_the_last_row(tmp_path: Path) -> None:
    write_metrics(tmp_path, "head", [{"epoch": 1}])
    metrics, history = MetricsFile(tmp_path, "fine-tune"), [{"epoch": 1}]
    metrics.write(history)
    history[0]["note"] = "added after the write"  # e.g. by an epoch-end callback
    history.append({"epoch": 2})
    metrics.write(history)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [
        {"phase": "head", "epoch": 1},
        {"phase": "fine-tune", "epoch": 1, "note": "added after the write"},
        {"phase": "fine-tune", "epoch": 2},
    ]


@pytest.mark.parametrize("schedule", ["cosine", "one-cycle", "constant"])
def test_resume_replays_an_uninterrupted_run_exactly(tmp_path: Path, schedule: str) -> None:
    config = _config(epochs=4, schedule=schedule)
    model_a = _model(seed=0)
    result_a = _run(model_a, config, run_dir=tmp_path / "a")

    model_b = _model(seed=0)

    def crash_after_second_epoch(epoch: int, logs: dict[str, Any]) -> None:
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        _run(model_b, config, run_dir=tmp_path / "b", on_epoch_end=crash_after_second_epoch)
    ck = torch.load(tmp_path / "b" / "checkpoints" / "train" / "last.pt", weights_only=True)
    assert ck["epoch"] == 1 and ck["done"] is False

    model_c = _model(seed=123)  # a fresh model: everything must come from the checkpoint
    started: list[int] = []
    result_c = _run(model_c, config, run_dir=tmp_path / "b", resume=True, on_epoch_start=started.append)
    assert started == [2, 3], "resume continues with the third epoch"
    assert [h["epoch"] for h in result_c.history] == [1, 2, 3, 4]
    assert result_c.best_epoch == result_a.best_epoch
    assert {k: result_c.best[k] for k in _METRICS} == {k: result_a.best[k] for k in _METRICS}
    for hc, ha in zip(result_c.history, result_a.history):
        assert hc["train_loss"] == ha["train_loss"] and hc["val_loss"] == ha["val_loss"]
    _assert_same_weights(model_c, model_a)
    rows = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 4


def test_resume_of_a_finished_run_trains_nothing_and_restores_the_best(tmp_path: Path) -> None:
    model_a = _model()
    result_a = _run(model_a, _config(epochs=3), run_dir=tmp_path)
    model_b = _model(seed=5)
    started: list[int] = []
    result_b = _run(model_b, _config(epochs=3), run_dir=tmp_path, resume=True, on_epoch_start=started.append)
    assert started == []
    assert result_b.best_epoch == result_a.best_epoch and len(result_b.history) == 3
    _assert_same_weights(model_b, model_a)


def test_gradient_accumulation_steps_the_optimizer_once_per_group_of_batches() -> None:
    from torch.optim.optimizer import register_optimizer_step_post_hook

    steps: list[int] = []
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: steps.append(1))
    try:
        g = torch.Generator().manual_seed(0)
        X = torch.randn(56, 4, generator=g)  # 7 batches of 8: with grad_accum=2, steps after 2, 4, 6 and 7
        train_set = TensorDataset(X, (X[:, 0] > 0).long())
        model = _model()
        config = _config(epochs=3, grad_accum=2, lr=3e-2)
        result = run_loop(
            model,
            train_set=train_set,
            param_groups=[{"params": list(model.parameters()), "lr": config.lr}],
            loss_fn=_loss,
            config=config,
        )
    finally:
        handle.remove()
    assert len(steps) == 3 * 4
    # the scheduler stepped once per optimizer step: the cosine schedule ends exactly at its floor
    assert result.history[-1]["lr"] == pytest.approx(0.01 * 3e-2)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.parametrize("schedule", ["cosine", "one-cycle", "constant"])
def test_schedules(schedule: str) -> None:
    lr = 1e-2
    result = _run(_model(), _config(epochs=4, schedule=schedule, lr=lr))
    lrs = [h["lr"] for h in result.history]
    assert all(0 < v <= lr * (1 + 1e-9) for v in lrs), lrs
    if schedule == "constant":
        assert lrs == pytest.approx([lr] * 4)
    elif schedule == "cosine":
        assert lrs == sorted(lrs, reverse=True), "cosine decays after the warm-up"
        assert lrs[-1] == pytest.approx(0.01 * lr)
    else:
        assert lrs[-1] < 0.01 * lr, "one-cycle anneals to (almost) zero"
        assert max(lrs) > 0.5 * lr
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"grad_accum": 0}, "grad_accum"),
        ({"schedule": "x"}, "schedule"),
        ({"precision": "fp8"}, "precision"),
        ({"monitor": "accuracy"}, "monitor"),
    ],
)
def test_bad_config_raises_config_error(kwargs: dict[str, Any], match: str) -> None:
    base: dict[str, Any] = {"epochs": 2, "lr": 1e-3}
    base.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**base)


def test_estimator_rejects_bad_schedule(tiny: Any, arrays: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ConfigError, match="schedule"):
        tiny("feature-extraction", schedule="x").fit(*arrays)


def test_non_finite_loss_stops_with_a_clear_error() -> None:
    def nan_loss(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        return {"loss": model(batch[0]).sum() * float("nan")}

    model = _model()
    train_set, _, _ = _problem()
    with pytest.raises(TrainingError, match="lower the learning rate") as info:
        run_loop(
            model,
            train_set=train_set,
            param_groups=[{"params": list(model.parameters()), "lr": 1e-2}],
            loss_fn=nan_loss,
            config=_config(epochs=1),
        )
    assert isinstance(info.value, GraftError), "the CLI reports GraftErrors without a traceback"


# ------------------------------------------------------------------------------------------------------
# resume through the estimator
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def resume_data(helpers: Any, tmp_path: Path) -> Path:
    return helpers.write_class_folder(tmp_path / "data", n_classes=2, n_per_class=10, seed=3)


@pytest.mark.parametrize(
    "head_warmup",
    [False, pytest.param(True, marks=pytest.mark.slow)],
    ids=["fine-tune", "head-then-fine-tune"],
)
def test_estimator_resume_matches_uninterrupted_run(
    helpers: Any, tmp_path: Path, resume_data: Path, backbone_weights: Path, head_warmup: bool
) -> None:
    params = helpers.tiny_params(epochs=3, lr=1e-2, augment="default", weights=str(backbone_weights), cache=False)
    strategy = FineTune(head_warmup=head_warmup)

    uninterrupted = graft.ImageClassifier(helpers.backbone, strategy, output_dir=tmp_path / "a", **params)
    uninterrupted.fit(resume_data)

    def crash(phase: str, epoch: int, logs: dict[str, Any]) -> None:
        if phase == "fine-tune" and epoch == 0:
            raise Interrupt

    run = tmp_path / "b"
    with pytest.raises(Interrupt):
        graft.ImageClassifier(helpers.backbone, strategy, output_dir=run, **params).fit(resume_data, callbacks=[crash])
    assert (run / "checkpoints" / "fine-tune" / "last.pt").is_file()
    with pytest.raises(BundleError, match="resume"):
        graft.load(run)
    with pytest.raises(ConfigError, match="resume"):  # neither resume nor overwrite: refuse to touch the run
        graft.ImageClassifier(helpers.backbone, strategy, output_dir=run, **params).fit(resume_data)

    seen: list[tuple[str, int]] = []
    resumed = graft.ImageClassifier(helpers.backbone, strategy, output_dir=run, **params).fit(
        resume_data, resume=True, callbacks=[lambda phase, epoch, logs: seen.append((phase, epoch))]
    )
    assert seen == [("fine-tune", 1), ("fine-tune", 2)], "only the missing epochs run"
    assert resumed.best_epoch_ == uninterrupted.best_epoch_
    for key in ("val_accuracy", "val_loss", "train_loss"):
        assert resumed.best_metrics_[key] == pytest.approx(uninterrupted.best_metrics_[key], abs=1e-6)
    assert [h["epoch"] for h in resumed.history_ if h["phase"] == "fine-tune"] == [1, 2, 3]
    X = sorted(str(p) for p in resume_data.rglob("*.png"))
    np.testing.assert_allclose(resumed.predict_proba(X), uninterrupted.predict_proba(X), rtol=0, atol=1e-6)
    # the finished run is a loadable bundle with the same predictions
    np.testing.assert_allclose(graft.load(run).predict_proba(X), uninterrupted.predict_proba(X), rtol=0, atol=1e-6)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["phase"] == "fine-tune"] == [1, 2, 3]


def test_resume_without_checkpoints_is_a_config_error(tiny: Any, tmp_path: Path, resume_data: Path) -> None:
    with pytest.raises(ConfigError, match="Nothing to resume"):
        tiny(output_dir=tmp_path / "empty").fit(resume_data, resume=True)


def test_same_seed_gives_same_model_without_pretrained_weights(
    tiny: Any, arrays: tuple[np.ndarray, np.ndarray]
) -> None:
    a = tiny("feature-extraction", seed=3, cache=False).fit(*arrays)
    torch.rand(1)  # unrelated use of the global RNG between the two fits
    b = tiny("feature-extraction", seed=3, cache=False).fit(*arrays)
    np.testing.assert_array_equal(a.predict_proba(arrays[0]), b.predict_proba(arrays[0]))


# ------------------------------------------------------------------------------------------------------
# length-grouped batches
# ------------------------------------------------------------------------------------------------------


def test_length_grouped_sampler_covers_every_item_once_per_epoch_and_is_seeded() -> None:
    from graft.training import LengthGroupedBatchSampler

    lengths = list(np.random.default_rng(0).integers(1, 60, size=203))
    s = LengthGroupedBatchSampler(lengths, 8, seed=3, mega=4)
    batches = list(s)
    assert len(batches) == len(s) == 26
    assert sorted(i for b in batches for i in b) == list(range(203))
    assert list(s) == batches, "same epoch, same order"
    s.set_epoch(1)
    assert list(s) != batches, "a new epoch reshuffles"
    s2 = LengthGroupedBatchSampler(lengths, 8, seed=3, mega=4)
    s2.set_epoch(1)
    assert list(s2) == list(s)
    dropped = LengthGroupedBatchSampler(lengths, 8, seed=3, drop_last=True)
    assert len(list(dropped)) == len(dropped) == 25 and all(len(b) == 8 for b in dropped)


def test_length_grouped_batches_pad_much_less_than_random_ones() -> None:
    from graft.training import LengthGroupedBatchSampler

    lengths = list(np.random.default_rng(1).integers(1, 60, size=2000))

    def padded(batches: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    grouped = padded(list(LengthGroupedBatchSampler(lengths, 32, seed=0)))
    perm = np.random.default_rng(2).permutation(2000).tolist()
    random_ = padded([perm[s : s + 32] for s in range(0, 2000, 32)])
    assert grouped < 0.7 * random_
    assert grouped < 1.05 * sum(lengths)


class _SizedTensors(TensorDataset):
    def __init__(self, *tensors: torch.Tensor, lengths: list[int]) -> None:
        super().__init__(*tensors)
        self.lengths = lengths


def test_run_loop_groups_batches_by_length_and_resumes_exactly(tmp_path: Path) -> None:
    base, Xv, yv = _problem()
    X, y = base.tensors
    lengths = [int(v) for v in np.random.default_rng(0).integers(1, 100, size=len(X))]
    seen: list[list[int]] = []

    def loss(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        seen.append(batch[2].tolist())
        return _loss(model, batch)

    def run(model: nn.Module, **kw: Any) -> Any:
        config = _config(epochs=3)
        data = _SizedTensors(X, y, torch.arange(len(X)), lengths=lengths)
        params = [{"params": list(model.parameters()), "lr": config.lr}]
        return run_loop(
            model, train_set=data, param_groups=params, loss_fn=loss, config=config, evaluate=_evaluator(Xv, yv), **kw
        )

    model_a = _model()
    run(model_a, run_dir=tmp_path / "a")
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in seen]
    assert max(spread) < 50, "batches hold items of similar length"

    def crash(epoch: int, logs: dict[str, Any]) -> None:
        if epoch == 0:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(_model(), run_dir=tmp_path / "b", on_epoch_end=crash)
    model_c = _model(seed=9)
    run(model_c, run_dir=tmp_path / "b", resume=True)
    _assert_same_weights(model_c, model_a)


@pytest.mark.parametrize(
    ("fine_tune_accuracy", "best_of_phases", "kept"),
    [(0.5, True, "head"), (0.9, True, None), (0.5, False, None), (0.8, False, None)],
)
def test_fine_tuning_that_ends_worse_than_its_warm_up_head_gives_the_warm_up_model_back(
    helpers: Any, monkeypatch: pytest.MonkeyPatch, fine_tune_accuracy: float, best_of_phases: bool, kept: str | None
) -> None:
    """With best_of_phases the run keeps its best checkpoint across phases: a backbone phase whose best validation
    score is below the head warm-up's leaves the warm-up's head on the pretrained backbone; a better one is kept.
    Without it the fine-tuned model stays. A worse fine-tuning is warned about either way."""
    import torch

    import graft.training.phases as phases
    from graft.strategies import FineTune
    from graft.training.loop import LoopResult

    seen: dict[str, Any] = {}

    def head(phase: Any, ctx: Any) -> LoopResult:
        seen["warm"] = {k: v.clone() for k, v in ctx.est.model_.state_dict().items()}
        return LoopResult(best_epoch=3, best={"val_accuracy": 0.8, "val_loss": 0.4})

    def backbone(phase: Any, ctx: Any) -> LoopResult:
        with torch.no_grad():
            for p in ctx.est.model_.parameters():
                p.add_(1.0)
        return LoopResult(best_epoch=1, best={"val_accuracy": fine_tune_accuracy, "val_loss": 0.9})

    monkeypatch.setattr(phases, "_run_head", head)
    monkeypatch.setattr(phases, "_run_backbone", backbone)
    X, y = helpers.color_arrays(8, 2)
    clf = helpers.tiny_classifier(FineTune(best_of_phases=best_of_phases), epochs=1)
    if fine_tune_accuracy <= 0.8:  # a tie on accuracy is decided by the loss, and the warning quotes the loss
        quoted = (
            r"val_loss 0\.9\) than .* \(0\.4; val_accuracy tied at 0\.8\)"
            if fine_tune_accuracy == 0.8
            else r"val_accuracy 0\.5\)"
        )
        with pytest.warns(UserWarning, match=rf"ended worse on validation \({quoted}"):
            clf.fit(X, y)
    else:
        clf.fit(X, y)
    state = clf.model_.state_dict()
    same = all(torch.equal(state[k], v) for k, v in seen["warm"].items() if v.is_floating_point())
    assert same == bool(kept) and (clf.kept_phase_ is not None) == bool(kept)
    assert clf.best_epoch_ == (3 if kept else 1)
