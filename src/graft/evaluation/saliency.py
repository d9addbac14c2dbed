"""Grad-CAM saliency maps for image models (timm CNNs and vision transformers) and their overlays.

Grad-CAM (Selvaraju et al., 2017) weights each channel of a feature map by the spatial mean of the target logit's
gradient with respect to it, sums the weighted channels and keeps the positive part. The map is computed on the
output of the backbone's ``forward_features`` by default (a ``(N, C, H, W)`` map for CNNs, ``(N, T, C)`` tokens for
vision transformers, whose patch tokens are laid back onto their grid), or on any sub-module's output.

Gradients are taken with :func:`torch.autograd.grad` on the activation only, so no ``.grad`` is left on the model's
parameters; the model runs in eval mode and every module's training flag is restored afterwards. matplotlib is
imported only when an overlay is drawn.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._utils import atomic_write_bytes
from ..errors import ConfigError, DataError, did_you_mean

__all__ = ["grad_cam", "overlay", "save_overlay", "saliency_mass_inside"]

#: opacity of the colour map where the saliency is 1 (it fades to 0 where the saliency is 0)
DEFAULT_ALPHA = 0.45


@dataclass
class _Site:
    """Where the activation is read and how to lay it out as a ``(N, C, h, w)`` map.

    Attributes:
        module: the hooked sub-module; ``None`` for the output of ``owner.forward_features``.
        owner: the timm-style model that has ``forward_features`` (token layout, output format), if any.
        channels_last: the 4D activation is ``(N, H, W, C)`` (timm models with ``output_fmt == "NHWC"``).
        captured: the activations seen during the forward pass (the last one is used).
    """

    module: nn.Module | None
    owner: nn.Module | None
    channels_last: bool = False
    captured: list[torch.Tensor] = field(default_factory=list)


def _feature_owner(model: nn.Module) -> nn.Module | None:
    """The model itself or its first sub-module with a ``forward_features`` method (the timm backbone)."""
    for module in model.modules():
        if callable(getattr(module, "forward_features", None)):
            return module
    return None


def _resolve_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """A sub-module of ``model`` from its name in ``model.named_modules()`` or the module itself.

    Raises:
        ConfigError: when no sub-module has that name, or the module is not part of ``model``.
    """
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise ConfigError(f"The layer {type(layer).__name__} given to grad_cam is not a sub-module of the model.")
        return layer
    modules = dict(model.named_modules())
    if layer not in modules:
        convs = [f"'{n}'" for n, m in modules.items() if isinstance(m, nn.Conv2d)][-3:]
        examples = f", e.g. one of its last convolutions: {', '.join(convs)}" if convs else ""
        raise ConfigError(
            f"The model has no sub-module named '{layer}'.{did_you_mean(layer, modules)} "
            f"Give a name listed by `model.named_modules()`{examples}."
        )
    return modules[layer]


def _site(model: nn.Module, layer: str | nn.Module | None) -> _Site:
    """Choose where the activation is read.

    Raises:
        ConfigError: for a default layer on a model without ``forward_features``.
    """
    owner = _feature_owner(model)
    if layer is not None:
        return _Site(module=_resolve_layer(model, layer), owner=owner)
    if owner is None:
        raise ConfigError(
            f"grad_cam found no feature map in {type(model).__name__}: neither it nor any sub-module has a timm-style "
            "`forward_features`. Pass `layer=` the name of a sub-module whose output is a (N, C, H, W) feature map."
        )
    blocks = getattr(owner, "blocks", None)
    if getattr(owner, "global_pool", None) == "token" and isinstance(blocks, (nn.Sequential, nn.ModuleList)):
        # The class token alone is pooled: the final patch tokens get no gradient. Read the last block's
        # normalised input instead, whose attention feeds the patch tokens into the class token.
        last = blocks[-1]
        if isinstance(getattr(last, "norm1", None), nn.Module):
            return _Site(module=last.norm1, owner=owner)
        if len(blocks) > 1:
            return _Site(module=blocks[-2], owner=owner)
        raise ConfigError(
            f"{type(owner).__name__} pools its class token only and has one block; pass `layer=` a module whose "
            "output holds the patch tokens."
        )
    return _Site(module=None, owner=owner, channels_last=str(getattr(owner, "output_fmt", "NCHW")) == "NHWC")


@contextlib.contextmanager
def _capturing(site: _Site) -> Iterator[None]:
    """Record the site's activation during the forward passes run inside the block."""

    def keep(value: Any) -> None:
        if isinstance(value, (tuple, list)) and value:
            value = value[0]
        if isinstance(value, torch.Tensor):
            site.captured.append(value)

    if site.module is not None:
        handle = site.module.register_forward_hook(lambda _m, _args, out: keep(out))
        try:
            yield
        finally:
            handle.remove()
        return
    owner = site.owner
    assert owner is not None
    shadowed = owner.__dict__.get("forward_features")
    original = owner.forward_features

    def forward_features(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        keep(out)
        return out

    owner.forward_features = forward_features  # an instance attribute: the class's forward calls it
    try:
        yield
    finally:
        if shadowed is None:
            del owner.forward_features
        else:
            owner.forward_features = shadowed


def _prefix_tokens(owner: nn.Module | None, tokens: int) -> int:
    """Leading non-patch tokens (class, distillation, register tokens) of a token sequence."""
    if owner is not None:
        n = getattr(owner, "num_prefix_tokens", None)
        if isinstance(n, int):
            return n
        if getattr(owner, "cls_token", None) is not None:
            return 1
        return 0
    return 0 if math.isqrt(tokens) ** 2 == tokens else 1


def _token_grid(owner: nn.Module | None, patches: int, height: int, width: int) -> tuple[int, int]:
    """Rows and columns of the patch grid holding ``patches`` tokens for an input of ``height`` x ``width``.

    Raises:
        ConfigError: when the patch count fits no grid of the input's aspect ratio.
    """
    grid = getattr(getattr(owner, "patch_embed", None), "grid_size", None)
    if grid is not None and len(grid) == 2 and int(grid[0]) * int(grid[1]) == patches:
        return int(grid[0]), int(grid[1])
    rows = max(1, round(math.sqrt(patches * height / width)))
    if patches % rows == 0:
        return rows, patches // rows
    raise ConfigError(
        f"grad_cam cannot lay {patches} patch tokens onto a grid for a {height}x{width} input; pass `layer=` a "
        "module whose output is a (N, C, H, W) feature map."
    )


def _as_map(act: torch.Tensor, site: _Site, height: int, width: int) -> torch.Tensor:
    """The activation (or its gradient) as ``(N, C, h, w)``.

    Raises:
        ConfigError: when it is neither a 4D map nor a 3D token sequence.
    """
    if act.ndim == 4:
        return act.permute(0, 3, 1, 2) if site.channels_last else act
    if act.ndim == 3:
        prefix = _prefix_tokens(site.owner, act.shape[1])
        patches = act[:, prefix:]
        rows, cols = _token_grid(site.owner, patches.shape[1], height, width)
        return patches.transpose(1, 2).reshape(act.shape[0], act.shape[2], rows, cols)
    where = "the output of forward_features" if site.module is None else f"the output of {type(site.module).__name__}"
    raise ConfigError(
        f"grad_cam needs a (N, C, H, W) feature map or (N, T, C) tokens, but {where} has shape {tuple(act.shape)}. "
        "Pass `layer=` a module whose output is a feature map."
    )


def _target_array(target: int | Sequence[int] | None, n: int) -> np.ndarray | None:
    """One class index per image (``None``: each image's predicted class).

    Raises:
        DataError: the targets are not integers, or not one per image.
    """
    if target is None:
        return None
    arr = np.asarray(target.detach().cpu() if isinstance(target, torch.Tensor) else target)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"grad_cam targets must be class indices (integers), got {arr.dtype} values.")
    if arr.ndim == 0:
        return np.full(n, int(arr), dtype=np.int64)
    if arr.shape != (n,):
        raise DataError(f"grad_cam got {arr.size} targets for {n} images; give one per image or a single int.")
    return arr.astype(np.int64)


