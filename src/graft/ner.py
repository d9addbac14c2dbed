"""Token classification (named-entity recognition) by transfer learning: :class:`TokenClassifier`.

Words are split into sub-tokens; each word's label sits on its first sub-token (the others carry no loss).
Sentences longer than ``max_length`` sub-tokens are cut into overlapping windows at word boundaries, so no word
is dropped, and each word is predicted by the window that gives it the most context. Tags are decoded by
constrained Viterbi: the most probable sequence that is valid IOB2 (no ``I-X`` without a ``B-X``/``I-X`` before
it), which on CoNLL-2003 scores about 2 entity-F1 points above per-word argmax with invalid tags patched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from ._estimator import FitData, _split_val
from .errors import DataError
from .strategies.base import Strategy
from .tasks.token_classification import (
    IGNORE,
    N_SHAPES,
    Window,
    entity_metrics,
    iob2_constraints,
    make_windows,
    spans_with_offsets,
    split_words,
    viterbi_iob2,
    word_shape,
)
from .text import TextClassifier

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


def _lowercases(tokenizer: Any) -> bool:
    """Whether the tokenizer maps ``Paris`` and ``paris`` to the same pieces (an uncased model)."""
    return bool(
        tokenizer("Paris Texas", add_special_tokens=False)["input_ids"]
        == tokenizer("paris texas", add_special_tokens=False)["input_ids"]
    )


def token_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy over labelled sub-tokens. Shape: logits ``(N, L, C)``, target ``(N, L)`` with ``-100`` ignored."""
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        target.reshape(-1),
        ignore_index=IGNORE,
        label_smoothing=label_smoothing,
    )


class _Windows(Dataset):
    def __init__(self, windows: list[Window], labels: list[np.ndarray]) -> None:
        self.windows, self.labels = windows, labels
        self.lengths = [len(w.input_ids) for w in windows]  # for length-grouped batches

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple[Window, np.ndarray]:
        return self.windows[i], self.labels[i]


