"""Every figure the variant tabs draw is readable at 1400 px and on a 390 px phone.

One builder per figure function (:data:`BUILDERS`), fed what the tab's default example produces (model outputs are
replaced by random arrays of the right shape and dtype, float32 included), plus crowded cases at the tabs' limits.
Each figure has a title whose lines fit a phone, titled axes, at most 12 legend entries, a legend that cannot cover
the plot, no fixed width, and no raw float (0.6899999976158142) in its text, hover text or custom data. An ``ast``
scan finds every function that builds a figure in the modules below, so a new one cannot go untested.
"""

from __future__ import annotations

import ast
import re

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from bertvariants import albert, clinical_bert, distillation, explain_figures, figures, roberta, sentence_bert, spanbert
from bertvariants import faithfulness as fa, generation_attribution as ga, mlm_lens as ml, similarity_attribution as sa
from bertvariants.common import make_generator

from .conftest import REPO

MODULES = ("albert", "roberta", "spanbert", "distillation", "clinical_bert", "sentence_bert", "video_bert", "bart",
           "explain_figures")
MAX_LEGEND = 12
MAX_DECIMALS = 6
RAW_FLOAT = re.compile(r"\d\.\d{7,}")  # a float printed unrounded inside a string
SENTENCES = ["A man is eating food.", "Someone is having a meal.", "A man is riding a horse.",
             "A woman is playing the violin.", "A person plays a string instrument.",
             "The stock market fell sharply today."]  # the Sentence-BERT tab's example list


# --------------------------------------------------------------------------------------------
# One builder per figure function: the tab's default example, and the crowded case at its limits
# --------------------------------------------------------------------------------------------
def albert_features(n_tokens: int = 14) -> go.Figure:
    tokens = ["[CLS]", "albert", "shares", "one", "set", "of", "layer", "weights", "across", "all", "layers", ".",
              "[SEP]"][:n_tokens] + [f"tok{i}" for i in range(max(0, n_tokens - 13))]
    hidden = torch.randn(len(tokens), 768, generator=make_generator(0))  # (T, H) like albert-base's last layer
    coords = torch.randn(len(tokens), 2, generator=make_generator(1))  # float32, as token_features returns
    return albert.features_figure(albert.TokenFeatures(tokens=tokens, hidden=hidden, cls=hidden[0], coords=coords,
                                                       explained=(0.3123456789, 0.1187654321)))


def roberta_masks(n_tokens: int = 19, epochs: int = 20, scheme: str = "dynamic") -> go.Figure:
    ids = torch.cat([torch.tensor([101]), torch.randint(1000, 30_000, (n_tokens - 2,), generator=make_generator(0)),
                     torch.tensor([102])])
    grid = roberta.masks_across_epochs(ids, scheme=scheme, epochs=epochs, seed=0, mask_token_id=103,
                                       vocab_size=30_522, special_ids=[101, 102])
    words = "[CLS] roberta drops next sentence prediction and trains longer on more data with bigger batches".split()
    tokens = (words + [f"piece{i}" for i in range(n_tokens)])[: n_tokens - 1] + ["[SEP]"]
    return roberta.masks_figure(grid, tokens, title="Dynamic masking (a fresh mask every epoch)")


def spanbert_lengths(p: float = 0.2, max_span: int = 10) -> go.Figure:
    lengths = spanbert.sample_span_lengths(5000, generator=make_generator(0), p=p, max_span=max_span)
    return spanbert.length_histogram_figure(lengths.tolist(), p=p, max_span=max_span)


def distillation_temperature(n_classes: int = 4, temperature: float = 4.0) -> go.Figure:
    logits = distillation.parse_logits("4.0, 1.5, -0.5, -2.0") if n_classes == 4 else \
        torch.randn(n_classes, generator=make_generator(0)).mul(3).tolist()
    return distillation.temperature_figure(logits, temperature=temperature)


