"""Text classification by transfer learning: :class:`TextClassifier` (sentiment, topics, sentence pairs)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from ._estimator import FitData, TransferClassifier, _split_val
from .backbones import Backbone, create_backbone
from .errors import ConfigError, DataError
from .strategies.base import Strategy

__all__ = ["TextClassifier", "TextBatcher"]


class TextBatcher:
    """Tokenises once, then pads per batch; inference batches are sorted by length (less padding).

    Args:
        tokenizer: a ``transformers`` tokenizer.
        max_length: longest input in tokens; longer texts are truncated (stated in the bundle).
    """

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[dict[str, list[int]]]:
        enc = self.tokenizer(
            list(texts), None if pairs is None else list(pairs), truncation=True, max_length=self.max_length
        )
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        return [{k: enc[k][i] for k in keys} for i in range(len(texts))]

    def pad(self, items: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        return dict(self.tokenizer.pad(list(items), padding=True, return_tensors="pt"))

    def collate(self, batch: list[tuple[dict[str, list[int]], Any]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return self.pad([b[0] for b in batch]), torch.as_tensor(np.asarray([b[1] for b in batch]))

    def batches(self, encoded: Sequence[dict[str, list[int]]], batch_size: int) -> list[tuple[list[int], dict]]:
        """Length-sorted batches: ``(original indices, padded tensors)``."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["input_ids"]))
        return [
            (order[s : s + batch_size], self.pad([encoded[i] for i in order[s : s + batch_size]]))
            for s in range(0, len(order), batch_size)
        ]


class _EncodedTexts(Dataset):
    def __init__(self, encoded: list[dict[str, list[int]]], y: np.ndarray) -> None:
        self.encoded, self.y = encoded, y
        self.lengths = [len(e["input_ids"]) for e in encoded]  # for length-grouped batches

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> tuple[dict[str, list[int]], Any]:
        return self.encoded[i], self.y[i]


