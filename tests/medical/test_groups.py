"""Group-aware splits: every image of a patient stays in one split, and evaluation refuses patients seen in training."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import color_image, tiny_classifier

from graft.data.image_folders import find_groups
from graft.data.labels import stratified_group_split
from graft.errors import ConfigError, DataError


def _write_patients(root: Path, n_patients: int, per_patient: int, *, split: str | None = None, first: int = 0) -> Path:
    """Images of ``n_patients`` patients (class = patient parity) and a CSV ``path,label,patient_id[,split]``."""
    rng = np.random.default_rng(first)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in range(first, first + n_patients):
        for k in range(per_patient):
            name = f"p{p}_{k}.png"
            Image.fromarray(color_image(p % 2, rng)).save(root / name)
            rows.append({"path": name, "label": f"c{p % 2}", "patient_id": f"P{p:03d}", "split": split or "train"})
    out = root / "labels.csv"
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "patient_id"] + (["split"] if split else []))
        w.writeheader()
        for r in rows:
            w.writerow({k: v for k, v in r.items() if k != "split" or split})
    return out


def test_group_split_keeps_every_group_whole_and_stratifies() -> None:
    rng = np.random.default_rng(0)
    groups = [f"g{i // 4}" for i in range(400)]  # 100 groups of 4
    labels = [str(int(g[1:]) % 3) for g in groups]  # a group's images share its class
    for seed in range(5):
        tr, va = stratified_group_split(labels, groups, 0.2, seed)
        assert sorted(tr + va) == list(range(400))
        assert not {groups[i] for i in tr} & {groups[i] for i in va}
        assert 60 <= len(va) <= 100  # about a fifth
        assert {labels[i] for i in va} == {"0", "1", "2"}  # every class present in validation
    del rng


def test_group_split_refuses_one_group() -> None:
    with pytest.raises(DataError, match="one group"):
        stratified_group_split(["a", "b", "a", "b"], ["p"] * 4, 0.25, 0)


def test_find_groups_reads_the_named_or_a_patient_column(tmp_path: Path) -> None:
    csv_path = _write_patients(tmp_path / "d", 3, 2)
    groups, column = find_groups(csv_path)
    assert column == "patient_id" and groups == {"train": ["P000", "P000", "P001", "P001", "P002", "P002"]}
    with pytest.raises(DataError, match="no group column 'patient'"):
        find_groups(csv_path, "patient")
    assert find_groups(tmp_path / "d") == (None, None)  # a folder has no groups


def test_fit_split_by_patient_and_evaluate_refuses_seen_patients(tmp_path: Path) -> None:
    train_csv = _write_patients(tmp_path / "train", 10, 3)
    clf = tiny_classifier(group_column="patient_id", clinical=False, val_fraction=0.3, epochs=1)
    clf.fit(train_csv)
    assert clf.groups_["train_groups"] + clf.groups_["val_groups"] == 10
    assert clf.groups_["column"] == "patient_id"
    # the bundle keeps salted hashes only: no patient ID in graft.json
    out = clf.save(tmp_path / "bundle")
    text = (out / "graft.json").read_text()
    assert "P00" not in text and json.loads(text)["groups"]["hashes"]
    # a test set of new patients evaluates; one that shares a patient is refused, naming a file, not the patient
    new_csv = _write_patients(tmp_path / "new", 4, 2, first=20)
    assert 0.0 <= clf.evaluate(new_csv)["accuracy"] <= 1.0
    leak_csv = _write_patients(tmp_path / "leak", 2, 2, first=5)
    with pytest.raises(DataError, match=r"2 patient_id value\(s\) \(4 of 4 images") as err:
        clf.evaluate(leak_csv)
    assert "P005" not in str(err.value) and "p5_0.png" in str(err.value)
    import graft

    loaded = graft.load(out)
    with pytest.raises(DataError, match="also appear in the model's training"):
        loaded.evaluate(leak_csv)


def test_group_column_needs_a_csv(tmp_path: Path, arrays: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = arrays
    with pytest.raises(ConfigError, match="needs the training data as a CSV"):
        tiny_classifier(group_column="patient_id").fit(X, y)


def test_clinical_fit_reports_auroc_with_ci_and_keeps_thresholds(tmp_path: Path) -> None:
    train_csv = _write_patients(tmp_path / "train", 12, 3)
    clf = tiny_classifier(group_column="patient_id", val_fraction=0.3, epochs=1, sampler="balanced")
    clf.fit(train_csv)
    assert clf.task_.name == "clinical"
    m = clf.evaluate(_write_patients(tmp_path / "new", 6, 2, first=40))
    c = m["clinical"]
    pos = m["positive_class"]
    assert set(c["per_class"]) == {pos}  # two classes: the positive class only (here the rarer training class)
    lo, hi = c["macro_auroc_ci"]
    assert 0.0 <= lo <= c["macro_auroc"] <= hi <= 1.0
    assert {"sensitivity", "specificity", "ppv", "npv", "f1", "threshold", "support"} <= set(c["per_class"][pos])
    json.dumps(m, allow_nan=False)
    import graft

    loaded = graft.load(clf.save(tmp_path / "bundle"))
    assert loaded.task_.name == "clinical"
    again = loaded.evaluate(_write_patients(tmp_path / "new2", 6, 2, first=60))["clinical"]["per_class"][pos]
    assert again["threshold"] == pytest.approx(c["per_class"][pos]["threshold"])


def test_a_patient_column_found_by_name_turns_clinical_metrics_on_and_the_bundle_keeps_the_task(tmp_path: Path) -> None:
    import graft

    clf = tiny_classifier(val_fraction=0.3, epochs=1).fit(_write_patients(tmp_path / "train", 10, 2))
    assert clf.group_column_ == "patient_id" and clf.task_.name == "clinical"
    assert "clinical" in clf.evaluate(_write_patients(tmp_path / "new", 4, 2, first=30))
    assert graft.load(clf.save(tmp_path / "bundle")).task_.name == "clinical"
    # said off, it stays off, in the fit and in the bundle
    plain = tiny_classifier(val_fraction=0.3, epochs=1, clinical=False).fit(_write_patients(tmp_path / "t2", 10, 2))
    assert plain.task_.name == "single-label"
    assert graft.load(plain.save(tmp_path / "plain")).task_.name == "single-label"