def clinical_chunks(n_chunks: int = 3) -> go.Figure:
    text = "PREOPERATIVE DIAGNOSIS: Right ureteral calculus. PROCEDURE: Cystoscopy, right ureteroscopy. " * 3
    chunks = [clinical_bert.Chunk(index=i, token_start=126 * i, token_end=126 * (i + 1), char_start=0,
                                  char_end=len(text), text=text) for i in range(n_chunks)]
    logits = torch.randn(n_chunks, 2, generator=make_generator(0))
    probs = torch.softmax(logits, -1).numpy()  # float32, as score_note returns
    score = clinical_bert.NoteScore(chunks=chunks, chunk_probs=probs, labels=["no readmission", "readmission"],
                                    positive=1, aggregate=clinical_bert.aggregate_chunk_scores(probs[:, 1], c=2.0))
    return clinical_bert.chunk_figure(score)


def clinical_tsne(extra_categories: int = 0) -> go.Figure:
    terms = clinical_bert.load_terms() + [clinical_bert.Term(f"term {i}", f"my category {i}")
                                          for i in range(extra_categories)]
    coords = np.random.default_rng(0).normal(scale=20, size=(len(terms), 2)).astype(np.float32)  # as TSNE returns
    return clinical_bert.tsne_figure(clinical_bert.TermMap(terms=terms, coords=coords, perplexity=15.0))


def sentence_heatmap(n: int = 6) -> go.Figure:
    sentences = (SENTENCES + [f"Sentence number {i} is rather long, to test what the axis labels do with it."
                              for i in range(n)])[:n]
    emb = torch.randn(n, 384, generator=make_generator(0))  # MiniLM's width, float32
    return sentence_bert.heatmap_figure(sentences, sentence_bert.cosine_matrix(emb).numpy())


def sentence_clusters(n: int = 6, k: int = 3) -> go.Figure:
    sentences = (SENTENCES + [f"Another sentence, number {i}." for i in range(n)])[:n]
    emb = torch.randn(n, 384, generator=make_generator(0)).numpy()
    return sentence_bert.cluster_figure(sentence_bert.cluster(emb, sentences, k=k))


def words(n: int) -> list[str]:
    base = ["the", "plot", "is", "thin", ",", "but", "the", "performances", "are", "wonderful", "."]
    return [base[i % len(base)] for i in range(n)]


def faithfulness_curves(n_words: int = 11) -> go.Figure:
    rng = np.random.default_rng(0)

    def curve(name):
        return fa.Curves(name, list(range(n_words)), np.sort(rng.random(n_words + 1))[::-1].astype(np.float32),
                         np.sort(rng.random(n_words + 1)).astype(np.float32))

    methods = ["gradient × input", "integrated gradients", "SmoothGrad × input", "attention ([CLS], last layer)",
               "attention rollout ([CLS])"]
    result = fa.Faithfulness("P(positive)", list(range(n_words)), [curve(m) for m in methods],
                             [curve(fa.RANDOM) for _ in range(10)])
    return explain_figures.faithfulness_figure(result)


def mlm_lens(layers: int = 6, top_k: int = 5, vocab: int = 99) -> go.Figure:
    logits = torch.randn(layers + 1, vocab, generator=make_generator(0))
    probs = logits.softmax(-1)
    preds = [ml.LayerPrediction(k, [f"tok{int(i)}" for i in probs[k].topk(top_k).indices], probs[k].topk(top_k)
                                .values.tolist(), 1 + k, float(probs[k, 3])) for k in range(layers + 1)]
    lens = ml.Lens(words(9), [ml.MaskLens(6, preds, logits)], np.zeros((layers + 1, 9, 4), np.float32), "paris",
                   top_k, 3)
    return explain_figures.lens_figure(lens)


def trajectories(n_tokens: int = 9, layers: int = 6) -> go.Figure:
    hidden = torch.randn(layers + 1, n_tokens, 36, generator=make_generator(0)).numpy()
    return explain_figures.trajectory_figure(["[CLS]", *words(n_tokens - 2), "[SEP]"], ml.trajectories(hidden),
                                             [True] + [False] * (n_tokens - 2) + [True])


