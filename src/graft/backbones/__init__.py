"""Where pretrained networks come from: timm, the embedded offline models, local weight files."""

from __future__ import annotations

from ._registry import BackboneEntry, backbone_rows, create_backbone, get_entry, list_backbones, register_backbone
from .base import Backbone, Preprocessing

__all__ = [
    "Backbone",
    "BackboneEntry",
    "backbone_rows",
    "Preprocessing",
    "create_backbone",
    "get_entry",
    "list_backbones",
    "register_backbone",
]
