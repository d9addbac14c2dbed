"""Crash safety: a fit killed with SIGKILL at named points and resumed ends as an uninterrupted run; damaged embedding
cache entries are recomputed; a full disk is a clear error that leaves no half-written file; two processes share one
embedding cache.

``tests/test_processes.py`` already kills a fit in the middle of its second fine-tuning epoch; here the kill points are
in the head warm-up, at the boundary between the two phases, between writing a checkpoint's temporary file and its
rename, and in the middle of writing the bundle.

Run as a script, this module is the child process that the tests start (and kill):

* ``fit RUN --weights W [--resume] [--kill POINT]``: a seeded tiny fine-tuning run into ``RUN``;
* ``save SRC DST --kill POINT``: load the bundle ``SRC`` and save it over the bundle ``DST``;
* ``embed DATA OUT --weights W --ready FILE --go FILE``: fit a frozen-backbone model through the embedding cache of
  ``$GRAFT_CACHE_DIR`` once ``--go`` exists, and write the embeddings and probabilities of ``DATA`` to ``OUT``.

Kill points (``POINT``): ``after:PHASE:EPOCH:K`` (the K-th optimizer step after epoch EPOCH, 0-based, of PHASE ends),
``checkpoint:PHASE:N`` (the N-th write of ``checkpoints/PHASE/last.pt``, half-written, before its rename),
``bundle`` (after ``model.safetensors`` is renamed into the run directory, before ``graft.json`` is),
``staged`` (a bundle saved over another: its temporary folder is complete but for ``graft.json``) and
``swap`` (the old bundle is moved aside and the new one not yet moved into place).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve()
TESTS = HERE.parents[1]
TIMING = ("seconds", "train_samples_per_s")


# ------------------------------------------------------------------------------------------------------
# the child process
# ------------------------------------------------------------------------------------------------------


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_at_step(phase: str, epoch: int, k: int) -> Callable[[str, int, dict[str, Any]], None]:
    """A fit callback that arms a SIGKILL at the ``k``-th optimizer step after ``epoch`` of ``phase`` ends."""
    armed = {"on": False, "steps": 0}

    def callback(name: str, index: int, logs: dict[str, Any]) -> None:
        if name == phase and index == epoch:
            armed["on"] = True

    for cls in (torch.optim.AdamW, torch.optim.SGD):
        step = cls.step

        def counting(self: Any, *a: Any, _step: Any = step, **kw: Any) -> Any:
            out = _step(self, *a, **kw)
            if armed["on"]:
                armed["steps"] += 1
                if armed["steps"] == k:
                    _die()
            return out

        cls.step = counting  # type: ignore[method-assign]
    return callback


def _kill_at_rename(point: str, target: Path | None = None) -> None:
    """SIGKILL this process at the rename that ``point`` names (see the module docstring)."""
    real = os.replace
    kind, _, rest = point.partition(":")
    seen = {"n": 0}

    def replace(src: Any, dst: Any, *a: Any, **kw: Any) -> None:
        dst_path = Path(dst)
        if kind == "checkpoint" and dst_path.name == "last.pt" and dst_path.parent.name == rest.split(":")[0]:
            seen["n"] += 1
            if seen["n"] == int(rest.split(":")[1]):
                with open(src, "r+b") as f:  # the write was cut short: half of the checkpoint is on disk
                    f.truncate(os.path.getsize(src) // 2)
                _die()
        if kind in ("bundle", "staged") and dst_path.name == "graft.json":
            _die()
        if kind == "swap" and target is not None and dst_path.resolve() == target.resolve():
            _die()
        real(src, dst, *a, **kw)

    os.replace = replace  # type: ignore[assignment]


def _child_classifier(weights: str, strategy: Any = None, **params: Any) -> Any:
    import graft
    from conftest import TINY_BACKBONE
    from graft.strategies import FineTune

    torch.set_num_threads(1)
    settings: dict[str, Any] = {
        "pretrained": False,
        "weights": weights,
        "image_size": 32,
        "batch_size": 4,
        "augment": "none",
        "device": "cpu",
        "verbose": False,
        "seed": 3,
        **params,
    }
    return graft.ImageClassifier(TINY_BACKBONE, strategy or FineTune(dropout=0.0, label_smoothing=0.0), **settings)


def _child_fit(args: argparse.Namespace) -> None:
    from conftest import color_arrays

    clf = _child_classifier(
        args.weights, epochs=3, cache=False, val_fraction=0.25, output_dir=args.run, overwrite=not args.resume
    )
    X, y = color_arrays(8, 2)  # 16 images: 12 train (3 steps an epoch), 4 validation
    trained: list[tuple[str, int]] = []
    callbacks: list[Callable[[str, int, dict[str, Any]], None]] = [lambda p, e, logs: trained.append((p, e))]
    if args.kill and args.kill.startswith("after:"):
        _, phase, epoch, k = args.kill.split(":")
        callbacks.append(_kill_at_step(phase, int(epoch), int(k)))
    elif args.kill:
        _kill_at_rename(args.kill)
    clf.fit(X, y, resume=args.resume, callbacks=callbacks)
    Path(args.run, "..", f"{Path(args.run).name}.epochs.json").write_text(json.dumps(trained))


def _child_save(args: argparse.Namespace) -> None:
    import graft

    est = graft.load(args.src)
    _kill_at_rename(args.kill, Path(args.dst))
    est.save(args.dst, overwrite=True)


def _child_embed(args: argparse.Namespace) -> None:
    clf = _child_classifier(args.weights, strategy="feature-extraction", epochs=2, cache=True, val_fraction=0.25)
    Path(args.ready).touch()
    deadline = time.monotonic() + 120
    while not Path(args.go).exists():  # both processes start embedding together
        if time.monotonic() > deadline:
            raise TimeoutError("the go file never appeared")
        time.sleep(0.01)
    clf.fit(args.data)
    inputs = clf._read(args.data, None, what="evaluation data")[0]
    np.savez(args.out, embeddings=clf._embed(inputs), proba=clf.predict_proba(args.data))


def _child(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit")
    fit.add_argument("run")
    fit.add_argument("--weights", required=True)
    fit.add_argument("--resume", action="store_true")
    fit.add_argument("--kill", default=None)
    save = sub.add_parser("save")
    save.add_argument("src")
    save.add_argument("dst")
    save.add_argument("--kill", required=True)
    embed = sub.add_parser("embed")
    embed.add_argument("data")
    embed.add_argument("out")
    embed.add_argument("--weights", required=True)
    embed.add_argument("--ready", required=True)
    embed.add_argument("--go", required=True)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(TESTS))  # conftest's data and model helpers
    {"fit": _child_fit, "save": _child_save, "embed": _child_embed}[args.command](args)


# ------------------------------------------------------------------------------------------------------
# helpers of the tests
# ------------------------------------------------------------------------------------------------------


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "WORLD_SIZE", "RANK", "LOCAL_"))}
    env.update(GRAFT_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    return env


def _run(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(HERE), *args]
    return subprocess.run(cmd, env=_env(cache), capture_output=True, text=True, timeout=600)


def _fit(tmp_path: Path, run: Path, weights: Path, *extra: str, killed: bool = False) -> None:
    proc = _run(tmp_path / "cache", "fit", str(run), "--weights", str(weights), *extra)
    if killed:
        assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:] + proc.stderr[-3000:]
    else:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


def _trained(run: Path) -> dict[str, list[int]]:
    """The epochs (0-based) of each phase that the last finished fit into ``run`` trained."""
    out: dict[str, list[int]] = {}
    for phase, epoch in json.loads((run.parent / f"{run.name}.epochs.json").read_text()):
        out.setdefault(phase, []).append(epoch)
    return out


def _record(run: Path) -> dict[str, Any]:
    """What a run's graft.json says about the training, without timings and the command line."""
    m = json.loads((run / "graft.json").read_text())
    training = m["training"]
    history = [{k: v for k, v in h.items() if k not in TIMING} for h in training["history"]]
    return {
        "metrics": m["metrics"],
        "history": history,
        "best": training["best"],
        "best_epochs": training["best_epochs"],
        "labels": m["labels"],
        "head": m["head"],
    }