class TokenClassifier(TextClassifier):
    """Adapt a pretrained language model to tag every word (NER, POS, chunking).

    Takes the same arguments as :class:`graft.TextClassifier` (``text_column`` and friends aside). Data: a CoNLL
    file or folder (``token ... tag`` per line, blank line between sentences; IOB1 converted to IOB2), JSONL
    with ``tokens``/``tags``, or lists of token lists with tag lists.

    Example:
        >>> ner = graft.TokenClassifier("minilm").fit("conll2003/")  # doctest: +SKIP
        >>> ner.predict_entities(["Angela Merkel visited Paris"])  # doctest: +SKIP
        [[{'label': 'PER', 'text': 'Angela Merkel', 'start': 0, 'end': 13, ...}, {'label': 'LOC', ...}]]
    """

    task: ClassVar[str] = "token-classification"
    monitor: ClassVar[str] = "val_f1"
    _summary_keys: ClassVar[tuple[str, ...]] = ("precision", "recall", "f1", "token_accuracy")

    # ------------------------------------------------------------------ data
    def _read_fit_data(self, X: Any, y: Any, val: Any) -> tuple[Any, Any, Any, Any]:
        from .data.tokens import find_token_splits

        Xva, yva = _split_val(val)
        if isinstance(X, (str, Path)) and y is None and Path(X).exists():
            splits = find_token_splits(X)
            if Xva is None and "val" in splits:
                Xva = splits["val"]
            return splits["train"], None, Xva, yva
        return X, y, Xva, yva

    def _read(self, X: Any, y: Any, *, what: str) -> tuple[FitData, list[Any] | None]:
        from .data.tokens import TokenSet, find_token_splits, load_tokens

        if isinstance(X, TokenSet):
            ts = X
        elif isinstance(X, (str, Path)) and y is None and Path(X).exists():
            splits = find_token_splits(X)
            order = {"training data": ("train",), "validation data": ("val", "train")}.get(
                what, ("test", "val", "train")
            )
            ts = splits[next(k for k in order + ("train",) if k in splits)]
        else:
            ts = load_tokens(X, y)
        if len(ts) == 0:
            raise DataError(f"{what} holds no sentences.")
        return FitData(ts, None, ts.hashes, ts.sources), ts.tags

    def _label_space(self, train_labels: list[Any], val_labels: list[Any] | None) -> np.ndarray:
        tags = sorted({t for seq in train_labels for t in seq})
        if len(tags) < 2:
            raise DataError(f"training data needs at least 2 different tags; found {tags}.")
        if val_labels is not None:
            unseen = sorted({t for seq in val_labels for t in seq} - set(tags))
            if unseen:
                raise DataError(
                    f"validation data has tags never seen in training data: {', '.join(unseen[:10])}. "
                    "Add examples of them to the training data or remove them from validation."
                )
        return np.asarray(["O"] + [t for t in tags if t != "O"]) if "O" in tags else np.asarray(tags)

    def _encode(self, labels: Sequence[Any], *, where: str) -> np.ndarray:
        index = {t: i for i, t in enumerate(self.classes_)}
        out = np.empty(len(labels), dtype=object)
        for i, seq in enumerate(labels):
            unknown = [t for t in seq if t not in index]
            if unknown:
                raise DataError(
                    f"{where}, sentence {i + 1}: unknown tags {sorted(set(unknown))[:5]}; known: "
                    f"{', '.join(self.classes_[:20])}."
                )
            out[i] = np.asarray([index[t] for t in seq], dtype=np.int64)
        return out

    def _split_indices(self, train_labels: list[Any]) -> tuple[list[int], list[int]]:
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(train_labels))
        n_val = max(1, int(round(self.val_fraction * len(train_labels))))
        if n_val >= len(train_labels):
            raise DataError("too few sentences to hold out a validation split; pass val= or more data.")
        return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())

    # ------------------------------------------------------------------ model
    def _build_backbone(self, pretrained: bool = True):  # type: ignore[no-untyped-def]
        backbone = super()._build_backbone(pretrained)
        return self._token_backbone(backbone, _lowercases(backbone.tokenizer))

    def _backbone_from_bundle(self, path: Path, manifest: dict[str, Any]):  # type: ignore[no-untyped-def]
        backbone = super()._backbone_from_bundle(path, manifest)
        return self._token_backbone(backbone, bool(manifest.get("text", {}).get("case_features", False)))

    @staticmethod
    def _token_backbone(backbone: Any, case_features: bool) -> Any:
        """Per-token outputs; an uncased tokenizer gets each word's casing pattern as extra features."""
        backbone.module = _TokenEncoder(backbone.module, case_features=case_features)
        backbone.groups = [["encoder." + n for n in g] for g in backbone.groups]
        if case_features:
            backbone.feature_dim += N_SHAPES
        backbone.spec["case_features"] = case_features
        return backbone

    def _bundle_text(self) -> dict[str, Any]:
        extra = super()._bundle_text()
        extra["text"]["case_features"] = bool(self.backbone_.spec.get("case_features", False))
        return extra

    def _cache_key_parts(self) -> dict[str, Any]:
        parts = super()._cache_key_parts()
        parts["case_features"] = bool(self.backbone_.spec.get("case_features", False))
        return parts

    def _criterion(self, strategy: Strategy) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return functools.partial(token_loss, label_smoothing=strategy.label_smoothing)

    # ------------------------------------------------------------------ windows and batches
    def _windows(self, data: FitData) -> list[Window]:
        cached = getattr(data, "_windows", None)
        if cached is None:
            tok = self.backbone_.tokenizer
            if not getattr(tok, "is_fast", False):
                raise DataError(f"token classification needs a fast tokenizer; '{self.backbone}' has none.")
            cached = make_windows(tok, data.items.tokens, int(self.backbone_.spec["max_length"]))
            if self.backbone_.spec.get("case_features"):
                for w in cached:
                    words = data.items.tokens[w.sentence]
                    w.shape_ids = [word_shape(words[k]) if k >= 0 else 0 for k in w.word_index]
            data._windows = cached  # type: ignore[attr-defined]
        return cached

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

    def _collate_fn(self) -> Callable[[list[Any]], Any]:
        return self._collate

    def _train_dataset(self, data: FitData) -> Dataset:
        windows = self._windows(data)
        return _Windows(windows, self._window_labels(data, windows))

    @torch.no_grad()
    def _word_outputs(
        self, module: nn.Module, data: FitData, *, autocast: Callable[[], Any] | None = None, batch_size: int = 64
    ) -> list[np.ndarray]:
        """Per sentence, an array ``(n_words, dim)`` of ``module``'s output at each word's first sub-token."""
        from contextlib import nullcontext

        windows = self._windows(data)
        device = self._device()
        was_training = module.training
        module.eval().to(device)
        out: list[np.ndarray | None] = [None] * len(data.items.tokens)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            batch = self._pad([windows[i] for i in idx])
            with autocast() if autocast else nullcontext():
                z = module({k: v.to(device) for k, v in batch.items()}).float().cpu().numpy()
            for j, wi in enumerate(idx):
                w = windows[wi]
                arr = out[w.sentence]
                if arr is None:
                    arr = out[w.sentence] = np.zeros((len(data.items.tokens[w.sentence]), z.shape[-1]), np.float32)
                for pos, word in enumerate(w.word_index):
                    if word >= 0 and w.owned[0] <= word < w.owned[1]:
                        arr[word] = z[j, pos]
        module.train(was_training)
        return [a if a is not None else np.zeros((0, 1), np.float32) for a in out]

    def _head_features(self, data: FitData) -> tuple[torch.Tensor, np.ndarray]:
        """Feature extraction for tokens: one row per word (its first sub-token's embedding), cached per sentence."""
        cache = self._embedding_cache()
        found = cache.get_many(data.hashes)
        todo = [i for i, v in enumerate(found) if v is None]
        if todo:
            sub = self._subset(data, todo)
            fresh = self._word_outputs(self.backbone_.module, sub)
            for j, i in enumerate(todo):
                found[i] = fresh[j]
                cache.put_many([data.hashes[i]], fresh[j][None])
        feats = np.concatenate([np.asarray(f).reshape(len(data.items.tokens[i]), -1) for i, f in enumerate(found)])
        # the head phase scores validation words with entity F1: remember how words split into sentences
        self._head_lengths = [len(t) for t in data.items.tokens]
        y = np.concatenate(list(data.y)) if data.y is not None else np.zeros(0, np.int64)  # type: ignore[arg-type]
        return torch.from_numpy(feats.astype(np.float32)), y

    def _logit_metrics(self, logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Head phase: word logits of the validation split (flattened) → loss, entity P/R/F1, token accuracy."""
        out = {"val_loss": float(token_loss(logits, y)), "val_accuracy": float((logits.argmax(-1) == y).float().mean())}
        lengths = getattr(self, "_head_lengths", None)
        if lengths is not None and sum(lengths) == len(y):
            bounds = np.cumsum([0] + lengths)
            z, yy = logits.numpy(), y.numpy()
            pred, _ = self._decode([z[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
            true = [[str(self.classes_[k]) for k in yy[a:b]] for a, b in zip(bounds[:-1], bounds[1:])]
            m = entity_metrics(true, pred)
            out.update(val_f1=m["f1"], val_precision=m["precision"], val_recall=m["recall"])
        return out

    def _word_logits(self, data: FitData, autocast: Callable[[], Any] | None = None) -> list[np.ndarray]:
        return self._word_outputs(self.model_, data, autocast=autocast)

    def _decode(self, logits: list[np.ndarray]) -> tuple[list[list[str]], list[np.ndarray]]:
        """Tags by constrained Viterbi over each word's log-softmax (only valid IOB2 sequences), and the
        probability of each chosen tag."""
        classes = [str(c) for c in self.classes_]
        allowed, start = iob2_constraints(classes)
        tags, scores = [], []
        for z in logits:
            logp = z - z.max(axis=1, keepdims=True)
            logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
            path = viterbi_iob2(logp, allowed, start)
            tags.append([classes[k] for k in path])
            scores.append(np.exp(logp[np.arange(len(path)), path]))
        return tags, scores

    def _loop_evaluator(self, data: FitData) -> Callable[..., dict[str, float]]:
        true = [[str(self.classes_[k]) for k in seq] for seq in data.y]  # type: ignore[union-attr]

        def evaluate(model: nn.Module, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]:
            logits = self._word_outputs(model, data, autocast=autocast)
            z = torch.from_numpy(np.concatenate(logits))
            y = torch.from_numpy(np.concatenate(list(data.y)))  # type: ignore[arg-type]
            pred, _ = self._decode(logits)
            m = entity_metrics(true, pred)
            return {
                "val_loss": float(F.cross_entropy(z, y)),
                "val_f1": m["f1"],
                "val_precision": m["precision"],
                "val_recall": m["recall"],
                "val_accuracy": m["token_accuracy"],
            }

        return evaluate

    def _score_split(self, data: FitData, features: torch.Tensor | None = None) -> dict[str, Any]:
        pred, _ = self._decode(self._word_logits(data))
        true = [[str(self.classes_[k]) for k in seq] for seq in data.y]  # type: ignore[union-attr]
        m = entity_metrics(true, pred)
        m["accuracy"] = m["token_accuracy"]
        return m

    # ------------------------------------------------------------------ public inference
    def predict(self, X: Any) -> list[list[str]]:  # type: ignore[override]
        """IOB2 tags, one list per sentence (``X``: token lists, sentences as strings, or a CoNLL/JSONL path)."""
        self._check_fitted()
        data, _ = self._read(X, None, what="input")
        return self._decode(self._word_logits(data))[0]

    def predict_proba(self, X: Any) -> list[np.ndarray]:  # type: ignore[override]
        """Per sentence, tag probabilities ``(n_words, n_tags)`` (columns in ``classes_`` order)."""
        self._check_fitted()
        data, _ = self._read(X, None, what="input")
        out = []
        for z in self._word_logits(data):
            p = np.exp(z - z.max(axis=1, keepdims=True))
            out.append(p / p.sum(axis=1, keepdims=True))
        return out

    def predict_entities(self, texts: str | Sequence[str]) -> list[list[dict[str, Any]]]:
        """Entity spans with character offsets for raw texts (split into words like CoNLL: punctuation apart)."""
        self._check_fitted()
        texts = [texts] if isinstance(texts, str) else list(texts)
        split = [split_words(t) for t in texts]
        if any(not w for w, _ in split):
            empty = [i for i, (w, _) in enumerate(split) if not w]
            raise DataError(f"text {empty[0]} has no words; give non-empty texts.")
        from .data.tokens import TokenSet

        ts = TokenSet(
            [w for w, _ in split], None, [f"text[{i}]" for i in range(len(texts))], [str(i) for i in range(len(texts))]
        )
        tags, scores = self._decode(self._word_logits(FitData(ts, None, ts.hashes, ts.sources)))
        return [spans_with_offsets(t, w, tg, off, sc) for t, (w, off), tg, sc in zip(texts, split, tags, scores)]

    def evaluate(self, X: Any, y: Any = None) -> dict[str, Any]:
        """Entity-level precision/recall/F1 (micro, strict IOB2), per entity type, and token accuracy."""
        self._check_fitted()
        data, labels = self._read(X, y, what="evaluation data")
        if labels is None:
            raise DataError("evaluate needs tags: give a tagged CoNLL/JSONL file, or pass y.")
        data.y = self._encode(labels, where="evaluation data")
        return self._score_split(data)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Entity F1."""
        return float(self.evaluate(X, y)["f1"])

    def _write_run(self, run_dir: Path) -> None:
        from .bundle import save_bundle
        from .evaluation.plots import plot_history

        save_bundle(self, run_dir)
        if self.history_:
            plot_history(self.history_, run_dir / "history.png")
