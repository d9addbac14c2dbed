"""Loading and checking training data."""

from __future__ import annotations

from graft.data.detect import TASKS, detect_task
from graft.data.images import (
    IMAGE_EXTENSIONS,
    ImageInput,
    ImageSet,
    find_splits,
    load_images,
)
from graft.data.labels import check_labels, stratified_split

__all__ = [
    "TASKS",
    "detect_task",
    "IMAGE_EXTENSIONS",
    "ImageInput",
    "ImageSet",
    "check_labels",
    "find_splits",
    "load_images",
    "stratified_split",
]