def _assert_same_run(run: Path, reference: Path) -> None:
    from safetensors.torch import load_file

    assert _record(run) == _record(reference)
    got, want = load_file(str(run / "model.safetensors")), load_file(str(reference / "model.safetensors"))
    assert got.keys() == want.keys()
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert not different, f"tensors differ from the uninterrupted run: {different[:5]}"


def _partial_writes(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(".*.tmp"))


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory, backbone_weights: Path) -> Path:
    """The uninterrupted seeded run every interrupted one is compared with."""
    root = tmp_path_factory.mktemp("reference")
    run = root / "run"
    _fit(root, run, backbone_weights)
    return run


# ------------------------------------------------------------------------------------------------------
# 1. SIGKILL at named points, then resume
# ------------------------------------------------------------------------------------------------------


def _head_epochs() -> int:
    from graft.training.phases import HEAD_EPOCHS

    return HEAD_EPOCHS


@pytest.mark.slow
@pytest.mark.parametrize(
    "point",
    [
        # the warm-up takes one optimizer step an epoch here (12 embeddings, batches of 8): killed after that step,
        # before the epoch's validation and checkpoint; a fine-tuning epoch takes three (batches of 4)
        pytest.param(f"after:head:{_head_epochs() // 2 - 1}:1", id="head-warmup-mid-epoch"),
        pytest.param(f"after:head:{_head_epochs() - 1}:2", id="first-fine-tune-epoch"),
    ],
)
def test_sigkill_inside_an_epoch_then_resume(
    tmp_path: Path, backbone_weights: Path, reference_run: Path, point: str
) -> None:
    run = tmp_path / "run"
    _fit(tmp_path, run, backbone_weights, "--kill", point, killed=True)
    assert not (run / "graft.json").exists() and not (run / "model.safetensors").exists()
    head = torch.load(run / "checkpoints" / "head" / "last.pt", map_location="cpu", weights_only=True)
    killed_after = int(point.split(":")[2])
    assert head["epoch"] == killed_after, "the last checkpoint is that of the epoch before the kill"
    _fit(tmp_path, run, backbone_weights, "--resume")
    n_head = _head_epochs()
    if killed_after + 1 < n_head:  # killed in the head warm-up: it goes on from the killed epoch
        assert _trained(run) == {"head": list(range(killed_after + 1, n_head)), "fine-tune": [0, 1, 2]}
    else:  # killed in the first fine-tuning epoch, which had no checkpoint: the head is restored, not retrained
        assert _trained(run) == {"fine-tune": [0, 1, 2]}
    _assert_same_run(run, reference_run)


