"""Backbones for tables: an MLP over numbers and categorical embeddings, and an FT-Transformer.

Both take one float32 tensor ``(N, n_numeric + n_categorical)`` as :class:`graft.data.tabular.TableSchema` writes it
(standardised numbers, then category codes) and return pooled features ``(N, feature_dim)``. Trained on a source
table and saved in a bundle, either becomes the pretrained backbone of a target task (``backbone=RUN``).

FT-Transformer: Gorishniy et al., "Revisiting Deep Learning Models for Tabular Data", NeurIPS 2021 (every feature
becomes a token, a [CLS] token's output is the representation).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Backbone

__all__ = ["TabularMLP", "FTTransformer", "TABULAR_ARCHITECTURES", "build_tabular"]

TABULAR_ARCHITECTURES = ("mlp", "ft-transformer")


def _embedding_dim(cardinality: int) -> int:
    return int(min(32, max(2, round(1.6 * cardinality**0.56))))  # fastai's rule of thumb


class TabularMLP(nn.Module):
    """Numbers and categorical embeddings → ``len(hidden)`` blocks of Linear → BatchNorm → ReLU → Dropout."""

    def __init__(
        self, n_numeric: int, cardinalities: list[int], hidden: tuple[int, ...] = (128, 64), dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.n_numeric = n_numeric
        self.embeddings = nn.ModuleList(nn.Embedding(c, _embedding_dim(c)) for c in cardinalities)
        width = n_numeric + sum(e.embedding_dim for e in self.embeddings)
        blocks: list[nn.Module] = []
        for h in hidden:
            blocks.append(nn.Sequential(nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout)))
            width = h
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x[:, : self.n_numeric]]
        codes = x[:, self.n_numeric :].long()
        parts += [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.blocks(torch.cat(parts, dim=1))


class FTTransformer(nn.Module):
    """Feature tokenizer (a vector per number, an embedding per category) + Transformer encoder; the [CLS] output."""

    def __init__(
        self,
        n_numeric: int,
        cardinalities: list[int],
        d_model: int = 32,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_numeric = n_numeric
        self.num_weight = nn.Parameter(torch.randn(n_numeric, d_model) * 0.1)
        self.num_bias = nn.Parameter(torch.zeros(n_numeric, d_model))
        self.embeddings = nn.ModuleList(nn.Embedding(c, d_model) for c in cardinalities)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.feature_dim = d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = [x[:, : self.n_numeric, None] * self.num_weight + self.num_bias]
        codes = x[:, self.n_numeric :].long()
        tokens += [emb(codes[:, i])[:, None] for i, emb in enumerate(self.embeddings)]
        h = torch.cat([self.cls.expand(x.shape[0], -1, -1), *tokens], dim=1)
        return self.norm(self.encoder(h)[:, 0])


def build_tabular(spec: dict[str, Any]) -> Backbone:
    """A randomly initialised tabular backbone from its spec (``architecture``, ``n_numeric``, ``cardinalities``,
    and the architecture's sizes)."""
    arch = spec["architecture"]
    n_numeric, cards = int(spec["n_numeric"]), [int(c) for c in spec["cardinalities"]]
    module: TabularMLP | FTTransformer
    if arch == "mlp":
        module = TabularMLP(n_numeric, cards, tuple(spec.get("hidden", (128, 64))), float(spec.get("dropout", 0.1)))
        groups = [[n for n, _ in module.named_parameters() if n.startswith("embeddings")]]
        groups += [
            [n for n, _ in module.named_parameters() if n.startswith(f"blocks.{i}.")] for i in range(len(module.blocks))
        ]
    else:
        module = FTTransformer(
            n_numeric, cards, int(spec.get("d_model", 32)), int(spec.get("layers", 2)), int(spec.get("heads", 4))
        )
        groups = [[n for n, _ in module.named_parameters() if not n.startswith(("encoder", "norm"))]]
        groups += [
            [n for n, _ in module.named_parameters() if n.startswith(f"encoder.layers.{i}.")]
            for i in range(len(module.encoder.layers))
        ]
        groups += [[n for n, _ in module.named_parameters() if n.startswith("norm")]]
    return Backbone(
        module=module,
        modality="tabular",
        feature_dim=module.feature_dim,
        spec=dict(spec),
        groups=[g for g in groups if g],
    )
