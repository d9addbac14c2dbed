"""What text and token estimators share: building the language-model backbone, batching token ids, and the
backbone's bundle files (its config and tokenizer, so a bundle loads offline with nothing downloaded)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backbones import Backbone, create_backbone
from ..backbones.wordllama import MODEL_TYPE as STATIC_MODEL_TYPE
from ..backbones.wordllama import StaticEmbeddingConfig, static_backbone
from ..bundle import _DAMAGED
from ..errors import BundleError, ConfigError

__all__ = ["TextBatcher", "build_text_backbone", "text_backbone_from_bundle", "save_text_files", "text_cache_parts"]


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


def build_text_backbone(
    name: str,
    *,
    pretrained: bool,
    weights: str | None,
    max_length: int,
    pooling: str | None,
    config: dict[str, Any] | None,
) -> Backbone:
    """A Hugging Face encoder/decoder as a pooled text backbone; ``config`` builds it with random weights instead."""
    if max_length < 2:
        raise ConfigError(f"max_length must be >= 2 tokens; got {max_length}.")
    kwargs: dict[str, Any] = {"max_length": int(max_length), "pooling": pooling}
    if config is not None:
        kwargs["config"] = config
        pretrained = False
    return create_backbone(name, modality="text", pretrained=pretrained, weights=weights, **kwargs)


def save_text_files(backbone: Backbone, directory: Path) -> list[Path]:
    """The tokenizer and the architecture's config, so the bundle loads without the hub; returns the files written."""
    from .._utils import atomic_write_json

    written = backbone.tokenizer.save_pretrained(str(directory / "tokenizer"))
    atomic_write_json(directory / "backbone_config.json", backbone.config.to_dict())
    return sorted({Path(f) for f in written if Path(f).is_file()}) + [directory / "backbone_config.json"]


def text_backbone_from_bundle(path: Path, manifest: dict[str, Any]) -> Backbone:
    """The bundle's architecture (its saved config and tokenizer) with random weights; nothing downloaded."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from ..backbones.huggingface import TextEncoder

    cfg_path, tok_dir = path / "backbone_config.json", path / "tokenizer"
    if not cfg_path.exists() or not tok_dir.is_dir():
        raise BundleError(f"'{path}' lacks backbone_config.json or tokenizer/: it is not a complete text bundle.")
    try:
        cfg_dict = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as e:
        raise BundleError(f"'{cfg_path}' cannot be read ({e}).{_DAMAGED}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    except Exception as e:  # the tokenizers library raises its own exception types for a damaged file
        raise BundleError(f"'{tok_dir}' cannot be read as a tokenizer ({str(e)[:200]}).{_DAMAGED}") from None
    spec = dict(manifest["backbone"])
    if cfg_dict.get("model_type") == STATIC_MODEL_TYPE:  # a token-embedding table (wordllama), not transformers
        return static_backbone(StaticEmbeddingConfig(**cfg_dict), tokenizer, spec)
    config = AutoConfig.for_model(cfg_dict.pop("model_type"), **cfg_dict)
    model = AutoModel.from_config(config)
    return Backbone(
        module=TextEncoder(model, spec["pooling"]),
        modality="text",
        feature_dim=int(manifest["feature_dim"]),
        spec=spec,
        tokenizer=tokenizer,
        config=config,
    )


def text_cache_parts(backbone: Backbone, path: str) -> dict[str, Any]:
    """What besides the weights decides a text embedding: the tokenizer and the numeric path."""
    tok = backbone.tokenizer
    return {"tokenizer": [type(tok).__name__, len(tok), tok.padding_side], "path": path}