@pytest.mark.slow
def test_sigkill_between_checkpoint_write_and_rename_then_resume(
    tmp_path: Path, backbone_weights: Path, reference_run: Path
) -> None:
    run = tmp_path / "run"
    _fit(tmp_path, run, backbone_weights, "--kill", "checkpoint:fine-tune:2", killed=True)
    checkpoint = run / "checkpoints" / "fine-tune" / "last.pt"
    half = [p for p in _partial_writes(run) if p.name.startswith(".last.pt.")]
    assert len(half) == 1 and half[0].parent == checkpoint.parent, _partial_writes(run)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)  # the previous checkpoint, whole
    assert state["epoch"] == 0 and not state["done"]
    with pytest.raises(RuntimeError):  # the half-written one is not a checkpoint at all
        torch.load(half[0], map_location="cpu", weights_only=True)
    _fit(tmp_path, run, backbone_weights, "--resume")
    assert _trained(run) == {"fine-tune": [1, 2]}
    _assert_same_run(run, reference_run)
    assert _partial_writes(run) == [], "the resumed run removes what the killed write left"


@pytest.mark.slow
def test_sigkill_during_the_bundle_write_then_resume(
    tmp_path: Path, backbone_weights: Path, reference_run: Path
) -> None:
    import graft
    from graft.errors import BundleError

    run = tmp_path / "run"
    _fit(tmp_path, run, backbone_weights, "--kill", "bundle", killed=True)
    # the weights were renamed into place, the manifest that marks the bundle complete was not
    assert (run / "model.safetensors").is_file() and not (run / "graft.json").exists()
    with pytest.raises(BundleError, match="--resume"):
        graft.load(run)
    last = torch.load(run / "checkpoints" / "fine-tune" / "last.pt", map_location="cpu", weights_only=True)
    assert last["done"], "training had finished: resuming only writes the bundle"
    _fit(tmp_path, run, backbone_weights, "--resume")
    assert _trained(run) == {}, "nothing is trained again"
    _assert_same_run(run, reference_run)
    assert _partial_writes(run) == []
    graft.load(run)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["staged", "swap"])
