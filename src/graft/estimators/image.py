"""Image classification by transfer learning: :class:`ImageClassifier`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from ..backbones import Backbone, Preprocessing, create_backbone
from ..data.images import center_crop
from ..errors import ConfigError, DataError
from ..strategies.base import Strategy
from ..tasks.base import Task, label_key
from ..tasks.classification import SingleLabel
from ._fitting import FitData, split_val
from .base import TransferEstimator

__all__ = ["ImageClassifier"]

_AUGMENT = ("default", "strong", "none")


def _is_path_like(x: Any) -> bool:
    return isinstance(x, (str, Path))


def center_crop_batch(images: list[np.ndarray], pre: Preprocessing, flip: bool = False) -> torch.Tensor:
    """Centre-crop pre-resized uint8 images and normalise: ``(N, 3, S, S)`` float32, channels-last memory.

    The images already have their shortest side at ``pre.resize_size`` (resized once when read), so this equals
    timm's eval transform (resize shortest side, centre crop, normalise) without resizing again.
    """
    crops = [center_crop(a, pre.input_size) for a in images]
    if flip:
        crops = [c[:, ::-1] for c in crops]
    # normalised in NHWC order with numpy (the same float32 operations as on the NCHW tensor, several times faster
    # for one image); the NCHW view of the NHWC array is already channels-last
    x = np.stack(crops).astype(np.float32)
    x /= np.float32(255.0)
    x -= np.asarray(pre.mean, np.float32)
    x /= np.asarray(pre.std, np.float32)
    return torch.from_numpy(x).permute(0, 3, 1, 2)


def _checked_decoded(images: Any, short_side: int) -> Any:
    """An :class:`~graft.data.images.ImageSet` given as input, if its images were resized for this model."""
    for src, a in zip(images.sources, images.images):
        if a is None or a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) != short_side:
            got = "no image" if a is None else f"shape {a.shape}"
            raise DataError(
                f"decoded image '{src}' has {got}; the model reads RGB images with their shortest side at "
                f"{short_side}: decode with load_images(..., short_side={short_side}) or pass the files."
            )
    return images


class _AugmentedImages(Dataset):
    """Training items: a timm training transform applied to the cached, pre-resized images."""

    def __init__(self, images: list[np.ndarray], y: np.ndarray, transform: Callable[[Image.Image], torch.Tensor]):
        self.images, self.y, self.transform = images, torch.from_numpy(y), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(Image.fromarray(self.images[i])), self.y[i]


class _TwoViews(Dataset):
    """Unlabelled items ``((weak, strong), 0)``: two augmentations of one image (FixMatch, Sohn et al. 2020)."""

    def __init__(
        self, images: list[np.ndarray], weak: Callable[..., torch.Tensor], strong: Callable[..., torch.Tensor]
    ):
        self.images, self.weak, self.strong = images, weak, strong

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
        im = Image.fromarray(self.images[i])
        return (self.weak(im), self.strong(im)), 0


class ImageClassifier(TransferEstimator):
    """Adapt a pretrained image model to a new classification task.

    Args:
        backbone: registered name (offline default ``efficientnet_lite0``), any timm model name, or
            ``hf-hub:...``. See ``graft models``.
        strategy: ``"fine-tune"``, ``"feature-extraction"``, or a :class:`graft.strategies.Strategy`.
        epochs: training epochs (default: the strategy's).
        lr: base learning rate (default: the strategy's).
        batch_size: images per step.
        weight_decay: AdamW weight decay.
        grad_accum: gradient-accumulation steps.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` for training.
        schedule: ``cosine``, ``one-cycle`` or ``constant``.
        patience: early-stopping patience in epochs (``None``: train all epochs, keep the best).
        val_fraction: share of the training data held out for validation when no validation set is given.
        augment: ``default`` (random resized crop, flip, colour jitter), ``strong`` (+ RandAugment) or ``none``.
        seed: random seed (data order, augmentation, initialisation).
        device: ``auto``, ``cpu``, ``cuda``, ...
        pretrained: load pretrained weights (``False`` is for tests and training from scratch).
        weights: local checkpoint for the backbone (safetensors or weights-only PyTorch file).
        cache: keep frozen-backbone embeddings on disk (``$GRAFT_CACHE_DIR``, default ``~/.cache/graft``).
        skip_invalid: leave out unreadable images (and report them) instead of failing.
        output_dir: run directory for checkpoints, ``metrics.jsonl``, plots and the final bundle.
        overwrite: replace an existing ``output_dir``.
        verbose: progress bars and per-epoch lines; ``None`` (default): when a person is watching (a terminal or a
            notebook), as Keras and fastai do.
        log_with: also send every epoch's metrics to an experiment tracker of Accelerate (``"tensorboard"``:
            ``pip install tensorboard``; then ``tensorboard --logdir RUN/logs``); needs ``output_dir``.
        backend: how the frozen network runs for embeddings, ``predict`` and ``evaluate``: ``torch`` (eager),
            ``onnxruntime``, ``openvino`` (CPU, fp32), or ``auto`` (the fastest of eager and the installed ones on this
            machine, timed once and cached, among those that agree with eager fp32 within a relative error of 1e-4).
        backbone_kwargs: extra keyword arguments for ``timm.create_model``.
        image_size: input resolution instead of the backbone's pretraining one (e.g. 96 for speed on tiny
            images); the resize-then-crop ratio is kept.
        group_column: the CSV column of each image's group (patient, study): the validation split keeps groups whole,
            and ``evaluate`` refuses data whose groups were in training. Without it, a CSV column named ``patient_id``,
            ``patient``, ``subject_id``, ``study_id``, ... (:data:`graft.data.image_folders.GROUP_COLUMNS`) is used.
        clinical: report clinical metrics (per-class AUROC with bootstrap 95% CIs, sensitivity, specificity, PPV,
            NPV and F1 at an operating threshold chosen on validation); ``None``: when ``group_column``,
            ``operating_point``, ``ordinal``, ``class_weight`` or ``sampler`` is given.
        operating_point: how the per-class threshold of the clinical metrics is chosen on validation: ``"youden"``
            (default) or a target sensitivity such as ``0.95``.
        ordinal: the sorted classes are grades (e.g. 0-4): soft ordinal labels in the loss (SORD), the best epoch by
            quadratic-weighted kappa, and kappa and mean absolute grade error in the metrics.
        class_weight: ``"balanced"`` (inverse class frequency) or ``{class: weight}`` in the loss.
        sampler: ``"balanced"`` draws training images inversely to their class's count.

    Example:
        >>> clf = graft.ImageClassifier("efficientnet_lite0", strategy="feature-extraction")  # doctest: +SKIP
        >>> clf.fit("data/ants_bees").evaluate("data/ants_bees/val")["accuracy"]  # doctest: +SKIP
    """

    task: ClassVar[str] = "image-classification"
    modality: ClassVar[str] = "image"
    noun: ClassVar[str] = "images"

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        strategy: str | Strategy = "fine-tune",
        *,
        epochs: int | None = None,
        lr: float | None = None,
        batch_size: int = 32,
        weight_decay: float = 0.05,
        grad_accum: int = 1,
        precision: str = "auto",
        schedule: str = "cosine",
        patience: int | None = None,
        val_fraction: float = 0.2,
        augment: str = "default",
        seed: int = 0,
        device: str = "auto",
        pretrained: bool = True,
        weights: str | None = None,
        cache: bool = True,
        skip_invalid: bool = False,
        output_dir: str | Path | None = None,
        overwrite: bool = False,
        verbose: bool | None = None,
        log_with: str | None = None,
        backend: str = "torch",
        backbone_kwargs: dict[str, Any] | None = None,
        image_size: int | None = None,
        group_column: str | None = None,
        clinical: bool | None = None,
        operating_point: str | float | None = None,
        ordinal: bool = False,
        class_weight: str | dict[Any, float] | None = None,
        sampler: str | None = None,
    ) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.grad_accum = grad_accum
        self.precision = precision
        self.schedule = schedule
        self.patience = patience
        self.val_fraction = val_fraction
        self.augment = augment
        self.seed = seed
        self.device = device
        self.pretrained = pretrained
        self.weights = weights
        self.cache = cache
        self.skip_invalid = skip_invalid
        self.output_dir = output_dir
        self.overwrite = overwrite
        self.verbose = verbose
        self.log_with = log_with
        self.backend = backend
        self.backbone_kwargs = backbone_kwargs
        self.image_size = image_size
        self.group_column = group_column
        self.clinical = clinical
        self.operating_point = operating_point
        self.ordinal = ordinal
        self.class_weight = class_weight
        self.sampler = sampler

    # ------------------------------------------------------------------ hooks
    def _build_backbone(self, pretrained: bool = True) -> Backbone:
        if self.augment not in _AUGMENT:
            raise ConfigError(f"augment must be one of {', '.join(_AUGMENT)}; got '{self.augment}'.")
        backbone = create_backbone(
            self.backbone, modality="image", pretrained=pretrained, weights=self.weights, **(self.backbone_kwargs or {})
        )
        if self.image_size is not None and backbone.preprocessing is not None:
            backbone.preprocessing = dataclasses.replace(backbone.preprocessing, input_size=int(self.image_size))
        return backbone

    def _make_task(self) -> Task:
        clinical = self.clinical
        if clinical is None:
            # a loaded bundle: the task it was trained with; a fit: on with a group column (given or found in the CSV)
            clinical = getattr(self, "_saved_clinical", None)
        if clinical is None:
            group = self.group_column or getattr(self, "group_column_", None)
            clinical = bool(group or self.ordinal or self.class_weight or self.sampler) or (
                self.operating_point is not None
            )
        if not clinical:
            return SingleLabel()
        from ..tasks.clinical import Clinical

        return Clinical(
            class_weight=self.class_weight,
            sampler=self.sampler,
            operating_point="youden" if self.operating_point is None else self.operating_point,
            ordinal=self.ordinal,
        )

    def _preprocessing(self) -> Preprocessing:
        pre = self.backbone_.preprocessing
        if pre is None:
            raise DataError(f"backbone '{self.backbone}' has no image preprocessing; is it an image model?")
        return pre

    def _read_fit_data(self, X: Any, y: Any, val: Any) -> tuple[Any, Any, Any, Any]:
        from ..data.images import find_splits

        self.skipped_: list[tuple[str, str]] = []  # unreadable inputs left out by this fit (skip_invalid)
        self.__dict__.pop("_saved_clinical", None)  # a fit decides its task anew
        Xva, yva = split_val(val)
        self._fit_groups, self.group_column_ = self._groups_of(X) if _is_path_like(X) else ({}, None)
        if self.group_column is not None and not _is_path_like(X):
            raise ConfigError(
                f"group_column='{self.group_column}' needs the training data as a CSV of path,label,"
                f"{self.group_column}; got {type(X).__name__}."
            )
        if _is_path_like(Xva) and split_val(val)[1] is None:
            self._fit_groups.update(self._groups_of(Xva)[0])
        if _is_path_like(X) and y is None:
            splits = find_splits(X)
            X, y = splits["train"]
            if Xva is None and "val" in splits:
                Xva, yva = splits["val"]
        return X, y, Xva, yva

    def _groups_of(self, X: Any) -> tuple[dict[str, str], str | None]:
        """``{image path: group}`` of a CSV's rows (all splits) and the group column's name; empty for folders."""
        from ..data.image_folders import find_groups, find_splits

        groups, column = find_groups(X, self.group_column)
        if groups is None:
            return {}, None
        splits = find_splits(X)
        return {p: g for name, (paths, _) in splits.items() for p, g in zip(paths, groups[name], strict=True)}, column

    def _read(self, X: Any, y: Any, *, what: str) -> tuple[FitData, list[Any] | None]:
        from ..data.images import ImageSet, find_splits, load_images
        from ..data.splits import split_name

        if what in ("validation data", "target data") and _is_path_like(X) and not Path(X).exists():
            option = "val= (CLI: --val)" if what == "validation data" else "target= (CLI: --target)"
            raise DataError(f"The {what} '{X}' does not exist. Check the path given as {option}.")
        split: str | None = None
        groups_of = getattr(self, "_fit_groups", {}) if what in ("training data", "validation data") else {}
        if _is_path_like(X) and y is None and Path(X).suffix.lower() in (".csv", ".tsv") and what != "input":
            groups_of = self._groups_of(X)[0]
        if _is_path_like(X) and y is None and Path(X).is_dir():
            if what in ("input", "target data"):  # unlabelled: every image under the folder, any layout
                from ..data.image_folders import list_images

                X = list_images(X)
            else:
                splits = find_splits(X)
                order = {"training data": ("train",), "validation data": ("val", "train")}.get(
                    what, ("test", "val", "train")
                )
                split = next((k for k in order if k in splits), "train")
                X, y = splits[split]
                split = split_name(splits, split)
        elif _is_path_like(X) and y is None and Path(X).suffix.lower() in (".csv", ".tsv"):
            splits = find_splits(X)
            split = "test" if "test" in splits and what != "training data" else "train"
            X, y = splits[split]
            split = split_name(splits, split)
            if what == "input":
                y = None
        elif _is_path_like(X) or isinstance(X, Image.Image):
            X = [X]
        if isinstance(X, ImageSet):  # decoded already: load_images(..., short_side=<this model's resize_size>)
            imgs = _checked_decoded(X, self._preprocessing().resize_size)
        else:
            known = self._embedding_cache().contains if getattr(self, "_skip_known", False) else None
            imgs = load_images(
                X, y, short_side=self._preprocessing().resize_size, skip_invalid=self.skip_invalid, known=known
            )
        labels: list[Any] | None = imgs.labels
        if y is not None and labels is not None:  # keep the caller's label type (ints stay ints)
            original = {label_key(v): (v.item() if isinstance(v, np.generic) else v) for v in y}
            labels = [original.get(v, v) for v in labels]
        if imgs.skipped:
            import warnings

            warnings.warn(
                f"{what}: left out {len(imgs.skipped)} unreadable image(s) "
                f"(first: {imgs.skipped[0][0]}: {imgs.skipped[0][1]})",
                stacklevel=3,
            )
        if what != "input":
            self.skipped_ = getattr(self, "skipped_", []) + list(imgs.skipped)
        if len(imgs) == 0:
            raise DataError(f"{what} holds no readable images.")
        data = FitData(imgs, None, imgs.hashes, imgs.sources, split=split)
        if groups_of:
            data.groups = [groups_of.get(src, f"\0ungrouped:{src}") for src in imgs.sources]
        return data, labels

    def _cache_key_parts(self) -> dict[str, Any]:
        return {"pre": self._preprocessing().to_dict(), "path": "fp32-eval-centercrop-v1"}

    def _batches(self, data: FitData, rows: Sequence[int], batch_size: int = 8) -> Iterable[tuple[list[int], Any]]:
        """Centre-cropped, normalised batches; images skipped at reading (their embedding was cached, then the
        cache entry went missing) are decoded again.

        Batches of 8: on a CPU a depthwise network runs as fast as with 64 (ants/bees feature extraction 9.0 s at 16
        vs 9.8 s at 64, 8 the same as 16), and the activations the allocator keeps shrink with the batch (whole
        process peak RSS 1.27 GB at 8, 1.41 GB at 16, 2.61 GB at 64)."""
        from ..data.images import load_images

        images, pre, rows = data.items.images, self._preprocessing(), list(rows)
        for s in range(0, len(rows), batch_size):
            chunk = [images[i] for i in rows[s : s + batch_size]]
            missing = [j for j, im in enumerate(chunk) if im is None]
            if missing:
                redo = load_images([data.sources[rows[s + j]] for j in missing], short_side=pre.resize_size)
                for j, im in zip(missing, redo.images):
                    chunk[j] = im
            yield list(range(s, s + len(chunk))), center_crop_batch(chunk, pre)

    def _forward(self, tta: bool) -> Callable[[nn.Module, Any], torch.Tensor] | None:
        """With ``tta``, the mean of the outputs on each image and its horizontal flip."""
        if not tta:
            return None
        return lambda m, x: (m(x).float() + m(torch.flip(x, dims=[3])).float()) / 2

    def _transform(self, strong: bool = False) -> Callable[[Image.Image], torch.Tensor]:
        """The training transform; ``strong`` adds RandAugment whatever ``augment`` says (FixMatch strong view)."""
        from timm.data import create_transform

        pre = self._preprocessing()
        if self.augment == "none" and not strong:
            return lambda im: center_crop_batch([np.asarray(im)], pre)[0]
        return create_transform(
            input_size=pre.input_size,
            is_training=True,
            scale=(0.35, 1.0) if self.augment != "none" else (0.8, 1.0),
            hflip=0.5 if self.augment != "none" else 0.0,
            color_jitter=0.2,
            interpolation=pre.interpolation,
            mean=pre.mean,
            std=pre.std,
            auto_augment="rand-m9-mstd0.5" if strong else "rand-m7-mstd0.5" if self.augment == "strong" else None,
        )

    def _train_dataset(self, data: FitData, views: tuple[str, ...] = ("train",)) -> Dataset:
        if views == ("weak", "strong"):  # FixMatch: a weak and a strong view of each image
            return _TwoViews(data.items.images, self._transform(), self._transform(strong=True))  # type: ignore[arg-type]
        return _AugmentedImages(data.items.images, data.y, self._transform())  # type: ignore[arg-type]

    def explain(self, X: Any, target: Any = None, *, layer: str | nn.Module | None = None) -> Any:
        """Grad-CAM maps: where the model looked to predict each image's class (or ``target``).

        Args:
            X: images as ``predict`` takes them (paths, a folder, PIL images, arrays).
            target: a class label to explain for every image, one label per image, or ``None`` (each image's
                predicted class).
            layer: the module (or its name in ``model_``) whose feature map is weighed; default: the backbone's last
                feature map (an earlier CNN stage gives a finer map).

        Returns:
            a :class:`graft.evaluation.explain.Explanation`: ``maps`` ``(N, S, S)`` in [0, 1] over the centre crops the
            model saw, the crops, predicted labels and probabilities; ``.save(folder)`` writes overlay PNGs.

        Example:
            >>> clf.explain(["scan.png"]).save("cams/")  # doctest: +SKIP
        """
        from ..evaluation.explain import explain_images

        return explain_images(self, X, target, layer=layer)

    def _bundle_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"preprocessing": self._preprocessing().to_dict()}
        if getattr(self, "groups_", None):
            extra["groups"] = self.groups_  # salted hashes only: group IDs are patient metadata
        return extra

    def _backbone_from_bundle(self, path: Path, manifest: dict[str, Any]) -> Backbone:
        """The bundle's architecture with random weights (the bundle's weights are loaded next)."""
        spec = manifest["backbone"]
        if spec["source"] == "timm":
            from ..backbones.timm import create_timm_backbone

            backbone = create_timm_backbone(spec["name"], pretrained=False, **spec.get("kwargs", {}))
        else:
            backbone = create_backbone(spec["name"], modality="image", pretrained=False)
        backbone.preprocessing = Preprocessing.from_dict(manifest["preprocessing"])
        return backbone
