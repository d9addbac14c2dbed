"""Loading and checking training data."""

from __future__ import annotations

from graft.data.images import (
    IMAGE_EXTENSIONS,
    ImageInput,
    ImageSet,
    check_labels,
    find_splits,
    load_images,
    stratified_split,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageInput",
    "ImageSet",
    "check_labels",
    "find_splits",
    "load_images",
    "stratified_split",
]