def test_sigkill_while_saving_over_a_bundle_leaves_the_old_one_or_none(
    tmp_path: Path, reference_run: Path, point: str
) -> None:
    import graft

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(24, 4)).astype(np.float32), np.arange(24) % 2
    old = graft.EmbeddingClassifier(epochs=1, verbose=False).fit(X, y)
    target = old.save(tmp_path / "model")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    proc = _run(tmp_path / "cache", "save", str(reference_run), str(target), "--kill", point)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    if point == "staged":  # killed before the swap: the old bundle, untouched
        assert {p.name: p.read_bytes() for p in target.iterdir()} == before
        np.testing.assert_array_equal(graft.load(target).predict_proba(X), old.predict_proba(X))
    else:  # killed between moving the old bundle aside and moving the new one in: nothing at the path
        assert not target.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".model.")]
    assert leftovers, "the half-finished save stays beside the path, never at it"

    fresh = graft.load(reference_run)
    fresh.save(target, overwrite=True)  # saving again recovers
    _assert_same_bundle_weights(target, reference_run)


def _assert_same_bundle_weights(bundle: Path, reference: Path) -> None:
    from safetensors.torch import load_file

    import graft

    got, want = load_file(str(bundle / "model.safetensors")), load_file(str(reference / "model.safetensors"))
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert graft.load(bundle).classes_.tolist() == graft.load(reference).classes_.tolist()


# ------------------------------------------------------------------------------------------------------
# 2. damaged embedding cache entries
# ------------------------------------------------------------------------------------------------------


def _shard_of(cache: Path, n_entries: int) -> Path:
    """The one ``.npy`` shard of the cache that holds ``n_entries`` embeddings."""
    found = [p for p in cache.rglob("*.json") if len(json.loads(p.read_text())["hashes"]) == n_entries]
    assert len(found) == 1, found
    return found[0].with_suffix(".npy")


@pytest.mark.parametrize("damage", ["truncate", "flip", "json"])
def test_a_damaged_cache_entry_is_detected_and_recomputed(
    tiny: Any, image_folder: Any, graft_cache_dir: Path, count_embeddings: Any, damage: str
) -> None:
    import graft
    from graft._cache import count_entries

    data = image_folder("data", n_classes=2, n_per_class=6)
    calls = count_embeddings(graft.ImageClassifier)
    first = tiny("feature-extraction", seed=1).fit(data)
    assert calls == [10, 2] and count_entries(graft_cache_dir) == 12  # train and validation: one shard each
    train_shard = _shard_of(graft_cache_dir, 10)
    raw = train_shard.read_bytes()
    if damage == "truncate":
        train_shard.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        train_shard.write_bytes(raw[:-5] + bytes([raw[-5] ^ 0x10]) + raw[-4:])
    else:
        train_shard.with_suffix(".json").write_text('{"hashes": [')
    calls.clear()

    again = tiny("feature-extraction", seed=1).fit(data)
    assert calls == [10], "only the entries of the damaged shard are embedded again"
    files = sorted(str(p) for p in data.rglob("*.png"))
    np.testing.assert_array_equal(again.predict_proba(files), first.predict_proba(files))
    assert again.val_metrics_ == first.val_metrics_

    calls.clear()
    metrics = again.evaluate(data)  # the recomputed entries are cached now
    assert calls == []
    no_cache = tiny("feature-extraction", seed=1, cache=False).fit(data)
    assert metrics == no_cache.evaluate(data)


def test_evaluate_recomputes_damaged_entries_of_a_test_set(
    tiny: Any, image_folder: Any, graft_cache_dir: Path, count_embeddings: Any, tmp_path: Path
) -> None:
    import graft

    train, test = image_folder("train", n_per_class=6), image_folder("test", n_per_class=4, seed=5)
    bundle = tiny("feature-extraction", seed=1).fit(train).save(tmp_path / "model")
    calls = count_embeddings(graft.ImageClassifier)
    expected = graft.load(bundle).evaluate(test)
    assert calls == [8]
    shard = _shard_of(graft_cache_dir, 8)
    shard.write_bytes(shard.read_bytes()[:100])
    calls.clear()
    assert graft.load(bundle).evaluate(test) == expected  # a freshly loaded model reads the cache from disk
    assert calls == [8]


