"""The one table of tabs: what each tab shows and which paper it follows.

Adding a variant = one module ``bertvariants/<key>.py`` (+ ``bertvariants/ui/<key>.py``) and one
line in :data:`TABS`. Which checkpoint serves which task lives in ``spaces.yml`` (:mod:`bertvariants.serving.manifest`);
how a task's model is found and loaded is :mod:`bertvariants.serving` (the one resolver).

Nothing here imports gradio, loads a model or touches the network at import time.
"""

from __future__ import annotations

from dataclasses import dataclass


# --------------------------------------------------------------------------------------------
# The one table of tabs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TabSpec:
    """One tab of the app: what the variant changed versus BERT, and which manifest tasks serve it."""

    key: str  # module name: bertvariants/<key>.py and bertvariants/ui/<key>.py
    label: str  # tab label
    paper: str  # citation shown in the tab
    url: str
    summary: str  # what changed versus BERT, one paragraph (markdown)


TABS: tuple[TabSpec, ...] = (
    TabSpec("albert", "ALBERT", "Lan et al. 2019, ALBERT: A Lite BERT for Self-supervised Learning of Language "
            "Representations",
            "https://arxiv.org/abs/1909.11942",
            "Factorized embeddings (V×E + E×H instead of V×H), one set of layer weights shared across all layers, "
            "and sentence-order prediction (SOP) instead of next-sentence prediction."),
    TabSpec("roberta", "RoBERTa", "Liu et al. 2019, RoBERTa: A Robustly Optimized BERT Pretraining Approach",
            "https://arxiv.org/abs/1907.11692",
            "Same architecture, better recipe: dynamic masking, no NSP, larger batches and data, and a byte-level BPE "
            "vocabulary (50K) that never emits [UNK]."),
    TabSpec("electra", "ELECTRA", "Clark et al. 2020, ELECTRA: Pre-training Text Encoders as Discriminators Rather "
            "Than Generators",
            "https://arxiv.org/abs/2003.10555",
            "Replaced-token detection: a small generator fills masked positions, and the discriminator learns from "
            "every token whether it was replaced (loss weight λ=50), which is far more sample-efficient than MLM."),
    TabSpec("spanbert", "SpanBERT", "Joshi et al. 2020, SpanBERT: Improving Pre-training by Representing and "
            "Predicting Spans",
            "https://arxiv.org/abs/1907.10529",
            "Masks contiguous spans of whole words (length ~ Geometric(0.2), clipped at 10) and adds a span-boundary "
            "objective that predicts each masked token from the span's boundary tokens."),
    TabSpec("distillation", "Distillation", "Hinton et al. 2015; Sanh et al. 2019 (DistilBERT); Jiao et al. 2020 "
            "(TinyBERT); Tang et al. 2019",
            "https://arxiv.org/abs/1503.02531",
            "A small student learns from a large teacher's softened output distribution (temperature T) as well as "
            "the gold labels; DistilBERT adds hidden-state cosine and MLM losses, TinyBERT layer-wise losses."),
    TabSpec("sentence_bert", "Sentence-BERT", "Reimers & Gurevych 2019, Sentence-BERT: Sentence Embeddings using "
            "Siamese BERT-Networks",
            "https://arxiv.org/abs/1908.10084",
            "A siamese BERT with a pooling layer (mean / CLS / max) trained so that the cosine of two sentence "
            "embeddings measures their similarity: one forward pass per sentence instead of one per pair."),
    TabSpec("clinical_bert", "ClinicalBERT", "Huang et al. 2019, ClinicalBERT: Modeling Clinical Notes and Predicting "
            "Hospital Readmission",
            "https://arxiv.org/abs/1904.05342",
            "BERT further pretrained on clinical notes; long notes are split into chunks whose scores are combined "
            "as P = (P_max + P_mean·n/c) / (1 + n/c) with c = 2."),
    TabSpec("video_bert", "VideoBERT", "Sun et al. 2019, VideoBERT: A Joint Model for Video and Language "
            "Representation Learning",
            "https://arxiv.org/abs/1904.01766",
            "Video is turned into discrete visual words (features of 1.5 s segments, hierarchical k-means) so that "
            "BERT can model text and video tokens in one sequence."),
    TabSpec("bart", "BART", "Lewis et al. 2019, BART: Denoising Sequence-to-Sequence Pre-training",
            "https://arxiv.org/abs/1910.13461",
            "A BERT-like bidirectional encoder with a GPT-like autoregressive decoder, pretrained to reconstruct text "
            "corrupted by masking, deletion, span infilling, sentence permutation and document rotation."),
    TabSpec("interpret", "Interpret", "Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks; Clark et al. "
            "2019, What Does BERT Look At? An Analysis of BERT's Attention", "https://arxiv.org/abs/1703.01365",
            "Not a variant: a look inside the models serving the other tabs. Attention shows softmax(QKᵀ/√d) for "
            "every layer and head (a decoder's causal attention, an encoder-decoder's cross-attention); saliency "
            "attributes a classifier's prediction to its input tokens with gradient × input and integrated "
            "gradients, whose completeness (Σ IG = F(x) − F(x')) is checked on every request."),
    TabSpec("leaderboard", "Leaderboard", "Measured here with `python -m evaluation`, beside the papers' published "
            "numbers",
            "https://gluebenchmark.com/",
            "Results of the evaluation harness (GLUE-style, SQuAD, ROUGE, clinical) with provenance, next to the "
            "numbers the papers report."),
)


def tab(key: str) -> TabSpec:
    for spec in TABS:
        if spec.key == key:
            return spec
    raise KeyError(f"unknown tab {key!r}; known: {', '.join(s.key for s in TABS)}")
