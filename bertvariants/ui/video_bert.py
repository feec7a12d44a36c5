"""VideoBERT tab: a video (upload, shipped sample or synthetic clip) or precomputed features -> visual features
(EfficientNet-Lite0 or hand-crafted) -> visual words by hierarchical k-means -> storyboard and the joint text-video
sequence (public API `video_tokenize`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import numpy as np

from ..checks import number, text
from .. import video_bert as vb
from .. import video_features as vf
from ..io import check_file_size, safe_upload_path, sniff
from ..serving import cached, packaged_tokenizer
from ..serving.packaged import PackageMissing
from .common import action, explanation, safe

SYNTHETIC = "synthetic clip (generated)"
SAMPLES = (*vb.SAMPLE_CLIPS, SYNTHETIC)
NPY_MAGIC = b"\x93NUMPY"
MAX_TEXT_CHARS = 1000
FEATURE_CHOICES = [k.label for k in vf.FEATURE_KINDS]  # first = default (the CNN)
FIT_HOP = 5  # overlapping windows for fitting the codebook: a new 1.5 s window every 0.25 s


def synthetic_clip() -> Path:
    """A 9 s synthetic clip, written once per process."""
    def build() -> Path:
        out = Path(tempfile.mkdtemp(prefix="videobert-")) / "synthetic.mp4"
        return vb.write_synthetic_clip(out, seconds=9.0, seed=0)

    return cached(("videobert-synthetic-clip",), build)


def decoded_sample(name: str) -> vb.DecodedVideo:
    """A sample clip (one of :data:`SAMPLES`), decoded once per process (only those names: the cache never
    evicts these small shared objects)."""
    if name not in SAMPLES:
        raise ValueError(f"pick a sample clip: one of {', '.join(SAMPLES)}")
    # dependencies are fetched before, never inside, a build: a build runs under the cache's process-wide load
    # lock, and waiting there for another key's build could deadlock with a thread that holds that key
    path = synthetic_clip() if name == SYNTHETIC else vb.ASSETS / name
    return cached(("videobert-sample", name), lambda: vb.decode_video(path))


def sample_corpus_features(kind: vf.FeatureKind = vf.HANDCRAFTED) -> np.ndarray:
    """Overlapping-window features of the shipped clips, of one feature kind: extra points for fitting the
    codebook."""
    clips = [decoded_sample(name) for name in vb.SAMPLE_CLIPS]  # outside the build (see decoded_sample)
    vf.prepare(kind)  # the CNN too
    featurize = vf.featurizer(kind)
    return cached(("videobert-sample-features", kind.key),
                  lambda: np.concatenate([featurize(c.frames, vb.segment_bounds(len(c.frames), hop=FIT_HOP))
                                          for c in clips]))


def feature_choice(name: str) -> vf.FeatureKind:
    """The chosen feature kind, with its model ready (ValueError for an unknown name or a missing package)."""
    kind = vf.feature_kind(name)
    try:
        vf.prepare(kind)
    except PackageMissing as exc:
        raise ValueError(f"{exc}. Choose the hand-crafted features instead.") from None
    return kind


def _load_input(upload, sample: str):
    """(decoded video or None, precomputed features or None, description)."""
    if upload:
        path = safe_upload_path(upload)
        check_file_size(path, max_bytes=vb.MAX_VIDEO_BYTES, what="upload")
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(NPY_MAGIC):
            return None, vb.load_features(path), f"precomputed features from {path.name}"
        kind = sniff(path)
        if kind not in ("mp4", "mov", "webm", "mkv", "avi"):
            found = f"its content is {kind}" if kind else "its content is not a known video container"
            raise ValueError(f"{path.name!r} is not a video ({found}); upload an MP4, MOV, WebM, MKV or AVI file, "
                             "or a .npy array of segment features")
        return vb.decode_video(path), None, f"your upload {path.name}"
    video = decoded_sample(sample)  # ValueError for a name that is not one of SAMPLES
    credit = vb.SAMPLE_CLIPS.get(sample,
                                 "a synthetic clip generated here (moving square, background changes every 1.5 s)")
    return video, None, credit


@safe
def tokenize(sample: str, caption: str, depth: float, branching: float, seed: float, upload=None,
             features: str = FEATURE_CHOICES[0]):
    """VideoBERT's visual words (Sun et al. 2019 §3.2): video → 1.5 s segments → features → hierarchical
    k-means; plus the joint text-video sequence (public API `video_tokenize`).

    Args:
        sample: a shipped sample clip's name (used when nothing is uploaded).
        caption: the text paired with the video.
        depth: depth d of the k-means tree (1–4; the paper uses 4).
        branching: branching k of the tree (2–12; the paper uses 12).
        seed: k-means seed.
        upload: optional video file, or a .npy array (segments × dims) of precomputed features.
        features: which visual features to use (a pretrained image CNN or hand-crafted colour/motion features).

    Returns: the storyboard (thumbnail, caption), the joint sequence highlighted by token type, the tree's
    statistics (markdown)."""
    caption = text(caption, "Text", max_chars=MAX_TEXT_CHARS)
    d = number(depth, "Depth d", lo=1, hi=4, integer=True)
    k = number(branching, "Branching k", lo=2, hi=12, integer=True)
    seed = number(seed, "Seed", lo=0, hi=2**31 - 1, integer=True)
    kind = vf.feature_kind(features or FEATURE_CHOICES[0])  # ValueError for an unknown name
    video, feats, source = _load_input(upload, sample)
    if video is not None:
        kind = feature_choice(kind.key)  # loads the CNN (a clear message if its package is missing)
        board = vb.tokenize_video(video, depth=d, branching=k, seed=seed, extra_fit=[sample_corpus_features(kind)],
                                  fit_hop=FIT_HOP, featurize=vf.featurizer(kind))
        ids, stats = board.word_ids, board.stats
        gallery = [(thumb, f"{vb.visual_token(i)} {round(s / video.fps, 1):g}–{round(e / video.fps, 1):g} s")
                   for thumb, (s, e), i in zip(board.thumbnails, board.bounds, ids)]
        what = (f"{len(video.frames)} frames at {video.fps} fps ({video.duration:.1f} s, source "
                f"{video.source_size[0]}×{video.source_size[1]} at {video.source_fps:.2f} fps"
                + (f", decoded up to {vb.MAX_SECONDS:g} s" if video.truncated else "") + f") → {len(ids)} segments of "
                f"{vb.SEGMENT_FRAMES} frames. Features: {kind.summary} ({kind.dim} dims; the paper used S3D, a "
                "pretrained video CNN). Codebook fitted on overlapping windows of this clip and the shipped samples.")
    else:
        tree = vb.HierarchicalKMeans(depth=d, branching=k, seed=seed).fit(feats)
        ids, stats, gallery = tree.predict(feats).tolist(), tree.stats(), []
        what = (f"{feats.shape[0]} precomputed segment features of {feats.shape[1]} dims (no frames to show; "
                "the visual-features choice applies to videos only).")
    tok = packaged_tokenizer()
    words = tok.tokenize(caption)[:200]
    seq = vb.joint_sequence(words, ids, text_token_ids=tok.convert_tokens_to_ids(words), text_vocab_size=tok.vocab_size,
                            special_ids={vb.CLS: tok.cls_token_id, vb.SEP: tok.sep_token_id})
    highlighted = [(t + " ", "special" if t in (vb.CLS, vb.SEP, vb.TEXT_VIDEO_SEP) else
                    ("video" if tt == 1 else "text")) for t, tt in zip(seq.tokens, seq.token_type_ids)]
    md = (f"Source: {source}. {what}\n\n"
          f"| tree | value |\n|---|---|\n| depth d × branching k | {d} × {k} (paper: 4 × 12) |\n"
          f"| vocabulary k^d | {stats.vocabulary_size:,} (paper: 20,736) |\n"
          f"| internal nodes per level | {', '.join(map(str, stats.nodes_per_level))} |\n"
          f"| reachable leaves (visual words) | {stats.leaves:,} |\n"
          f"| points used to fit | {stats.training_points:,} |\n"
          f"| distinct words in this video | {len(set(ids))} of {len(ids)} segments |\n\n"
          f"Joint sequence: {len(seq.tokens)} tokens; token type 0 = text (with [CLS] and [>]), 1 = video "
          f"(with [SEP]); visual word v has id {tok.vocab_size} + 1 + v.\n\n"
          "Tree paths (branch taken at each level): " + ", ".join(
              f"{vb.visual_token(i)} = {'/'.join(map(str, vb.word_path(i, branching=k, depth=d)))}"
              for i in sorted(set(ids))))
    return gallery, highlighted, md


def build(spec, tab) -> None:
    with explanation("Visual features: what stands in for the paper's S3D"):
        gr.Markdown("**Visual features.** The paper embeds each 1.5 s segment with S3D, a video CNN pretrained on "
                    "Kinetics, which is not available offline. By default each segment gets real pretrained CNN "
                    f"features instead: {vf.CNN.summary} — an image CNN, so it sees objects and scenes but not motion. "
                    f"The alternative is {vf.HANDCRAFTED.summary}. Upload a .npy array (segments × dims) to tokenize "
                    "real precomputed features (e.g. S3D) instead.")
    with gr.Row():
        upload = gr.File(label="Upload a video or a .npy feature array (≤ 50 MB, first 60 s used)", type="filepath")
        sample = gr.Dropdown(list(SAMPLES), value=SAMPLES[0], label="…or a sample clip")
    caption = gr.Textbox(label="Text paired with the video", value="a man rides a bike through the city")
    with gr.Row():
        depth = gr.Slider(1, 4, value=2, step=1, label="Depth d")
        branching = gr.Slider(2, 12, value=4, step=1, label="Branching k")
        seed = gr.Number(value=0, step=1, label="Seed")
    features = gr.Radio(FEATURE_CHOICES, value=FEATURE_CHOICES[0], label="Visual features (the paper: S3D)")
    btn = action("Tokenize the video")
    gr.Markdown("**Storyboard** (after tokenizing): one thumbnail per 1.5 s segment, captioned with its visual word "
                "and time; each word's path down the tree is listed under the joint sequence.")
    # height "auto": the storyboard grows with its rows (a fixed height clipped the second row); bv-storyboard:
    # captions wrap on a phone (common.TABLE_CSS) instead of ending in "…"
    gallery = gr.Gallery(show_label=False, columns=4, height="auto", object_fit="contain", visible=False,
                         elem_classes=["bv-storyboard"])
    joint = gr.HighlightedText(label="[CLS] text [>] visual words [SEP]", combine_adjacent=False, visible=False)
    md = gr.Markdown(visible=False)
    btn.click(tokenize, [sample, caption, depth, branching, seed, upload, features], [gallery, joint, md],
              api_name="video_tokenize", concurrency_limit=1)
