"""Any Hugging Face ``transformers`` AutoModel as a text backbone: BERT, RoBERTa, DistilBERT, MiniLM, GPT-2, ...

The encoder returns pooled sentence features for classification (``forward``) and per-token hidden states for
token classification (``token_features``). Pooling is chosen per architecture (mean over tokens for encoders,
the last real token for causal language models) and can be overridden.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .base import Backbone

__all__ = ["TextEncoder", "create_hf_backbone", "hf_layer_groups", "default_pooling", "POOLINGS"]

POOLINGS = ("mean", "cls", "last")
_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")


def default_pooling(config: Any) -> str:
    """``last`` for decoder-only (causal) models, ``mean`` otherwise (sentence-transformers' choice)."""
    archs = " ".join(getattr(config, "architectures", None) or []).lower()
    causal = (
        getattr(config, "is_decoder", False)
        or "causallm" in archs
        or "lmhead" in archs
        or config.model_type
        in {
            "gpt2",
            "gpt_neo",
            "gpt_neox",
            "gptj",
            "llama",
            "mistral",
            "qwen2",
            "qwen3",
            "phi",
            "phi3",
            "gemma",
            "gemma2",
            "opt",
            "bloom",
            "falcon",
            "olmo",
            "smollm3",
        }
    )
    return "last" if causal else "mean"


class TextEncoder(nn.Module):
    """Wraps a ``transformers`` base model; ``forward(batch) -> (N, hidden)`` pooled features.

    Args:
        model: an ``AutoModel`` (no task head).
        pooling: ``mean`` (masked mean of the last hidden states), ``cls`` (first token) or ``last`` (last
            non-padding token; for causal LMs).
    """

    def __init__(self, model: nn.Module, pooling: str) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}; got '{pooling}'.")
        self.model = model
        self.pooling = pooling

    def token_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Last hidden states ``(N, L, hidden)``."""
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        if "token_type_ids" in inputs and not _accepts_token_types(self.model):
            inputs.pop("token_type_ids")
        return self.model(**inputs).last_hidden_state

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.token_features(batch)
        mask = batch["attention_mask"]
        if self.pooling == "cls":
            return h[:, 0]
        if self.pooling == "last":
            # right padding: the last real token is at (sum of mask - 1); left padding: at the end
            idx = (mask.sum(dim=1) - 1).clamp(min=0)
            if bool((mask[:, -1] == 1).all()):
                idx = torch.full_like(idx, mask.shape[1] - 1)
            return h[torch.arange(h.shape[0], device=h.device), idx]
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


def _accepts_token_types(model: nn.Module) -> bool:
    import inspect

    return "token_type_ids" in inspect.signature(model.forward).parameters


def hf_layer_groups(model: nn.Module) -> list[list[str]]:
    """Parameter names grouped embeddings → each transformer layer → final norm/pooler (names of ``model``)."""
    embeddings: list[str] = []
    layers: dict[int, list[str]] = {}
    top: list[str] = []
    for name, _ in model.named_parameters():
        m = _LAYER_INDEX.search("." + name)
        if m:
            layers.setdefault(int(m.group(1)), []).append(name)
        elif any(k in name for k in ("embed", "wte", "wpe", "word_", "position_")):
            embeddings.append(name)
        else:
            top.append(name)
    groups = [embeddings] + [layers[i] for i in sorted(layers)] + [top]
    return [g for g in groups if g]


def create_hf_backbone(
    name: str,
    *,
    pretrained: bool = True,
    weights: str | None = None,
    pooling: str | None = None,
    max_length: int = 128,
    config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Backbone:
    """Build a text backbone from a Hugging Face model id or local folder.

    Args:
        name: hub id (``bert-base-uncased``) or a local folder with ``config.json``.
        pretrained: load the weights (``False`` builds from the config with random weights).
        weights: a local safetensors/PyTorch state dict to load instead.
        pooling: ``mean``, ``cls`` or ``last`` (default per architecture).
        max_length: longest tokenised input; longer texts are truncated.
        config: a config dict to build from instead of ``name``'s (tests: tiny random models).
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one "Loading weights" bar per model is noise in Graft's own output
    try:
        if config is not None:
            cfg_dict = dict(config)
            model_type = cfg_dict.pop("model_type")
            cfg = AutoConfig.for_model(model_type, **cfg_dict)
        else:
            cfg = AutoConfig.from_pretrained(name)
        if pretrained and weights is None and config is None:
            model = AutoModel.from_pretrained(name)
        else:
            model = AutoModel.from_config(cfg)
        tokenizer = AutoTokenizer.from_pretrained(name if config is None else kwargs.pop("tokenizer", name))
    except (OSError, ValueError) as e:
        local = Path(name).exists()
        raise ConfigError(
            f"Could not load the Hugging Face model '{name}' ({str(e).splitlines()[0][:200]}). "
            + (
                "Check the folder holds config.json, weights and tokenizer files."
                if local
                else "Without internet, use the offline 'minilm' (see `graft models`), a local model folder, or a "
                "filled Hugging Face cache."
            )
        ) from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if weights is not None:
        from .timm import load_state_dict_file

        state = load_state_dict_file(weights)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing:
            raise ConfigError(f"'{weights}' does not fit '{name}': missing {list(missing)[:3]}.")
    if tokenizer.pad_token is None:  # GPT-2 and other causal LMs ship without one
        if tokenizer.eos_token is None:
            raise ConfigError(
                f"The tokenizer of '{name}' has neither a padding nor an end-of-sequence token, so "
                "texts cannot be batched. Add one to its tokenizer_config.json (pad_token)."
            )
        tokenizer.pad_token = tokenizer.eos_token
    pool = pooling or default_pooling(model.config)
    encoder = TextEncoder(model, pool)
    hidden = int(getattr(model.config, "hidden_size", 0) or getattr(model.config, "n_embd", 0) or model.config.d_model)
    backbone = Backbone(
        module=encoder,
        modality="text",
        feature_dim=hidden,
        spec={"source": "huggingface", "name": str(name), "pooling": pool, "max_length": int(max_length)},
        groups=[["model." + n for n in g] for g in hf_layer_groups(model)],
        tokenizer=tokenizer,
        config=model.config,
    )
    return backbone
