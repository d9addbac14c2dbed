"""The estimator shared by every modality: strategies, phases, run directory, bundle, metrics.

A modality (images, text, ...) subclasses :class:`TransferClassifier` and supplies how to build its backbone,
read inputs, embed them with the frozen backbone, batch them for training and score them. Everything else
(the training phases, checkpoints, bundle, evaluation) lives here once.
"""

from __future__ import annotations

import functools
import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from ._cache import EmbeddingCache, model_key, weights_fingerprint
from ._utils import resolve_device, torch_threads, tune_allocator
from .backbones.base import Backbone
from .errors import ConfigError, DataError
from .strategies.base import Strategy, resolve_strategy
from .tasks.classification import ClassificationHead, TransferModel, classification_loss
from .training import LoopResult, TrainConfig, run_loop

__all__ = ["TransferClassifier", "FitData"]

#: head fitting on cached embeddings: a cheap convex-ish problem, run to convergence
_HEAD_EPOCHS = 60
_HEAD_LR = 3e-3
#: the head warm-up of fine-tuning sees at most this many training examples (embedding them all costs as much as
#: a fine-tuning epoch on large sets, and the warm-up only initialises the head)
_WARMUP_ROWS = 10_000
#: domain adaptation on embeddings trains at least this many steps unless ``epochs`` is given (on a few hundred
#: examples, 30 epochs are ~100 steps: too few for an adversarial or pseudo-label loss to act)
_ADAPT_MIN_STEPS = 1_000
#: rows per domain that the adaptation diagnostics (A-distance, feature plot) look at
_DIAG_ROWS = 2000


def _split_val(val: Any) -> tuple[Any, Any]:
    """``fit(val=...)``: inputs alone, or an ``(X, y)`` tuple for arrays and lists."""
    if val is None:
        return None, None
    return val if isinstance(val, tuple) else (val, None)


class FitData:
    """Inputs read for one split: ``items`` (modality-specific), encoded labels ``y`` and content hashes."""

    def __init__(self, items: Any, y: np.ndarray | None, hashes: Sequence[str], sources: Sequence[str]) -> None:
        self.items, self.y, self.hashes, self.sources = items, y, list(hashes), list(sources)

    def __len__(self) -> int:
        return len(self.hashes)