def _targets(targets: np.ndarray | None, logits: torch.Tensor) -> torch.Tensor:
    """Class index per image of a batch: the given ones, or the predicted classes.

    Raises:
        DataError: a class index outside the logits.
    """
    if targets is None:
        return logits.argmax(1)
    classes = logits.shape[1]
    bad = sorted({int(t) for t in targets if not 0 <= t < classes})
    if bad:
        raise DataError(f"grad_cam target {bad[:5]} is outside the model's {classes} classes (0-{classes - 1}).")
    return torch.as_tensor(targets, device=logits.device)


def _cam_batch(model: nn.Module, x: torch.Tensor, targets: np.ndarray | None, site: _Site) -> torch.Tensor:
    """Grad-CAM maps ``(n, H, W)`` in [0, 1] for one batch."""
    height, width = x.shape[-2:]
    site.captured.clear()
    with _capturing(site):
        logits = model(x)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ConfigError(f"grad_cam needs a model that returns (N, classes) logits, got {type(logits).__name__}.")
    if not site.captured:
        raise ConfigError("The chosen layer did not run in the model's forward pass; choose another `layer=`.")
    act = site.captured[-1]
    if not act.requires_grad:
        raise ConfigError("The chosen layer's output does not depend on the input; choose another `layer=`.")
    picked = _targets(targets, logits)
    score = logits.gather(1, picked[:, None]).sum()
    (grad,) = torch.autograd.grad(score, act)
    site.captured.clear()
    fmap, gmap = _as_map(act.detach(), site, height, width), _as_map(grad, site, height, width)
    weights = gmap.float().mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * fmap.float()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=(height, width), mode="bilinear", align_corners=False)[:, 0].clamp_min(0)
    cam = torch.nan_to_num(cam, nan=0.0, posinf=0.0, neginf=0.0)
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak.clamp_min(torch.finfo(cam.dtype).tiny), torch.zeros_like(cam))


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: int | Sequence[int] | None = None,
    *,
    layer: str | nn.Module | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Grad-CAM saliency maps, one per input image.

    Args:
        model: maps ``(N, 3, H, W)`` inputs to ``(N, classes)`` logits, e.g. a
            :class:`~graft.tasks.classification.TransferModel` over a timm backbone.
        x: normalised input batch ``(N, 3, H, W)`` (as :func:`graft.estimators.image.center_crop_batch` builds it).
        target: the class to explain: one index for all images, one per image, or ``None`` for each image's
            predicted class.
        layer: where the feature map is read: a name from ``model.named_modules()`` or the module itself, whose
            output is a ``(N, C, h, w)`` map (or ``(N, T, C)`` tokens). Default: the output of the backbone's
            ``forward_features``; for vision transformers that pool the class token only, the last block's
            normalised input. An earlier CNN stage gives a finer map than the last one.
        batch_size: images per forward/backward pass.

    Returns:
        float32 array ``(N, H, W)``: the positive part of the class-weighted feature map, bilinearly resized to
        the input and divided by each map's maximum (a map without positive evidence is all zeros).

    Raises:
        ConfigError: the model has no usable feature map or the layer is unknown or unusable.
        DataError: ``x`` is not an image batch, or a target is out of range.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise DataError(f"grad_cam needs an image batch of shape (N, 3, H, W), got {getattr(x, 'shape', type(x))}.")
    targets = _target_array(target, len(x))
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
    site = _site(model, layer)
    param = next(model.parameters(), None)
    device = param.device if param is not None else x.device
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    maps: list[np.ndarray] = []
    try:
        with torch.inference_mode(False), torch.enable_grad():
            for start in range(0, len(x), batch_size):
                xb = x[start : start + batch_size].detach().clone().to(device=device, dtype=dtype)
                part = None if targets is None else targets[start : start + batch_size]
                cam = _cam_batch(model, xb.requires_grad_(True), part, site)
                maps.append(cam.float().cpu().numpy())
    finally:
        for module, training in flags:
            module.training = training
    if not maps:
        return np.zeros((0, *x.shape[-2:]), dtype=np.float32)
    return np.concatenate(maps).astype(np.float32, copy=False)


