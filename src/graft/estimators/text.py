"""Text classification by transfer learning: :class:`TextClassifier` (sentiment, topics, sentence pairs)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import Dataset

from ..backbones import Backbone
from ..errors import ConfigError, DataError
from ..strategies.base import Strategy
from ..tasks.base import Task, label_key
from ..tasks.classification import SingleLabel
from ..tasks.multilabel import MultiLabel
from ._fitting import FitData, split_val
from ._text import TextBatcher, build_text_backbone, save_text_files, text_backbone_from_bundle, text_cache_parts
from .base import TransferEstimator

__all__ = ["TextClassifier", "TextBatcher"]


class _EncodedTexts(Dataset):
    def __init__(self, encoded: list[dict[str, list[int]]], y: np.ndarray) -> None:
        self.encoded, self.y = encoded, y
        self.lengths = [len(e["input_ids"]) for e in encoded]  # for length-grouped batches

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> tuple[dict[str, list[int]], Any]:
        return self.encoded[i], self.y[i]


class TextClassifier(TransferEstimator):
    """Adapt a pretrained language model to a text classification task.

    Args:
        backbone: ``minilm`` (offline default), ``wordllama`` / ``wordllama_128`` / ``wordllama_64`` (offline static
            token embeddings, extra ``zoo``), any Hugging Face model id (``bert-base-uncased``, ``gpt2``) or a local
            model folder.
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
    noun: ClassVar[str] = "texts"

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
        verbose: bool | None = None,
        log_with: str | None = None,
        backend: str = "torch",
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
        self.log_with = log_with
        self.backend = backend
        self.backbone_config = backbone_config

    # ------------------------------------------------------------------ hooks
    def _build_backbone(self, pretrained: bool = True) -> Backbone:
        return build_text_backbone(
            self.backbone,
            pretrained=pretrained,
            weights=self.weights,
            max_length=self.max_length,
            pooling=self.pooling,
            config=self.backbone_config,
        )

    def _make_task(self) -> Task:
        return MultiLabel() if self.multi_label else SingleLabel()

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
        from ..data.text import find_text_splits

        Xva, yva = split_val(val)
        if isinstance(X, (str, Path)) and y is None and Path(X).exists():
            splits = find_text_splits(X, **self._read_kwargs())
            if Xva is None and "val" in splits:
                Xva = splits["val"]
            return splits["train"], None, Xva, yva
        return X, y, Xva, yva

    def _read(self, X: Any, y: Any, *, what: str) -> tuple[FitData, list[Any] | None]:
        from ..data.splits import split_name
        from ..data.text import TextSet, find_text_splits
        from ..data.text_inputs import load_texts

        split: str | None = None
        if what == "validation data" and isinstance(X, (str, Path)) and y is None and not Path(X).exists():
            raise DataError(f"The validation data '{X}' does not exist. Check the path given as val= (CLI: --val).")
        if isinstance(X, TextSet):
            ts = X
        elif isinstance(X, (str, Path)) and y is None and Path(X).exists():
            splits = find_text_splits(X, **self._read_kwargs())
            order = {"training data": ("train",), "validation data": ("val", "train"), "input": ("train",)}.get(
                what, ("test", "val", "train")
            )
            split = next(k for k in order + ("train",) if k in splits)
            ts = splits[split]
            split = split_name(splits, split)
        else:
            ts = load_texts(X, y, **self._read_kwargs())
        if len(ts) == 0:
            raise DataError(f"{what} holds no texts.")
        if what in ("training data", "validation data") and ts.labels is None and ts.table_columns:
            shown = f"The {what} '{X}'" if isinstance(X, (str, Path)) else what.capitalize()
            taken = [c for c in (self.text_column, self.text_pair_column) if c is not None]
            note = f" ({' and '.join(repr(c) for c in taken)} given as text)" if taken else ""
            raise DataError(
                f"{shown} has no label column; its columns are {', '.join(repr(c) for c in ts.table_columns)}{note}. "
                "Name the label column with --label-column NAME (Python: label_column='NAME'), or call it one of "
                "label, labels, class, target, sentiment, category."
            )
        if what == "training data" and ts.table_columns:
            _warn_unused_columns(ts, X)
        if what == "training data" and not self.multi_label and ts.labels:
            _warn_label_sets(ts.labels)
        if what == "training data":
            self.pairs_ = ts.pairs is not None
        elif what in ("input", "evaluation data") and getattr(self, "pairs_", None) is not None:
            _check_pairs(bool(self.pairs_), ts.pairs is not None, what)
        labels: list[Any] | None = ts.labels  # type: ignore[assignment]
        if y is not None and labels is not None and not isinstance(X, TextSet) and not self.multi_label:
            original = {label_key(v): (v.item() if isinstance(v, np.generic) else v) for v in y}
            labels = [original.get(v, v) for v in labels]
        return FitData(ts, None, ts.hashes, ts.sources, split=split), labels

    def _with_examples(self, data: FitData, examples: list[tuple[str, int]], *, required: bool) -> FitData:
        """The training split followed by the strategy's written examples ``(text, class index)``; with text pairs
        or label sets they are left out (refused when ``required``)."""
        if data.items.pairs is not None or data.items.multi_label:
            if required:
                raise ConfigError(
                    "label_prompts=True writes one sentence per class name, but this data holds "
                    f"{'text pairs' if data.items.pairs is not None else 'label sets'}. Set label_prompts=False "
                    "(or leave it at None, which skips them here)."
                )
            return data
        texts, y = [t for t, _ in examples], np.asarray([c for _, c in examples], dtype=np.asarray(data.y).dtype)
        items = data.items.extended(texts, [str(self.classes_[c]) for c in y], source="label prompt")
        out = FitData(items, np.concatenate([np.asarray(data.y), y]), items.hashes, items.sources, split=data.split)
        self.label_prompts_ = len(texts)
        if self._verbose():
            from rich.console import Console

            shown = ", ".join(repr(t) for t in dict.fromkeys(texts[: len(texts) // len(self.classes_)]))
            Console(stderr=True).print(f"{self.strategy_.name}: {len(texts)} label prompts train too ({shown}, ...)")
        return out

    def _encoded(self, data: FitData) -> list[dict[str, list[int]]]:
        if "encoded" not in data.derived:
            data.derived["encoded"] = self._batcher().encode(data.items.texts, data.items.pairs)
        return data.derived["encoded"]  # type: ignore[no-any-return]

    def _cache_key_parts(self) -> dict[str, Any]:
        return text_cache_parts(self.backbone_, f"fp32-{self.task}-v1")

    def _batches(self, data: FitData, rows: Sequence[int], batch_size: int = 64) -> Iterable[tuple[list[int], Any]]:
        encoded = self._encoded(data)
        return self._batcher().batches([encoded[i] for i in rows], batch_size)

    def _train_dataset(self, data: FitData, views: tuple[str, ...] = ("train",)) -> Dataset:
        return _EncodedTexts(self._encoded(data), data.y)  # type: ignore[arg-type]

    def _collate_fn(self) -> Callable[[list[Any]], Any]:
        return self._batcher().collate

    def _bundle_extra(self) -> dict[str, Any]:
        return {
            "text": {
                "max_length": int(self.backbone_.spec.get("max_length", self.max_length)),
                "pooling": self.backbone_.spec.get("pooling"),
            }
        }

    def _save_files(self, directory: Path) -> list[Path]:
        return save_text_files(self.backbone_, directory)

    def _bundle_extra(self) -> dict[str, Any]:
        return {"text": {"pairs": bool(getattr(self, "pairs_", False))}}

    def _backbone_from_bundle(self, path: Path, manifest: dict[str, Any]) -> Backbone:
        text = manifest.get("text")
        self.pairs_ = bool(text["pairs"]) if isinstance(text, dict) and "pairs" in text else None  # None: not recorded
        return text_backbone_from_bundle(path, manifest)


def _warn_unused_columns(ts: Any, X: Any) -> None:
    """Warn of a training table's columns that text classification leaves out (besides a split column and IDs):
    features beside the text are used only by the tabular task."""
    from ..data.tabular import _ID_NAME

    used = {c for c in ts.columns.values() if c is not None}
    unused = [c for c in ts.table_columns if c not in used and c.lower() != "split" and not _ID_NAME.search(c)]
    if unused:
        import re
        import warnings

        source = re.sub(r":(row|line) \d+$", "", ts.sources[0]) if ts.sources else None
        shown = f"'{X}'" if isinstance(X, (str, Path)) else f"'{source}'" if source else "the training table"
        names = ", ".join(repr(c) for c in unused)
        warnings.warn(
            f"text classification reads only the text and label columns of {shown}; it leaves out {names}. To use "
            "them as features beside the text, train with --task tabular-classification (Python: "
            "graft.TabularClassifier), which embeds the text column with a sentence encoder.",
            stacklevel=4,
        )


def _check_pairs(trained: bool, given: bool, what: str) -> None:
    """Refuse single texts for a sentence-pair model, and pairs for a single-text one."""
    if trained and not given:
        raise DataError(
            f"this model was trained on sentence pairs, but the {what} holds single texts. Give both texts of each "
            "pair: a table with both columns, (text, pair) tuples in Python, --text A --text-pair B on the command "
            'line, or {"texts": [...], "text_pairs": [...]} to graft serve.'
        )
    if given and not trained:
        raise DataError(
            f"this model was trained on single texts, but the {what} holds sentence pairs; give one text each."
        )


def _warn_label_sets(labels: Sequence[Any]) -> None:
    """Warn when single labels read like label sets ("politics|tech"): each combination would be a class of its own."""
    import re

    distinct = list(dict.fromkeys(map(str, labels)))
    for sep in ("|", ";", ","):
        joined = [v for v in distinct if re.search(rf"\w\s*{re.escape(sep)}\s*\w", v)]
        parts = {p.strip() for v in joined for p in v.split(sep)}
        if len(joined) >= 2 and parts & set(distinct):
            import warnings

            warnings.warn(
                f"labels such as {joined[0]!r} and {joined[1]!r} look like label sets: each combination is trained "
                f"as a class of its own. For several labels per text pass --multi-label --label-sep '{sep}' "
                f"(Python: multi_label=True, label_sep='{sep}').",
                stacklevel=4,
            )
            return
