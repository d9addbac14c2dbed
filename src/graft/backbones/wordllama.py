"""WordLlama ``l2_supercat``: offline static token embeddings for text, from the ``wordllama`` pip package.

WordLlama (D. Miller, 2024) keeps the token-embedding table of Llama-2-70B's tokenizer vocabulary (32,000 tokens),
projected and trained with a matryoshka loss on sentence-pair data, so a text's embedding is just the mean of its
tokens' vectors: no attention, no positions. The package ships the 256-d table
(``wordllama/weights/l2_supercat_256.safetensors``, float16) and its tokenizer
(``wordllama/tokenizers/l2_supercat_tokenizer_config.json``); the 64-d and 128-d models are the table's first 64 /
128 columns (the matryoshka truncation ``WordLlama.load(trunc_dim=...)`` makes).

Embedding as ``WordLlamaInference.embed`` does it: tokenise without special tokens (no ``<s>``), pad, mean the token
vectors over the attention mask (at least one token counted), no normalisation. The one difference: Graft truncates
inputs to ``max_length`` tokens (WordLlama does not truncate), the same as for every other text backbone.

The files are found with :func:`importlib.util.find_spec` and read with ``safetensors`` and ``tokenizers``; the
``wordllama`` package itself is never imported. A bundle stores the table and the tokenizer, so it loads without it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ._registry import register_backbone
from .base import Backbone

__all__ = ["StaticEmbeddingConfig", "StaticEncoder", "wordllama_files", "static_backbone", "MODEL_TYPE", "DIMS"]

MODEL_TYPE = "graft-static-embedding"
#: the dimensions offered: the shipped 256 and its matryoshka truncations
DIMS = (64, 128, 256)
_PACKAGE = "wordllama"
_WEIGHTS = "weights/l2_supercat_256.safetensors"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
_TENSOR = "embedding.weight"


@dataclass
class StaticEmbeddingConfig:
    """The architecture of a static-embedding encoder; saved as the bundle's ``backbone_config.json``."""

    vocab_size: int
    hidden_size: int
    model_type: str = MODEL_TYPE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StaticEncoder(nn.Module):
    """A token-embedding table and a masked mean: ``forward(batch) -> (N, hidden_size)``.

    Args:
        vocab_size: rows of the table; token ids beyond it are clipped to the last row (as WordLlama does).
        hidden_size: columns of the table, the feature size.
        table: the pretrained ``(vocab_size, hidden_size)`` table (``None``: random, to be loaded later).

    Shape:
        batch["input_ids"], batch["attention_mask"]: (N, L); output: (N, hidden_size).
    """

    def __init__(self, vocab_size: int, hidden_size: int, table: torch.Tensor | None = None) -> None:
        super().__init__()
        if table is not None and tuple(table.shape) != (vocab_size, hidden_size):
            raise ConfigError(f"the embedding table is {tuple(table.shape)}; expected ({vocab_size}, {hidden_size}).")
        self.embedding = (
            nn.Embedding(vocab_size, hidden_size)
            if table is None
            else nn.Embedding.from_pretrained(table.float().clone(), freeze=False)
        )

    def token_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token vectors ``(N, L, hidden_size)``."""
        ids = batch["input_ids"].clamp(0, self.embedding.num_embeddings - 1)
        return self.embedding(ids)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.token_features(batch)
        m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)
        return (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec(_PACKAGE)  # finds the folder without importing the package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _available() -> bool:
    root = _package_dir()
    return root is not None and (root / _WEIGHTS).is_file() and (root / _TOKENIZER).is_file()


def wordllama_files() -> tuple[Path, Path]:
    """``(weights, tokenizer)`` paths inside the installed ``wordllama`` package.

    Raises:
        ConfigError: the package (or one of its files) is not installed.
    """
    root = _package_dir()
    if root is None:
        raise ConfigError(
            "wordllama's weights come from the pip package 'wordllama', which is not installed. "
            'Run `pip install "graft[zoo]"` (or `pip install wordllama`).'
        )
    weights, tokenizer = root / _WEIGHTS, root / _TOKENIZER
    for f in (weights, tokenizer):
        if not f.is_file():
            raise ConfigError(
                f"The installed 'wordllama' package lacks {f.relative_to(root)}. Reinstall it with "
                "`pip install --force-reinstall wordllama` (version 0.4 or later)."
            )
    return weights, tokenizer


def _tokenizer(path: Path) -> Any:
    """The package's Llama-2 tokenizer as a ``transformers`` fast tokenizer that adds no special tokens."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(path),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="</s>",  # padded positions are masked out of the mean; the id does not matter
        padding_side="right",
    )
    tokenizer.backend_tokenizer.post_processor = None  # WordLlama embeds with add_special_tokens=False: no <s>
    return tokenizer


