"""Which visual features a VideoBERT segment gets (one table), and how the choices compare on real clips.

VideoBERT (Sun et al. 2019, §3.2) embeds each 1.5 s clip with a pretrained S3D video CNN (1024-d, Kinetics) and
tokenizes the embeddings by hierarchical k-means. S3D is not available offline; the choices here are

* **EfficientNet-Lite0 (ImageNet CNN)**: the real pretrained image CNN of :mod:`bertvariants.efficientnet` run
  on a few frames of each segment (every :data:`FRAME_STRIDE`-th frame: 2 frames/s, 3 per 1.5 s segment), its
  1280-d pooled features averaged over those frames and L2-normalised (so k-means' Euclidean distance ranks like
  cosine). It sees objects and scenes, not motion: an image CNN, where the paper used a video CNN.
* **hand-crafted (colour / layout / motion)**: :func:`bertvariants.video_bert.segment_features`.

:func:`compare_features` measures, on clips with shot cuts, how consistent each feature is within a shot and how
well a codebook separates clips and shots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from . import efficientnet
from . import video_bert as vb

FRAME_STRIDE = 10  # CNN on every 10th frame at 20 fps: 2 frames/s, exactly 3 in any 30-frame (1.5 s) window
CUT_THRESHOLD = 40.0  # mean |Δ grey| (0-255) between consecutive frames that marks a shot cut


@dataclass(frozen=True)
class FeatureKind:
    key: str
    label: str  # the tab's choice
    dim: int
    summary: str  # one line for the tab's text


CNN = FeatureKind("efficientnet-lite0", "EfficientNet-Lite0 (ImageNet CNN)", efficientnet.FEATURE_DIM,
                  "EfficientNet-Lite0 pretrained on ImageNet (real weights, 4.7M parameters): 1280-d pooled features "
                  f"of every {FRAME_STRIDE}th frame (3 per 1.5 s segment), averaged over the segment")
HANDCRAFTED = FeatureKind("handcrafted", "hand-crafted (colour / layout / motion)", vb.FEATURE_DIM,
                          "hand-crafted features: RGB colour histograms, an 8×8 grey thumbnail and frame-difference "
                          "motion energy (colour, layout and motion, not meaning)")
FEATURE_KINDS: tuple[FeatureKind, ...] = (CNN, HANDCRAFTED)  # first = default


def feature_kind(name: str) -> FeatureKind:
    """A :data:`FEATURE_KINDS` entry by key or label (ValueError otherwise)."""
    for kind in FEATURE_KINDS:
        if name in (kind.key, kind.label):
            return kind
    raise ValueError(f"unknown visual features {name!r}; one of: {', '.join(k.label for k in FEATURE_KINDS)}")


def sampled_frames(window: tuple[int, int], *, stride: int = FRAME_STRIDE) -> list[int]:
    """Frames of [start, end) on the global grid ``i % stride == stride // 2`` (the window's middle frame when
    the window is too short to hold one). A global grid lets overlapping windows share their CNN runs."""
    start, end = window
    first = start + (stride // 2 - start) % stride
    return list(range(first, end, stride)) or [(start + end - 1) // 2]


def cnn_window_features(frames: np.ndarray, windows: Sequence[tuple[int, int]], *, stride: int = FRAME_STRIDE,
                        model: efficientnet.EfficientNetLite | None = None) -> np.ndarray:
    """EfficientNet-Lite0 segment features (S, 1280): mean of the sampled frames' pooled features, L2-normalised.
    Each sampled frame runs through the CNN once, however many windows hold it. A :data:`~vb.Featurizer`."""
    per_window = [sampled_frames(w, stride=stride) for w in windows]
    needed = sorted({i for idx in per_window for i in idx})
    feats = efficientnet.frame_features(frames[needed], model=model)  # (F, 1280)
    row = {frame: r for r, frame in enumerate(needed)}
    out = np.stack([feats[[row[i] for i in idx]].mean(0) for idx in per_window])  # (S, 1280)
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-8)).astype(np.float32)


def featurizer(kind: FeatureKind) -> vb.Featurizer:
    return cnn_window_features if kind.key == CNN.key else vb.window_features


def prepare(kind: FeatureKind) -> None:
    """Load what ``kind`` needs (the CNN) now: callers do it before building cached objects that use it."""
    if kind.key == CNN.key:
        efficientnet.lite0()


# --------------------------------------------------------------------------------------------
# Comparing the features on real clips
# --------------------------------------------------------------------------------------------
def shot_cuts(frames: np.ndarray, *, threshold: float = CUT_THRESHOLD) -> list[int]:
    """Indices i where a new shot starts (frame i differs from frame i-1 by a mean |Δ grey| > threshold)."""
    grey = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (N, H, W) in [0, 255]
    diff = np.abs(np.diff(grey, axis=0)).mean((1, 2))  # (N-1,)
    return [int(i) + 1 for i in np.flatnonzero(diff > threshold)]


def shot_windows(num_frames: int, cuts: Sequence[int], *, segment_frames: int = vb.SEGMENT_FRAMES,
                 min_frames: int = 10) -> list[tuple[int, int, int]]:
    """(shot, start, end): each shot cut into consecutive segments of ``segment_frames`` (a shorter last one is
    kept if it has ≥ ``min_frames``), so no segment straddles a cut."""
    edges = [0, *cuts, num_frames]
    out = []
    for shot, (a, b) in enumerate(pairwise(edges)):
        out += [(shot, s, min(s + segment_frames, b)) for s in range(a, b, segment_frames)
                if min(s + segment_frames, b) - s >= min_frames]
    return out


def purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Share of points whose cluster's majority label is their own label (1.0 = every cluster is pure)."""
    return float(sum(np.unique(labels[clusters == c], return_counts=True)[1].max() for c in np.unique(clusters))
                 / len(labels))