def pair_attribution(t_a: int = 7, t_b: int = 7) -> go.Figure:
    matrix = torch.randn(t_a, t_b, generator=make_generator(0)).double().numpy()
    special_a, special_b = [True] + [False] * (t_a - 2) + [True], [True] + [False] * (t_b - 2) + [True]
    result = sa.PairAttribution(words(t_a), words(t_b), special_a, special_b, matrix, 0.6888330565, -0.91, 20)
    return explain_figures.pair_figure(result)


def generation(n_new: int = 8, n_source: int = 100) -> go.Figure:
    scores = torch.randn(n_new, n_source, generator=make_generator(0)).double().numpy() * 0.05
    result = ga.GenerationAttribution([f"Ġ{w}" for w in words(n_source)], [f"Ġ{w}" for w in words(n_new)],
                                      np.full(n_new, 0.5), scores, "the plot", "LlamaForCausalLM")
    return explain_figures.generation_figure(result)


BUILDERS = {  # figure function -> (default example, crowded case at the tab's limits)
    "explain_figures.generation_figure": (generation, lambda: generation(24, 256)),
    "explain_figures.faithfulness_figure": (faithfulness_curves, lambda: faithfulness_curves(126)),
    "explain_figures.lens_figure": (mlm_lens, lambda: mlm_lens(24, 20, 30522)),
    "explain_figures.trajectory_figure": (trajectories, lambda: trajectories(128, 24)),
    "explain_figures.pair_figure": (pair_attribution, lambda: pair_attribution(48, 48)),
    "albert.breakdown_figure": (lambda: albert.breakdown_figure(albert.AlbertSize()),
                                lambda: albert.breakdown_figure(albert.AlbertSize(vocab_size=100_000, hidden_size=4096,
                                                                                  embedding_size=1024, num_layers=48,
                                                                                  intermediate_size=16_384,
                                                                                  num_heads=64, sharing="attention"))),
    "albert.features_figure": (albert_features, lambda: albert_features(128)),
    "roberta.masks_figure": (roberta_masks, lambda: roberta_masks(64, 40, "static")),
    "spanbert.length_histogram_figure": (spanbert_lengths, lambda: spanbert_lengths(0.15000000000000002, 30)),
    "distillation.temperature_figure": (distillation_temperature, lambda: distillation_temperature(50, 12.5)),
    "clinical_bert.chunk_figure": (clinical_chunks, lambda: clinical_chunks(128)),
    "clinical_bert.tsne_figure": (clinical_tsne, lambda: clinical_tsne(20)),
    "sentence_bert.heatmap_figure": (sentence_heatmap, lambda: sentence_heatmap(60)),
    "sentence_bert.cluster_figure": (sentence_clusters, lambda: sentence_clusters(40, 20)),
}
CASES = [pytest.param(build, id=f"{name}-{kind}") for name, pair in BUILDERS.items()
         for kind, build in zip(("default", "crowded"), pair)]