def static_backbone(
    config: StaticEmbeddingConfig, tokenizer: Any, spec: dict[str, Any], table: torch.Tensor | None = None
) -> Backbone:
    """A :class:`Backbone` around a :class:`StaticEncoder` (random weights unless ``table`` is given)."""
    return Backbone(
        module=StaticEncoder(config.vocab_size, config.hidden_size, table),
        modality="text",
        feature_dim=config.hidden_size,
        spec=spec,
        groups=[["embedding.weight"]],
        tokenizer=tokenizer,
        config=config,
    )


def _wordllama(
    dim: int,
    *,
    pretrained: bool = True,
    weights: str | None = None,
    max_length: int = 128,
    pooling: str | None = None,
    config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Backbone:
    name = "wordllama" if dim == 256 else f"wordllama_{dim}"
    if pooling not in (None, "mean"):
        raise ConfigError(f"{name} averages its token vectors; pooling must be 'mean' (or unset), got '{pooling}'.")
    if config is not None:
        raise ConfigError(
            f"backbone_config builds a transformers model; {name} is a static embedding table. Leave it unset."
        )
    weights_path, tokenizer_path = wordllama_files()
    from safetensors import safe_open

    with safe_open(str(weights_path), framework="pt") as f:
        vocab = int(f.get_slice(_TENSOR).get_shape()[0])
        table = f.get_tensor(_TENSOR)[:, :dim].float() if pretrained and weights is None else None
    if weights is not None:
        from .timm import load_state_dict_file

        state = load_state_dict_file(weights)
        table = state.get(_TENSOR)
        if table is None or tuple(table.shape) != (vocab, dim):
            raise ConfigError(f"'{weights}' does not fit {name}: it needs '{_TENSOR}' of shape ({vocab}, {dim}).")
    spec = {"source": "embedded", "name": name, "pooling": "mean", "max_length": int(max_length)}
    return static_backbone(StaticEmbeddingConfig(vocab, dim), _tokenizer(tokenizer_path), spec, table)


def wordllama(*, pretrained: bool = True, weights: str | None = None, **kwargs: Any) -> Backbone:
    """WordLlama l2_supercat, 256-d, offline (package ``wordllama``, extra ``zoo``)."""
    return _wordllama(256, pretrained=pretrained, weights=weights, **kwargs)


def wordllama_128(*, pretrained: bool = True, weights: str | None = None, **kwargs: Any) -> Backbone:
    """WordLlama l2_supercat truncated to its first 128 dimensions (matryoshka)."""
    return _wordllama(128, pretrained=pretrained, weights=weights, **kwargs)


def wordllama_64(*, pretrained: bool = True, weights: str | None = None, **kwargs: Any) -> Backbone:
    """WordLlama l2_supercat truncated to its first 64 dimensions (matryoshka)."""
    return _wordllama(64, pretrained=pretrained, weights=weights, **kwargs)


for _dim, _build in ((256, wordllama), (128, wordllama_128), (64, wordllama_64)):
    register_backbone(
        "wordllama" if _dim == 256 else f"wordllama_{_dim}",
        _build,
        modality="text",
        description=f"WordLlama l2_supercat static token embeddings (Llama-2 vocab), {32_000 * _dim / 1e6:.1f}M "
        f"params, {_dim}-d" + (" (matryoshka cut of the 256-d)" if _dim < 256 else "") + ", mean-pooled, English",
        offline=_available,
    )