def _resize(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a 2D map to ``height`` x ``width``, clipped to [0, 1]."""
    t = torch.as_tensor(np.nan_to_num(np.asarray(cam, dtype=np.float32)))[None, None]
    if t.shape[-2:] != (height, width):
        t = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)
    return t[0, 0].clamp(0.0, 1.0).numpy()


def overlay(image: np.ndarray, cam: np.ndarray, *, alpha: float = DEFAULT_ALPHA, colormap: str = "jet") -> np.ndarray:
    """Draw a saliency map over an image.

    Args:
        image: uint8 ``(H, W, 3)`` (or ``(H, W)`` grey) image.
        cam: saliency map ``(h, w)`` in [0, 1], any size (resized to the image).
        alpha: opacity of the colour where the map is 1; it fades with the map, so zero saliency leaves the image.
        colormap: a name from ``matplotlib.colormaps`` (``"jet"``, ``"turbo"``).

    Returns:
        uint8 ``(H, W, 3)``.

    Raises:
        DataError: the image or map has the wrong shape.
        ConfigError: unknown colour map.
    """
    import matplotlib

    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise DataError(f"overlay needs an (H, W, 3) image, got shape {np.asarray(image).shape}.")
    cam = np.asarray(cam)
    if cam.ndim != 2:
        raise DataError(f"overlay needs a 2D saliency map, got shape {cam.shape}.")
    if colormap not in matplotlib.colormaps:
        raise ConfigError(f"Unknown colour map '{colormap}'.{did_you_mean(colormap, list(matplotlib.colormaps))}")
    weight = _resize(cam, img.shape[0], img.shape[1])
    colours = matplotlib.colormaps[colormap](weight)[..., :3] * 255.0
    a = (float(alpha) * weight)[..., None]
    base = img.astype(np.float32) if img.dtype == np.uint8 else np.clip(img.astype(np.float32), 0, 255)
    return np.clip(base * (1.0 - a) + colours * a + 0.5, 0, 255).astype(np.uint8)


def save_overlay(
    path: str | os.PathLike[str], image: np.ndarray, cam: np.ndarray, *, alpha: float = DEFAULT_ALPHA
) -> Path:
    """Write :func:`overlay` ``(image, cam)`` as a PNG, atomically (a temporary file in the folder, then a rename).

    Args:
        path: the PNG file; its folder is created.
        image: uint8 ``(H, W, 3)`` image.
        cam: saliency map ``(h, w)`` in [0, 1].
        alpha: opacity of the colour where the map is 1.

    Returns:
        The path written.
    """
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(overlay(image, cam, alpha=alpha)).save(buf, format="PNG")
    out = Path(path)
    atomic_write_bytes(out, buf.getvalue())
    return out


def saliency_mass_inside(cam: np.ndarray, mask: np.ndarray) -> float:
    """Share of a saliency map's total mass inside a boolean mask of the same shape (0 for an all-zero map).

    Raises:
        DataError: the shapes differ.
    """
    cam, mask = np.asarray(cam, dtype=np.float64), np.asarray(mask, dtype=bool)
    if cam.shape != mask.shape:
        raise DataError(f"saliency map {cam.shape} and mask {mask.shape} differ in shape.")
    cam = np.clip(np.nan_to_num(cam), 0.0, None)
    total = float(cam.sum())
    return float(cam[mask].sum()) / total if total > 0 else 0.0
