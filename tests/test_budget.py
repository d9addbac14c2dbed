"""``graft train DATA --budget 5m``: budget parsing, the training loop's deadline, and whole budgeted runs on tiny
random backbones registered as offline candidates."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset
from typer.testing import CliRunner

from graft.errors import ConfigError
from graft.selection.budget import offline_candidates, parse_budget, train_within_budget
from graft.training import TrainConfig, deadline, deadlines, run_loop

TINY = ("tiny_budget_a", "tiny_budget_b")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("2m", 120.0), ("1h", 3600.0), ("1.5m", 90.0), ("45", 45.0), (" 3 min ", 180.0), (7, 7.0)],
)
def test_budgets_parse_to_seconds(text: Any, seconds: float) -> None:
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5d", "-1m", "0", "0s", "1m30", "nan"])
def test_bad_budgets_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ConfigError, match="90s|positive"):
        parse_budget(text)


class _Clock:
    """A fake ``time.perf_counter`` for the deadline: one second per training step."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def test_the_loop_stops_at_the_deadline_between_steps_and_keeps_the_best_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(deadlines, "time", clock)
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    data = TensorDataset(torch.randn(16, 4), torch.arange(16) % 2)
    scripted = iter([0.5, 0.9, 0.6, 0.7, 0.8])  # epoch 2 is the best
    seen: list[dict[str, torch.Tensor]] = []

    def loss_fn(m: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        clock.now += 1.0  # each step takes "one second"
        return {"loss": nn.functional.cross_entropy(m(batch[0]), batch[1])}

    def evaluate(m: nn.Module, device: Any, autocast: Any) -> dict[str, float]:
        return {"val_accuracy": next(scripted), "val_loss": 0.0}

    config = TrainConfig(epochs=5, lr=0.1, batch_size=4, verbose=False, deadline=10.0)  # 4 steps an epoch
    result = run_loop(
        model,
        train_set=data,
        param_groups=[{"params": list(model.parameters()), "lr": 0.1}],
        loss_fn=loss_fn,
        config=config,
        evaluate=evaluate,
        on_epoch_end=lambda e, logs: seen.append({k: v.clone() for k, v in model.state_dict().items()}),
    )
    assert clock.now == 10.0  # cut in epoch 3 after its second step: the deadline is checked between steps
    assert [h["epoch"] for h in result.history] == [1, 2, 3] and result.stopped_early
    assert result.best_epoch == 2
    for k, v in model.state_dict().items():  # the best epoch's weights, not the last step's
        assert torch.equal(v, seen[1][k]) and not torch.equal(v, seen[2][k])


def test_a_deadline_around_fit_reaches_every_phase(helpers: Any) -> None:
    X, y = helpers.color_arrays(8, 2)
    clf = helpers.tiny_classifier("fine-tune", epochs=4)
    with deadline(time.perf_counter()):  # already passed: each phase takes one step, evaluates, and stops
        clf.fit(X, y)
    assert [h["epoch"] for h in clf.history_] == [1, 1]  # head warm-up and backbone phase
    assert {h["phase"] for h in clf.history_} == {"head", "fine-tune"}
    with deadline(None):
        assert deadlines.current_deadline() is None


def test_an_inner_deadline_cannot_extend_an_outer_one() -> None:
    with deadline(5.0):
        with deadline(50.0):
            assert deadlines.current_deadline() == 5.0
        assert deadlines.current_deadline() == 5.0
    assert deadlines.current_deadline() is None


# ------------------------------------------------------------------------------------------------------
# a whole budgeted run: tiny random backbones registered as offline candidates
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_candidates(monkeypatch: pytest.MonkeyPatch, helpers: Any) -> tuple[str, ...]:
    """Two tiny random backbones (fixed seeds, so rank's cached embeddings serve training) in the registry."""
    from graft.backbones import _registry
    from graft.backbones.timm import create_timm_backbone

    def factory(seed: int) -> Any:
        def build(*, pretrained: bool = True, weights: str | None = None, **kw: Any) -> Any:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                return create_timm_backbone(helpers.backbone, pretrained=False, **kw)

        return build

    _registry._ensure_builtins()
    for i, name in enumerate(TINY):
        entry = _registry.BackboneEntry(name, factory(i), "image", "tiny test backbone", lambda: True)
        monkeypatch.setitem(_registry._REGISTRY, name, entry)
    monkeypatch.setitem(
        _registry._REGISTRY,
        "tiny_budget_missing",
        _registry.BackboneEntry("tiny_budget_missing", factory(9), "image", "weights not here", lambda: False),
    )
    return TINY


@pytest.fixture
def split_data(helpers: Any, tmp_path: Path) -> tuple[Path, Path]:
    train = helpers.write_class_folder(tmp_path / "train", n_classes=2, n_per_class=12, seed=0)
    val = helpers.write_class_folder(tmp_path / "val", n_classes=2, n_per_class=6, seed=1)
    return train, val


def test_offline_candidates_are_the_installed_backbones_of_the_modality(tiny_candidates: tuple[str, ...]) -> None:
    images = offline_candidates("image")
    assert set(tiny_candidates) <= set(images) and "tiny_budget_missing" not in images
    assert not set(tiny_candidates) & set(offline_candidates("text"))


def test_the_probe_times_the_backbone_past_the_cache(
    tiny_candidates: tuple[str, ...], split_data: tuple[Path, Path]
) -> None:
    """An example whose embedding is cached still costs a forward pass per fine-tuning step: the probe measures the
    same cost with the cache full (a later run) as with it empty (the first), so a plan cannot think steps are free."""
    import graft
    from graft.selection._costs import probe, read_data

    train, _ = split_data
    est = graft.ImageClassifier(tiny_candidates[0], "feature-extraction", image_size=64, verbose=False)
    facts = read_data(est, str(train), None)
    first = probe(est, facts, seed=0)
    again = probe(est, facts, seed=0)  # every probed example is in the cache now
    assert first.embed_s > 0 and again.embed_s > 0.3 * first.embed_s


@pytest.mark.slow
def test_without_a_validation_set_the_rank_sees_only_the_fits_training_part(
    tiny_candidates: tuple[str, ...], split_data: tuple[Path, Path]
) -> None:
    """The fit holds out a seeded validation part that later scores the chosen backbone; the plan knows that split
    (the fit's own counts) and the rank draws from the rest only."""
    import graft
    from graft.selection import rank
    from graft.selection._costs import read_data

    train, _ = split_data
    est = graft.ImageClassifier(tiny_candidates[0], "feature-extraction", image_size=32, epochs=1, verbose=False)
    facts = read_data(est, str(train), None)
    assert facts.train_rows is not None and facts.n_train + facts.n_val == facts.n_data == 24
    est.fit(str(train))
    assert (est.n_train_, est.n_val_) == (facts.n_train, facts.n_val)
    table = rank(train, [tiny_candidates[0]], rows=facts.train_rows, image_size=32, verbose=False)
    assert int(table.loc[0, "examples"]) == facts.n_train


def _warm_imports() -> None:
    """What a long-running process has imported already (a test measures the plan, not first imports)."""
    import matplotlib.pyplot  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import timm  # noqa: F401

    import graft.evaluation.runs  # noqa: F401
    import graft.selection.rank  # noqa: F401


@pytest.mark.slow
def test_a_budgeted_run_stays_within_its_budget_and_records_its_decisions(
    tiny_candidates: tuple[str, ...], split_data: tuple[Path, Path], tmp_path: Path
) -> None:
    import graft

    _warm_imports()
    train, val = split_data
    lines: list[str] = []
    budget = 6.0
    t0 = time.perf_counter()
    result = train_within_budget(
        train,
        "6s",
        output_dir=tmp_path / "run",
        val=val,
        candidates=list(tiny_candidates),
        image={"image_size": 32, "augment": "none"},
        device="cpu",
        verbose=False,
        say=lines.append,
    )
    wall = time.perf_counter() - t0
    assert wall <= 1.1 * budget + 1.0, wall
    auto = json.loads((tmp_path / "run" / "graft.json").read_text())["auto"]
    assert auto == json.loads(json.dumps(result.record))
    assert auto["budget_s"] == budget and 0 < auto["spent_s"] <= wall + 0.01
    assert set(auto["phases_s"]) == {"rank", "lr_find", "train", "tail"}
    assert sum(auto["phases_s"].values()) <= auto["spent_s"] + 0.025  # five numbers, each rounded to 0.01
    decisions = {d["what"]: d for d in auto["decisions"]}
    assert {"candidates", "backbone", "strategy", "lr", "epochs", "deadline"} <= set(decisions)
    for d in auto["decisions"]:
        assert d["why"] and isinstance(d["evidence"], dict)
    ranked, left_out = decisions["candidates"]["choice"], decisions["candidates"]["evidence"]["skipped"]
    assert sorted(r["model"] for r in auto["rank"]) == sorted(ranked) and ranked  # a busy machine may leave one out,
    assert set(ranked) | set(left_out) == set(tiny_candidates)  # and says why
    assert decisions["backbone"]["choice"] == max(auto["rank"], key=lambda r: r["logme"])["model"]
    # 12 examples per class are far below the fine-tuning threshold: the rule says feature extraction
    assert decisions["strategy"]["choice"] == "feature-extraction"
    assert decisions["strategy"]["evidence"]["min_examples_per_class"] == 12
    assert len(lines) == len(auto["decisions"]) and lines[0].startswith("candidates: ")
    assert "<h2>Choices</h2>" in (tmp_path / "run" / "report.html").read_text()  # the run's own report shows them
    model = graft.load(tmp_path / "run")
    assert model.backbone == decisions["backbone"]["choice"]
    assert model.evaluate(str(val))["accuracy"] >= 0.9  # colour classes: learnable even from random features


@pytest.mark.slow
def test_a_fine_tuning_budget_is_cut_at_the_deadline(
    tiny_candidates: tuple[str, ...], split_data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graft.selection.budget as budget_mod

    _warm_imports()
    monkeypatch.setattr(budget_mod, "FT_MIN_PER_CLASS", 2)  # tiny data: let the time rule decide
    monkeypatch.setattr(budget_mod, "FT_STEP_FACTOR", 1e-3)  # an estimate far too low: the plan has too many epochs
    monkeypatch.setattr(budget_mod, "MAX_FT_EPOCHS", 10_000)  # and the deadline must end them
    train, val = split_data
    t0 = time.perf_counter()
    result = train_within_budget(
        train,
        "8s",
        output_dir=tmp_path / "run",
        val=val,
        candidates=[tiny_candidates[0]],
        image={"image_size": 32, "augment": "none"},
        device="cpu",
        verbose=False,
    )
    wall = time.perf_counter() - t0
    assert wall <= 1.1 * 8 + 1.0, wall
    decisions = {d["what"]: d for d in result.record["decisions"]}
    assert decisions["strategy"]["choice"] == "fine-tune"
    assert decisions["deadline"]["evidence"]["stopped_at_deadline"]
    est = result.estimator
    ft = [h for h in est.history_ if h["phase"] == "fine-tune"]
    assert len(ft) < decisions["epochs"]["choice"]
    best = max(ft, key=lambda h: (h["val_accuracy"], -h["val_loss"]))
    if est.kept_phase_ is None:  # fine-tuning did at least as well as the warm-up head: its best epoch is kept
        assert est.best_epoch_ == best["epoch"]
    else:  # a budget keeps the warm-up head when the cut fine-tuning ends worse
        warm = [h for h in est.history_ if h["phase"] == est.kept_phase_]
        assert max(h["val_accuracy"] for h in warm) >= best["val_accuracy"]


def test_a_budget_too_short_for_the_data_says_what_it_needs(
    tiny_candidates: tuple[str, ...], split_data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graft.selection._costs as costs

    monkeypatch.setattr(costs, "TAIL_BASE_S", 30.0)  # as if writing the run took half a minute
    train, val = split_data
    with pytest.raises(ConfigError, match=r"too short.*needs about \d+s\. Give --budget \d+[sm] or more"):
        train_within_budget(
            train, "5s", output_dir=tmp_path / "run", val=val, candidates=[tiny_candidates[0]],
            image={"image_size": 32}, device="cpu", verbose=False,
        )  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_the_cli_refuses_options_that_a_budget_chooses(split_data: tuple[Path, Path], tmp_path: Path) -> None:
    from graft.cli import app

    train, _ = split_data
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(train), "--budget", "1m", "--lr", "0.1", "-o", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--lr cannot be combined with --budget" in result.output
    result = runner.invoke(app, ["train", str(train), "--budget", "5 days", "-o", str(tmp_path / "r")])
    assert result.exit_code == 2 and "90s, 2m" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_the_cli_prints_each_decision_and_json_carries_them(
    tiny_candidates: tuple[str, ...], split_data: tuple[Path, Path], tmp_path: Path
) -> None:
    from graft.cli import app

    _warm_imports()
    train, val = split_data
    common = ["--val", str(val), "--model", ",".join(tiny_candidates), "--image-size", "32", "--device", "cpu"]
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(train), "--budget", "20s", "-o", str(tmp_path / "a"), *common])
    assert result.exit_code == 0, result.output
    for what in ("candidates", "backbone", "strategy", "lr", "epochs"):
        assert f"auto {what}: " in result.output
    assert "of a 20s budget" in result.output
    result = runner.invoke(app, ["train", str(train), "--budget", "20s", "-o", str(tmp_path / "b"), "--json", *common])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["auto"]["budget_s"] == 20.0 and summary["auto"]["spent_s"] <= 22.0
    assert summary["model"] == summary["auto"]["decisions"][1]["choice"]
    assert np.isfinite(summary["val"]["accuracy"])