class TransferClassifier(ClassifierMixin, BaseEstimator):
    """Base class of Graft's classifiers (scikit-learn conventions: fit returns self, get/set_params)."""

    task: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    #: validation metric that picks the best epoch
    monitor: ClassVar[str] = "val_accuracy"
    #: headline metrics in summaries
    _summary_keys: ClassVar[tuple[str, ...]] = ("accuracy", "balanced_accuracy", "macro_f1")

    # ------------------------------------------------------------------ modality hooks (subclasses)
    def _build_backbone(self, pretrained: bool = True) -> Backbone:
        raise NotImplementedError

    def _read_fit_data(self, X: Any, y: Any, val: Any) -> tuple[Any, Any, Any, Any]:
        """Return raw ``(X_train, y_train, X_val, y_val)``; ``X_val`` None when no validation split was given."""
        raise NotImplementedError

    def _read(self, X: Any, y: Any, *, what: str) -> tuple[FitData, list[Any] | None]:
        """Read inputs; return data (``y`` unset) and the raw labels (or None)."""
        raise NotImplementedError

    def _cache_key_parts(self) -> dict[str, Any]:
        """What, besides the backbone's spec and weights, decides an embedding (preprocessing, tokenizer, ...)."""
        raise NotImplementedError

    def _embed_missing(self, data: FitData, todo: list[int]) -> np.ndarray:
        """Frozen-backbone embeddings of the items ``todo`` of ``data`` (not in the cache)."""
        raise NotImplementedError

    def _embedding_cache(self) -> EmbeddingCache:
        """The embedding store of the current backbone, keyed by its spec, weights and preprocessing; made once."""
        parts = self._cache_key_parts()
        ident = (id(self.backbone_), self.cache, repr(sorted(parts.items())))
        if getattr(self, "_cache_ident", None) != ident:
            key = model_key(spec=self.backbone_.spec, weights=weights_fingerprint(self.backbone_.module), **parts)
            self._cache_obj, self._cache_ident = EmbeddingCache(key, enabled=self.cache), ident
        return self._cache_obj

    def _embed(self, data: FitData) -> np.ndarray:
        """Frozen-backbone embeddings ``(N, feature_dim)``, computed only for inputs missing from the cache."""
        cache = self._embedding_cache()
        found = cache.get_many(data.hashes)
        todo = [i for i, v in enumerate(found) if v is None]
        if todo:
            fresh = self._embed_missing(data, todo)
            cache.put_many([data.hashes[i] for i in todo], fresh)
            for j, i in enumerate(todo):
                found[i] = fresh[j]
        return np.stack(found).astype(np.float32)  # type: ignore[arg-type]

    def _train_dataset(self, data: FitData) -> Dataset:
        """Dataset of ``(input tensor, label)`` for image/text epochs (with augmentation)."""
        raise NotImplementedError

    def _logits(self, data: FitData) -> np.ndarray:
        """Logits ``(N, C)`` of the fitted model."""
        raise NotImplementedError

    def _bundle_extra(self) -> dict[str, Any]:
        """Extra ``graft.json`` entries of this modality."""
        return {}

    def _save_files(self, directory: Path) -> None:
        """Write this modality's extra bundle files (e.g. the tokenizer) into ``directory``."""

    def _collate_fn(self) -> Callable[[list[Any]], Any] | None:
        """How training items become a batch (``None``: stack tensors)."""
        return None

    def _criterion(self, strategy: Strategy) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The task's loss with the strategy's label smoothing."""
        return functools.partial(classification_loss, label_smoothing=strategy.label_smoothing)

    # ------------------------------------------------------------------ shared machinery
    def _strategy(self) -> Strategy:
        return resolve_strategy(self.strategy).for_modality(self.modality)

    def _config(self, strategy: Strategy, *, features: bool) -> TrainConfig:
        epochs = self.epochs if self.epochs is not None else strategy.default_epochs
        lr = self.lr if self.lr is not None else strategy.lr_for(self.modality)
        if features and not strategy.features_only:  # head warm-up before fine-tuning
            epochs, lr = _HEAD_EPOCHS, _HEAD_LR
        return TrainConfig(
            epochs=int(epochs),
            lr=float(lr),
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
            grad_accum=self.grad_accum,
            precision=self.precision,
            schedule=self.schedule,
            patience=self.patience,
            monitor=self._monitor(),
            seed=self.seed,
            device=self.device,
            channels_last=self.modality == "image" and not features,
            verbose=self.verbose,
            log_epochs=not features,
            optimizer="adamw" if features else getattr(strategy, "optimizer", "adamw"),
        )

    def _encode(self, labels: Sequence[Any], *, where: str) -> np.ndarray:
        index = {self._label_key(c): i for i, c in enumerate(self.classes_)}
        unknown = sorted({str(v) for v in labels if self._label_key(v) not in index})
        if unknown:
            raise DataError(
                f"{where} has labels the model was not trained on: {', '.join(unknown[:10])}. "
                f"Known labels: {', '.join(map(str, self.classes_[:20]))}."
            )
        return np.asarray([index[self._label_key(v)] for v in labels], dtype=np.int64)

    @staticmethod
    def _label_key(v: Any) -> str:
        return str(v.item() if isinstance(v, np.generic) else v)

    def _prepare_run_dir(self, resume: bool) -> Path | None:
        if self.output_dir is None:
            return None
        run = Path(self.output_dir)
        if run.exists() and any(run.iterdir()) and not resume:
            if not self.overwrite:
                raise ConfigError(
                    f"Run directory '{run}' already exists. Pass resume=True (CLI: --resume) to continue it, "
                    "overwrite=True (--overwrite) to replace it, or choose another output directory."
                )
            shutil.rmtree(run)
        if resume and not (run / "checkpoints").exists():
            raise ConfigError(f"Nothing to resume in '{run}': it has no checkpoints/. Start the run without resume.")
        run.mkdir(parents=True, exist_ok=True)
        return run

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        val: Any = None,
        target: Any = None,
        resume: bool = False,
        callbacks: Sequence[Callable[[str, int, dict[str, Any]], None]] = (),
    ) -> TransferClassifier:
        """Adapt the pretrained backbone to the labelled data.

        Args:
            X: training inputs (folder, CSV, list of paths/objects, array; see the subclass).
            y: labels when ``X`` does not carry them.
            val: validation inputs (same forms as ``X``; a ``(X, y)`` tuple for arrays and lists). Without it, a
                folder's ``val/`` split is used, else a seeded stratified ``val_fraction`` of ``X``.
            target: unlabelled data of the domain the model will be used on (same forms as ``X``, labels
                ignored), for domain-adaptation strategies (``dann``, ``cdan``, ``mcc``, ``coral``, ``mmd``,
                ``adabn``, ``self-training``, ``source-only``).
            resume: continue the run in ``output_dir`` from its last checkpoint.
            callbacks: called as ``callback(phase, epoch, logs)`` after each epoch.

        Returns:
            self
        """
        tune_allocator()
        t0 = time.perf_counter()
        strategy = self._strategy()
        strategy.validate()
        adapting = bool(getattr(strategy, "adaptation", False))
        if getattr(strategy, "deep", False) and self.modality == "embedding":
            raise ConfigError(
                f"deep=True trains a backbone with the adaptation loss; {type(self).__name__} has none. Use deep=False "
                "(adapts a head on the vectors)."
            )
        if adapting and target is None:
            raise ConfigError(
                f"Strategy '{strategy.name}' adapts to a target domain: pass target=UNLABELLED_DATA "
                "(CLI: --target PATH)."
            )
        if target is not None and not adapting:
            raise ConfigError(
                f"target= is for domain-adaptation strategies; '{strategy.name}' is not one. Use e.g. "
                "strategy='dann' (see graft.strategies.list_strategies())."
            )
        torch.manual_seed(self.seed)  # random-init backbones (pretrained=False) depend on it too
        self.backbone_ = self._build_backbone(pretrained=self.pretrained)
        # Data before the run directory: a bad file must fail before anything is written.
        Xtr, ytr, Xva, yva = self._read_fit_data(X, y, val)
        # Feature extraction never needs the pixels of inputs whose embeddings are cached: skip decoding them.
        self._skip_known = bool(strategy.features_only and self.cache)
        try:
            train, train_labels = self._read(Xtr, ytr, what="training data")
            if train_labels is None:
                raise DataError("fit needs labels: give a labelled folder/CSV, or pass y.")
            val_data, val_labels = self._read(Xva, yva, what="validation data") if Xva is not None else (None, None)
            target_data = self._read(self._target_input(target), None, what="target data")[0] if adapting else None
        finally:
            self._skip_known = False
        self.classes_ = self._label_space(train_labels, val_labels)
        train.y = self._encode(train_labels, where="training data")
        if val_data is None and self.val_fraction and self.val_fraction > 0:
            tr_idx, va_idx = self._split_indices(train_labels)
            train, val_data = self._subset(train, tr_idx), self._subset(train, va_idx)
        elif val_data is not None:
            val_data.y = self._encode(val_labels, where="validation data")  # type: ignore[arg-type]
        run_dir = self._prepare_run_dir(resume)
        torch.manual_seed(self.seed)
        head = ClassificationHead(
            self.backbone_.feature_dim,
            len(self.classes_),
            dropout=float(getattr(strategy, "dropout", 0.0)),
            hidden=getattr(strategy, "bottleneck", None) if adapting else None,
        )
        self.model_ = TransferModel(self.backbone_.module, head)
        self.strategy_ = strategy
        self.history_: list[dict[str, Any]] = []
        self.n_train_, self.n_val_ = len(train), (len(val_data) if val_data is not None else 0)

        def hook(phase: str) -> Callable[[int, dict[str, Any]], None]:
            def call(epoch: int, logs: dict[str, Any]) -> None:
                for cb in callbacks:
                    cb(phase, epoch, logs)

            return call

        results: dict[str, LoopResult] = {}
        f_val = None
        if strategy.features_only or strategy.head_warmup or adapting:
            t_embed = time.perf_counter()
            warmup_only = not strategy.features_only and not adapting
            if warmup_only and len(train) > _WARMUP_ROWS:  # an initialisation: a seeded subset is enough
                keep = np.random.default_rng(self.seed).permutation(len(train))[:_WARMUP_ROWS]
                f_train, y_train = self._head_features(self._subset(train, sorted(keep.tolist())))
            else:
                f_train, y_train = self._head_features(train)
            f_val, y_val = self._head_features(val_data) if val_data is not None else (None, None)
            self.embed_seconds_ = time.perf_counter() - t_embed
        if (strategy.features_only or strategy.head_warmup) and not adapting:
            results["head"] = self._fit_head(
                head,
                strategy,
                f_train,
                y_train,
                f_val,
                y_val,
                run_dir,
                resume,
                hook("head"),
            )
        if adapting:
            assert target_data is not None
            results = {}
            f_target = self._head_features(target_data)[0]
            self.embed_seconds_ = time.perf_counter() - t_embed
            first = "head" if strategy.deep else strategy.name  # deep: adapt the head first, as fine-tune warms up
            results[first] = self._fit_adapted(
                strategy, f_train, y_train, f_val, y_val, f_target, run_dir, resume, hook(first), phase=first
            )
            if strategy.deep:
                results[strategy.name] = self._fit_adapted_deep(
                    strategy, train, val_data, target_data, run_dir, resume, hook(strategy.name)
                )
            self.n_target_ = len(target_data)
        elif not strategy.features_only:
            results[strategy.name] = self._fit_backbone(strategy, train, val_data, run_dir, resume, hook(strategy.name))
        for phase, res in results.items():
            self.history_ += [{"phase": phase, **h} for h in res.history]
        last = list(results.values())[-1]
        self.best_epoch_, self.best_metrics_ = last.best_epoch, last.best
        self.fit_seconds_ = time.perf_counter() - t0
        self.val_metrics_ = None
        if val_data is not None:
            self.val_metrics_ = self._score_split(val_data, features=f_val if strategy.features_only else None)
        if run_dir is not None:
            self._write_run(run_dir)
        return self

    def _label_space(self, train_labels: list[Any], val_labels: list[Any] | None) -> np.ndarray:
        """The sorted classes, after checking the labels (>= 2 classes, >= 2 examples each, val within train)."""
        from .data.images import check_labels

        check_labels(
            [self._label_key(v) for v in train_labels],
            None if val_labels is None else [self._label_key(v) for v in val_labels],
        )
        return np.asarray(sorted(set(train_labels), key=lambda v: (str(type(v)), v)))

    def _split_indices(self, train_labels: list[Any]) -> tuple[list[int], list[int]]:
        """A seeded, stratified validation split of the training data."""
        from .data.images import stratified_split

        return stratified_split([self._label_key(v) for v in train_labels], self.val_fraction, self.seed)

    def _logit_metrics(self, logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Per-epoch validation metrics from logits (``val_loss`` plus the monitored metric)."""
        return {
            "val_loss": float(classification_loss(logits, y)),
            "val_accuracy": float((logits.argmax(1) == y).float().mean()),
        }

    def _monitor(self) -> str:
        return self.monitor

    def _head_features(self, data: FitData) -> tuple[torch.Tensor, np.ndarray]:
        """Frozen-backbone features and targets the head learns from (one row per example)."""
        return torch.from_numpy(self._embed(data)), data.y  # type: ignore[return-value]

    def _subset(self, data: FitData, idx: Sequence[int]) -> FitData:
        items = data.items.subset(idx) if hasattr(data.items, "subset") else [data.items[i] for i in idx]
        return FitData(
            items,
            None if data.y is None else data.y[list(idx)],
            [data.hashes[i] for i in idx],
            [data.sources[i] for i in idx],
        )

    def _fit_head(
        self,
        head: ClassificationHead,
        strategy: Strategy,
        f_train: torch.Tensor,
        y_train: np.ndarray,
        f_val: torch.Tensor | None,
        y_val: np.ndarray | None,
        run_dir: Path | None,
        resume: bool,
        on_epoch_end: Callable[[int, dict[str, Any]], None],
    ) -> LoopResult:
        config = self._config(strategy, features=True)
        # at most ~500 steps an epoch: token-level heads see hundreds of thousands of rows
        config.batch_size = max(config.batch_size, -(-len(f_train) // 500))
        yt = torch.from_numpy(y_train)
        evaluate = None
        if f_val is not None and y_val is not None:
            fv, yv = f_val, torch.from_numpy(y_val)

            def evaluate(model: nn.Module, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]:
                return self._logit_metrics(model(fv.to(device)).float().cpu(), yv)

        criterion = self._criterion(strategy)
        with torch_threads(1):  # a linear layer on a few hundred vectors: thread hand-offs cost more than they save
            return run_loop(
                head,
                train_set=TensorDataset(f_train, yt),
                param_groups=[{"params": list(head.parameters()), "lr": config.lr}],
                loss_fn=lambda m, b: {"loss": criterion(m(b[0]), b[1])},
                collate_fn=None,
                config=config,
                evaluate=evaluate,
                run_dir=run_dir,
                phase="head",
                resume=resume,
                on_epoch_end=on_epoch_end,
            )

    def _target_input(self, target: Any) -> Any:
        """The unlabelled target data as ``_read`` takes it (a folder's splits are pooled; labels are dropped)."""
        return target

    def _fit_adapted(
        self,
        strategy: Strategy,
        f_train: torch.Tensor,
        y_train: np.ndarray,
        f_val: torch.Tensor | None,
        y_val: np.ndarray | None,
        f_target: torch.Tensor,
        run_dir: Path | None,
        resume: bool,
        on_epoch_end: Callable[[int, dict[str, Any]], None],
        *,
        phase: str,
    ) -> LoopResult:
        """Domain adaptation on frozen embeddings: bottleneck + classifier (+ the method's modules) trained on
        source batches paired with random target batches. Validation without target labels: the source split's
        loss weighted by estimated target/source density ratios (IWCV, Sugiyama et al. 2007), plus the mean
        entropy of target predictions; the best epoch is the one with the lowest weighted loss."""
        from .strategies.adaptation import AdaptationModel
        from .strategies.adaptation.diagnostics import domain_density_ratio
        from .strategies.adaptation.entropy import entropy

        config = self._config(strategy, features=True)
        if self.epochs is not None and not strategy.deep:
            config.epochs = int(self.epochs)
        else:  # the alignment losses act over many steps: small sets get more epochs, at least _ADAPT_MIN_STEPS
            per_epoch = max(1, len(f_train) // config.batch_size)
            config.epochs = max(int(strategy.default_epochs), math.ceil(_ADAPT_MIN_STEPS / per_epoch))
        config.lr = float(self.lr if self.lr is not None else strategy.lr_for(self.modality))
        head = self.model_.head
        steps = config.epochs * max(1, len(f_train) // config.batch_size)
        torch.manual_seed(self.seed)
        model = AdaptationModel(head, strategy.build(head.hidden or head.in_features, len(self.classes_), steps))
        self._adaptation_extra = model.extra  # the deep phase goes on with the method's modules
        self._iwcv_weights: torch.Tensor | None = None
        criterion = self._criterion(strategy)
        evaluate = None
        if f_val is not None and y_val is not None:
            yv = torch.from_numpy(y_val)
            weights = torch.from_numpy(domain_density_ratio(f_train, f_target, f_val, seed=self.seed)).float()
            self.density_ratio_range_ = (float(weights.min()), float(weights.max()))
            self._iwcv_weights = weights

            def evaluate(m: nn.Module, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]:
                logits = m.head(f_val.to(device)).float().cpu()
                ce = torch.nn.functional.cross_entropy(logits, yv, reduction="none")
                out = self._logit_metrics(logits, yv)
                out["val_iwcv_loss"] = float((weights * ce).mean())
                out["val_target_entropy"] = float(entropy(m.head(f_target.to(device)).float(), normalized=True).mean())
                return out

            config.monitor = strategy.monitor
        with torch_threads(1):
            result = run_loop(
                model,
                train_set=_PairedFeatures(f_train, torch.from_numpy(y_train), f_target),
                param_groups=[{"params": list(model.parameters()), "lr": config.lr}],
                loss_fn=functools.partial(strategy.loss, criterion=criterion),
                config=config,
                evaluate=evaluate,
                run_dir=run_dir,
                phase=phase,
                resume=resume,
                on_epoch_end=on_epoch_end,
            )
        head.eval()
        if not strategy.deep:
            strategy.after_training(head, f_target)
            self.adaptation_diagnostics_ = self._adaptation_diagnostics(f_train, y_train, f_target, run_dir)
        else:
            self._frozen_features = (f_train, y_train, f_target)  # "before" of the deep phase's diagnostics
        return result

    def _adaptation_diagnostics(
        self,
        f_source: torch.Tensor,
        y_source: np.ndarray | None,
        f_target: torch.Tensor,
        run_dir: Path | None,
        *,
        adapted: Callable[[list[int], list[int]], tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> dict[str, Any]:
        """How far apart the domains are before and after adaptation: the proxy A-distance between source and
        target frozen embeddings (the head's inputs) and between their bottleneck features (``head.features`` in
        eval mode), on at most ``_DIAG_ROWS`` seeded rows per domain. With a run directory, ``domain_features.png``
        shows both (PCA). ``adapted(source_rows, target_rows)`` gives the head inputs after a deep adaptation
        (the adapted backbone's embeddings of those rows); without it the frozen embeddings are the inputs."""
        from .strategies.adaptation.diagnostics import a_distance

        rng = np.random.default_rng(self.seed)
        i_s = torch.from_numpy(np.sort(rng.permutation(len(f_source))[:_DIAG_ROWS]))
        i_t = torch.from_numpy(np.sort(rng.permutation(len(f_target))[:_DIAG_ROWS]))
        before_s, before_t = f_source[i_s], f_target[i_t]
        head = self.model_.head
        was_training = head.training
        head.eval()
        device = next(head.parameters()).device
        in_s, in_t = (before_s, before_t) if adapted is None else adapted(i_s.tolist(), i_t.tolist())
        with torch.inference_mode():
            after_s, after_t = (head.features(f.to(device)).float().cpu() for f in (in_s, in_t))
        head.train(was_training)
        out: dict[str, Any] = {"a_distance_before": None, "a_distance_after": None}
        if min(len(i_s), len(i_t)) >= 2:
            out["a_distance_before"] = round(a_distance(before_s, before_t, seed=self.seed), 4)
            out["a_distance_after"] = round(a_distance(after_s, after_t, seed=self.seed), 4)
        out.update(n_source=len(i_s), n_target=len(i_t))
        if run_dir is not None:
            from .evaluation.plots import plot_domain_features

            plot_domain_features(
                before_s,
                before_t,
                after_s,
                after_t,
                run_dir / "domain_features.png",
                source_labels=None if y_source is None else self.classes_[y_source[i_s.numpy()]],
                a_distance_before=out["a_distance_before"],
                a_distance_after=out["a_distance_after"],
                seed=self.seed,
            )
        return out

    def _target_dataset(self, data: FitData, strategy: Strategy) -> Dataset:
        """Training items of the unlabelled target (labels are dummies); images override it for weak/strong views."""
        return self._train_dataset(data)

    def _model_logits(self, model: nn.Module, data: FitData, autocast: Callable[[], Any]) -> torch.Tensor:
        """Logits ``(N, C)`` of ``model`` (backbone + head) on ``data``; called by the loop's evaluation, which has
        set eval mode and disabled gradients."""
        raise NotImplementedError

    def _fit_adapted_deep(
        self,
        strategy: Strategy,
        train: FitData,
        val_data: FitData | None,
        target_data: FitData,
        run_dir: Path | None,
        resume: bool,
        on_epoch_end: Callable[[int, dict[str, Any]], None],
    ) -> LoopResult:
        """Domain adaptation of backbone and head together (``deep=True``), after the head was adapted on frozen
        embeddings: each step a source batch and a random target batch go through the backbone; the method's loss
        acts on the bottleneck features. The epoch is picked as on the fast path (IWCV on the source validation
        split with the density ratios estimated on the pretrained embeddings; target entropy logged)."""
        from .strategies.adaptation import AdaptationModel, AdaptationStrategy
        from .strategies.adaptation.entropy import entropy

        config = self._config(strategy, features=False)
        config.epochs = int(self.epochs if self.epochs is not None else strategy.deep_epochs)  # type: ignore[attr-defined]
        head, backbone = self.model_.head, self.backbone_
        model = AdaptationModel(head, self._adaptation_extra, backbone=backbone.module)
        target_data.y = np.zeros(len(target_data), dtype=np.int64)
        source_set, target_set = self._train_dataset(train), self._target_dataset(target_data, strategy)
        rng = np.random.default_rng(self.seed)
        probe = self._subset(target_data, sorted(rng.permutation(len(target_data))[:1000].tolist()))
        evaluate = None
        weights = getattr(self, "_iwcv_weights", None)
        if val_data is not None and weights is not None:
            yv = torch.from_numpy(val_data.y)  # type: ignore[arg-type]

            def evaluate(m: nn.Module, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]:
                logits = self._model_logits(m, val_data, autocast).float().cpu()
                ce = torch.nn.functional.cross_entropy(logits, yv, reduction="none")
                out = self._logit_metrics(logits, yv)
                out["val_iwcv_loss"] = float((weights * ce).mean())
                g_t = self._model_logits(m, probe, autocast).float()
                out["val_target_entropy"] = float(entropy(g_t, normalized=True).mean())
                return out

            config.monitor = strategy.monitor  # type: ignore[attr-defined]
        groups = backbone.layer_groups()
        for p in backbone.module.parameters():
            p.requires_grad_(True)
        extra_params = list(model.extra.parameters())
        base_collate = self._collate_fn() or torch.utils.data.default_collate

        def collate(items: list[tuple[Any, Any]]) -> tuple[Any, Any, Any]:
            x_s, y_s = base_collate([s for s, _ in items])
            x_t = base_collate([t for _, t in items])[0]
            return x_s, y_s, x_t

        result = run_loop(
            model,
            train_set=_PairedInputs(source_set, target_set),
            param_groups=strategy.param_groups(groups, list(head.parameters()) + extra_params, config.lr),
            loss_fn=functools.partial(strategy.loss, criterion=self._criterion(strategy)),
            collate_fn=collate,
            config=config,
            evaluate=evaluate,
            run_dir=run_dir,
            phase=strategy.name,
            resume=resume,
            on_epoch_end=on_epoch_end,
        )
        model.eval()
        for p in backbone.module.parameters():
            p.requires_grad_(False)
        self.model_ = TransferModel(backbone.module, head)
        if type(strategy).after_training is not AdaptationStrategy.after_training:  # e.g. AdaBN of the head
            f_target = torch.from_numpy(self._embed_missing(target_data, list(range(len(target_data)))))
            strategy.after_training(head, f_target)

        def adapted(rows_s: list[int], rows_t: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            return (
                torch.from_numpy(self._embed_missing(train, rows_s)),
                torch.from_numpy(self._embed_missing(target_data, rows_t)),
            )

        f_s, y_s, f_t = self._frozen_features
        self.adaptation_diagnostics_ = self._adaptation_diagnostics(f_s, y_s, f_t, run_dir, adapted=adapted)
        return result

    def _fit_backbone(
        self,
        strategy: Strategy,
        train: FitData,
        val_data: FitData | None,
        run_dir: Path | None,
        resume: bool,
        on_epoch_end: Callable[[int, dict[str, Any]], None],
    ) -> LoopResult:
        config = self._config(strategy, features=False)
        model, backbone = self.model_, self.backbone_
        adapters = strategy.prepare(backbone.module)  # e.g. LoRA adapters, injected in place
        adapter_ids = {id(p) for p in adapters}
        groups = [[p for p in g if id(p) not in adapter_ids] for g in backbone.layer_groups()]
        head_params = list(model.head.parameters())
        if adapters:
            n_all = sum(p.numel() for p in model.parameters())
            n_train = sum(p.numel() for p in adapters) + sum(p.numel() for p in head_params)
            self.trainable_share_ = n_train / n_all
            if self.verbose:
                from rich.console import Console

                Console(stderr=True).print(
                    f"{strategy.name}: training {n_train:,} of {n_all:,} parameters ({100 * n_train / n_all:.2f}%)"
                )

        def set_trainable(epoch: int) -> None:
            k = strategy.trainable_at(epoch, len(groups))
            for i, params in enumerate(groups):
                for p in params:
                    p.requires_grad_(i >= len(groups) - k)

        def train_mode(m: nn.Module) -> None:
            m.train()
            freeze_all = bool(getattr(strategy, "freeze_bn", False))
            for mod in m.modules():  # BatchNorm of frozen layers keeps its pretrained statistics
                if isinstance(mod, nn.modules.batchnorm._BatchNorm) and (
                    freeze_all or not any(p.requires_grad for p in mod.parameters(recurse=False))
                ):
                    mod.eval()

        set_trainable(0)
        evaluate = self._loop_evaluator(val_data) if val_data is not None else None
        result = run_loop(
            model,
            train_set=self._train_dataset(train),
            param_groups=strategy.param_groups(groups, head_params, config.lr, adapters),
            loss_fn=functools.partial(strategy.loss, criterion=self._criterion(strategy)),
            collate_fn=self._collate_fn(),
            config=config,
            evaluate=evaluate,
            on_epoch_start=set_trainable,
            train_mode=train_mode,
            run_dir=run_dir,
            phase=strategy.name,
            resume=resume,
            on_epoch_end=on_epoch_end,
        )
        strategy.finalize(backbone.module)  # e.g. merge adapters into the weights
        return result

    def _loop_evaluator(self, data: FitData) -> Callable[..., dict[str, float]]:
        raise NotImplementedError

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"This {type(self).__name__} is not fitted yet. Call fit(...) or graft.load(...).")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(N, C)``, columns in ``classes_`` order."""
        self._check_fitted()
        data, _ = self._read(X, None, what="input")
        return _softmax(self._logits(data))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (same type as the training labels)."""
        proba = self.predict_proba(X)  # checks the model is fitted first
        return self.classes_[proba.argmax(1)]

    def _score_split(self, data: FitData, features: torch.Tensor | None = None) -> dict[str, Any]:
        """Metrics of ``data``; ``features`` (frozen-backbone embeddings of it) spare the backbone pass."""
        from .evaluation.metrics import classification_metrics

        if features is not None:
            head = self.model_.head.eval()
            device = next((p.device for p in head.parameters()), torch.device("cpu"))
            with torch.inference_mode():
                logits = head(features.to(device)).float().cpu().numpy()
        else:
            logits = self._logits(data)
        proba = _softmax(logits)
        return classification_metrics(data.y, proba, [str(c) for c in self.classes_])  # type: ignore[arg-type]

    def evaluate(self, X: Any, y: Any = None) -> dict[str, Any]:
        """Metrics on labelled data: accuracy, balanced_accuracy, macro_f1, per-class scores, top-k, confusion.

        Args:
            X: labelled inputs (a folder with a ``test/`` or ``val/`` split uses that split).
            y: labels when ``X`` does not carry them.
        """
        self._check_fitted()
        data, labels = self._read(X, y, what="evaluation data")
        if labels is None:
            raise DataError("evaluate needs labels: give a labelled folder/CSV, or pass y.")
        data.y = self._encode(labels, where="evaluation data")
        return self._score_split(data, features=self._cached_features(data))

    def _cached_features(self, data: FitData) -> torch.Tensor | None:
        """Frozen-backbone embeddings of ``data`` through the embedding cache, when the fitted model is that
        backbone plus a head (feature extraction, the embedding path of domain adaptation) and the cache is on:
        evaluating a test set twice, or several such models on it, runs the backbone once. ``None`` otherwise."""
        strategy = getattr(self, "strategy_", None)
        if (
            not self.cache
            or strategy is None
            or not strategy.features_only
            or getattr(strategy, "tta", False)  # the head saw flip-averaged embeddings; keep the model's own path
        ):
            return None
        return torch.from_numpy(self._embed(data))

    # ------------------------------------------------------------------ persistence
    def _write_run(self, run_dir: Path) -> None:
        from .bundle import save_bundle
        from .evaluation.plots import plot_confusion_matrix, plot_history

        save_bundle(self, run_dir)
        if self.val_metrics_ is not None:
            plot_confusion_matrix(
                self.val_metrics_["confusion_matrix"],
                [str(c) for c in self.classes_],
                run_dir / "confusion_matrix.png",
                title="validation",
            )
        images: dict[str, Path] = {}
        if self.val_metrics_ is not None:
            images["Confusion matrix (validation)"] = run_dir / "confusion_matrix.png"
        if self.history_:
            images["Training curves"] = plot_history(self.history_, run_dir / "history.png")
        if getattr(self.strategy_, "adaptation", False) and (run_dir / "domain_features.png").exists():
            images["Source and target features"] = run_dir / "domain_features.png"
        if self.val_metrics_ is not None:
            from .evaluation.report import write_html_report

            info = {
                "backbone": self.backbone,
                "strategy": repr(self.strategy_),
                "classes": ", ".join(map(str, self.classes_)),
                **{k: v for k, v in self.training_summary().items() if k not in ("val", "best")},
            }
            write_html_report(
                run_dir / "report.html",
                title=f"Graft run: {run_dir.name}",
                metrics=self.val_metrics_,
                info=info,
                images=images,
            )

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model bundle (``graft.json`` + ``model.safetensors``) to ``path``."""
        from ._utils import atomic_directory
        from .bundle import save_bundle

        self._check_fitted()
        path = Path(path)
        if self.output_dir is not None and path.resolve() == Path(self.output_dir).resolve():
            save_bundle(self, path)
            return path
        if path.exists() and not overwrite:
            raise ConfigError(f"'{path}' already exists. Pass overwrite=True or choose another path.")
        with atomic_directory(path, overwrite=overwrite) as tmp:
            save_bundle(self, tmp)
        return path

    def training_summary(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "n_train": self.n_train_,
            "n_val": self.n_val_,
            "best_epoch": self.best_epoch_,
            "best": self.best_metrics_,
            "fit_seconds": round(self.fit_seconds_, 2),
            "embed_seconds": round(getattr(self, "embed_seconds_", 0.0), 2),
            **({"adaptation": self.adaptation_diagnostics_} if self._has_adaptation_diagnostics() else {}),
            "val": None
            if self.val_metrics_ is None
            else {k: self.val_metrics_[k] for k in self._summary_keys if k in self.val_metrics_},
        }

    def _has_adaptation_diagnostics(self) -> bool:
        """Whether ``adaptation_diagnostics_`` belongs to the current fit (a domain-adaptation strategy)."""
        return bool(getattr(self.strategy_, "adaptation", False)) and hasattr(self, "adaptation_diagnostics_")

    def _device(self) -> torch.device:
        return torch.device(resolve_device(self.device))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class _PairedInputs(Dataset):
    """Source item ``i`` (``(x, y)``) with a random target item (drawn from torch's generator, re-seeded each
    epoch); source lengths (texts) pass through for length-grouped batches."""

    def __init__(self, source: Dataset, target: Dataset) -> None:
        self.source, self.target = source, target
        if hasattr(source, "lengths"):
            self.lengths = source.lengths

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        j = int(torch.randint(len(self.target), ()))  # type: ignore[arg-type]
        return self.source[i], self.target[j]


class _PairedFeatures(Dataset):
    """Source example ``i`` with a random target example (drawn from torch's generator, re-seeded each epoch)."""

    def __init__(self, f_s: torch.Tensor, y_s: torch.Tensor, f_t: torch.Tensor) -> None:
        self.f_s, self.y_s, self.f_t = f_s, y_s, f_t

    def __len__(self) -> int:
        return len(self.f_s)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        j = int(torch.randint(len(self.f_t), ()))
        return self.f_s[i], self.y_s[i], self.f_t[j]