class TextClassifier(TransferClassifier):
    """Adapt a pretrained language model to a text classification task.

    Args:
        backbone: ``minilm`` (offline default), any Hugging Face model id (``bert-base-uncased``, ``gpt2``) or a
            local model folder.
        strategy: ``fine-tune``, ``feature-extraction``, ``lora`` or a :class:`graft.strategies.Strategy`.
        text_column: column holding the text (auto-detected from common names when ``None``).
        text_pair_column: second text column for sentence-pair tasks (NLI, paraphrase).
        label_column: column holding the label (auto-detected).
        max_length: longest input in tokens; longer texts are truncated.
        pooling: ``mean``, ``cls`` or ``last`` (default: mean for encoders, last token for causal LMs).
        multi_label: each text has any number of labels (sigmoid outputs, one threshold per label tuned on the
            validation split for F1); labels are lists, or strings joined by ``label_sep``.
        label_sep: separator of multi-label strings (default: guessed from ``|``, ``,``, ``;``).
        epochs, lr, batch_size, weight_decay, grad_accum, precision, schedule, patience, val_fraction, seed,
        device, pretrained, weights, cache, output_dir, overwrite, verbose: as for
            :class:`graft.ImageClassifier`.
        backbone_config: build the backbone from this ``transformers`` config dict instead of the hub/folder
            config (random weights; for tests and from-scratch baselines). Its tokenizer comes from ``backbone``.

    Example:
        >>> clf = graft.TextClassifier("minilm", strategy="fine-tune")  # doctest: +SKIP
        >>> clf.fit("reviews.csv").predict(["great battery, awful screen"])  # doctest: +SKIP
    """

    task: ClassVar[str] = "text-classification"
    modality: ClassVar[str] = "text"

    def __init__(
        self,
        backbone: str = "minilm",
        strategy: str | Strategy = "fine-tune",
        *,
        text_column: str | None = None,
        text_pair_column: str | None = None,
        label_column: str | None = None,
        max_length: int = 128,
        pooling: str | None = None,
        multi_label: bool = False,
        label_sep: str | None = None,
        epochs: int | None = None,
        lr: float | None = None,
        batch_size: int = 32,
        weight_decay: float = 0.01,
        grad_accum: int = 1,
        precision: str = "auto",
        schedule: str = "cosine",
        patience: int | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        device: str = "auto",
        pretrained: bool = True,
        weights: str | None = None,
        cache: bool = True,
        output_dir: str | Path | None = None,
        overwrite: bool = False,
        verbose: bool = False,
        backbone_config: dict[str, Any] | None = None,
    ) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.text_column = text_column
        self.text_pair_column = text_pair_column
        self.label_column = label_column
        self.max_length = max_length
        self.pooling = pooling
        self.multi_label = multi_label
        self.label_sep = label_sep
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.grad_accum = grad_accum
        self.precision = precision
        self.schedule = schedule
        self.patience = patience
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device
        self.pretrained = pretrained
        self.weights = weights
        self.cache = cache
        self.output_dir = output_dir
        self.overwrite = overwrite
        self.verbose = verbose
        self.backbone_config = backbone_config

    # ------------------------------------------------------------------ hooks
    def _build_backbone(self, pretrained: bool = True) -> Backbone:
        if self.max_length < 2:
            raise ConfigError(f"max_length must be >= 2 tokens; got {self.max_length}.")
        kwargs: dict[str, Any] = {"max_length": int(self.max_length), "pooling": self.pooling}
        if self.backbone_config is not None:
            kwargs["config"] = self.backbone_config
            pretrained = False
        return create_backbone(self.backbone, modality="text", pretrained=pretrained, weights=self.weights, **kwargs)

    def _batcher(self) -> TextBatcher:
        return TextBatcher(self.backbone_.tokenizer, int(self.backbone_.spec.get("max_length", self.max_length)))

    def _read_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "text_column": self.text_column,
            "text_pair_column": self.text_pair_column,
            "label_column": self.label_column,
        }
        if self.multi_label:
            kw.update(multi_label=True, label_sep=self.label_sep)
        return kw

    def _read_fit_data(self, X: Any, y: Any, val: Any) -> tuple[Any, Any, Any, Any]:
        from .data.text import find_text_splits

        Xva, yva = _split_val(val)
        if isinstance(X, (str, Path)) and y is None and Path(X).exists():
            splits = find_text_splits(X, **self._read_kwargs())
            if Xva is None and "val" in splits:
                Xva = splits["val"]
            return splits["train"], None, Xva, yva
        return X, y, Xva, yva

    def _read(self, X: Any, y: Any, *, what: str) -> tuple[FitData, list[Any] | None]:
        from .data.text import TextSet, find_text_splits, load_texts

        if isinstance(X, TextSet):
            ts = X
        elif isinstance(X, (str, Path)) and y is None and Path(X).exists():
            splits = find_text_splits(X, **self._read_kwargs())
            order = {"training data": ("train",), "validation data": ("val", "train"), "input": ("train",)}.get(
                what, ("test", "val", "train")
            )
            ts = splits[next(k for k in order + ("train",) if k in splits)]
        else:
            ts = load_texts(X, y, **self._read_kwargs())
        if len(ts) == 0:
            raise DataError(f"{what} holds no texts.")
        labels: list[Any] | None = ts.labels  # type: ignore[assignment]
        if y is not None and labels is not None and not isinstance(X, TextSet) and not self.multi_label:
            original = {self._label_key(v): (v.item() if isinstance(v, np.generic) else v) for v in y}
            labels = [original.get(v, v) for v in labels]
        return FitData(ts, None, ts.hashes, ts.sources), labels

    def _encoded(self, data: FitData) -> list[dict[str, list[int]]]:
        cached = getattr(data, "_encoded", None)
        if cached is None:
            cached = self._batcher().encode(data.items.texts, data.items.pairs)
            data._encoded = cached  # type: ignore[attr-defined]
        return cached

    def _cache_key_parts(self) -> dict[str, Any]:
        tok = self.backbone_.tokenizer
        return {"tokenizer": [type(tok).__name__, len(tok), tok.padding_side], "path": f"fp32-{self.task}-v1"}

    def _embed_missing(self, data: FitData, todo: list[int]) -> np.ndarray:
        encoded = self._encoded(data)
        return self._forward(self.backbone_.module, [encoded[i] for i in todo], what="embedding")

    @torch.no_grad()
    def _forward(
        self,
        module: nn.Module,
        encoded: Sequence[dict[str, list[int]]],
        *,
        what: str = "predicting",
        autocast: Callable[[], Any] | None = None,
        batch_size: int = 64,
    ) -> np.ndarray:
        from contextlib import nullcontext

        from .training import _progress

        device = self._device()
        was_training = module.training
        module.eval().to(device)
        out: list[np.ndarray | None] = [None] * len(encoded)
        t0 = time.perf_counter()
        progress = _progress(self.verbose and len(encoded) > 4 * batch_size)
        task = progress.add_task(what, total=len(encoded), loss="") if progress else None
        try:
            if progress:
                progress.start()
            for idx, batch in self._batcher().batches(encoded, batch_size):
                with autocast() if autocast else nullcontext():
                    z = module({k: v.to(device) for k, v in batch.items()}).float().cpu().numpy()
                for j, i in enumerate(idx):
                    out[i] = z[j]
                if progress and task is not None:
                    progress.update(task, advance=len(idx))
        finally:
            if progress:
                progress.stop()
        module.train(was_training)
        self.last_forward_rate_ = len(encoded) / max(time.perf_counter() - t0, 1e-9)
        return np.stack(out) if out else np.zeros((0, 0), np.float32)  # type: ignore[arg-type]

    def _train_dataset(self, data: FitData) -> Dataset:
        return _EncodedTexts(self._encoded(data), data.y)  # type: ignore[arg-type]

    def _collate_fn(self) -> Callable[[list[Any]], Any]:
        return self._batcher().collate

    def _loop_evaluator(self, data: FitData) -> Callable[..., dict[str, float]]:
        y = torch.from_numpy(data.y)  # type: ignore[arg-type]

        def evaluate(model: nn.Module, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]:
            return self._logit_metrics(self._model_logits(model, data, autocast), y)

        return evaluate

    def _logits(self, data: FitData) -> np.ndarray:
        return self._forward(self.model_, self._encoded(data))

    def _model_logits(self, model: nn.Module, data: FitData, autocast: Callable[[], Any]) -> torch.Tensor:
        return torch.from_numpy(self._forward(model, self._encoded(data), autocast=autocast))

    # ------------------------------------------------------------------ multi-label
    def _monitor(self) -> str:
        return "val_f1" if self.multi_label else self.monitor

    def _label_space(self, train_labels: list[Any], val_labels: list[Any] | None) -> np.ndarray:
        self.thresholds_ = None  # tuned again on this fit's validation split
        if not self.multi_label:
            return super()._label_space(train_labels, val_labels)
        classes = sorted({str(v) for labels in train_labels for v in labels})
        if len(classes) < 1:
            raise DataError("multi-label training data has no labels at all.")
        if val_labels is not None:
            unseen = sorted({str(v) for labels in val_labels for v in labels} - set(classes))
            if unseen:
                raise DataError(f"validation data has labels never seen in training data: {', '.join(unseen[:10])}.")
        return np.asarray(classes)

    def _encode(self, labels: Sequence[Any], *, where: str) -> np.ndarray:
        if not self.multi_label:
            return super()._encode(labels, where=where)
        index = {c: i for i, c in enumerate(self.classes_)}
        out = np.zeros((len(labels), len(self.classes_)), np.float32)
        for r, row in enumerate(labels):
            for v in row:
                if str(v) not in index:
                    raise DataError(
                        f"{where}, row {r + 1}: unknown label '{v}'; known: {', '.join(self.classes_[:20])}."
                    )
                out[r, index[str(v)]] = 1.0
        return out

    def _split_indices(self, train_labels: list[Any]) -> tuple[list[int], list[int]]:
        if not self.multi_label:
            return super()._split_indices(train_labels)
        order = np.random.default_rng(self.seed).permutation(len(train_labels))
        n_val = max(1, int(round(self.val_fraction * len(train_labels))))
        return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())

    def _criterion(self, strategy: Strategy) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        if not self.multi_label:
            return super()._criterion(strategy)
        return lambda logits, y: F.binary_cross_entropy_with_logits(logits.float(), y.float())

    def _logit_metrics(self, logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        if not self.multi_label:
            return super()._logit_metrics(logits, y)
        pred = (logits > 0).float()
        tp = float((pred * y).sum())
        f1 = 2 * tp / max(float(pred.sum() + y.sum()), 1e-9)
        return {
            "val_loss": float(F.binary_cross_entropy_with_logits(logits, y.float())),
            "val_f1": f1,
            "val_accuracy": float((pred == y).all(dim=1).float().mean()),
        }

    def _tune_thresholds(self, data: FitData) -> None:
        """Per label, the probability threshold that maximises F1 on the validation split (0.5 without one)."""
        self.thresholds_ = np.full(len(self.classes_), 0.5)
        if data is None or data.y is None:
            return
        proba = _sigmoid(self._logits(data))
        grid = np.linspace(0.05, 0.95, 19)
        for j in range(len(self.classes_)):
            y = data.y[:, j] > 0.5  # type: ignore[index]
            if not y.any():
                continue
            f1 = [2 * (y & (proba[:, j] >= t)).sum() / max(y.sum() + (proba[:, j] >= t).sum(), 1) for t in grid]
            self.thresholds_[j] = float(grid[int(np.argmax(f1))])

    def _score_split(self, data: FitData, features: torch.Tensor | None = None) -> dict[str, Any]:
        if not self.multi_label:
            return super()._score_split(data, features)
        if getattr(self, "thresholds_", None) is None:
            self._tune_thresholds(data)
        thresholds = self._thresholds()
        from sklearn.metrics import f1_score, precision_recall_fscore_support

        proba = _sigmoid(self._logits(data))
        pred = proba >= thresholds
        y = data.y > 0.5  # type: ignore[operator]
        p, r, f, sup = precision_recall_fscore_support(y, pred, average=None, zero_division=0)
        return {
            "n": int(len(y)),
            "subset_accuracy": float((pred == y).all(axis=1).mean()),
            "accuracy": float((pred == y).mean()),
            "micro_f1": float(f1_score(y, pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "per_label": {
                str(c): {
                    "precision": float(p[i]),
                    "recall": float(r[i]),
                    "f1": float(f[i]),
                    "support": int(sup[i]),
                    "threshold": float(thresholds[i]),
                }
                for i, c in enumerate(self.classes_)
            },
            "labels": [str(c) for c in self.classes_],
        }

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(N, C)``: softmax, or independent sigmoids when ``multi_label``."""
        if not self.multi_label:
            return super().predict_proba(X)
        self._check_fitted()
        data, _ = self._read(X, None, what="input")
        return _sigmoid(self._logits(data))

    def predict(self, X: Any) -> Any:
        """Labels; with ``multi_label``, a list of label lists (each label above its tuned threshold)."""
        if not self.multi_label:
            return super().predict(X)
        proba = self.predict_proba(X)
        thresholds = self._thresholds()
        return [[self.classes_[j].item() for j in np.flatnonzero(row >= thresholds)] for row in proba]

    def _thresholds(self) -> np.ndarray:
        t = getattr(self, "thresholds_", None)
        return np.full(len(self.classes_), 0.5) if t is None else np.asarray(t)

    def evaluate(self, X: Any, y: Any = None) -> dict[str, Any]:
        if not self.multi_label:
            return super().evaluate(X, y)
        self._check_fitted()
        data, labels = self._read(X, y, what="evaluation data")
        if labels is None:
            raise DataError("evaluate needs labels: give a labelled table, or pass y.")
        data.y = self._encode(labels, where="evaluation data")
        return self._score_split(data)

    def _bundle_extra(self) -> dict[str, Any]:
        extra = self._bundle_text()
        if self.multi_label:
            extra["thresholds"] = [float(t) for t in self._thresholds()]
        return extra

    def _bundle_text(self) -> dict[str, Any]:
        return {
            "text": {
                "max_length": int(self.backbone_.spec.get("max_length", self.max_length)),
                "pooling": self.backbone_.spec.get("pooling"),
            }
        }

    def _save_files(self, directory: Path) -> None:
        from ._utils import atomic_write_json

        tok_dir = directory / "tokenizer"
        self.backbone_.tokenizer.save_pretrained(str(tok_dir))
        atomic_write_json(directory / "backbone_config.json", self.backbone_.config.to_dict())

    def _backbone_from_bundle(self, path: Path, manifest: dict[str, Any]) -> Backbone:
        """The bundle's architecture (its saved config and tokenizer) with random weights; nothing downloaded."""
        import json

        from transformers import AutoConfig, AutoModel, AutoTokenizer

        from .backbones.huggingface import TextEncoder
        from .errors import BundleError

        cfg_path, tok_dir = path / "backbone_config.json", path / "tokenizer"
        if not cfg_path.exists() or not tok_dir.is_dir():
            raise BundleError(f"'{path}' lacks backbone_config.json or tokenizer/: it is not a complete text bundle.")
        cfg_dict = json.loads(cfg_path.read_text())
        config = AutoConfig.for_model(cfg_dict.pop("model_type"), **cfg_dict)
        model = AutoModel.from_config(config)
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
        spec = manifest["backbone"]
        return Backbone(
            module=TextEncoder(model, spec["pooling"]),
            modality="text",
            feature_dim=int(manifest["feature_dim"]),
            spec=spec,
            tokenizer=tokenizer,
            config=config,
        )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