# ------------------------------------------------------------------------------------------------------
# 3. a full disk
# ------------------------------------------------------------------------------------------------------


_REAL_FDOPEN = os.fdopen


class _FullDiskFile:
    """A file object whose first write stores half of the data, then fails with ENOSPC as on a full disk."""

    def __init__(self, fd: int, mode: str = "rb") -> None:
        self._file = _REAL_FDOPEN(fd, mode)

    def __enter__(self) -> _FullDiskFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def write(self, data: bytes) -> int:
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[Path], bool]], list[Path]]:
    """``full_disk(match)``: from then on, the atomic writes of the paths ``match`` accepts fail half-way through
    with ENOSPC. Returns the list of the paths whose write failed."""
    from graft import _utils

    real_stage = _utils._stage
    state: dict[str, Any] = {"match": lambda path: False, "failed": []}

    def stage(path: Path, data: bytes) -> str:
        if not state["match"](path):
            return real_stage(path, data)
        state["failed"].append(path)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(os, "fdopen", _FullDiskFile)
            return real_stage(path, data)

    monkeypatch.setattr(_utils, "_stage", stage)

    def install(match: Callable[[Path], bool]) -> list[Path]:
        state["match"], state["failed"] = match, []
        return state["failed"]  # type: ignore[no-any-return]

    return install


def test_disk_full_while_saving_a_bundle_keeps_the_old_one(
    tiny: Any, arrays: tuple[np.ndarray, np.ndarray], tmp_path: Path, full_disk: Any
) -> None:
    import graft
    from graft.errors import DiskFullError, GraftError

    X, y = arrays
    clf = tiny("feature-extraction", cache=False).fit(X, y)
    first = clf.save(tmp_path / "model")
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    for name in ("model.safetensors", "graft.json"):
        failed = full_disk(lambda p, name=name: p.name == name)
        for path, overwrite in ((first, True), (tmp_path / "new", False)):
            with pytest.raises(DiskFullError, match="the disk is full") as info:
                clf.save(path, overwrite=overwrite)
            assert isinstance(info.value, GraftError) and info.value.errno == errno.ENOSPC
            assert name in str(info.value) and "Free some space" in str(info.value)
        assert len(failed) == 2
        assert {p.name: p.read_bytes() for p in first.iterdir()} == before, "the old bundle is intact"
        assert not (tmp_path / "new").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folder is left"
    np.testing.assert_array_equal(graft.load(first).predict_proba(X), clf.predict_proba(X))


def test_disk_full_while_writing_a_run_bundle_in_place_keeps_the_old_one(
    tiny: Any, arrays: tuple[np.ndarray, np.ndarray], tmp_path: Path, full_disk: Any
) -> None:
    import graft
    from graft.errors import DiskFullError

    X, y = arrays
    run = tmp_path / "run"
    clf = tiny("feature-extraction", cache=False, output_dir=run).fit(X, y)
    before = {name: (run / name).read_bytes() for name in ("graft.json", "model.safetensors")}
    full_disk(lambda p: p.name == "graft.json")
    with pytest.raises(DiskFullError, match="the disk is full"):
        clf.save(run)  # the run directory itself: written file by file
    assert {name: (run / name).read_bytes() for name in before} == before
    assert _partial_writes(run) == []
    graft.load(run)