@dataclass(frozen=True)
class FeatureComparison:
    kind: str
    segments: int  # shot-aligned segments measured
    within_shot: float  # mean cosine of consecutive segments of one shot (centred features)
    within_shot_pairs: int
    across_shots: float  # mean cosine of segments of different shots of the same clip
    across_clips: float  # mean cosine of segments of different clips
    purity_by_clip: dict[str, float]  # "d×k" -> purity of the hierarchical k-means words by clip
    purity_by_shot: dict[str, float]  # ... by shot (clip, shot)
    majority_clip: float  # purity of one big cluster: the baseline for purity_by_clip

    @property
    def shot_gap(self) -> float:
        """within_shot - across_shots: how much more alike a shot's own segments are than other shots'."""
        return self.within_shot - self.across_shots


def centred_cosine(x: np.ndarray) -> np.ndarray:
    """(S, S) cosine similarities after subtracting the mean feature, so 0 means "as similar as average" for any
    feature type (raw CNN features are non-negative and all look alike under plain cosine)."""
    x = x - x.mean(0, keepdims=True)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)
    return x @ x.T


def _pair_means(sim: np.ndarray, clip: np.ndarray, shot: np.ndarray, consecutive: np.ndarray) -> tuple[float, ...]:
    iu = np.triu_indices(len(sim), 1)
    same_clip, same_shot = clip[iu[0]] == clip[iu[1]], shot[iu[0]] == shot[iu[1]]
    within = sim[iu][same_shot & consecutive[iu]]
    return (float(within.mean()) if within.size else float("nan"), int(within.size),
            float(sim[iu][same_clip & ~same_shot].mean()) if (same_clip & ~same_shot).any() else float("nan"),
            float(sim[iu][~same_clip].mean()) if (~same_clip).any() else float("nan"))


def compare_features(clips: Mapping[str, np.ndarray], kind: FeatureKind, *,
                     codebooks: Sequence[tuple[int, int]] = ((1, 2), (2, 4)), fit_hop: int = 5, seed: int = 0,
                     cut_threshold: float = CUT_THRESHOLD) -> FeatureComparison:
    """Consistency within a shot vs across shots and clips, and codebook purity, of one feature type.

    Segments are cut per shot (:func:`shot_windows`, so none straddles a cut); ``within_shot`` averages the
    centred cosine of consecutive segments of one shot. Purity: the hierarchical k-means (§3.2) of each
    ``(depth, branching)`` in ``codebooks`` is fitted on overlapping windows (hop ``fit_hop``) of all clips, as
    the tab does, and its words are scored against the clip and the shot of each window's middle frame.
    """
    if len(clips) < 2:
        raise ValueError("compare at least 2 clips")
    featurize = featurizer(kind)
    feats, clip_id, shot_id, order, fit_x, fit_clip, fit_shot = [], [], [], [], [], [], []
    for c, frames in enumerate(clips.values()):
        cuts = shot_cuts(frames, threshold=cut_threshold)
        segs = shot_windows(len(frames), cuts)
        fit = vb.segment_bounds(len(frames), hop=fit_hop)
        x = featurize(frames, [(s, e) for _, s, e in segs] + fit)
        feats.append(x[:len(segs)])
        clip_id += [c] * len(segs)
        shot_id += [c * 1000 + sh for sh, _, _ in segs]
        order += list(range(len(segs)))
        fit_x.append(x[len(segs):])
        fit_clip += [c] * len(fit)
        fit_shot += [c * 1000 + int(np.searchsorted(cuts, (s + e - 1) // 2, side="right")) for s, e in fit]
    x, clip_id, shot_id, order = np.concatenate(feats), np.array(clip_id), np.array(shot_id), np.array(order)
    consecutive = np.abs(order[:, None] - order[None, :]) == 1
    within, pairs, across_shots, across_clips = _pair_means(centred_cosine(x), clip_id, shot_id, consecutive)
    fit_x, fit_clip, fit_shot = np.concatenate(fit_x), np.array(fit_clip), np.array(fit_shot)
    by_clip, by_shot = {}, {}
    for d, k in codebooks:
        words = vb.HierarchicalKMeans(depth=d, branching=k, seed=seed).fit(fit_x).predict(fit_x)
        by_clip[f"{d}×{k}"], by_shot[f"{d}×{k}"] = purity(words, fit_clip), purity(words, fit_shot)
    return FeatureComparison(kind.key, len(x), within, pairs, across_shots, across_clips, by_clip, by_shot,
                             purity(np.zeros(len(fit_clip)), fit_clip))