# --------------------------------------------------------------------------------------------
# Discovery: every function that builds a figure has a builder
# --------------------------------------------------------------------------------------------
def builds_a_figure(fn: ast.FunctionDef) -> bool:
    """True when ``fn`` calls ``go.Figure``/``make_subplots``/``px.*`` (or any ``*.Figure``) in its body."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and (f.attr in ("Figure", "make_subplots") or
                                                 (isinstance(f.value, ast.Name) and f.value.id == "px")):
                return True
            if isinstance(f, ast.Name) and f.id in ("Figure", "make_subplots"):
                return True
    return False


def figure_functions() -> set[str]:
    found = set()
    for module in MODULES:
        tree = ast.parse((REPO / "bertvariants" / f"{module}.py").read_text(encoding="utf-8"))
        found |= {f"{module}.{n.name}" for n in ast.walk(tree)
                  if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and builds_a_figure(n)}
    return found


def test_every_figure_function_has_a_builder():
    assert figure_functions() == set(BUILDERS), "add a builder to BUILDERS for each new figure function"


def test_discovery_sees_a_figure():
    tree = ast.parse("import plotly.express as px\ndef f():\n    return px.bar([1])\ndef g():\n    return 1\n")
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and builds_a_figure(n)] == ["f"]


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------
def plain_lines(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", line) for line in re.split(r"<br\s*/?>", html)]


def legend_entries(fig: go.Figure) -> set[str]:
    return {t.legendgroup or t.name or f"trace {i}" for i, t in enumerate(fig.data) if t.showlegend is not False
            and t.type not in ("heatmap", "histogram2d", "contour")}  # these never enter the legend by default


def raw_floats(obj, key: str = "", inside: bool = False) -> list[str]:
    """Floats under text/hovertext/customdata printed with more than MAX_DECIMALS decimals, and unrounded floats
    inside any string of the figure."""
    out: list[str] = []
    inside = inside or key in ("text", "hovertext", "customdata")
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += raw_floats(v, k, inside)
    elif isinstance(obj, (list, tuple, np.ndarray)):
        for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj):
            out += raw_floats(v, key, inside)
    elif isinstance(obj, str):
        out += [f"{key}: {obj[:80]!r}"] if RAW_FLOAT.search(obj) else []
    elif isinstance(obj, (float, np.floating)) and inside and np.isfinite(obj):
        decimals = repr(float(obj)).partition(".")[2]
        out += [f"{key}: {float(obj)!r}"] if "e" in decimals or len(decimals) > MAX_DECIMALS else []
    return out


@pytest.mark.parametrize("build", CASES)
def test_figure_is_readable_on_a_phone_and_a_desktop(build):
    fig = build()
    layout = fig.layout
    assert layout.title.text and plain_lines(layout.title.text)[0].strip(), "every figure has a title"
    assert all(len(line) <= figures.SUBTITLE_CHARS for line in plain_lines(layout.title.text)), layout.title.text
    assert layout.width is None and layout.autosize is not False, "no fixed width: the figure fills its box"
    assert layout.height is None or 300 <= layout.height <= 2000
    for t in fig.data:  # every axis a trace draws on has a title
        for axis in (t.xaxis or "x", t.yaxis or "y"):
            obj = layout[axis[0] + "axis" + axis[1:]]
            assert obj.title.text, f"{t.type} trace: {axis}-axis has no title"
            assert obj.automargin, f"{axis}-axis: tick labels need automargin"
            if obj.tickvals is not None and axis[0] == "x":  # explicit ticks are not thinned by Plotly
                assert len(obj.tickvals) <= MAX_LEGEND
            assert all(len(line) <= 30 for s in obj.ticktext or () for line in plain_lines(str(s))), obj.ticktext
    labelled = sum(len(t.x) for t in fig.data if t.type == "scatter" and "text" in (t.mode or ""))
    assert labelled <= figures.MAX_POINT_LABELS, "text labels on this many points collide: keep them on hover"
    entries = legend_entries(fig)
    assert len(entries) <= MAX_LEGEND, sorted(entries)
    if len(entries) > 1:  # a horizontal legend placed in the margin (under the title), never over the plot
        assert layout.legend.orientation == "h" and layout.legend.yref == "container"
    assert not raw_floats(fig.to_plotly_json()), raw_floats(fig.to_plotly_json())[:5]


def test_crowded_legends_fold_into_one_entry_and_keep_every_point():
    fig = clinical_tsne(20)
    assert sum(len(t.x) for t in fig.data) == len(clinical_bert.load_terms()) + 20
    assert len(legend_entries(fig)) == MAX_LEGEND and fig.data[-1].legendgroup == "overflow"
    assert "other categories" in next(t.name for t in fig.data if t.legendgroup == "overflow")
    assert len(sentence_clusters(40, 20).data) == 20  # one trace per cluster still


def test_raw_floats_are_caught():
    assert raw_floats({"text": [0.6899999976158142]}) and raw_floats({"name": "p = 0.15000000000000002"})
    assert not raw_floats({"text": [0.69, "0.690"], "x": [0.6899999976158142]})
