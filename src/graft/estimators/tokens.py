"""Token classification (named-entity recognition) by transfer learning: :class:`TokenClassifier`.

Words are split into sub-tokens; each word's label sits on its first sub-token (the others carry no loss).
Sentences longer than ``max_length`` sub-tokens are cut into overlapping windows at word boundaries, so no word
is dropped, and each word is predicted by the window that gives it the most context. Tags are decoded by
constrained Viterbi: the most probable sequence that is valid IOB2 (no ``I-X`` without a ``B-X``/``I-X`` before
it), which on CoNLL-2003 scores about 2 entity-F1 points above per-word argmax with invalid tags patched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from ..backbones import Backbone
from ..errors import ConfigError, DataError
from ..strategies.base import Strategy
from ..tasks.base import Task
from ..tasks.tagging import TokenTagging
from ..tasks.token_classification import (
    IGNORE,
    N_SHAPES,
    Window,
    make_windows,
    spans_with_offsets,
    split_words,
    word_shape,
)
from ..training.predict import predict_batches
from ._fitting import FitData, split_val
from ._text import build_text_backbone, save_text_files, text_backbone_from_bundle, text_cache_parts
from .base import TransferEstimator

__all__ = ["TokenClassifier"]


class _TokenEncoder(nn.Module):
    """Per-token features ``(N, L, hidden)`` of a :class:`~graft.backbones.huggingface.TextEncoder`; with
    ``case_features``, a one-hot of each word's casing pattern (``batch["shape_ids"]``) is appended:
    ``(N, L, hidden + N_SHAPES)``."""

    def __init__(self, encoder: nn.Module, case_features: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.case_features = case_features

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.encoder.token_features(batch)
        if not self.case_features:
            return h
        shapes = F.one_hot(batch["shape_ids"].to(h.device), N_SHAPES).to(h.dtype)
        return torch.cat([h, shapes], dim=-1)


class _Windows(Dataset):
    def __init__(self, windows: list[Window], labels: list[np.ndarray]) -> None:
        self.windows, self.labels = windows, labels
        self.lengths = [len(w.input_ids) for w in windows]  # for length-grouped batches

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple[Window, np.ndarray]:
        return self.windows[i], self.labels[i]


class TokenClassifier(TransferEstimator):
    """Adapt a pretrained language model to tag every word (NER, POS, chunking).

    Data: a CoNLL file or folder (``token ... tag`` per line, blank line between sentences; IOB1 converted to IOB2),
    JSONL with ``tokens``/``tags``, or lists of token lists with tag lists.

    Args:
        backbone: ``minilm`` (offline default), any Hugging Face model id or a local model folder (its tokenizer
            must be a fast one).
        strategy: ``fine-tune``, ``feature-extraction``, ``lora`` or a :class:`graft.strategies.Strategy`.
        max_length: longest window in sub-tokens; longer sentences are cut into overlapping windows.
        pooling, epochs, lr, batch_size, weight_decay, grad_accum, precision, schedule, patience, val_fraction,
        seed, device, pretrained, weights, cache, output_dir, overwrite, verbose, backbone_config: as for
            :class:`graft.TextClassifier`.

    Example:
        >>> ner = graft.TokenClassifier("minilm").fit("conll2003/")  # doctest: +SKIP
        >>> ner.predict_entities("Angela Merkel visited Paris")  # doctest: +SKIP
        [{'label': 'PER', 'text': 'Angela Merkel', 'start': 0, 'end': 13, ...}, {'label': 'LOC', ...}]
    """

    task: ClassVar[str] = "token-classification"
    modality: ClassVar[str] = "text"
    noun: ClassVar[str] = "sentences"

    def __init__(
        self,
        backbone: str = "minilm",
        strategy: str | Strategy = "fine-tune",
        *,
        max_length: int = 128,
        pooling: str | None = None,
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
        verbose: bool | None = None,
        log_with: str | None = None,
        backend: str = "torch",
        backbone_config: dict[str, Any] | None = None,
    ) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.max_length = max_length
        self.pooling = pooling
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
        self.log_with = log_with
        self.backend = backend
        self.backbone_config = backbone_config

    def _make_task(self) -> Task:
        return TokenTagging()

    # ------------------------------------------------------------------ data
    def _read_fit_data(self, X: Any, y: Any, val: Any) -> tuple[Any, Any, Any, Any]:
        from ..data.tokens import find_token_splits

        Xva, yva = split_val(val)
        if isinstance(X, (str, Path)) and y is None and Path(X).exists():
            splits = find_token_splits(X)
            if Xva is None and "val" in splits:
                Xva = splits["val"]
            return splits["train"], None, Xva, yva
        return X, y, Xva, yva

    def _read(self, X: Any, y: Any, *, what: str) -> tuple[FitData, list[Any] | None]:
        from ..data.splits import split_name
        from ..data.tokens import TokenSet, find_token_splits, load_tokens

        split: str | None = None
        if what == "target data":
            raise ConfigError(
                "domain adaptation (a target domain, --target) is not available for token classification (NER); "
                "train on the labelled sentences alone, e.g. --strategy fine-tune."
            )
        if isinstance(X, TokenSet):
            ts = X
        elif isinstance(X, (str, Path)) and y is None and Path(X).exists():
            splits = find_token_splits(X)
            order = {"training data": ("train",), "validation data": ("val", "train")}.get(
                what, ("test", "val", "train")
            )
            split = next(k for k in order + ("train",) if k in splits)
            ts = splits[split]
            split = split_name(splits, split)
        else:
            ts = load_tokens(X, y)
        if len(ts) == 0:
            raise DataError(f"{what} holds no sentences.")
        if what in ("training data", "validation data") and ts.tags is None:
            raise DataError(
                f"The {what} has no tags: its token lines have one column ({ts.sources[0]}, ...). Give each token "
                "line a tag in its last column, e.g. 'Paris B-LOC', with a blank line between sentences."
            )
        return FitData(ts, None, ts.hashes, ts.sources, split=split), ts.tags

    # ------------------------------------------------------------------ model
    def _build_backbone(self, pretrained: bool = True) -> Backbone:
        backbone = build_text_backbone(
            self.backbone,
            pretrained=pretrained,
            weights=self.weights,
            max_length=self.max_length,
            pooling=self.pooling,
            config=self.backbone_config,
        )
        return _token_backbone(backbone, _lowercases(backbone.tokenizer))

    def _backbone_from_bundle(self, path: Path, manifest: dict[str, Any]) -> Backbone:
        case = bool(manifest.get("text", {}).get("case_features", False))
        backbone = _token_backbone(text_backbone_from_bundle(path, manifest), case)
        backbone.feature_dim = int(manifest["feature_dim"])
        return backbone

    def _bundle_extra(self) -> dict[str, Any]:
        return {
            "text": {
                "max_length": int(self.backbone_.spec.get("max_length", self.max_length)),
                "pooling": self.backbone_.spec.get("pooling"),
                "case_features": bool(self.backbone_.spec.get("case_features", False)),
            }
        }

    def _save_files(self, directory: Path) -> list[Path]:
        return save_text_files(self.backbone_, directory)

    def _cache_key_parts(self) -> dict[str, Any]:
        parts = text_cache_parts(self.backbone_, f"fp32-{self.task}-v1")
        parts["case_features"] = bool(self.backbone_.spec.get("case_features", False))
        return parts

    # ------------------------------------------------------------------ windows and batches
    def _windows(self, data: FitData) -> list[Window]:
        if "windows" not in data.derived:
            tok = self.backbone_.tokenizer
            if not getattr(tok, "is_fast", False):
                raise DataError(f"token classification needs a fast tokenizer; '{self.backbone}' has none.")
            windows = make_windows(tok, data.items.tokens, int(self.backbone_.spec["max_length"]))
            if self.backbone_.spec.get("case_features"):
                for w in windows:
                    words = data.items.tokens[w.sentence]
                    w.shape_ids = [word_shape(words[k]) if k >= 0 else 0 for k in w.word_index]
            data.derived["windows"] = windows
        return data.derived["windows"]  # type: ignore[no-any-return]

    def _window_labels(self, data: FitData, windows: list[Window]) -> list[np.ndarray]:
        out = []
        for w in windows:
            y = data.y[w.sentence]  # type: ignore[index]
            out.append(np.asarray([y[k] if k >= 0 else IGNORE for k in w.word_index], dtype=np.int64))
        return out

    def _pad(self, windows: Sequence[Window]) -> dict[str, torch.Tensor]:
        pad_id = self.backbone_.tokenizer.pad_token_id or 0
        n = max(len(w.input_ids) for w in windows)
        ids = torch.full((len(windows), n), pad_id, dtype=torch.long)
        mask = torch.zeros((len(windows), n), dtype=torch.long)
        shapes = torch.zeros((len(windows), n), dtype=torch.long)
        for i, w in enumerate(windows):
            ids[i, : len(w.input_ids)] = torch.as_tensor(w.input_ids)
            mask[i, : len(w.input_ids)] = 1
            if w.shape_ids:
                shapes[i, : len(w.shape_ids)] = torch.as_tensor(w.shape_ids)
        return {"input_ids": ids, "attention_mask": mask, "shape_ids": shapes}

    def _collate(self, batch: list[tuple[Window, np.ndarray]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        x = self._pad([b[0] for b in batch])
        y = torch.full(x["input_ids"].shape, IGNORE, dtype=torch.long)
        for i, (_, lab) in enumerate(batch):
            y[i, : len(lab)] = torch.from_numpy(lab)
        return x, y

    def _collate_fn(self) -> Any:
        return self._collate

    def _train_dataset(self, data: FitData, views: tuple[str, ...] = ("train",)) -> Dataset:
        windows = self._windows(data)
        return _Windows(windows, self._window_labels(data, windows))

    def _batches(self, data: FitData, rows: Sequence[int], batch_size: int = 64) -> Iterable[tuple[list[int], Any]]:
        """Length-sorted batches of the windows of every sentence (``rows`` is all of them: sentences are scattered
        back from windows by :meth:`_outputs`); indices are window indices."""
        windows = self._windows(data)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            yield idx, self._pad([windows[i] for i in idx])

    def _outputs(
        self,
        module: nn.Module,
        data: FitData,
        *,
        autocast: Any = None,
        device: torch.device | None = None,
        tta: bool = False,
        what: str = "predicting",
        runner: Any = None,
        rows: Any = None,
    ) -> list[np.ndarray]:
        """Per sentence, an array ``(n_words, dim)`` of ``module``'s output at each word's first sub-token, taken from
        the window that gives the word the most context."""
        windows = self._windows(data)
        out: list[np.ndarray | None] = [None] * len(data.items.tokens)
        pieces = predict_batches(
            module,
            self._batches(data, range(len(data))),
            total=len(windows),
            device=device or self._device(),
            autocast=autocast,
            verbose=self._verbose() and len(windows) > 256,
            what=what,
            runner=runner,
        )
        for idx, z in pieces:
            for j, wi in enumerate(idx):
                w = windows[wi]
                arr = out[w.sentence]
                if arr is None:
                    arr = out[w.sentence] = np.zeros((len(data.items.tokens[w.sentence]), z.shape[-1]), np.float32)
                for pos, word in enumerate(w.word_index):
                    if word >= 0 and w.owned[0] <= word < w.owned[1]:
                        arr[word] = z[j, pos]
        return [a if a is not None else np.zeros((0, 1), np.float32) for a in out]

    def _head_features(self, data: FitData) -> tuple[torch.Tensor, Any, list[int] | None]:
        """One row per word (its first sub-token's embedding), cached per sentence; the rows per sentence."""
        cache = self._embedding_cache()
        found = cache.get_many(data.hashes)
        todo = [i for i, v in enumerate(found) if v is None]
        if todo:
            fresh = self._outputs(self.backbone_.module, data.subset(todo), what="embedding")
            for j, i in enumerate(todo):
                found[i] = fresh[j]
            cache.put_many([data.hashes[i] for i in todo], fresh)
        lengths = [len(t) for t in data.items.tokens]
        feats = np.concatenate([np.asarray(f).reshape(n, -1) for f, n in zip(found, lengths)])
        y = np.concatenate(list(data.y)) if data.y is not None else None
        return torch.from_numpy(feats.astype(np.float32)), y, lengths

    # ------------------------------------------------------------------ public inference
    def predict_entities(self, texts: str | Sequence[str]) -> Any:
        """Entity spans with character offsets for raw texts (split into words like CoNLL: punctuation apart); a
        list of spans for one string, a list of such lists for a list of strings. A sentence given as a list of words
        (read from a CoNLL or token JSONL file) keeps those words; its offsets are into the words joined by spaces."""
        self._check_fitted()
        single = isinstance(texts, str)
        texts = [texts] if isinstance(texts, str) else list(texts)
        split = [_joined(t) if isinstance(t, (list, tuple)) else split_words(t) for t in texts]
        texts = [" ".join(t) if isinstance(t, (list, tuple)) else t for t in texts]
        if any(not w for w, _ in split):
            empty = [i for i, (w, _) in enumerate(split) if not w]
            raise DataError(f"text {empty[0]} has no words; give non-empty texts.")
        from ..data.tokens import TokenSet

        ts = TokenSet(
            [w for w, _ in split], None, [f"text[{i}]" for i in range(len(texts))], [str(i) for i in range(len(texts))]
        )
        tags, scores = self.task_.decode(self._predict_outputs(FitData(ts, None, ts.hashes, ts.sources)), self.classes_)
        out = [spans_with_offsets(t, w, tg, off, sc) for t, (w, off), tg, sc in zip(texts, split, tags, scores)]
        return out[0] if single else out

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Entity F1."""
        return float(self.evaluate(X, y)["f1"])


def _joined(words: Sequence[str]) -> tuple[list[str], list[tuple[int, int]]]:
    """Pre-split words and their character offsets in the words joined by single spaces."""
    offsets, at = [], 0
    for w in words:
        offsets.append((at, at + len(w)))
        at += len(w) + 1
    return [str(w) for w in words], offsets


def _lowercases(tokenizer: Any) -> bool:
    """Whether the tokenizer maps ``Paris`` and ``paris`` to the same pieces (an uncased model)."""
    return bool(
        tokenizer("Paris Texas", add_special_tokens=False)["input_ids"]
        == tokenizer("paris texas", add_special_tokens=False)["input_ids"]
    )


def _token_backbone(backbone: Backbone, case_features: bool) -> Backbone:
    """Per-token outputs; an uncased tokenizer gets each word's casing pattern as extra features."""
    backbone.module = _TokenEncoder(backbone.module, case_features=case_features)
    backbone.groups = [["encoder." + n for n in g] for g in backbone.groups]
    if case_features:
        backbone.feature_dim += N_SHAPES
    backbone.spec["case_features"] = case_features
    return backbone
