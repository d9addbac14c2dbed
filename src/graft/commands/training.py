"""``graft train``: the task of a data path, strategy settings from ``--set``, and the estimator for a task."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from ..errors import ConfigError, did_you_mean

__all__ = ["resolve_task", "parse_set", "make_estimator"]


def resolve_task(data: Path, task: str, *, text_columns: bool = False) -> str:
    """``task``, or the task detected from ``data`` when it is ``auto`` (``text_columns``: a text column was named,
    so a table is text classification).

    Raises:
        ConfigError: if ``task`` is not a known task name.
        DataError: if ``data`` holds nothing recognisable.
    """
    from ..data import TASKS, detect_task

    if task == "auto":
        found = detect_task(data)
        # a named text column makes a table a text task (free text under an unusual name can look like an ID)
        return "text-classification" if text_columns and found == "tabular-classification" else found
    if task not in TASKS:
        raise ConfigError(f"Unknown task '{task}'.{did_you_mean(task, TASKS)} Choose from {', '.join(TASKS)}.")
    return task


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as a dict; values are Python literals (``0.9``, ``true``, ``None``) or strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise ConfigError(f"--set takes KEY=VALUE, e.g. --set lr_decay=0.9; got '{item}'.")
        raw = raw.strip()
        literal = {"true": "True", "false": "False", "none": "None", "null": "None"}.get(raw.lower(), raw)
        try:
            out[key] = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def make_estimator(
    task: str,
    model: str | None,
    strategy: str,
    *,
    image: dict[str, Any],
    text: dict[str, Any],
    deep: bool = False,
    strategy_params: dict[str, Any] | None = None,
    tabular: dict[str, Any] | None = None,
    **common: Any,
) -> Any:
    """The estimator ``graft train`` builds for ``task``.

    Args:
        task: a resolved task name (see :func:`resolve_task`).
        model: the backbone, or None for the task's default (efficientnet_lite0 / minilm).
        strategy: the strategy name.
        image: options only image models take (augment, skip_invalid, image_size).
        text: options of text models (max_length; for text classification also the column and multi-label
            options).
        tabular: options of table models (label column, cost, class weight, calibration).
        deep: domain adaptation that trains the backbone too (``deep=True`` of the adaptation strategies).
        strategy_params: strategy parameters from ``--set KEY=VALUE`` (unknown names and values of the wrong type
            are a ConfigError).
        **common: options every estimator takes (epochs, lr, seed, device, output_dir, ...).
    """
    from ..estimators.image import ImageClassifier
    from ..estimators.text import TextClassifier
    from ..estimators.tokens import TokenClassifier
    from ..strategies import get_strategy, resolve_strategy

    params = dict(strategy_params or {})
    if deep:
        if not get_strategy(strategy).supports_deep:
            raise ConfigError(
                f"--deep is for domain-adaptation strategies that train a backbone (dann, coral, ...); "
                f"'{strategy}' is not one."
            )
        params["deep"] = True
    resolved = resolve_strategy(strategy, **params)
    resolved.validate()
    if task == "tabular-classification":
        from ..estimators.tabular import TabularClassifier

        for name in ("weights", "cache"):  # image/text-only settings
            common.pop(name, None)
        common["epochs"] = 30 if common.get("epochs") is None else common["epochs"]
        return TabularClassifier(model or "mlp", resolved, **(tabular or {}), **common)
    if task == "image-classification":
        return ImageClassifier(model or "efficientnet_lite0", resolved, **image, **common)
    if task == "token-classification":
        return TokenClassifier(model or "minilm", resolved, max_length=text.get("max_length", 128), **common)
    return TextClassifier(model or "minilm", resolved, **text, **common)
