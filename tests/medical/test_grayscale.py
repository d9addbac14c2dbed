"""Grayscale scans in a 3-channel network: replicating the grey channel is exactly what folding the first
convolution to one input channel (timm's ``in_chans=1``: the RGB kernels summed) computes, when the three channels
share one mean and standard deviation (EfficientNet-Lite: 0.5 / 0.5). Graft replicates; this test holds the two
equal."""

from __future__ import annotations

import copy

import numpy as np
import torch


def test_replicated_grey_equals_a_folded_first_convolution() -> None:
    import timm
    from timm.models import adapt_input_conv

    from graft.backbones.base import Preprocessing
    from graft.estimators.image import center_crop_batch

    torch.manual_seed(0)
    rgb = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0).eval()
    grey = copy.deepcopy(rgb)
    grey.conv_stem.weight = torch.nn.Parameter(adapt_input_conv(1, rgb.conv_stem.weight.detach()))
    grey.conv_stem.in_channels = 1
    scans = np.random.default_rng(0).integers(0, 256, (2, 64, 64), dtype=np.uint8)
    pre = Preprocessing(input_size=64, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=1.0)
    x3 = center_crop_batch([np.repeat(s[..., None], 3, axis=2) for s in scans], pre)  # what Graft feeds
    x1 = torch.from_numpy((scans.astype(np.float32) / 255.0 - 0.5) / 0.5)[:, None]
    with torch.no_grad():
        a, b = rgb(x3.contiguous()), grey(x1)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
