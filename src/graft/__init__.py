"""Graft: adapt pretrained models to small new tasks, offline.

Example:
    >>> import graft
    >>> clf = graft.ImageClassifier("efficientnet_lite0", strategy="fine-tune")  # doctest: +SKIP
    >>> clf.fit("data/train", val="data/val").evaluate("data/test")  # doctest: +SKIP
    >>> clf.save("runs/ants"); model = graft.load("runs/ants")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import BundleError, ConfigError, DataError, GraftError

__version__ = "0.1.0"

__all__ = [
    "BundleError",
    "ConfigError",
    "DataError",
    "EmbeddingClassifier",
    "GraftError",
    "ImageClassifier",
    "TabularClassifier",
    "TextClassifier",
    "TokenClassifier",
    "__version__",
    "adapt",
    "compare",
    "load",
    "strategies",
]

if TYPE_CHECKING:
    from . import adapt, strategies
    from .estimators.bundles import load
    from .estimators.embedding import EmbeddingClassifier
    from .estimators.image import ImageClassifier
    from .estimators.tabular import TabularClassifier
    from .estimators.text import TextClassifier
    from .estimators.tokens import TokenClassifier
    from .selection.compare import compare

_LAZY = {
    "TextClassifier": ("estimators.text", "TextClassifier"),
    "EmbeddingClassifier": ("estimators.embedding", "EmbeddingClassifier"),
    "TokenClassifier": ("estimators.tokens", "TokenClassifier"),
    "ImageClassifier": ("estimators.image", "ImageClassifier"),
    "TabularClassifier": ("estimators.tabular", "TabularClassifier"),
    "load": ("estimators.bundles", "load"),
    "strategies": ("strategies", None),
    "adapt": ("adapt", None),
    "compare": ("selection.compare", "compare"),
}


def __getattr__(name: str) -> Any:
    """Import torch-heavy parts on first use, so ``import graft`` and ``graft --help`` stay instant."""
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        module = importlib.import_module(f".{module_name}", __name__)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'graft' has no attribute '{name}'")