def test_disk_full_while_writing_a_checkpoint(
    helpers: Any, tmp_path: Path, full_disk: Any, backbone_weights: Path
) -> None:
    import graft
    from graft.errors import DiskFullError
    from graft.strategies import FineTune

    X, y = helpers.color_arrays(6, 2)
    params = helpers.tiny_params(epochs=3, cache=False, weights=str(backbone_weights), batch_size=4)
    strategy = FineTune(head_warmup=False, dropout=0.0, label_smoothing=0.0)
    run = tmp_path / "run"
    writes: list[Path] = []

    def second_checkpoint(path: Path) -> bool:
        if path.name == "last.pt":
            writes.append(path)
        return len(writes) == 2 and path == writes[-1]

    full_disk(second_checkpoint)
    with pytest.raises(DiskFullError, match=r"last\.pt': the disk is full .*--resume"):
        graft.ImageClassifier(helpers.backbone, strategy, output_dir=run, **params).fit(X, y)
    checkpoint = run / "checkpoints" / "fine-tune" / "last.pt"
    assert torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"] == 0, "the first one is intact"
    assert _partial_writes(run) == []
    assert not (run / "graft.json").exists() and not (run / "model.safetensors").exists()

    full_disk(lambda path: False)  # space was freed
    seen: list[int] = []
    resumed = graft.ImageClassifier(helpers.backbone, strategy, output_dir=run, **params).fit(
        X, y, resume=True, callbacks=[lambda phase, epoch, logs: seen.append(epoch)]
    )
    assert seen == [1, 2], "the epoch whose checkpoint failed is trained again, not the one before"
    fresh = graft.ImageClassifier(helpers.backbone, strategy, output_dir=tmp_path / "fresh", **params).fit(X, y)
    np.testing.assert_allclose(resumed.predict_proba(X), fresh.predict_proba(X), rtol=0, atol=1e-6)
    assert graft.load(run).val_metrics_ == fresh.val_metrics_


def test_disk_full_is_reported_by_the_cli_without_a_traceback(helpers: Any, tmp_path: Path, full_disk: Any) -> None:
    from typer.testing import CliRunner

    from graft.cli import app

    data = helpers.write_class_folder(tmp_path / "data", n_classes=2, n_per_class=6)
    run = tmp_path / "run"
    full_disk(lambda p: p.name == "model.safetensors")
    args = ["train", str(data), "-o", str(run), "--strategy", "feature-extraction", "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--image-size", "32", "--epochs", "2"], env={"COLUMNS": "4000"})
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "the disk is full" in text and "model.safetensors" in text and "Traceback" not in text
    assert not (run / "model.safetensors").exists() and not (run / "graft.json").exists()


# ------------------------------------------------------------------------------------------------------
# 4. two processes, one embedding cache
# ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_embedding_into_one_cache_agree_with_one_process(
    helpers: Any, tmp_path: Path, backbone_weights: Path, count_embeddings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graft
    from graft._cache import count_entries

    data = helpers.write_class_folder(tmp_path / "data", n_classes=2, n_per_class=8)
    shared, alone = tmp_path / "shared-cache", tmp_path / "own-cache"
    go = tmp_path / "go"

    def start(name: str, cache: Path) -> tuple[subprocess.Popen[str], Path, Path]:
        out, ready = tmp_path / f"{name}.npz", tmp_path / f"{name}.ready"
        cmd = [sys.executable, str(HERE), "embed", str(data), str(out), "--weights", str(backbone_weights)]
        cmd += ["--ready", str(ready), "--go", str(go)]
        proc = subprocess.Popen(cmd, env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return proc, out, ready

    children = [start("a", shared), start("b", shared)]
    deadline = time.monotonic() + 300
    while not all(ready.exists() for _, _, ready in children):
        assert all(p.poll() is None for p, _, _ in children), [p.communicate()[1][-3000:] for p, _, _ in children]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    go.touch()
    for proc, _, _ in children:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    single = start("single", alone)
    _, err = single[0].communicate(timeout=600)
    assert single[0].returncode == 0, err[-3000:]

    reference = np.load(single[1])
    for _, out, _ in children:
        got = np.load(out)
        np.testing.assert_array_equal(got["embeddings"], reference["embeddings"])
        np.testing.assert_array_equal(got["proba"], reference["proba"])
    n = len(list(data.rglob("*.png")))
    assert count_entries(alone) == n and n <= count_entries(shared) <= 2 * n

    # a third process reads the shared cache: nothing is embedded again, and it sees the same values
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(shared))
    calls = count_embeddings(graft.ImageClassifier)
    clf = helpers.tiny_classifier("feature-extraction", weights=str(backbone_weights), epochs=2, seed=3, batch_size=4)
    clf.fit(data)
    assert calls == []
    inputs = clf._read(str(data), None, what="evaluation data")[0]
    np.testing.assert_array_equal(clf._embed(inputs), reference["embeddings"])


if __name__ == "__main__":
    _child(sys.argv[1:])
