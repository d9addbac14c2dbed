"""Every input form ImageClassifier.fit/predict/evaluate accepts, and the label checks before training."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from graft.errors import DataError


def _png_paths(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.png"))


def _assert_fitted(clf: Any, classes: list[Any], n_total: int | None = None) -> None:
    assert list(clf.classes_) == classes
    assert clf.n_train_ > 0
    if n_total is not None:
        assert clf.n_train_ + clf.n_val_ == n_total
    assert clf.history_ and np.isfinite(clf.history_[-1]["train_loss"])


def test_folder_with_train_and_val_splits_uses_val(tiny: Any, helpers: Any, tmp_path: Path) -> None:
    root = tmp_path / "data"
    helpers.write_class_folder(root / "train", 2, 6, seed=0)
    helpers.write_class_folder(root / "val", 2, 3, seed=1)
    helpers.write_class_folder(root / "test", 2, 2, seed=2)
    clf = tiny().fit(root)
    _assert_fitted(clf, ["blue", "red"])
    assert (clf.n_train_, clf.n_val_) == (12, 6), "val/ is the validation set; train/ is not split"
    metrics = clf.evaluate(root)  # a folder's test/ split is used for evaluation
    assert sum(map(sum, metrics["confusion_matrix"])) == 4
    assert clf.predict_proba(root).shape == (12 + 6 + 4, 2), "predict reads every image under the folder"


def test_explicit_val_folder(tiny: Any, helpers: Any, tmp_path: Path) -> None:
    train = helpers.write_class_folder(tmp_path / "train", 2, 6, seed=0)
    val = helpers.write_class_folder(tmp_path / "holdout", 2, 2, seed=1)
    clf = tiny().fit(train, val=val)
    assert (clf.n_train_, clf.n_val_) == (12, 4)


def test_flat_class_folder_gets_a_stratified_split(tiny: Any, image_folder: Any) -> None:
    data = image_folder("data", n_classes=3, n_per_class=6)
    clf = tiny(val_fraction=0.34).fit(data)
    _assert_fitted(clf, ["blue", "green", "red"], n_total=18)
    assert clf.n_val_ == 6, "two of six images per class held out"
    assert clf.val_metrics_ is not None
    assert [sum(row) for row in clf.val_metrics_["confusion_matrix"]] == [2, 2, 2]


def test_csv_of_path_and_label(tiny: Any, image_folder: Any, tmp_path: Path) -> None:
    data = image_folder("data")
    table = tmp_path / "labels.csv"
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        for p in _png_paths(data):
            writer.writerow([Path(p).relative_to(tmp_path).as_posix(), Path(p).parent.name])  # relative to the CSV
    clf = tiny().fit(table)
    _assert_fitted(clf, ["blue", "red"], n_total=12)
    assert clf.n_val_ > 0
    assert clf.evaluate(table)["accuracy"] >= 0.0


def test_csv_with_split_column(tiny: Any, image_folder: Any, tmp_path: Path) -> None:
    data = image_folder("data", n_per_class=8)
    table = tmp_path / "labels.csv"
    rows = ["file,class,split"]
    for i, p in enumerate(_png_paths(data)):
        rows.append(f"{p},{Path(p).parent.name},{'val' if i % 4 == 0 else 'train'}")
    table.write_text("\n".join(rows) + "\n")
    clf = tiny().fit(table)
    assert (clf.n_train_, clf.n_val_) == (12, 4)


def test_list_of_paths_with_labels(tiny: Any, image_folder: Any) -> None:
    paths = _png_paths(image_folder("data"))
    labels = [Path(p).parent.name for p in paths]
    clf = tiny().fit(paths, labels)
    _assert_fitted(clf, ["blue", "red"], n_total=12)
    assert clf.predict(paths[0]).tolist()[0] in ("blue", "red"), "a single path is one input"
    assert clf.predict_proba(Path(paths[0])).shape == (1, 2)


def test_list_of_pil_images_with_labels(tiny: Any, helpers: Any) -> None:
    X, y = helpers.color_arrays(6, 2)
    images = [Image.fromarray(a) for a in X]
    before = [im.tobytes() for im in images]
    clf = tiny().fit(images, [["red", "blue"][c] for c in y])
    _assert_fitted(clf, ["blue", "red"], n_total=12)
    assert [im.tobytes() for im in images] == before, "the caller's images are not modified"
    assert clf.predict_proba(images[0]).shape == (1, 2)
    assert clf.predict(images).shape == (12,)


def test_grayscale_uint8_arrays_with_int_labels(tiny: Any, helpers: Any, backbone_weights: Path) -> None:
    X, y = helpers.gray_arrays(8, 2)
    assert X.shape == (16, 28, 28) and X.dtype == np.uint8
    clf = tiny("feature-extraction", epochs=10, lr=3e-2, weights=str(backbone_weights)).fit(X, y)
    _assert_fitted(clf, [0, 1], n_total=16)
    pred = clf.predict(X)
    assert pred.dtype.kind == "i" and set(pred.tolist()) <= {0, 1}
    assert clf.score(X, y) >= 0.75, "dark and bright images are easy to tell apart"


def test_rgb_arrays_and_tuple_validation(tiny: Any, helpers: Any) -> None:
    X, y = helpers.color_arrays(6, 2, seed=0)
    Xv, yv = helpers.color_arrays(2, 2, seed=1)
    assert X.ndim == 4 and X.shape[-1] == 3
    clf = tiny().fit(X, y, val=(Xv, yv))
    _assert_fitted(clf, [0, 1])
    assert (clf.n_train_, clf.n_val_) == (12, 4)


def test_no_val_fraction_means_no_validation(tiny: Any, arrays: tuple[np.ndarray, np.ndarray]) -> None:
    clf = tiny(val_fraction=0).fit(*arrays)
    assert clf.n_val_ == 0 and clf.val_metrics_ is None
    assert "val_accuracy" not in clf.best_metrics_


def test_val_only_class_is_a_data_error(tiny: Any, helpers: Any, tmp_path: Path) -> None:
    root = tmp_path / "data"
    helpers.write_class_folder(root / "train", 2, 4)
    helpers.write_class_folder(root / "val", 3, 2)  # 'green' exists only in val
    with pytest.raises(DataError, match="green"):
        tiny().fit(root)


def test_one_class_is_a_data_error(tiny: Any, image_folder: Any) -> None:
    with pytest.raises(DataError, match="at least 2 classes"):
        tiny().fit(image_folder("data", n_classes=1))


def test_class_with_one_image_is_a_data_error(tiny: Any, helpers: Any) -> None:
    X, _ = helpers.color_arrays(3, 2)
    with pytest.raises(DataError, match="at least 2 training images"):
        tiny().fit(X, [0, 0, 0, 0, 0, 1])


def test_missing_labels_is_a_data_error(tiny: Any, image_folder: Any) -> None:
    with pytest.raises(DataError, match="fit needs labels"):
        tiny().fit(_png_paths(image_folder("data")))


def test_label_count_mismatch_is_a_data_error(tiny: Any, arrays: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = arrays
    with pytest.raises(DataError, match="labels"):
        tiny().fit(X, y[:-1])


def test_evaluate_with_unknown_labels_is_a_data_error(tiny: Any, arrays: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = arrays
    clf = tiny().fit(X, y)
    with pytest.raises(DataError, match="not trained on: 7"):
        clf.evaluate(X[:2], [0, 7])


def test_unreadable_file_fails_fit_unless_skipped(tiny: Any, image_folder: Any, tmp_path: Path) -> None:
    data = image_folder("data")
    (data / "red" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    run = tmp_path / "run"
    with pytest.raises(DataError, match="zz_broken.png"):
        tiny(output_dir=run).fit(data)
    assert not run.exists()
    with pytest.warns(UserWarning, match="left out 1"):
        clf = tiny(skip_invalid=True).fit(data)
    assert clf.n_train_ + clf.n_val_ == 12
    assert [Path(s).name for s, _ in clf.skipped_] == ["zz_broken.png"]


def test_bad_augment_is_a_config_error(tiny: Any, arrays: tuple[np.ndarray, np.ndarray]) -> None:
    from graft.errors import ConfigError

    with pytest.raises(ConfigError, match="augment"):
        tiny(augment="heavy").fit(*arrays)
