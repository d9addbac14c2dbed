"""How pretrained weights are reused: one module per strategy, one registry."""

from __future__ import annotations

from .adaptation import CDAN, CORAL, DAN, DANN, MCC, AdaBN, AdaptationStrategy, SelfTraining, SourceOnly
from .base import Strategy, get_strategy, list_strategies, register_strategy, resolve_strategy
from .feature_extraction import FeatureExtraction
from .few_shot import FewShot
from .finetune import FineTune
from .importance import KLIEP, KMM, ImportanceWeighting
from .lora import LoRA

__all__ = [
    "AdaBN",
    "AdaptationStrategy",
    "CDAN",
    "CORAL",
    "DAN",
    "DANN",
    "MCC",
    "SelfTraining",
    "SourceOnly",
    "FeatureExtraction",
    "FewShot",
    "FineTune",
    "ImportanceWeighting",
    "KLIEP",
    "KMM",
    "LoRA",
    "Strategy",
    "get_strategy",
    "list_strategies",
    "register_strategy",
    "resolve_strategy",
]
